"""What a measurement asks of the runner, and the one place its defaults live.

`rkbench run`, `rkbench nightly` (a suite's [measure]) and `rkbench hybrid --board` all start
from `MeasureOptions()`; `spec()` turns the options into the wire's RunSpec, naming the
files on this host (the session pushes them and names the board's copies).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rkbench.errors import UsageError
from rkbench_device.measure import SLOWDOWN_ENV
from rkbench_wire import ModelRef, ProtocolError, RunSpec

#: Placeholder for RunSpec.output_dir on the host: the session sets the board's folder.
HOST_OUTPUT_DIR = "out"
#: The run spec's fields a user sets, and the options of `rkbench run` that set them.
OPTION_OF_FIELD = {
    "warmup": "--warmup",
    "min_runs": "--min-runs",
    "min_seconds": "--min-seconds",
    "max_seconds": "--max-seconds",
    "core_masks": "--core-mask",
    "cpu_threads": "--cpu-threads",
}


def _option_names(message: str) -> str:
    """A protocol message about spec fields, naming the options that set them instead."""
    return re.sub(r"\b[a-z_]+\b", lambda m: OPTION_OF_FIELD.get(m.group(0), m.group(0)), message)


@dataclass
class MeasureOptions:
    backend: str = "auto"
    core_masks: list[str] = field(default_factory=lambda: ["auto"])
    warmup: int = 5
    min_runs: int = 100
    min_seconds: float = 2.0
    max_seconds: float = 300.0
    inputs: Path | None = None  # what to measure with; default: a held-out slice of the dataset
    input_count: int = 8
    per_layer: bool = False
    lock_timeout_s: float = 30.0  # another host measuring on the board: wait this long
    inject_slowdown: float = 0.0  # test-only runner knob (regression-detection benchmarks)
    # Test-only: the board itself is this fraction slower tonight. Unlike inject_slowdown (a
    # change of the candidate) it also slows the baseline build re-measured in a confirmation.
    inject_drift: float = 0.0
    cpu_threads: int = 0  # CPU backends' threads; 0 = their default
    io_mode: str = "copy"  # NPU backends: "copy" (rknn_inputs_set per run) or "zero_copy" (rknn_set_io_mem)
    profile_layers: bool = False  # a separate per-layer NPU profiling pass after the timed loop
    profile_runs: int = 3
    # throughput mode (`--throughput`, `--sweep`, a suite's [throughput]): N contexts in parallel
    throughput: bool = False
    sweep: bool = False  # a bounded sweep: 1..2x cores contexts x core-mask assignments
    contexts: int = 0  # contexts of one configuration (0: one per NPU core); with sweep: the most
    throughput_seconds: float = 3.0  # the window of each configuration
    # Confirmation of a suspected verdict (lab/confirm.py): this many rounds per side, A B A B
    # A B, each round this fraction of the measurement's min_seconds. 3 x 0.4: each side pools
    # 1.2x the cell's measuring, so the confirmation measures 2.4x the cell plus the start-up
    # of 6 runs (2.6-2.8x the cell's measurement wall time at 5 s cells); finer interleaving
    # than 2 x 1/2 (2.1-2.3x) and more samples: 2 x 1/2 left 3 of 20 10% slowdowns UNKNOWN.
    confirm_rounds: int = 3
    confirm_fraction: float = 0.4

    def spec(
        self,
        model: ModelRef,
        inputs: Sequence[Sequence[str]],
        data_format: Sequence[str | None] = (),
        save_outputs: bool = True,
        throughput_configs: list[dict] | None = None,
    ) -> RunSpec:
        """The run spec for these options; a setting the protocol refuses is a usage error."""
        most = RunSpec.max_runs
        if self.min_runs > most:
            raise UsageError(
                f"min runs {self.min_runs} (--min-runs, or min_runs in a suite's [measure]) is above the {most} "
                f"runs a measurement takes at most per core mask, and no option raises that: give at most {most} "
                "(and --min-seconds to measure for longer)"
            )
        try:
            return RunSpec(
                model=model,
                inputs=[[str(path) for path in sample] for sample in inputs],
                output_dir=HOST_OUTPUT_DIR,
                backend=self.backend,
                core_masks=list(self.core_masks),
                warmup=self.warmup,
                min_runs=self.min_runs,
                min_seconds=self.min_seconds,
                max_seconds=self.max_seconds,
                data_format=list(data_format),
                save_outputs=save_outputs,
                lock_timeout_s=self.lock_timeout_s,
                cpu_threads=self.cpu_threads,
                io_mode=self.io_mode,
                profile_layers=self.profile_layers,
                profile_runs=self.profile_runs,
                throughput=(
                    {"seconds": self.throughput_seconds, "configs": throughput_configs} if throughput_configs else None
                ),
            )
        except ProtocolError as exc:
            raise UsageError(f"run spec: {_option_names(str(exc))}") from None

    def runner_env(self) -> dict[str, str]:
        """Environment for the runner: test knobs travel here, outside the protocol."""
        factor = (1.0 + self.inject_slowdown) * (1.0 + self.inject_drift) - 1.0
        return {SLOWDOWN_ENV: repr(round(factor, 6))} if factor > 0.0 else {}
