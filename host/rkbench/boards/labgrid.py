"""A labgrid place as a board: `--board labgrid:PLACE`.

labgrid (https://labgrid.org) is the board-farm coordinator many embedded-Linux
labs run. A *place* groups the resources of one board; the board's SSH address
is a `NetworkService` resource (address, username, port) published by an
exporter. rkbench acquires the place, reads its NetworkService, opens an SSH
transport to it, and releases the place when done, also when the run fails or
is interrupted (Ctrl-C).

labgrid does not share rkbench's Python environment (labgrid 26 needs
protobuf>=5.29, rknn-toolkit2 pins protobuf<=4.25.4), so rkbench drives the
`labgrid-client` command, exactly as a lab's CI job would:

    labgrid-client -x COORDINATOR -p PLACE show | acquire | release-from HOST/USER

Every command is an argv list (no shell). Where the client is found:
`client=` (--labgrid-client, a file or a venv directory), else
$RKBENCH_LABGRID_CLIENT, else `labgrid-client` on PATH. The coordinator:
`coordinator=` (--lg-coordinator), else $LG_COORDINATOR, else labgrid's own
default (127.0.0.1:20408).

What `labgrid-client show` prints (labgrid 24..26, the gRPC coordinator), the one
source parsed here:

    Place 'rk3588-a':
      aliases: a, b            (only when set; likewise comment, tags)
      matches:
        exporter/group/NetworkService
      acquired: ci-host/jenkins       (or None)
      acquired resources:
        exporter/group/NetworkService/NetworkService
      created: 2026-01-02 10:00:00.000000
      changed: 2026-01-02 10:05:00.000000
    Acquired resource 'NetworkService' (exporter/group/NetworkService/NetworkService):
      {'acquired': 'rk3588-a',
       'avail': True,
       'cls': 'NetworkService',
       'params': {'address': '192.168.1.20', 'extra': {...}, 'port': 22, 'username': 'root'}}

("Matching resource" instead of "Acquired resource" while the place is free.)
The resource dicts are Python literals (pprint), read with ast.literal_eval.
"""

from __future__ import annotations

import ast
import contextlib
import getpass
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from rkbench.errors import BoardError, UsageError

BOARD_PREFIX = "labgrid:"
CLIENT_ENV = "RKBENCH_LABGRID_CLIENT"
COORDINATOR_ENV = "LG_COORDINATOR"
LABGRID_DEFAULT_COORDINATOR = "127.0.0.1:20408"
CLIENT_OPTION = "--labgrid-client"
COORDINATOR_OPTION = "--lg-coordinator"
WAIT_OPTION = "--labgrid-wait"  # seconds to wait for a busy place (acquire_timeout)
NETWORK_SERVICE = "NetworkService"
DEFAULT_COMMAND_TIMEOUT = 30.0

# labgrid-client reads these and would change what `acquire` does (LG_ENV makes it
# acquire the RemotePlaces of an environment file instead of -p) or which Python
# packages it imports (ours): never passed on to it.
_CHILD_ENV_DROP = (
    "LG_ENV",
    "LG_PLACE",
    "PLACE",
    "LG_STATE",
    "STATE",
    "LG_INITIAL_STATE",
    "LG_TOKEN",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "VIRTUAL_ENV",
)

INSTALL_HINT = (
    "labgrid needs its own environment (its protobuf cannot live beside rknn-toolkit2's): "
    "python3 -m venv ~/.venvs/labgrid && ~/.venvs/labgrid/bin/pip install 'labgrid>=26,<27', "
    f"then pass {CLIENT_OPTION} ~/.venvs/labgrid/bin/labgrid-client (or set ${CLIENT_ENV})"
)

# A place name, an alias ("ns:alias") or a reservation token ("+TOKEN").
_PLACE_RE = re.compile(r"^\+?[A-Za-z0-9_][A-Za-z0-9._:+-]{0,127}$")


# ----------------------------------------------------------------------------
# errors: one line each, exit 3 (BoardError)
# ----------------------------------------------------------------------------
class LabgridError(BoardError):
    """Something about the labgrid place, its coordinator or labgrid-client."""


class LabgridClientMissing(LabgridError):
    """labgrid-client is not installed where we looked."""


class CoordinatorUnreachable(LabgridError):
    """The labgrid coordinator did not answer."""


class PlaceNotFound(LabgridError):
    """No place of that name on the coordinator."""


class PlaceBusy(LabgridError):
    """The place is acquired by someone else (or by another run of ours)."""

    def __init__(self, message: str, holder: str):
        super().__init__(message)
        self.holder = holder


class NoNetworkService(LabgridError):
    """The place has no (usable) NetworkService resource."""


# ----------------------------------------------------------------------------
# plain data
# ----------------------------------------------------------------------------
class NetworkService(NamedTuple):
    """Where the board's SSH server is, as the place's NetworkService says."""

    address: str
    username: str
    port: int


@dataclass(frozen=True)
class LabgridResource:
    """One resource of a place, as `labgrid-client show` lists it."""

    name: str  # the name inside the place (the match's rename, else the resource name)
    path: tuple[str, str, str, str]  # exporter, group, class, resource name
    cls: str
    params: dict[str, object] = field(default_factory=dict)  # NetworkService: address, username, port, ...
    extra: dict[str, object] = field(default_factory=dict)  # proxy, proxy_required
    avail: bool = True
    acquired: str | None = None  # the place that holds the resource
    orphaned: bool = False  # acquired, but its exporter is gone

    @property
    def display(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True)
class PlaceState:
    """A place as `labgrid-client show` describes it."""

    name: str
    aliases: tuple[str, ...] = ()
    comment: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    matches: tuple[str, ...] = ()
    acquired: str | None = None  # "host/user" of the holder, None when free
    acquired_resources: tuple[str, ...] = ()
    allowed: tuple[str, ...] = ()
    changed: str = ""
    reservation: str = ""
    resources: tuple[LabgridResource, ...] = ()  # acquired ones, or the matching ones when free

    def services(self) -> list[LabgridResource]:
        return [r for r in self.resources if r.cls == NETWORK_SERVICE]


def describe_holder(holder: str) -> str:
    """'host/user' -> "user 'user' on host 'host'"."""
    host, sep, user = holder.partition("/")
    return f"user {user!r} on host {host!r}" if sep else repr(holder)


def parse_labgrid_board(text: str) -> str | None:
    """The place name of a `labgrid:PLACE` board string; None for any other board string."""
    if not isinstance(text, str):
        return None
    s = text.strip()
    if s[: len(BOARD_PREFIX)].lower() != BOARD_PREFIX:
        return None
    place = s[len(BOARD_PREFIX) :]
    if place.startswith("//"):
        place = place[2:].rstrip("/")
    if not place:
        raise UsageError(f"--board {text!r}: no place name after 'labgrid:'; write labgrid:PLACE")
    if not _PLACE_RE.match(place):
        raise UsageError(f"--board {text!r}: {place!r} is not a labgrid place name")
    return place


# ----------------------------------------------------------------------------
# parsing `labgrid-client show`
# ----------------------------------------------------------------------------
_PLACE_HEAD = re.compile(r"^Place '(?P<name>.*)':\s*$")
_RES_HEAD = re.compile(r"^(?P<kind>Acquired|Matching) resource '(?P<name>[^']*)' \((?P<path>[^)]*)\):\s*$")
_ORPHAN = re.compile(r"^Orphaned resource '(?P<name>[^']*)' \((?P<path>[^)]*)\)\s*$")


def _split_path(path: str) -> tuple[str, str, str, str]:
    parts = path.split("/")
    if len(parts) != 4:
        raise ValueError(path)
    return parts[0], parts[1], parts[2], parts[3]


def _literal_dict(lines: list[str]) -> dict[str, object]:
    text = "\n".join(line[2:] if line.startswith("  ") else line for line in lines).strip()
    value = ast.literal_eval(text)
    if not isinstance(value, dict):
        raise ValueError("not a dict")
    return value


def parse_show(text: str) -> PlaceState:
    """A PlaceState from `labgrid-client -p PLACE show` output (ValueError if it is none)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if _PLACE_HEAD.match(ln)), None)
    if start is None:
        raise ValueError("no \"Place '...':\" line")
    name = _PLACE_HEAD.match(lines[start]).group("name")  # type: ignore[union-attr]
    fields: dict[str, object] = {}
    lists: dict[str, list[str]] = {"matches": [], "acquired resources": []}
    current: str | None = None
    i = start + 1
    while i < len(lines) and lines[i].startswith("  "):
        line = lines[i]
        i += 1
        if line.startswith("    ") and current in lists:
            lists[current].append(line.strip())
            continue
        key, _, value = line.strip().partition(":")
        value = value.strip()
        current = key
        if key not in lists:
            fields[key] = value
    resources: list[LabgridResource] = []
    while i < len(lines):
        line = lines[i]
        i += 1
        m = _RES_HEAD.match(line)
        if m:
            body: list[str] = []
            while i < len(lines) and lines[i].startswith("  "):
                body.append(lines[i])
                i += 1
            data = _literal_dict(body)
            params = dict(data.get("params") or {})  # type: ignore[arg-type]
            extra = params.pop("extra", None) or {}
            path = _split_path(m.group("path"))
            resources.append(
                LabgridResource(
                    name=m.group("name"),
                    path=path,
                    cls=str(data.get("cls") or path[2]),
                    params=params,
                    extra=dict(extra) if isinstance(extra, dict) else {},
                    avail=bool(data.get("avail", True)),
                    acquired=data.get("acquired"),  # type: ignore[arg-type]
                )
            )
            continue
        m = _ORPHAN.match(line)
        if m:
            path = _split_path(m.group("path"))
            resources.append(LabgridResource(name=m.group("name"), path=path, cls=path[2], orphaned=True))
    acquired = str(fields.get("acquired", "None"))
    tags: dict[str, str] = {}
    for pair in str(fields.get("tags", "")).split(","):
        k, sep, v = pair.strip().partition("=")
        if sep:
            tags[k] = v

    def _csv(key: str) -> tuple[str, ...]:
        return tuple(a.strip() for a in str(fields.get(key, "")).split(",") if a.strip())

    return PlaceState(
        name=name,
        aliases=_csv("aliases"),
        comment=str(fields.get("comment", "")),
        tags=tags,
        matches=tuple(lists["matches"]),
        acquired=None if acquired in ("", "None") else acquired,
        acquired_resources=tuple(r.split(" -> ")[0] for r in lists["acquired resources"]),
        allowed=_csv("allowed"),
        changed=str(fields.get("changed", "")),
        reservation=str(fields.get("reservation", "")),
        resources=tuple(resources),
    )


# ----------------------------------------------------------------------------
# finding and running labgrid-client
# ----------------------------------------------------------------------------
def find_labgrid_client(client: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Path of labgrid-client: `client` (a file, or a venv/bin directory), else
    $RKBENCH_LABGRID_CLIENT, else PATH. LabgridClientMissing with install steps."""
    environ = os.environ if env is None else env
    given = client or environ.get(CLIENT_ENV) or None
    source = CLIENT_OPTION if client else f"${CLIENT_ENV}"
    if given:
        path = os.path.expanduser(str(given))
        if os.path.isdir(path):
            for cand in (os.path.join(path, "bin", "labgrid-client"), os.path.join(path, "labgrid-client")):
                if os.path.isfile(cand):
                    path = cand
                    break
        if os.path.sep not in path and not os.path.exists(path):
            found = shutil.which(path, path=environ.get("PATH"))
            if found:
                return found
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.abspath(path)
        raise LabgridClientMissing(
            f"labgrid-client not found at {given} (from {source}): no such executable; {INSTALL_HINT}"
        )
    found = shutil.which("labgrid-client", path=environ.get("PATH"))
    if found:
        return found
    raise LabgridClientMissing(f"labgrid-client not found on PATH; {INSTALL_HINT}")


@dataclass(frozen=True)
class ClientResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    interrupted: bool = False  # a Ctrl-C came while a shielded command ran

    def error_line(self) -> str:
        """The line of stderr that says what went wrong (labgrid prints 'labgrid-client: Error: ...')."""
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        for ln in reversed(lines):
            if "Error:" in ln or "error:" in ln:
                return re.sub(r"^(labgrid-client: |Server error: )?(Error: )?", "", ln)
        return lines[-1] if lines else ""


def _child_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CHILD_ENV_DROP}
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
    return env


def _whoami(env: Mapping[str, str]) -> str:
    """How labgrid-client names us: LG_HOSTNAME/LG_USERNAME, else hostname/login name."""
    host = env.get("LG_HOSTNAME") or socket.gethostname()
    user = env.get("LG_USERNAME")
    if not user:
        for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
            if env.get(name):
                user = env[name]
                break
        else:
            user = getpass.getuser()
    return f"{host}/{user}"


# ----------------------------------------------------------------------------
# the place
# ----------------------------------------------------------------------------
class LabgridPlace:
    """One labgrid place, driven through labgrid-client.

        with LabgridPlace("rk3588-a", coordinator="lab:20408") as place:  # acquire
            ns = place.network_service()       # NetworkService(address, username, port)
            ...
        # released here, also when the body raised or was interrupted

    `env` adds (or, with None values, removes) environment variables for
    labgrid-client (e.g. LG_USERNAME). `log` gets one-line notices.
    """

    def __init__(
        self,
        name: str,
        client: str | None = None,
        coordinator: str | None = None,
        *,
        env: Mapping[str, str | None] | None = None,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        acquire_timeout: float = 0.0,
        poll_interval: float = 2.0,
        log: Callable[[str], None] | None = None,
    ):
        if not isinstance(name, str) or not _PLACE_RE.match(name):
            raise UsageError(f"{name!r} is not a labgrid place name")
        self.name = name
        self._env = _child_env(env)  # type: ignore[arg-type]
        self.client = find_labgrid_client(client, self._env)
        given = coordinator or self._env.get(COORDINATOR_ENV) or None
        self.coordinator = given or LABGRID_DEFAULT_COORDINATOR
        self._coordinator_given = given is not None
        self.command_timeout = command_timeout
        self.acquire_timeout = acquire_timeout
        self.poll_interval = poll_interval
        self._log = log or (lambda msg: None)
        self._place = name  # the canonical name once `show` told us
        self._holder: str | None = None  # "host/user" while we hold the place
        self._acquired_state: PlaceState | None = None  # `show` right after our acquire

    # -- helpers --------------------------------------------------------------
    @property
    def acquired(self) -> bool:
        """Whether this object holds the place."""
        return self._holder is not None

    @property
    def holder(self) -> str | None:
        return self._holder

    @property
    def identity(self) -> str:
        """'host/user' as labgrid-client names us (LG_HOSTNAME / LG_USERNAME)."""
        return _whoami(self._env)

    def describe(self) -> str:
        return f"labgrid place {self.name!r} (coordinator {self.coordinator})"

    def _coordinator_hint(self) -> str:
        if self._coordinator_given:
            return f"is labgrid-coordinator running there and reachable? ({COORDINATOR_OPTION} / ${COORDINATOR_ENV})"
        return (
            f"no coordinator was given, so labgrid's default {LABGRID_DEFAULT_COORDINATOR} was tried; "
            f"set {COORDINATOR_OPTION} HOST:PORT or ${COORDINATOR_ENV}"
        )

    def _run(
        self, args: Sequence[str], *, place: bool = True, timeout: float | None = None, shield: bool = False
    ) -> ClientResult:
        """Run labgrid-client; the child is in its own session so a Ctrl-C on
        the terminal reaches us, not it. `shield`: a Ctrl-C while it runs does
        not stop it (release must finish): the result says `interrupted`, and the
        caller raises KeyboardInterrupt once its bookkeeping is done."""
        argv = [self.client, "-x", self.coordinator]
        if place:
            argv += ["-p", self._place]
        argv += list(args)
        timeout = self.command_timeout if timeout is None else timeout
        interrupted = False
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=self._env, start_new_session=True
                )
            except OSError as exc:
                raise LabgridClientMissing(f"cannot run {self.client}: {exc.strerror or exc}; {INSTALL_HINT}") from None
            deadline = time.monotonic() + timeout
            try:
                while True:
                    try:
                        proc.wait(max(0.0, deadline - time.monotonic()))
                        break
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                        raise CoordinatorUnreachable(
                            f"{self.describe()}: labgrid-client {' '.join(args)} gave no answer within "
                            f"{timeout:g} s; {self._coordinator_hint()}"
                        ) from None
                    except KeyboardInterrupt:
                        if not shield:
                            raise
                        interrupted = True  # keep waiting: the release must reach the coordinator
            finally:
                if proc.returncode is None:
                    proc.kill()
                    proc.wait()
            out.seek(0)
            err.seek(0)
            return ClientResult(
                argv,
                proc.returncode,
                out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"),
                interrupted,
            )

    def _raise_common(self, res: ClientResult, what: str) -> None:
        """Errors every command can meet: no coordinator, no such place, a client that is not labgrid's."""
        text = res.stderr
        line = res.error_line()
        if "Could not connect to coordinator" in text or "coordinator is unavailable" in text:
            detail = ""
            m = re.search(r"last error: (.*)", text) or re.search(r"coordinator is unavailable: (.*)", text)
            if m:
                detail = f" ({m.group(1).strip()[:160]})"
            raise CoordinatorUnreachable(
                f"{self.describe()}: cannot reach the labgrid coordinator{detail}; {self._coordinator_hint()}"
            )
        if "matches nothing" in line or "matches multiple places" in line:
            raise PlaceNotFound(f"{self.describe()}: no such place{self._places_hint()}")
        if "invalid choice" in text or "unrecognized arguments" in text:
            raise LabgridError(
                f"{self.describe()}: {self.client} does not understand `{what}` ({line}); "
                "rkbench needs labgrid-client 24 or newer (pip install 'labgrid>=26,<27' in its own venv)"
            )

    def _places_hint(self) -> str:
        try:
            res = self._run(["places"], place=False)
        except LabgridError:
            return ""
        names = [ln.split()[0] for ln in res.stdout.splitlines() if ln.strip()] if res.returncode == 0 else []
        if not names:
            return " (the coordinator has no places; create one: labgrid-client -p NAME create + add-match)"
        close = [n for n in names if self.name.lower() in n.lower() or n.lower() in self.name.lower()]
        shown = close or names
        more = f" and {len(shown) - 12} more" if len(shown) > 12 else ""
        return f"; {'similar' if close else 'known'} places: {', '.join(shown[:12])}{more}"

    # -- what the coordinator says about the place ------------------------------------------
    def show(self) -> PlaceState:
        """The place's state (holder, matches, resources). PlaceNotFound if there is no such place."""
        res = self._run(["show"])
        if res.returncode != 0:
            self._raise_common(res, "show")
            raise LabgridError(
                f"{self.describe()}: labgrid-client show failed (exit {res.returncode})"
                + (f": {res.error_line()}" if res.error_line() else "")
            )
        try:
            state = parse_show(res.stdout)
        except (ValueError, SyntaxError) as exc:
            raise LabgridError(
                f"{self.describe()}: cannot read the output of labgrid-client show ({exc}); is this labgrid 24..26?"
            ) from None
        names = {state.name} | set(state.aliases) | {a.split(":", 1)[1] for a in state.aliases if ":" in a}
        if self.name not in names and not self.name.startswith("+"):
            # labgrid-client picks a place by substring: never run on a board nobody named
            raise PlaceNotFound(
                f"{self.describe()}: no such place (labgrid would pick {state.name!r}, whose name only "
                f"contains {self.name!r}); write the full place name"
            )
        self._place = state.name
        return state

    def _busy_error(self, state: PlaceState, waited: float, timeout: float) -> PlaceBusy:
        holder = state.acquired or "?"
        since = f" since {state.changed.split('.')[0]}" if state.changed else ""
        wait = f" (waited {waited:.0f} s)" if timeout > 0 else ""
        if holder == self.identity:
            msg = (
                f"{self.describe()}: already acquired by you ({holder}){since}: another rkbench run or "
                f"labgrid session of yours holds it, or an earlier run was killed before releasing it; "
                f"if nothing uses it: labgrid-client -p {state.name} release"
            )
        else:
            msg = (
                f"{self.describe()}: acquired by {describe_holder(holder)}{since}{wait}; "
                f"ask them to release it (labgrid-client -p {state.name} release), or let rkbench wait "
                f"for it ({WAIT_OPTION} SECONDS)"
            )
        return PlaceBusy(msg, holder)

    def _check_service(self, state: PlaceState) -> None:
        if state.services():
            return
        have = ", ".join(f"{r.name} ({r.cls})" for r in state.resources) or "no resources at all"
        matches = ", ".join(state.matches) or "no matches"
        raise NoNetworkService(
            f"{self.describe()}: the place has no NetworkService resource (it has {have}; matches: {matches}); "
            "export one (group: {NetworkService: {address: IP, username: root, port: 22}}) "
            f"and labgrid-client -p {state.name} add-match EXPORTER/GROUP/NetworkService"
        )

    # -- acquire / release ---------------------------------------------------------------------
    def acquire(self, timeout: float | None = None) -> PlaceState:
        """Acquire the place; wait up to `timeout` s (default: acquire_timeout) while
        someone else holds it. PlaceBusy names the holder. Returns the acquired state.

        If anything (a Ctrl-C included) stops it after the acquire request went
        out, the place is released again when the coordinator granted it to us."""
        if self._acquired_state is not None:
            return self._acquired_state
        timeout = self.acquire_timeout if timeout is None else timeout
        request = [""]  # "" before the acquire request, then "sent", "granted" or "refused"
        try:
            state = self._acquire(timeout, request)
            self._acquired_state = state
            return state
        except BaseException:
            if request[0] in ("sent", "granted") and self._acquired_state is None:
                self._undo_acquire()
            raise

    def _acquire(self, timeout: float, request: list[str]) -> PlaceState:
        start = time.monotonic()
        announced = False
        while True:
            state = self.show()
            if state.acquired is None:
                self._check_service(state)
                request[0] = "sent"
                res = self._run(["acquire"])
                request[0] = "granted" if res.returncode == 0 else "refused"
                if res.returncode == 0:
                    break
                self._raise_common(res, "acquire")
                line = res.error_line()
                if "already acquired" not in line:  # the race with another client is handled below
                    if "has no matching remote resource" in line:
                        raise NoNetworkService(
                            f"{self.describe()}: cannot acquire: {line} (its exporter is offline, or the "
                            f"match is wrong; labgrid-client -p {self._place} show)"
                        )
                    raise LabgridError(
                        f"{self.describe()}: labgrid-client acquire failed (exit {res.returncode})"
                        + (f": {line}" if line else "")
                    )
                state = self.show()
                if state.acquired is None:
                    continue
            waited = time.monotonic() - start
            if state.acquired == self.identity or waited >= timeout:
                raise self._busy_error(state, waited, timeout)
            if not announced:
                self._log(
                    f"{self.describe()} is acquired by {describe_holder(state.acquired)}; "
                    f"waiting up to {timeout:g} s for it"
                )
                announced = True
            time.sleep(min(self.poll_interval, max(0.05, timeout - waited)))
        state = self.show()
        if state.acquired is None:
            raise LabgridError(f"{self.describe()}: labgrid-client acquire succeeded, but the place is not acquired")
        self._holder = state.acquired
        self._check_service(state)
        return state

    def _undo_acquire(self) -> None:
        """Release the place if it ended up acquired by us (after a failed or interrupted acquire)."""
        try:
            state = self.show()
        except BaseException:
            return
        if state.acquired and state.acquired == self.identity:
            self._holder = state.acquired
            try:
                self.release()
            except BaseException:
                pass

    def release(self) -> None:
        """Give the place back. Only our own hold is released (labgrid-client
        release-from HOST/USER); safe to call twice. A Ctrl-C does not stop it."""
        if self._holder is None:
            return
        holder = self._holder
        res = self._run(["release-from", holder], shield=True)
        interrupted = res.interrupted
        if res.returncode != 0 and "invalid choice" in res.stderr:  # a client without release-from
            res = self._run(["release"], shield=True)
            interrupted = interrupted or res.interrupted
        try:
            self._released(res, holder)
        except LabgridError as exc:
            if not interrupted:
                raise
            self._log(str(exc))  # the Ctrl-C goes on; say what was left behind
        if interrupted:
            raise KeyboardInterrupt

    def _released(self, res: ClientResult, holder: str) -> None:
        if res.returncode == 0 or "is not acquired" in res.error_line():
            self._holder = None
            self._acquired_state = None
            return
        try:
            self._raise_common(res, "release-from")
        except LabgridError as exc:
            raise LabgridError(
                f"{exc} -- the place is still acquired by {holder}; release it by hand: "
                f"labgrid-client -x {self.coordinator} -p {self._place} release"
            ) from None
        raise LabgridError(
            f"{self.describe()}: release failed (exit {res.returncode})"
            + (f": {res.error_line()}" if res.error_line() else "")
            + f"; release it by hand: labgrid-client -x {self.coordinator} -p {self._place} release"
        )

    def __enter__(self) -> LabgridPlace:
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.release()
            return
        try:
            self.release()
        except Exception as rel_exc:  # the body's error matters more; say that the place is left
            self._log(str(rel_exc))

    # -- the board's address ----------------------------------------------------------------
    def service(self, name: str | None = None, refresh: bool = False) -> LabgridResource:
        """The place's NetworkService resource (acquired place; `name` picks one of several).

        From what `show` said right after the acquire, or asked again with `refresh`."""
        if not self.acquired:
            raise LabgridError(f"{self.describe()}: acquire the place before reading its NetworkService")
        state = self._acquired_state if not refresh and self._acquired_state is not None else self.show()
        if state.acquired != self._holder:
            self._holder = None
            self._acquired_state = None
            raise PlaceBusy(
                f"{self.describe()}: the place was taken from us; it is now acquired by "
                f"{describe_holder(state.acquired) if state.acquired else 'nobody'}",
                state.acquired or "",
            )
        services = state.services()
        if name is not None:
            services = [r for r in services if r.name == name or r.path[3] == name]
            if not services:
                names = ", ".join(r.name for r in state.services()) or "none"
                raise NoNetworkService(f"{self.describe()}: no NetworkService named {name!r} (it has: {names})")
        if not services:
            self._check_service(state)
        if len(services) > 1:
            names = ", ".join(r.name for r in services)
            raise NoNetworkService(
                f"{self.describe()}: the place has {len(services)} NetworkServices ({names}); say which one to use"
            )
        svc = services[0]
        if svc.orphaned:
            raise NoNetworkService(
                f"{self.describe()}: its NetworkService {svc.display} is orphaned (the exporter disconnected); "
                "check the exporter and retry"
            )
        address, username = svc.params.get("address"), svc.params.get("username")
        if not isinstance(address, str) or not address or not isinstance(username, str) or not username:
            raise NoNetworkService(
                f"{self.describe()}: NetworkService {svc.display} has no address or username ({svc.params})"
            )
        return svc

    def network_service(self, name: str | None = None, refresh: bool = False) -> NetworkService:
        """(address, username, port) of the place's NetworkService."""
        return self._address_of(self.service(name, refresh))

    def _address_of(self, svc: LabgridResource) -> NetworkService:
        try:
            port = int(svc.params.get("port") or 22)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            port = 0
        if not 1 <= port <= 65535:
            raise NoNetworkService(
                f"{self.describe()}: NetworkService {svc.display} has a bad port {svc.params.get('port')!r}"
            )
        return NetworkService(str(svc.params["address"]), str(svc.params["username"]), port)

    def __repr__(self) -> str:
        state = f"held by {self._holder}" if self._holder else "not held"
        return f"<LabgridPlace {self.name!r} at {self.coordinator}, {state}>"


# ----------------------------------------------------------------------------
# a place as an opened board
# ----------------------------------------------------------------------------
def _ssh_address(ns: NetworkService, board: str):
    from rkbench.boards.address import BoardAddress

    host = ns.address.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return BoardAddress(
        kind="ssh",
        host=host,
        port=ns.port,
        user=ns.username,
        raw=board,
        explicit_user=True,
        explicit_port=True,
    )


def _proxy_jump(svc: LabgridResource, env: Mapping[str, str], ssh_config: str | None) -> str | None:
    """labgrid's own rule: reach the service through the exporter host when the
    exporter says so (link-local address, exporter --isolated), or when LG_PROXY
    forces it. labgrid runs plain `ssh HOST` there, so the login is ~/.ssh/config's
    User for that host, else this user's name (not rkbench's board default, root)."""
    proxy = svc.extra.get("proxy") if svc.extra.get("proxy_required") else None
    proxy = str(proxy or env.get("LG_PROXY") or "")
    if not proxy or "@" in proxy:
        return proxy or None
    from rkbench.boards.transport.ssh import _load_ssh_config

    config = _load_ssh_config(ssh_config)
    host = proxy.rsplit(":", 1)[0] if proxy.count(":") == 1 else proxy
    if config is not None and config.lookup(host).get("user"):
        return proxy
    return f"{getpass.getuser()}@{proxy}"


def open_labgrid_board(
    place: str,
    *,
    client: str | None = None,
    coordinator: str | None = None,
    acquire_timeout: float = 0.0,
    service: str | None = None,
    env: Mapping[str, str | None] | None = None,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    log: Callable[[str], None] | None = None,
    **ssh_opts,
) -> tuple[object, Callable[[], None]]:
    """Acquire a labgrid place and open an SSH transport to its NetworkService.

    Returns (transport, release): `release()` closes the transport and gives the
    place back (idempotent). If anything fails after the acquire, the place is
    released before the error propagates. `place` is a name or a `labgrid:PLACE`
    board string; `ssh_opts` go to `open_transport` (known_hosts, trust_new,
    identity_files, ssh_config, connect_timeout, proxy_jump, allow_agent, log...).
    """
    from rkbench.boards.transport import open_transport

    name = parse_labgrid_board(place) or place
    board = f"{BOARD_PREFIX}{name}"
    lg = LabgridPlace(
        name,
        client,
        coordinator,
        env=env,
        command_timeout=command_timeout,
        acquire_timeout=acquire_timeout,
        log=log,
    )
    lg.acquire()
    try:
        svc = lg.service(service)
        ns = lg._address_of(svc)
        opts = dict(ssh_opts)
        if log is not None:
            opts.setdefault("log", log)
        if opts.get("proxy_jump") is None:
            jump = _proxy_jump(svc, lg._env, opts.get("ssh_config"))
            if jump:
                opts["proxy_jump"] = jump
                if log is not None:
                    log(f"{board}: reaching {ns.address} through the exporter host {jump} (as labgrid does)")
        transport = open_transport(_ssh_address(ns, board), **opts)
    except BaseException as exc:
        try:
            lg.release()
        except Exception as rel_exc:
            if log is not None:
                log(str(rel_exc))
        if type(exc) is BoardError:  # name the place too, not only user@host:port
            raise BoardError(f"{board}: {exc}") from None
        raise

    done = False

    def release() -> None:
        nonlocal done
        if done:
            return
        done = True
        try:
            transport.close()
        finally:
            lg.release()

    return transport, release


@contextlib.contextmanager
def labgrid_board(place: str, **kwargs) -> Iterator[object]:
    """`with labgrid_board("labgrid:rk3588-a", coordinator=..., known_hosts=...) as transport:`
    the place is acquired for the block and released after it, whatever happens."""
    transport, release = open_labgrid_board(place, **kwargs)
    try:
        yield transport
    except BaseException:
        try:
            release()
        except Exception as rel_exc:
            log = kwargs.get("log")
            if log is not None:
                log(str(rel_exc))
        raise
    else:
        release()
