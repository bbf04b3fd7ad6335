"""Synthetic but realistic `RunResult`s for the report tests and bench/bench_report.py:
lognormal latencies that step up when the NPU clock drops half-way (telemetry shows the
clock change and a warming SoC), per-layer errors with one layer where the board departs
from the simulator, outputs against fp32 and the simulator, thresholds with one breach."""

from __future__ import annotations

import numpy as np

from rkbench.report.common import HistoryPoint, run_key
from rkbench.results.model import LatencyStats, LayerError, OutputError, RunResult, TelemetrySample, Threshold
from rkbench_wire.stats import summarize_ns

HOSTILE_MODEL = "<script>alert('model')</script>mobilenet"
HOSTILE_TENSOR = '<img src=x onerror="alert(1)">conv_7'


def stats_of(latency_ns) -> LatencyStats:
    return summarize_ns(latency_ns)


def latencies(n: int, median_ms: float, seed: int, slow_from: float = 0.6, slowdown: float = 1.25) -> list[int]:
    """Lognormal around median_ms, a step up by `slowdown` from fraction `slow_from` on
    (the NPU clock dropped), and a few scheduler spikes."""
    rng = np.random.default_rng(seed)
    ms = median_ms * rng.lognormal(0.0, 0.06, n)
    ms[int(n * slow_from) :] *= slowdown
    spikes = rng.choice(n, size=max(1, n // 500), replace=False)
    ms[spikes] *= rng.uniform(1.5, 3.0, spikes.size)
    return [int(x * 1e6) for x in ms]


def telemetry(seconds: float, slow_from: float = 0.6, every_s: float = 0.25) -> list[TelemetrySample]:
    out = []
    steps = max(2, int(seconds / every_s) + 1)
    for i in range(steps):
        t = min(seconds, i * every_s)
        hot = t >= seconds * slow_from
        out.append(
            TelemetrySample(
                t=t,
                npu_load_pct=[88.0, 85.0, 86.0],
                npu_freq_hz=800_000_000 if hot else 1_000_000_000,
                cpu_freq_hz={"policy0": 1_800_000_000, "policy4": 2_016_000_000 if hot else 2_400_000_000},
                temperatures_c={"soc-thermal": 52.0 + 30.0 * t / seconds, "npu-thermal": 55.0 + 33.0 * t / seconds},
            )
        )
    return out


def layers(n: int, depart_at: int, tensor_name: str = "conv") -> list[LayerError]:
    out = []
    for i in range(n):
        sim_entire = 1.0 - 0.004 * i / n
        departs = i == depart_at
        after = i >= depart_at
        out.append(
            LayerError(
                index=i,
                op="Conv" if i % 3 else "Relu",
                tensor=(HOSTILE_TENSOR if departs else f"{tensor_name}_{i}_out"),
                sim_entire_cos=sim_entire,
                sim_single_cos=0.99995 - (0.0002 if i % 17 == 0 else 0.0),
                rt_entire_cos=sim_entire - (0.06 if after else 0.00002),
                rt_single_sim_cos=0.93 if departs else 0.99999,
                board_departs=departs,
            )
        )
    return out


def run(
    model: str = "mobilenet_v2",
    board: str = "board-a.lab",
    core_mask: str | None = "0",
    n: int = 2000,
    median_ms: float = 8.0,
    seed: int = 1,
    n_layers: int = 40,
    run_id: int = 42,
    backend: str = "rknnlite",
    soc: str = "RK3588",
    p99_limit_ms: float = 11.0,
) -> RunResult:
    lat = latencies(n, median_ms, seed)
    stats = stats_of(lat)
    seconds = sum(lat) / 1e9 * 1.02  # the loop's wall time: latencies plus a little overhead
    thresholds = [
        Threshold("min_cos_fp32", 0.98, 0.99123, True),
        Threshold("max_p99_ms", p99_limit_ms, stats.p99_ms, stats.p99_ms <= p99_limit_ms),
        Threshold("max_peak_rss_mb", 400.0, 212.5, True),
    ]
    return RunResult(
        group="2024-06-01T10:00:00Z",
        model=model,
        model_sha256="ab" * 32,
        board=board,
        backend=backend,
        core_mask=core_mask,
        status="ok",
        started="2024-06-01T10:00:05Z",
        finished="2024-06-01T10:01:00Z",
        run_id=run_id,
        build_key="k1",
        target=soc.lower(),
        quant="i8",
        board_soc=soc,
        latency_ns=lat,
        stats=stats,
        npu_stats=stats_of([int(x * 0.8) for x in lat]),
        memory={
            "after_load": {"vm_hwm_kb": 180_000, "vm_rss_kb": 170_000},
            "after_runs": {"vm_hwm_kb": 217_600, "vm_rss_kb": 200_000},
            "npu": None,
        },
        telemetry=telemetry(seconds),
        throttled=True,
        throttle_reasons=[
            "NPU clock changed during the runs: 1000000000 -> 800000000 Hz (min 800000000, max 1000000000)"
        ],
        outputs=[
            OutputError("logits", "fp32", 0.99612, 0.99123, 0.41, 0.9, top1_agreement=0.985),
            OutputError("features", "fp32", 0.99810, 0.99501, 0.22, 0.5),
            OutputError("logits", "simulator", 0.99998, 0.99990, 0.01, 0.05, top1_agreement=1.0),
        ],
        layers=layers(n_layers, depart_at=n_layers // 2),
        thresholds=thresholds,
        versions={
            "rknn_toolkit2": "2.5.0",
            "librknnrt": "2.3.2",
            "npu_driver": "0.9.8",
            "runner": "0.1.0",
            "python": "3.11.2",
        },
        settings={"warmup": 10, "min_runs": n, "min_seconds": 5.0, "inputs": 4, "elapsed_s": seconds},
    )


def failed_run(model: str = "yolov5s", board: str = "board-b.lab") -> RunResult:
    return RunResult(
        group="2024-06-01T10:00:00Z",
        model=model,
        model_sha256="cd" * 32,
        board=board,
        backend="rknnlite",
        core_mask="0_1_2",
        status="failed",
        started="2024-06-01T10:02:00Z",
        run_id=43,
        board_soc="RK3566",
        error="board lost during the runs: SSH connection reset (check the board's power and network, then rerun)",
        versions={"runner": "0.1.0"},
    )


def history_for(results, points: int = 5) -> dict:
    """Previous runs of each result's key, a little faster than now."""
    history = {}
    for r in results:
        if r.stats is None:
            continue
        history[run_key(r)] = [
            HistoryPoint(
                run_id=30 + i,
                started=f"2024-05-{20 + i:02d}T02:00:00Z",
                p50_ms=r.stats.p50_ms / (1.031 + 0.002 * (points - 1 - i)),
                p99_ms=r.stats.p99_ms / 1.1,
                mean_ms=r.stats.mean_ms / 1.03,
                status="ok",
                passed=True,
                cos_min_fp32=0.9915,
                peak_rss_mb=210.0,
            )
            for i in range(points)
        ]
    return history


def suite(n: int = 2000, n_layers: int = 40) -> list[RunResult]:
    """What one `rkbench run` over two core masks plus a failed board gives."""
    return [
        run(core_mask="0", n=n, seed=1, n_layers=n_layers, run_id=42),
        run(core_mask="0_1_2", n=n, median_ms=4.0, seed=2, n_layers=n_layers, run_id=44, p99_limit_ms=11.0),
        failed_run(),
    ]


LONG_HOSTILE = (
    "a_model_whose_name_goes_on" * 3 + "<![CDATA[ ]]> \"quoted\" 'single' \x01\x07\x1b <b>&amp;</b> " + "_and_on" * 10
)


def edge_cases() -> dict[str, tuple[list[RunResult], dict]]:
    """Runs the charts must stay readable for, by name: (results, history)."""
    one = run(n=1, n_layers=1)
    constant = run(n=500, n_layers=5)
    constant.latency_ns = [8_000_000] * 500
    constant.stats = stats_of(constant.latency_ns)
    for layer in constant.layers:
        layer.sim_entire_cos = layer.rt_entire_cos = layer.rt_single_sim_cos = 1.0
        layer.board_departs = False
    for s in constant.telemetry:
        s.temperatures_c, s.npu_freq_hz, s.cpu_freq_hz = {"soc-thermal": 50.0}, 1_000_000_000, {"policy0": 1.8e9}
    big = [
        run(core_mask=m, n=10_000, n_layers=300, seed=i, median_ms=8.0 / (i + 1), run_id=100 + i)
        for i, m in enumerate(["0", "0_1", "0_1_2"])
    ]
    long = run(n=3000, n_layers=60, model=LONG_HOSTILE, core_mask="0_1_2" + "_and_more" * 6)
    for layer in long.layers:
        layer.tensor = "model/backbone/stage4/block12/conv2d_depthwise_" + layer.tensor * 3 + LONG_HOSTILE
    for layer in long.layers[10:14]:
        layer.board_departs, layer.rt_single_sim_cos = True, 0.95
    for s in long.telemetry:
        s.temperatures_c = {f"zone-{i}-{LONG_HOSTILE}": 40 + i + s.t for i in range(8)}
        s.cpu_freq_hz = {f"policy{i}{LONG_HOSTILE}": 1.2e9 + i * 1e8 for i in range(6)}
    return {
        "one sample": ([one], history_for([one], points=1)),
        "constant latency": ([constant], {}),
        "10,000 samples x 3 masks": (big, history_for(big, points=10)),
        "long hostile names": ([long], history_for([long], points=30)),
    }
