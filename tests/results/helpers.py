"""Shared by the store tests: runs to store, and the CLI run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from rkbench.results.model import LayerError, OutputError, RunResult, TelemetrySample, Threshold

SHA = "5f" * 32


@dataclass
class Cli:
    db: Path

    def __call__(self, *args, db: Path | None | bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "rkbench", *map(str, args)]
        if db is True:
            argv += ["--db", str(self.db)]
        elif db:
            argv += ["--db", str(db)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        # No stored-run mistake or damaged store may end in a Python traceback.
        assert "Traceback" not in done.stderr, done.stderr
        return done


def make_result(
    group: str = "g1",
    samples: int = 0,
    seed: int = 0,
    scale: float = 1.0,
    board: str = "ssh://root@board-a.lab",
    core_mask: str | None = "0",
    model: str = "mobilenet",
    sha: str = SHA,
    backend: str = "rknnlite",
    build_key: str | None = "bk-1",
) -> RunResult:
    rng = np.random.default_rng(seed)
    lat = (rng.lognormal(np.log(8e6 * scale), 0.03, samples)).astype(np.int64).tolist()
    return RunResult(
        group=group,
        model=model,
        model_sha256=sha,
        board=board,
        backend=backend,
        core_mask=core_mask,
        build_key=build_key,
        target="rk3588",
        quant="w8a8",
        board_soc="rk3588",
        latency_ns=lat,
        memory={"after_load": {"VmHWM": 51200, "VmRSS": 48000}, "npu_mem_kb": 9000},
        versions={"toolkit": "2.5.0", "librknnrt": "2.3.2", "runner": "0.1.0"},
        settings={"warmup": 20, "min_runs": samples, "inputs": "random"},
        telemetry=[
            TelemetrySample(
                t=0.5,
                npu_load_pct=[40.0, 0.0, 0.0],
                npu_freq_hz=1_000_000_000,
                cpu_freq_hz={"cpu0": 1_800_000_000},
                temperatures_c={"soc": 48.5},
            )
        ],
        throttled=False,
        outputs=[
            OutputError("logits", "fp32", 0.9991, 0.998, 1.5, 0.25, 0.97),
            OutputError("logits", "simulator", 0.99999, 0.9999, 0.01, 0.002, None),
        ],
        layers=[
            LayerError(3, "Conv", "conv1_out", 0.999, 0.998, 0.998, 0.9999),
            LayerError(7, "Softmax", "prob", 0.97, 0.95, 0.80, 0.82, board_departs=True),
        ],
        thresholds=[Threshold("min_cos_fp32", 0.99, 0.9991, True, "")],
    )


def store_run(store, result: RunResult, batch: int = 500) -> int:
    """Write a run the way the session does: begin, samples in batches, finish."""
    samples = list(result.latency_ns)
    streamed = replace(result, latency_ns=[], telemetry=[])
    run_id = store.begin_run(streamed)
    for offset in range(0, len(samples), batch):
        store.add_samples(run_id, offset, samples[offset : offset + batch])
    store.add_telemetry(run_id, result.telemetry)
    result.status = "ok" if result.status == "running" else result.status
    final = replace(result, latency_ns=samples)
    store.finish_run(run_id, final)
    result.run_id = run_id
    return run_id
