"""The runner's event stream folded into what the run measured: the one accumulator of a run.

    fold = EventFold(board="ssh root@board:22", runner_dir="~/.cache/rkbench/runner/ab12")
    for line in runner_stdout:
        event = fold.decode(line)     # None for a stray line before hello (a login banner)
        if event is not None:
            fold.add(event)           # checks the order as it goes
    fold.results[0].samples_ns        # every raw latency, as the runner measured it

Violations of the protocol (samples out of order, a result whose count does not match the
samples that came, events before hello) raise RunnerFailed(kind="protocol") at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rkbench.boards.runner_command import RunnerFailed
from rkbench_wire import (
    CORE_MASKS,
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
    Throughput,
    decode_event,
)
from rkbench_wire._fields import loads


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
    stages_ns: dict[str, list[int]] = field(default_factory=dict)  # per stage, aligned with samples_ns
    outputs: list[OutputFile] = field(default_factory=list)
    profile_path: Path | None = None  # the per-layer NPU profile's text, fetched from the board

    @property
    def backend(self) -> str:
        return self.result.backend


class EventFold:
    """hello, progress, samples, telemetry, result, error, done -> hello, results (MaskRun),
    telemetry, progress, error, done; `stage` says what the runner is doing now.

    Bounded whatever the runner sends: at most `max_runs` latencies per core mask and
    MAX_EVENTS progress and telemetry events are held (more is a protocol error), and only
    the last few stray lines before hello."""

    #: progress or telemetry events a run may send (telemetry every 0.1 s for over a day)
    MAX_EVENTS = 1_000_000
    STRAY_KEPT = 20

    def __init__(self, board: str, runner_dir: str = "?", max_runs: int = RunSpec.max_runs):
        self.board = board
        self.runner_dir = runner_dir
        self.max_runs = max_runs
        self.hello: Hello | None = None
        self.progress: list[Progress] = []
        self.telemetry: list[Telemetry] = []
        self.results: list[MaskRun] = []
        self.throughput: list[Throughput] = []  # throughput mode: one per configuration
        self.error: Error | None = None
        self.done: Done | None = None
        self.stage = "starting"
        self.stray: list[str] = []  # the last lines before hello that were not events (login scripts)
        self._pending: dict[str | None, list[int]] = {}
        self._stages: dict[str | None, dict[str, list[int]]] = {}

    @property
    def samples_received(self) -> int:
        """Latencies that arrived, finished core masks and the one under way."""
        return sum(len(r.samples_ns) for r in self.results) + sum(map(len, self._pending.values()))

    def _protocol(self, message: str) -> RunnerFailed:
        one_line = message.replace("\r", "\\r").replace("\n", "\\n")  # whatever the runner put in a name
        return RunnerFailed(f"{self.board}: {one_line}", "protocol")

    def decode(self, raw: bytes) -> Event | None:
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return None
        try:
            data = loads(text, "event")
        except ProtocolError:
            data = None
        if not isinstance(data, dict):
            if self.hello is None:
                # a login script printing on stdout before the runner starts: ignore, keep for errors
                self.stray = [*self.stray[1 - self.STRAY_KEPT :], text[:200]]
                return None
            raise self._protocol(f"the runner printed something that is not an event: {text[:120]!r}")
        try:
            return decode_event(text)
        except ProtocolError as exc:
            if str(exc).startswith("event.v:"):  # check_version's: another protocol version
                raise self._protocol(
                    f"refusing the runner's events: {exc} (this host speaks protocol version "
                    f"{PROTOCOL_VERSION}; the runner in {self.runner_dir} is not the one this rkbench deployed: "
                    f"delete that folder on the board and run again)"
                ) from None
            raise self._protocol(f"the runner sent a message this host does not understand: {exc}") from None

    def add(self, event: Event) -> None:
        if isinstance(event, Hello):
            if self.hello is not None:
                raise self._protocol("the runner said hello twice")
            if event.protocol_version != PROTOCOL_VERSION:
                raise self._protocol(
                    f"the runner speaks protocol version {event.protocol_version}, this host "
                    f"{PROTOCOL_VERSION}; redeploy (delete {self.runner_dir})"
                )
            self.hello = event
        elif self.hello is None and not isinstance(event, (Error, Done)):
            raise self._protocol(f"the runner sent {event.type!r} before hello")
        elif isinstance(event, Progress):
            self.stage = f"{event.stage}: {event.message}"[:300]
            self._append(self.progress, event)
        elif isinstance(event, Samples):
            got = self._pending.setdefault(event.core_mask, [])
            if event.offset != len(got):
                raise self._protocol(
                    f"latency samples for core mask {event.core_mask} arrived out of order "
                    f"(offset {event.offset}, expected {len(got)})"
                )
            if len(got) + len(event.latencies_ns) > self.max_runs:
                raise self._protocol(
                    f"the runner sent more than the {self.max_runs} latencies a core mask may have "
                    f"(core mask {event.core_mask})"
                )
            got.extend(event.latencies_ns)
            stages = self._stages.setdefault(event.core_mask, {})
            for stage, values in (event.stages_ns or {}).items():
                kept = stages.setdefault(stage, [])
                if len(kept) != event.offset:
                    raise self._protocol(
                        f"{stage} times for core mask {event.core_mask} do not line up with the latencies "
                        f"({len(kept)} before offset {event.offset})"
                    )
                kept.extend(values)
        elif isinstance(event, Telemetry):
            self._append(self.telemetry, event)
        elif isinstance(event, Result):
            if len(self.results) >= len(CORE_MASKS):
                raise self._protocol(f"the runner sent more results than there are core masks ({len(CORE_MASKS)})")
            samples = self._pending.pop(event.core_mask, [])
            runs = event.counts.get("runs", len(samples))
            if len(samples) != runs:
                raise self._protocol(
                    f"the result for core mask {event.core_mask} counts {runs} runs but {len(samples)} latencies arrived"
                )
            stages = self._stages.pop(event.core_mask, {})
            stages = {stage: values for stage, values in stages.items() if len(values) == len(samples)}
            self.results.append(MaskRun(event.core_mask, event, samples, stages))
        elif isinstance(event, Throughput):
            self._append(self.throughput, event)
        elif isinstance(event, Error):
            self.error = event
        elif isinstance(event, Done):
            self.done = event

    def _append(self, events: list, event: Event) -> None:
        if len(events) >= self.MAX_EVENTS:
            raise self._protocol(f"the runner sent more than {self.MAX_EVENTS} {event.type} events")
        events.append(event)
