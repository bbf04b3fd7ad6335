"""One run on one board: push what is missing, start the runner, read its events,
bring the outputs back.

    with open_board("192.168.1.20") as board:
        outcome = run_on_board(board, {"backend": "rknnlite", "model": {"rknn": "model.rknn"},
                                       "inputs": [["input0.npy"]]}, {}, target="rk3588")
        outcome.results[0].samples_ns      # every raw latency, as the runner measured it

The runner is started as

    sh -c '"$@"; exit $?' sh env PYTHONPATH=<runner dir> python3 -m rkbench_device run

(the small shell turns a death by signal into 128+N on every transport), the run
spec goes in as one line on stdin, and stdin stays open: closing it stops the
runner at once (that is how Ctrl-C and failures end a run on the board).
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rkbench.boards import deploy
from rkbench.boards.connect import DEFAULT_PYTHON
from rkbench.boards.deploy import DeployStats
from rkbench.boards.runner_command import (
    RunnerFailed,
    board_name,
    runner_argv,
    signal_of,
    signal_text,
    start_failure,
    tail_lines,
)
from rkbench.boards.transport import RemoteProcess, Transport, TransportTimeout
from rkbench.errors import BoardError, InputFileError, UsageError
from rkbench_wire import (
    PROTOCOL_VERSION,
    Done,
    Error,
    Event,
    Hello,
    Progress,
    ProtocolError,
    Result,
    RunSpec,
    Samples,
    Telemetry,
    decode_event,
)
from rkbench_wire.constants import ERR_BOARD_BUSY
from rkbench_wire.spec import BuildRecipe, ModelRef

SILENCE_S = 120.0
SILENCE_SIMULATOR_S = 1800.0  # the simulator builds the model first (minutes for big ones)
#: SoC names whose NPUs run the same .rknn (the toolkit's target_platform on the left).
SOC_FAMILIES = ({"rk3588", "rk3588s"}, {"rk3566", "rk3568"})


# ----------------------------------------------------------------------------------
# opening a board
# ----------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------
# what a run gives back
# ----------------------------------------------------------------------------------
@dataclass
class OutputFile:
    """One output array of one input sample, fetched from the board."""

    sample: int
    index: int
    name: str | None
    shape: list[int]
    dtype: str
    remote_path: str
    local_path: Path


@dataclass
class MaskRun:
    """The outcome for one core mask (core_mask None: the backend has no core masks)."""

    core_mask: str | None
    result: Result
    samples_ns: list[int]
    outputs: list[OutputFile] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return self.result.backend


@dataclass
class RunTimings:
    """Wall time of the parts of a run, in seconds.

    deploy: runner + blobs onto the board; start: from starting the runner to its
    hello; runner: hello to done (load, warm-up, measurement, saving outputs);
    measure: the timed loops alone (sum of the results' elapsed_s); fetch: outputs
    back to the host; cleanup: removing the run's folder on the board."""

    deploy_s: float = 0.0
    start_s: float = 0.0
    runner_s: float = 0.0
    measure_s: float = 0.0
    fetch_s: float = 0.0
    cleanup_s: float = 0.0
    total_s: float = 0.0

    @property
    def outside_measurement_s(self) -> float:
        return max(0.0, self.total_s - self.measure_s)


@dataclass
class RunOutcome:
    board: str
    transport: str
    hello: Hello
    results: list[MaskRun]
    telemetry: list[Telemetry]
    progress: list[Progress]
    output_dir: Path | None
    deploy: DeployStats
    timings: RunTimings
    remote_run_dir: str
    spec: RunSpec

    @property
    def backend(self) -> str:
        """Which backend produced every figure of this run."""
        return self.hello.backend

    @property
    def backend_reason(self) -> str:
        return self.hello.backend_reason

    @property
    def output_files(self) -> list[Path]:
        return [o.local_path for r in self.results for o in r.outputs]

    def result_for(self, core_mask: str | None) -> MaskRun:
        for run in self.results:
            if run.core_mask == core_mask:
                return run
        raise KeyError(core_mask)


# ----------------------------------------------------------------------------------
# helpers shared with health/provision
# ----------------------------------------------------------------------------------


def soc_matches(target: str, soc: str) -> bool:
    t, s = target.strip().lower(), soc.strip().lower()
    if t == s:
        return True
    return any(t in family and s in family for family in SOC_FAMILIES)


def check_target(target: str | None, soc: str | None, board: str) -> None:
    """Refuse a model built for another SoC than the board's (both names in the message)."""
    if not target or not soc:
        return
    if not soc_matches(target, soc):
        raise UsageError(
            f"{board} is an {soc} board but the model was built for {target.lower()}: rebuild with "
            f"--target {soc} (an .rknn only runs on the NPU it was built for)"
        )


# ----------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------
def _default_silence(spec: RunSpec) -> float:
    base = SILENCE_SIMULATOR_S if spec.backend == "simulator" else SILENCE_S
    return base + float(spec.lock_timeout_s)


def _text(name: Any) -> Any:
    return os.fspath(name) if isinstance(name, os.PathLike) else name


def _remote_rel(path: str, root: str) -> str:
    if path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")) + 1 :]
    return os.path.basename(path)


class _Session:
    """The state of one run; `run()` does it all. One class, one job."""

    def __init__(
        self,
        transport: Transport,
        spec_fields: Mapping[str, Any],
        local_files: Mapping[str, Any],
        on_event: Callable[[Event], None] | None,
        *,
        target: str | None,
        python,
        cache: str | None,
        out_dir: Any | None,
        silence_timeout: float | None,
        keep_remote: bool,
        sysfs_root: str | None,
        runner_dirs: Sequence[Any] | None,
    ):
        self.t = transport
        self.spec_fields = dict(spec_fields)
        self.local_files = dict(local_files)
        self.on_event = on_event
        self.target = target
        self.python = python
        self.cache = cache
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.silence_timeout = silence_timeout
        self.keep_remote = keep_remote
        self.sysfs_root = sysfs_root
        self.runner_dirs = runner_dirs
        self.board = transport.describe()
        self.board_arg = board_name(transport)
        self.stats = DeployStats()
        self.timings = RunTimings()
        self.proc: RemoteProcess | None = None
        self.hello: Hello | None = None
        self.stage = "starting"
        self.progress: list[Progress] = []
        self.telemetry: list[Telemetry] = []
        self.results: list[MaskRun] = []
        self.pending: dict[str | None, list[int]] = {}
        self.error: Error | None = None
        self.done: Done | None = None
        self.stray: list[str] = []
        self.local_names: dict[str, str] = {}
        self.runner_dir = "?"

    # -- spec -----------------------------------------------------------------------
    def _local(self, name: Any, field_name: str) -> str:
        if not isinstance(name, (str, os.PathLike)):
            raise UsageError(f"run spec {field_name}: expected a file name, got {name!r}")
        key = os.fspath(name)
        path = os.fspath(self.local_files.get(key, key))
        if not os.path.isfile(path):
            raise InputFileError(f"{field_name}: {path} does not exist (or is not a file)")
        return path

    def _push(self, name: Any, field_name: str) -> str:
        local = self._local(name, field_name)
        remote = deploy.ensure_blob(self.t, local, stats=self.stats, cache=self.cache)
        self.local_names[remote] = local
        return remote

    def _local_words(self, text: str) -> str:
        """A runner message with the board's blob paths replaced by the host files they hold."""
        for remote, local in self.local_names.items():
            text = text.replace(remote, local)
        return text

    def build_spec(self, run_dir: str) -> RunSpec:
        """The spec as the board sees it: checked first (with the local paths), then each
        file the chosen backend can use pushed and named by its board path."""
        fields = dict(self.spec_fields)
        for key in ("v", "output_dir"):
            if key in fields:
                raise UsageError(f"run spec: {key!r} is set by the session, not by the caller")
        unknown = sorted(set(fields) - set(RunSpec.__dataclass_fields__))
        if unknown:
            raise UsageError(f"run spec: unknown field(s) {', '.join(unknown)}")
        model = fields.pop("model", None)
        if not isinstance(model, Mapping):
            raise UsageError("run spec: 'model' must give rknn and/or onnx (local files)")
        stray = sorted(set(model) - {"rknn", "onnx", "build_recipe"})
        if stray:
            raise UsageError(f"run spec: unknown model field(s) {', '.join(stray)} (rknn, onnx, build_recipe)")
        inputs = fields.pop("inputs", None)
        if (
            not isinstance(inputs, (list, tuple))
            or not inputs
            or not all(isinstance(sample, (list, tuple)) for sample in inputs)
        ):
            raise UsageError("run spec: 'inputs' must list samples, each a list of .npy files (one per model input)")
        backend = fields.get("backend", "auto")
        # only what the backend can use travels (an .rknn is useless to onnxruntime, and big)
        rknn = model.get("rknn") if backend in ("auto", "rknnlite") else None
        onnx = model.get("onnx") if backend in ("auto", "onnxruntime", "simulator") else None
        recipe = None
        try:
            raw = model.get("build_recipe")
            if raw is not None:
                # a copy: the dataset path is rewritten below
                recipe = BuildRecipe.from_dict(raw.to_dict() if isinstance(raw, BuildRecipe) else dict(raw))
            # check every setting before pushing anything
            RunSpec(
                model=ModelRef(rknn=_text(rknn), onnx=_text(onnx), build_recipe=recipe),
                inputs=[[_text(p) for p in sample] for sample in inputs],
                output_dir=f"{run_dir}/out",
                **fields,
            )
        except (ProtocolError, TypeError) as exc:
            raise UsageError(f"run spec: {exc}") from None
        # the local files exist before the first byte moves
        for name, where in ((rknn, "model.rknn"), (onnx, "model.onnx")):
            if name:
                self._local(name, where)
        for i, sample in enumerate(inputs):
            for k, name in enumerate(sample):
                self._local(name, f"inputs[{i}][{k}]")
        remote_rknn = self._push(rknn, "model.rknn") if rknn else None
        remote_onnx = self._push(onnx, "model.onnx") if onnx else None
        if recipe is not None and recipe.dataset:
            recipe.dataset = self._push(recipe.dataset, "model.build_recipe.build.dataset")
        remote_inputs = [
            [self._push(p, f"inputs[{i}][{k}]") for k, p in enumerate(sample)] for i, sample in enumerate(inputs)
        ]
        return RunSpec(
            model=ModelRef(rknn=remote_rknn, onnx=remote_onnx, build_recipe=recipe),
            inputs=remote_inputs,
            output_dir=f"{run_dir}/out",
            **fields,
        )

    # -- events ---------------------------------------------------------------------
    def _fail(
        self, message: str, kind: str, detail: str = "", rc: int | None = None, sig: int | None = None
    ) -> RunnerFailed:
        return RunnerFailed(message, kind, detail, rc, sig)

    def _decode(self, raw: bytes) -> Event | None:
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            if self.hello is None:
                # a login script printing on stdout before the runner starts: ignore, keep for errors
                self.stray.append(text[:200])
                return None
            raise self._fail(
                f"{self.board}: the runner printed something that is not an event: {text[:120]!r}", "protocol"
            )
        try:
            return decode_event(text)
        except ProtocolError as exc:
            if "protocol version" in str(exc):
                raise self._fail(
                    f"{self.board}: refusing the runner's events: {exc} (this host speaks protocol version "
                    f"{PROTOCOL_VERSION}; the runner in {self.runner_dir} is not the one this rkbench deployed: "
                    f"delete that folder on the board and run again)",
                    "protocol",
                ) from None
            raise self._fail(
                f"{self.board}: the runner sent a message this host does not understand: {exc}", "protocol"
            ) from None

    def _handle(self, event: Event) -> None:
        if isinstance(event, Hello):
            if event.protocol_version != PROTOCOL_VERSION:
                raise self._fail(
                    f"{self.board}: the runner speaks protocol version {event.protocol_version}, "
                    f"this host {PROTOCOL_VERSION}; redeploy (delete {self.runner_dir})",
                    "protocol",
                )
            self.hello = event
            self.timings.start_s = time.monotonic() - self._started
            self._hello_at = time.monotonic()
        elif self.hello is None and not isinstance(event, (Error, Done)):
            raise self._fail(f"{self.board}: the runner sent {event.type!r} before hello", "protocol")
        elif isinstance(event, Progress):
            self.stage = f"{event.stage}: {event.message}"
            self.progress.append(event)
        elif isinstance(event, Samples):
            got = self.pending.setdefault(event.core_mask, [])
            if event.offset != len(got):
                raise self._fail(
                    f"{self.board}: latency samples for core mask {event.core_mask} arrived out of "
                    f"order (offset {event.offset}, expected {len(got)})",
                    "protocol",
                )
            got.extend(event.latencies_ns)
        elif isinstance(event, Telemetry):
            self.telemetry.append(event)
        elif isinstance(event, Result):
            samples = self.pending.pop(event.core_mask, [])
            runs = int(event.counts.get("runs", len(samples)))
            if len(samples) != runs:
                raise self._fail(
                    f"{self.board}: the result for core mask {event.core_mask} counts {runs} runs "
                    f"but {len(samples)} latencies arrived",
                    "protocol",
                )
            self.results.append(MaskRun(core_mask=event.core_mask, result=event, samples_ns=samples))
        elif isinstance(event, Error):
            self.error = event
        elif isinstance(event, Done):
            self.done = event
        if self.on_event is not None:
            self.on_event(event)
        if isinstance(event, Hello):
            check_target(self.target, event.soc, self.board)

    # -- failures -------------------------------------------------------------------
    def _exit_status(self, wait_s: float = 10.0) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(wait_s)
        except TransportTimeout:
            self.proc.kill()
            return self.proc.returncode

    def _crashed(self) -> RunnerFailed:
        """stdout ended without a `done`: say how the runner ended."""
        assert self.proc is not None
        rc = self._exit_status()
        stderr = self.proc.stderr_tail()
        if self.hello is None:
            if self.error is not None:
                return self._error_event_failure(rc)
            err = start_failure(self.board, self.board_arg, self.python, rc, stderr)
            if self.stray and err.kind == "start_failed":
                err = RunnerFailed(f"{err}; it printed: {' | '.join(self.stray[-3:])}", err.kind, err.detail, rc)
            return err
        if self.error is not None:
            return self._error_event_failure(rc)
        sig = signal_of(rc)
        how = f"died from {signal_text(sig)}" if sig else f"exited with code {rc} without finishing"
        tail = tail_lines(stderr)
        msg = f"{self.board}: the runner {how} while at [{self.stage}]"
        if tail:
            msg += f"; stderr: {tail}"
        if sig == signal.SIGKILL:
            msg += "; a SIGKILL nobody sent comes from the kernel's out-of-memory killer (check `dmesg` on the board)"
        return self._fail(msg, "crashed", stderr, rc, sig)

    def _error_event_failure(self, rc: int | None) -> RunnerFailed:
        err = self.error
        assert err is not None
        where = f" on core mask {err.core_mask}" if err.core_mask else ""
        detail = err.detail or ""
        if err.kind == ERR_BOARD_BUSY:
            msg = (
                f"{self.board}: {err.message}; another host may be measuring on this board right now: "
                f"wait until it finishes, then run again"
            )
        else:
            msg = f"{self.board}: the runner failed{where} ({err.kind}): {self._local_words(err.message)}"
            last = tail_lines(detail, 1)
            if last and last not in msg:
                msg += f" [{last}]"
        code = self.done.exit_code if self.done is not None else rc
        return self._fail(msg, err.kind, detail, code)

    # -- the whole run ----------------------------------------------------------------
    def run(self) -> RunOutcome:
        t0 = time.monotonic()
        self.runner_dir = deploy.ensure_runner(
            self.t, stats=self.stats, cache=self.cache, package_dirs=self.runner_dirs
        )
        cache_root = deploy.cache_dir(self.t, self.cache)
        run_dir = f"{cache_root}/runs/{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        spec = self.build_spec(run_dir)
        silence = self.silence_timeout if self.silence_timeout is not None else _default_silence(spec)
        self.timings.deploy_s = time.monotonic() - t0

        args = ["--root", self.sysfs_root] if self.sysfs_root else []
        argv = runner_argv(self.runner_dir, self.python, "run", *args)
        self._started = time.monotonic()
        self._hello_at = self._started
        try:
            self.proc = self.t.start(argv)
            try:
                try:
                    self.proc.write_stdin((spec.to_json() + "\n").encode("utf-8"))
                except BoardError:
                    pass  # it ended already (no python3, no numpy...): its output says why
                self._read_events(silence)
            except BaseException:  # Ctrl-C included: stdin closed, the runner exits, then re-raise
                self._stop_runner()
                raise
            done_at = time.monotonic()
            self.timings.runner_s = done_at - self._hello_at
            self.timings.measure_s = sum(r.result.elapsed_s for r in self.results)
            self._fetch_outputs(spec, run_dir)
            self.timings.fetch_s = time.monotonic() - done_at
        finally:
            if not self.keep_remote:
                c0 = time.monotonic()
                self._cleanup(run_dir)
                self.timings.cleanup_s = time.monotonic() - c0
        self.timings.total_s = time.monotonic() - t0
        assert self.hello is not None
        return RunOutcome(
            board=self.board,
            transport=self.t.kind,
            hello=self.hello,
            results=self.results,
            telemetry=self.telemetry,
            progress=self.progress,
            output_dir=self.out_dir,
            deploy=self.stats,
            timings=self.timings,
            remote_run_dir=run_dir,
            spec=spec,
        )

    def _read_events(self, silence: float) -> None:
        proc = self.proc
        assert proc is not None
        while True:
            try:
                raw = proc.readline(timeout=silence)
            except TransportTimeout:
                proc.kill()  # hung: closing stdin may not reach it
                tail = tail_lines(proc.stderr_tail())
                raise self._fail(
                    f"{self.board}: the runner sent nothing for {silence:g} s while at [{self.stage}]; "
                    f"stopped it" + (f"; stderr: {tail}" if tail else ""),
                    "silent",
                    proc.stderr_tail(),
                ) from None
            if not raw:
                break
            event = self._decode(raw)
            if event is None:
                continue
            self._handle(event)
            if self.done is not None:
                break
        if self.done is None:
            raise self._crashed()
        proc.close_stdin()
        rc = self._exit_status()
        if self.error is not None or not self.done.ok:
            if self.error is None:
                raise self._fail(
                    f"{self.board}: the runner ended with exit code {self.done.exit_code} and no error message",
                    "crashed",
                    proc.stderr_tail(),
                    self.done.exit_code,
                )
            raise self._error_event_failure(rc)
        if self.hello is None:
            raise self._fail(f"{self.board}: the runner finished without saying hello", "protocol")

    def _stop_runner(self) -> None:
        """Close stdin (the runner exits on EOF), give it a moment, then kill."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.close_stdin()
        try:
            proc.wait(5)
        except (TransportTimeout, BoardError):
            proc.kill()
        except BaseException:
            proc.kill()
            raise

    def _fetch_outputs(self, spec: RunSpec, run_dir: str) -> None:
        wanted = [
            (run, entry, f) for run in self.results for entry in run.result.outputs for f in entry.get("files", [])
        ]
        if not wanted:
            return
        if self.out_dir is None:
            self.out_dir = Path(tempfile.mkdtemp(prefix="rkbench-run-"))
        for run, entry, f in wanted:
            remote = str(f["path"])
            rel = _remote_rel(remote, spec.output_dir)
            local = self.out_dir / rel
            local.parent.mkdir(parents=True, exist_ok=True)
            self.t.get(remote, local)
            name = os.path.basename(remote)
            index = int(name.rsplit("_", 1)[-1].split(".")[0]) if name.startswith("out_") else len(run.outputs)
            run.outputs.append(
                OutputFile(
                    sample=int(entry.get("sample", 0)),
                    index=index,
                    name=f.get("name"),
                    shape=list(f.get("shape") or []),
                    dtype=str(f.get("dtype")),
                    remote_path=remote,
                    local_path=local,
                )
            )

    def _cleanup(self, run_dir: str) -> None:
        try:
            self.t.run(["rm", "-rf", "--", run_dir], timeout=60)
        except Exception:
            pass  # best effort: a leftover folder in the board cache is harmless


def run_on_board(
    transport: Transport,
    spec_fields: Mapping[str, Any],
    local_files: Mapping[str, Any] | None = None,
    on_event: Callable[[Event], None] | None = None,
    *,
    target: str | None = None,
    python: str | Sequence[str] = DEFAULT_PYTHON,
    cache: str | None = None,
    out_dir: Any | None = None,
    silence_timeout: float | None = None,
    keep_remote: bool = False,
    sysfs_root: str | None = None,
    runner_dirs: Sequence[Any] | None = None,
) -> RunOutcome:
    """Run one spec on a board and return everything it measured.

    spec_fields: RunSpec fields (see rkbench_wire.spec) without `v` and `output_dir`.
      The file names in model.rknn, model.onnx, model.build_recipe.build.dataset and
      inputs[i][k] are keys of `local_files` (name -> local path), or local paths.
      Each file is pushed once (content-addressed) and the spec sent to the board
      names the pushed copies.
    on_event: called with every event as it arrives (hello, progress, samples,
      telemetry, result, error, done), e.g. for a live latency display.
    target: the SoC the model was built for; a board with another SoC is refused.
    python: the board's Python (default python3); cache: the board cache folder.
    out_dir: where the outputs (.npy) land on the host (default: a new temp folder).
    silence_timeout: seconds without any event before the runner counts as hung
      (default 120 s + the spec's lock wait; 30 min for the simulator backend).
    sysfs_root: read /proc and /sys under this folder on the board (tests, chroots).
    runner_dirs: deploy these package folders as the runner (tests).

    Raises RunnerFailed (a BoardError, exit code 3) for anything the runner or the
    board did wrong, UsageError for a bad spec or a SoC mismatch, InputFileError for
    a missing local file. Ctrl-C closes the runner's stdin (it exits) and re-raises.
    """
    session = _Session(
        transport,
        spec_fields,
        local_files or {},
        on_event,
        target=target,
        python=python,
        cache=cache,
        out_dir=out_dir,
        silence_timeout=silence_timeout,
        keep_remote=keep_remote,
        sysfs_root=sysfs_root,
        runner_dirs=runner_dirs,
    )
    return session.run()
