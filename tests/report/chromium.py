"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe):
stdlib only, no websocket client, no chromedriver.

    with Chromium() as browser:
        page = browser.open(Path("report.html"))
        page.load_ms, page.errors, page.requests, page.counts

Chromium reads protocol messages from its fd 3 and writes to its fd 4, each a JSON
object ended by a NUL byte. The Debian packages are `chromium` (and `chromium-driver`,
not needed here). Used by the report tests and by bench/bench_report.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Without the background-networking flags Chromium tries to reach Google's services,
# which this closed network refuses (and a test must not depend on).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]

# What a page reports about itself once loaded: the browser's own navigation timing
# (navigation start -> load event end), first contentful paint, and what it holds.
PAGE_FACTS_JS = """
(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint');
  return JSON.stringify({
    load_ms: nav ? nav.loadEventEnd - nav.startTime : null,
    dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd - nav.startTime : null,
    fcp_ms: fcp ? fcp.startTime : null,
    svg: document.querySelectorAll('svg.plot').length,  // charts (a chart's plot areas are nested <svg>s)
    canvas: document.querySelectorAll('canvas').length,
    figures: document.querySelectorAll('figure').length,
    tables: document.querySelectorAll('table').length,
    scripts: document.querySelectorAll('script').length,
    title: document.title,
    body_text: document.body ? document.body.innerText.length : 0,
    height: document.documentElement.scrollHeight,
  });
})()
"""


def find_chromium() -> str | None:
    """The Chromium executable, or None (the tests skip, the bench says what to install)."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class ChromiumError(RuntimeError):
    pass


@dataclass
class PageLoad:
    url: str
    load_ms: float | None  # navigation start -> load event end, measured by the browser
    fcp_ms: float | None  # first contentful paint
    wall_ms: float  # Page.navigate sent -> load event seen, measured here
    counts: dict = field(default_factory=dict)  # svg, canvas, figures, tables, scripts, ...
    errors: list[str] = field(default_factory=list)  # exceptions, console errors, error log entries
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    values: list = field(default_factory=list)  # results of open(..., evaluate=[...]), in order


class Chromium:
    def __init__(self, executable: str | None = None, timeout: float = 30.0) -> None:
        self.executable = executable or find_chromium()
        if not self.executable:
            raise ChromiumError("Chromium is not installed (apt-get install -y chromium)")
        self.timeout = timeout
        self._proc: subprocess.Popen | None = None
        self._to_child: int | None = None
        self._from_child: int | None = None
        self._profile: str | None = None
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict] = []

    # -- process ------------------------------------------------------------------------
    def __enter__(self) -> Chromium:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self._profile = tempfile.mkdtemp(prefix="rkbench-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        # Chromium must see the pipes as its fds 3 and 4. In the child, before exec: copy
        # them above 10 first (either may be fd 3 or 4 already), then onto 3 and 4. dup2
        # makes 3 and 4 inheritable; every other descriptor Python opened is close-on-exec.
        def remap() -> None:
            r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
            w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        cmd = [self.executable, *FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-pipe", "about:blank"]
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=remap,
                close_fds=False,
                start_new_session=True,
            )
        finally:
            os.close(to_child_r)
            os.close(from_child_w)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                self.send("Browser.close", timeout=5)
            except Exception:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the browser and its helpers
                proc.wait()
        for fd in (self._to_child, self._from_child):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to_child = self._from_child = None
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    # -- protocol -----------------------------------------------------------------------
    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float | None = None
    ) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._to_child, data) :]
        want = self._next_id
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read(deadline, f"reply to {method}")
            if reply.get("id") == want:
                if "error" in reply:
                    raise ChromiumError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_event(self, method: str, session: str | None = None, timeout: float | None = None) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = 0
        while True:
            for ev in self._events[seen:]:
                if ev.get("method") == method and (session is None or ev.get("sessionId") == session):
                    return ev
            seen = len(self._events)
            self._events.append(self._read(deadline, method))

    def _read(self, deadline: float, what: str) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChromiumError(f"Chromium: no {what} within the timeout")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise ChromiumError(f"Chromium exited while waiting for {what}")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    # -- pages --------------------------------------------------------------------------
    def open(self, path: Path | str, evaluate: Sequence[str] = ()) -> PageLoad:
        """Load a file in a new tab, wait for its load event and two animation frames
        (so it has been laid out and painted), collect what it said and asked for, then
        evaluate each expression of `evaluate` in the page (JSON-able results in .values)."""
        url = Path(path).resolve().as_uri() if not str(path).startswith(("about:", "data:", "file:")) else str(path)
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.send(f"{domain}.enable", session=session)
            self._events.clear()
            started = time.perf_counter()
            self.send("Page.navigate", {"url": url}, session=session)
            self.wait_event("Page.loadEventFired", session=session)
            wall_ms = (time.perf_counter() - started) * 1000
            self.send(
                "Runtime.evaluate",
                {
                    "expression": "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))",
                    "awaitPromise": True,
                },
                session=session,
            )
            facts = json.loads(
                self.send("Runtime.evaluate", {"expression": PAGE_FACTS_JS, "returnByValue": True}, session=session)[
                    "result"
                ]["value"]
            )
            values = [
                self.send(
                    "Runtime.evaluate", {"expression": js, "returnByValue": True, "awaitPromise": True}, session=session
                )["result"].get("value")
                for js in evaluate
            ]
            errors, requests = [], []
            for ev in self._events:
                if ev.get("sessionId") != session:
                    continue
                m, p = ev.get("method"), ev.get("params", {})
                if m == "Runtime.exceptionThrown":
                    d = p.get("exceptionDetails", {})
                    errors.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")))
                elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    errors.append(
                        "console.error: "
                        + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                    )
                elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    errors.append("log: " + p["entry"].get("text", ""))
                elif m == "Network.requestWillBeSent":
                    requests.append(p.get("request", {}).get("url", ""))
            return PageLoad(
                url=url,
                load_ms=facts.pop("load_ms"),
                fcp_ms=facts.pop("fcp_ms"),
                wall_ms=wall_ms,
                counts=facts,
                errors=errors,
                requests=requests,
                values=values,
            )
        finally:
            self.send("Target.closeTarget", {"targetId": target})

    def screenshot(self, path: Path | str, out: Path | str, full_page: bool = True) -> None:
        """PNG of a page (for a person to look at)."""
        import base64

        url = Path(path).resolve().as_uri()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        try:
            self.send("Page.enable", session=session)
            self.send("Page.navigate", {"url": url}, session=session)
            self.wait_event("Page.loadEventFired", session=session)
            shot = self.send(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": full_page}, session=session
            )
            Path(out).write_bytes(base64.b64decode(shot["data"]))
        finally:
            self.send("Target.closeTarget", {"targetId": target})

    def screenshot_each(self, path: Path | str, selector: str, out_prefix: Path | str) -> list[Path]:
        """One PNG per element matching `selector` (out_prefix-0.png, -1.png, ...): a chart
        at a time, at the size the page lays it out, for a person to look at."""
        import base64

        url = Path(path).resolve().as_uri()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        try:
            self.send("Page.enable", session=session)
            self.send("Page.navigate", {"url": url}, session=session)
            self.wait_event("Page.loadEventFired", session=session)
            js = (
                f"JSON.stringify(Array.from(document.querySelectorAll({json.dumps(selector)})).map(el => {{"
                " const r = el.getBoundingClientRect();"
                " return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; }))"
            )
            boxes = json.loads(
                self.send("Runtime.evaluate", {"expression": js, "returnByValue": True}, session=session)["result"][
                    "value"
                ]
            )
            written = []
            for i, (x, y, w, h) in enumerate(boxes):
                clip = {"x": x, "y": y, "width": max(1, w), "height": max(1, h), "scale": 1}
                shot = self.send(
                    "Page.captureScreenshot",
                    {"format": "png", "clip": clip, "captureBeyondViewport": True},
                    session=session,
                )
                out = Path(f"{out_prefix}-{i}.png")
                out.write_bytes(base64.b64decode(shot["data"]))
                written.append(out)
            return written
        finally:
            self.send("Target.closeTarget", {"targetId": target})
