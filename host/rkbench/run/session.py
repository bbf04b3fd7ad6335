"""One run on one board: push what is missing, start the runner, read its events,
bring the outputs back.

    spec = MeasureOptions(backend="rknnlite").spec(ModelRef(rknn="model.rknn"), [["input0.npy"]])
    with open_board("192.168.1.20") as board:
        outcome = run_on_board(board, spec, target="rk3588")
        outcome.results[0].samples_ns      # every raw latency, as the runner measured it

The spec is the wire's own RunSpec, naming files on this host; the session pushes each file
the backend can use (content-addressed, only what is missing) and sends the board a copy of
the spec that names the pushed files.

The runner is started as

    sh -c '"$@"; exit $?' sh env PYTHONPATH=<runner dir> python3 -m rkbench_device run

(the small shell turns a death by signal into 128+N on every transport), the run
spec goes in as one line on stdin, and stdin stays open: closing it stops the
runner at once (that is how Ctrl-C and failures end a run on the board).
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rkbench.boards import deploy
from rkbench.boards.connect import DEFAULT_PYTHON
from rkbench.boards.deploy import DeployStats
from rkbench.boards.runner_command import (
    BoardDiskFull,
    RunnerFailed,
    board_name,
    explain_start_failure,
    runner_argv,
    signal_of,
    signal_text,
    tail_lines,
)
from rkbench.boards.transport import RemoteProcess, Transport, TransportTimeout
from rkbench.boards.transport.base import LineTooLong, megabytes
from rkbench.errors import BoardError, InputFileError, UsageError
from rkbench.model.compat import soc_matches
from rkbench.run.events import EventFold, MaskRun, OutputFile
from rkbench_wire import (
    Event,
    Hello,
    Progress,
    RunSpec,
    Telemetry,
    Throughput,
)
from rkbench_wire.constants import ERR_BOARD_BUSY, ERR_DISK_FULL
from rkbench_wire.spec import ModelRef

SILENCE_S = 120.0
SILENCE_SIMULATOR_S = 1800.0  # the simulator builds the model first (minutes for big ones)
#: The host writes a byte on the runner's stdin this often while it runs; the runner leaves
#: (and frees the board lock) when none came for HOST_SILENCE_S: a host killed or cut off
#: leaves no runner behind, also when no FIN reaches the board. The heartbeat also gives
#: TCP something to acknowledge, so a lost board is found within the connect timeout.
HEARTBEAT_S = 1.0
HOST_SILENCE_S = 15.0


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
    throughput: list[Throughput] = field(default_factory=list)  # throughput mode: one per configuration

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
class Heartbeat:
    """Writes a newline on a process's stdin every `every` seconds until stopped (or until
    the write fails: the process or the connection is gone, which the reader finds out)."""

    def __init__(self, proc: RemoteProcess, every: float):
        self._proc = proc
        self._every = every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="rkbench-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stopped.wait(self._every):
            try:
                self._proc.write_stdin(b"\n")
            except BoardError:
                return

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(5)


def _default_silence(spec: RunSpec) -> float:
    base = SILENCE_SIMULATOR_S if spec.backend == "simulator" else SILENCE_S
    return base + float(spec.lock_timeout_s)


def _remote_rel(path: str, root: str) -> str:
    if path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")) + 1 :]
    return os.path.basename(path)


#: Backends that run the .rknn (the others run the source .onnx).
RKNN_BACKENDS = ("auto", "rknnlite", "rknnrt")
ONNX_BACKENDS = ("auto", "onnxruntime", "simulator")


def stop_runner(proc: RemoteProcess | None) -> None:
    """Close stdin (the runner exits on EOF), give it a moment, then kill."""
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


def _run_argv(runner_dir: str, python, sysfs_root: str | None, runner_env: Mapping[str, str] | None) -> list[str]:
    args = ["--root", sysfs_root] if sysfs_root else []
    args += ["--host-heartbeat", f"{HOST_SILENCE_S:g}"]
    return runner_argv(runner_dir, python, "run", *args, env=dict(runner_env or {}))


@dataclass
class EarlyRunner:
    """A runner started before its spec exists: it waits on stdin for the spec line, so its
    own start (the board's Python, its imports) overlaps what the host still does (SoC,
    build and analysis lookups, pushing blobs). Hand it to run_on_board (started with the
    same python, sysfs_root and runner_env), or stop() it."""

    proc: RemoteProcess
    runner_dir: str
    deploy: DeployStats
    used: bool = False

    def stop(self) -> None:
        if not self.used:
            stop_runner(self.proc)


def start_runner_early(
    transport: Transport,
    *,
    python: str | Sequence[str] = DEFAULT_PYTHON,
    cache: str | None = None,
    sysfs_root: str | None = None,
    runner_dirs: Sequence[Any] | None = None,
    runner_env: Mapping[str, str] | None = None,
) -> EarlyRunner:
    """Deploy the runner (if missing) and start it; run_on_board(early=...) sends the spec."""
    stats = DeployStats()
    runner_dir = deploy.ensure_runner(transport, stats=stats, cache=cache, package_dirs=runner_dirs)
    proc = transport.start(_run_argv(runner_dir, python, sysfs_root, runner_env))
    return EarlyRunner(proc, runner_dir, stats)


class _Session:
    """The state of one run; `run()` does it all. One class, one job."""

    def __init__(
        self,
        transport: Transport,
        spec: RunSpec,
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
        runner_env: Mapping[str, str] | None,
        early: EarlyRunner | None = None,
    ):
        self.early = early
        self.t = transport
        self.spec = spec
        self.on_event = on_event
        self.target = target
        self.python = python
        self.cache = cache
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.silence_timeout = silence_timeout
        self.keep_remote = keep_remote
        self.sysfs_root = sysfs_root
        self.runner_dirs = runner_dirs
        self.runner_env = dict(runner_env or {})
        self.board = transport.describe()
        self.board_arg = board_name(transport)
        self.stats = DeployStats()
        self.timings = RunTimings()
        self.proc: RemoteProcess | None = None
        self.fold = EventFold(self.board, max_runs=spec.max_runs)
        self.run_dir: str | None = None
        self.local_names: dict[str, str] = {}

    # -- the spec as the board sees it ----------------------------------------------------
    def _push(self, local: str) -> str:
        remote = deploy.ensure_blob(self.t, local, stats=self.stats, cache=self.cache)
        self.local_names[remote] = local
        return remote

    def _local_words(self, text: str) -> str:
        """A runner message with the board's blob paths replaced by the host files they hold."""
        for remote, local in self.local_names.items():
            text = text.replace(remote, local)
        return text

    def board_spec(self, run_dir: str) -> RunSpec:
        """Every file the backend can use pushed (an .rknn is useless to onnxruntime, and
        big), and the spec naming the pushed copies; the local files are checked first."""
        spec = self.spec
        model = spec.model
        rknn = model.rknn if spec.backend in RKNN_BACKENDS else None
        onnx = model.onnx if spec.backend in ONNX_BACKENDS else None
        recipe = model.build_recipe
        wanted = [(rknn, "model.rknn"), (onnx, "model.onnx")]
        if recipe is not None and recipe.dataset:
            wanted.append((recipe.dataset, "model.build_recipe.build.dataset"))
        wanted += [(path, f"inputs[{i}][{k}]") for i, sample in enumerate(spec.inputs) for k, path in enumerate(sample)]
        for path, where in wanted:
            if path and not os.path.isfile(path):
                raise InputFileError(f"{where}: {path} does not exist (or is not a file)")
        if recipe is not None and recipe.dataset:
            recipe = replace(recipe, dataset=self._push(recipe.dataset))
        return replace(
            spec,
            model=ModelRef(
                rknn=self._push(rknn) if rknn else None, onnx=self._push(onnx) if onnx else None, build_recipe=recipe
            ),
            inputs=[[self._push(path) for path in sample] for sample in spec.inputs],
            output_dir=f"{run_dir}/out",
        )

    # -- failures -------------------------------------------------------------------
    def _exit_status(self, wait_s: float = 10.0) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(wait_s)
        except TransportTimeout:
            self.proc.kill()
            return self.proc.returncode

    def _kept(self) -> str:
        """What had arrived before a failure, for its message."""
        count = self.fold.samples_received
        return f", after {count} latency sample(s)" if count else ""

    def _crashed(self) -> RunnerFailed:
        """stdout ended without a `done`: say how the runner ended."""
        assert self.proc is not None
        fold = self.fold
        rc = self._exit_status()
        stderr = self.proc.stderr_tail()
        if self.proc.connection_lost:
            return RunnerFailed(
                f"{self.board}: the connection to the board was lost while the runner was at "
                f"[{fold.stage}]{self._kept()}; the board rebooted, lost power or network, or its SSH server "
                "stopped: check that it answers, then run again",
                "connection_lost",
                stderr,
                None,
            )
        if fold.error is not None:
            return self._error_event_failure(rc)
        if fold.hello is None:
            err = explain_start_failure(self.t, self.python, rc, stderr, runner_dir=fold.runner_dir)
            if fold.stray and err.kind == "start_failed":
                err = RunnerFailed(f"{err}; it printed: {' | '.join(fold.stray[-3:])}", err.kind, err.detail, rc)
            return err
        sig = signal_of(rc)
        how = f"died from {signal_text(sig)}" if sig else f"exited with code {rc} without finishing"
        tail = tail_lines(stderr)
        msg = f"{self.board}: the runner {how} while at [{fold.stage}]{self._kept()}"
        if tail:
            msg += f"; stderr: {tail}"
        if sig == signal.SIGKILL:
            msg += "; a SIGKILL nobody sent comes from the kernel's out-of-memory killer (check `dmesg` on the board)"
        return RunnerFailed(msg, "crashed", stderr, rc, sig)

    def _error_event_failure(self, rc: int | None) -> RunnerFailed:
        err = self.fold.error
        assert err is not None
        where = f" on core mask {err.core_mask}" if err.core_mask else ""
        detail = err.detail or ""
        if err.kind == ERR_BOARD_BUSY:
            msg = (
                f"{self.board}: {err.message}; another host is measuring on this board: run again when it has "
                "finished (there is no option to wait longer)"
            )
        elif err.kind == ERR_DISK_FULL:
            cache_root = deploy.cache_dir(self.t, self.cache)
            if self.run_dir is not None and not self.keep_remote:
                self._cleanup(self.run_dir)  # what the failed write left is no room a next run has
            free = self.t.free_bytes(cache_root)
            room = f"{megabytes(free)} free in {cache_root}" if free is not None else f"in {cache_root}"
            return BoardDiskFull(
                f"{self.board}: the board's disk is full ({room}): {self._local_words(err.message)}; free space "
                "on the board and run again (rkbench removes its old run folders by itself)",
                err.kind,
                detail,
                self.fold.done.exit_code if self.fold.done is not None else rc,
            )
        else:
            msg = f"{self.board}: the runner failed{where} ({err.kind}): {self._local_words(err.message)}"
            last = tail_lines(detail, 1)
            if last and last not in msg:
                msg += f" [{last}]"
        code = self.fold.done.exit_code if self.fold.done is not None else rc
        return RunnerFailed(msg, err.kind, detail, code)

    # -- the whole run ----------------------------------------------------------------
    def run(self) -> RunOutcome:
        t0 = time.monotonic()
        if self.early is not None:  # started ahead, with the same runner settings
            runner_dir = self.early.runner_dir
            self.stats.add(self.early.deploy)
        else:
            runner_dir = deploy.ensure_runner(self.t, stats=self.stats, cache=self.cache, package_dirs=self.runner_dirs)
        cache_root = deploy.cache_dir(self.t, self.cache)
        run_dir = self.run_dir = f"{cache_root}/runs/{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        spec = self.board_spec(run_dir)
        silence = self.silence_timeout if self.silence_timeout is not None else _default_silence(spec)
        self.timings.deploy_s = time.monotonic() - t0
        try:
            try:
                self._measure(runner_dir, spec, silence)
            except RunnerFailed as err:
                if err.kind != "runner_damaged":
                    raise
                # a runner file that Python cannot parse although the tree was checked: deploy
                # it again and start once more (nothing was measured yet)
                self.stats.runner_repaired.append(runner_dir)
                deploy.remove_runner(self.t, runner_dir)
                runner_dir = deploy.ensure_runner(
                    self.t, stats=self.stats, cache=self.cache, package_dirs=self.runner_dirs
                )
                self.fold = EventFold(self.board, max_runs=spec.max_runs)
                try:
                    self._measure(runner_dir, spec, silence)
                except RunnerFailed as again:
                    if again.kind == "runner_damaged":
                        again.args = (
                            f"{again}; it was deployed again and still fails: the runner rkbench ships does not "
                            "parse on this Python, which is a bug in rkbench: please report it",
                        )
                    raise
        finally:
            if not self.keep_remote:
                c0 = time.monotonic()
                self._cleanup(run_dir)
                self.timings.cleanup_s = time.monotonic() - c0
        self.timings.total_s = time.monotonic() - t0
        fold = self.fold
        assert fold.hello is not None
        return RunOutcome(
            board=self.board,
            transport=self.t.kind,
            hello=fold.hello,
            results=fold.results,
            telemetry=fold.telemetry,
            progress=fold.progress,
            output_dir=self.out_dir,
            deploy=self.stats,
            timings=self.timings,
            remote_run_dir=run_dir,
            spec=spec,
            throughput=fold.throughput,
        )

    def _measure(self, runner_dir: str, spec: RunSpec, silence: float) -> None:
        """Start the runner, read its events until done, fetch the outputs while it still
        holds the board lock (so no other host's runner prunes this run's folder), then let
        it go. Whatever goes wrong, the runner is stopped."""
        self.fold.runner_dir = runner_dir
        early, self.early = self.early, None  # only the first start can be the early one
        if early is not None and early.runner_dir == runner_dir:
            early.used = True
            self.proc = early.proc
        else:
            if early is not None:
                early.stop()
            self.proc = self.t.start(_run_argv(runner_dir, self.python, self.sysfs_root, self.runner_env))
        started = time.monotonic()
        heartbeat = Heartbeat(self.proc, HEARTBEAT_S)
        try:
            try:
                try:
                    self.proc.write_stdin((spec.to_json() + "\n").encode("utf-8"))
                except BoardError:
                    pass  # it ended already (no python3, no numpy...): its output says why
                hello_at = self._read_events(silence, started)
                done_at = time.monotonic()
                self.timings.start_s = hello_at - started
                self.timings.runner_s = done_at - hello_at
                self.timings.measure_s = sum(r.result.elapsed_s for r in self.fold.results) + sum(
                    t.elapsed_s for t in self.fold.throughput
                )
                self._fetch_outputs(spec)
                self._fetch_profiles(spec)
                self.timings.fetch_s = time.monotonic() - done_at
            finally:
                heartbeat.stop()
            self.proc.close_stdin()  # the runner releases the board lock and exits
            self._exit_status()
        except BaseException:  # Ctrl-C included: stdin closed, the runner exits, then re-raise
            self._stop_runner()
            raise

    def _read_events(self, silence: float, started: float) -> float:
        """Events until `done`; returns when hello came (monotonic)."""
        proc, fold = self.proc, self.fold
        assert proc is not None
        hello_at = started
        while fold.done is None:
            try:
                raw = proc.readline(timeout=silence)
            except TransportTimeout:
                proc.kill()  # hung: closing stdin may not reach it
                tail = tail_lines(proc.stderr_tail())
                raise RunnerFailed(
                    f"{self.board}: the runner sent nothing for {silence:g} s while at [{fold.stage}]; "
                    f"stopped it{self._kept()}" + (f"; stderr: {tail}" if tail else ""),
                    "silent",
                    proc.stderr_tail(),
                ) from None
            except LineTooLong as exc:
                proc.kill()
                raise RunnerFailed(
                    f"{self.board}: the runner's output had a line longer than {exc.limit >> 20} MB while at "
                    f"[{fold.stage}] (no rkbench event is that long): stopped the runner{self._kept()}. Something "
                    "besides the runner writes to its output: a login script on the board (~/.bashrc, "
                    "/etc/profile.d) that prints in non-interactive shells, or a library writing to the event "
                    "stream; make it quiet and run again",
                    "protocol",
                    proc.stderr_tail(),
                ) from None
            if not raw:
                raise self._crashed()
            event = fold.decode(raw)
            if event is None:
                continue
            fold.add(event)
            if isinstance(event, Hello):
                hello_at = time.monotonic()
            if self.on_event is not None:
                self.on_event(event)
            if isinstance(event, Hello):
                check_target(self.target, event.soc, self.board)
        if fold.error is not None:
            raise self._error_event_failure(None)
        if not fold.done.ok:
            raise RunnerFailed(
                f"{self.board}: the runner ended with exit code {fold.done.exit_code} and no error message",
                "crashed",
                proc.stderr_tail(),
                fold.done.exit_code,
            )
        if fold.hello is None:
            raise RunnerFailed(f"{self.board}: the runner finished without saying hello", "protocol")
        return hello_at

    def _stop_runner(self) -> None:
        stop_runner(self.proc)

    def _fetch_profiles(self, spec: RunSpec) -> None:
        """The per-layer NPU profile (PERF_DETAIL text) of each result that has one."""
        for run in self.fold.results:
            remote = (run.result.profile or {}).get("file")
            if not remote:
                continue
            if self.out_dir is None:
                self.out_dir = Path(tempfile.mkdtemp(prefix="rkbench-run-"))
            local = self.out_dir / _remote_rel(str(remote), spec.output_dir)
            local.parent.mkdir(parents=True, exist_ok=True)
            self.t.get(str(remote), local)
            run.profile_path = local

    def _fetch_outputs(self, spec: RunSpec) -> None:
        """Each result's output files, sample by sample, in the order the runner listed them
        (that order is the output's index)."""
        wanted = [
            (run, entry, index, f)
            for run in self.fold.results
            for entry in run.result.outputs
            for index, f in enumerate(entry.get("files", []))
        ]
        if not wanted:
            return
        if self.out_dir is None:
            self.out_dir = Path(tempfile.mkdtemp(prefix="rkbench-run-"))
        for run, entry, index, f in wanted:
            remote = str(f["path"])
            local = self.out_dir / _remote_rel(remote, spec.output_dir)
            local.parent.mkdir(parents=True, exist_ok=True)
            self.t.get(remote, local)
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
    spec: RunSpec,
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
    runner_env: Mapping[str, str] | None = None,
    early: EarlyRunner | None = None,
) -> RunOutcome:
    """Run one spec on a board and return everything it measured.

    spec: the run, its files named by their paths on this host (model.rknn, model.onnx,
      model.build_recipe.build.dataset, inputs[i][k]); output_dir is set for the board.
      Each file is pushed once (content-addressed) and the spec sent to the board names
      the pushed copies (RunOutcome.spec).
    on_event: called with every event as it arrives (hello, progress, samples,
      telemetry, result, error, done), e.g. for a live latency display.
    target: the SoC the model was built for; a board with another SoC is refused.
    python: the board's Python (default python3); cache: the board cache folder.
    out_dir: where the outputs (.npy) land on the host (default: a new temp folder).
    silence_timeout: seconds without any event before the runner counts as hung
      (default 120 s + the spec's lock wait; 30 min for the simulator backend).
    sysfs_root: read /proc and /sys under this folder on the board (tests, chroots).
    runner_dirs: deploy these package folders as the runner (tests).
    runner_env: environment variables for the runner (test knobs stay out of the protocol).
    early: a runner start_runner_early() started on this transport with the same python,
      sysfs_root and runner_env; it receives the spec instead of a new process being started.

    Raises RunnerFailed (a BoardError, exit code 3) for anything the runner or the
    board did wrong, UsageError for a bad spec or a SoC mismatch, InputFileError for
    a missing local file. Ctrl-C closes the runner's stdin (it exits) and re-raises.
    """
    session = _Session(
        transport,
        spec,
        on_event,
        target=target,
        python=python,
        cache=cache,
        out_dir=out_dir,
        silence_timeout=silence_timeout,
        keep_remote=keep_remote,
        sysfs_root=sysfs_root,
        runner_dirs=runner_dirs,
        runner_env=runner_env,
        early=early,
    )
    return session.run()
