"""Runner overhead in throughput mode: total FPS of N contexts in the runner (one Python thread
each, backend rknnrt) vs N bare C loops (one pthread each) on the same stand-in librknnrt.

    python -m bench.bench_throughput [--board emulated|local] [--contexts 3] [--run-us 5000]
                                     [--seconds 2.0] [--rounds 3]

Sides, each a fresh process per round, alternating (ABBA), on one RK3588 (3 NPU cores):
  bare C   tests/standins/librknnrt bare_loop --contexts N --core-masks 1,2,4,...: N threads,
           each its own context on its core, rknn_run alone in a loop, all started together.
  runner   python -m rkbench_device run with a throughput spec: N contexts (the first inited,
           the others rknn_dup_context'ed) on cores 0,1,2,..., one thread each, zero-copy io
           (the bound memcpy + rknn_run + PERF_RUN query per iteration).
Target: runner total FPS within 5% of the bare loops' (ratio >= 0.95). The stand-in serialises
runs per core for --run-us, so what separates the sides is the time each thread spends outside
rknn_run: the Python between the calls (with the GIL) and the extra C calls.

--board emulated (the default) runs both sides on the emulated aarch64 board (tests/emulated_board:
Debian 12 arm64 Python under qemu-user; the emulation makes Python slower than a real board's
Cortex-A76); when that board cannot be built here it says so and runs on this machine instead
(--board local: x86_64 Python and the x86_64 stand-in). The output names the board used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.bench_rknnrt import Board, board_env, emulated_rk3588, local_board, run_spec_file, tiny_inputs
from rkbench_wire import PROTOCOL_VERSION

TARGET = 0.95


def bare_side(board: Board, contexts: int, run_us: int, seconds: float) -> Callable[[], float]:
    masks = ",".join(str(1 << (k % 3)) for k in range(contexts))

    def measure() -> float:
        out = subprocess.run(
            board.exec_prefix
            + [str(board.bare_loop), str(board.lib), str(board.model), "--contexts", str(contexts)]
            + ["--core-masks", masks, "--seconds", f"{seconds:g}", "--warmup", "5"],
            capture_output=True,
            text=True,
            env=board_env(board, run_us),
            timeout=600,
        )
        if out.returncode != 0:
            raise RuntimeError(f"bare_loop failed: {out.stderr[-1000:]}")
        return float(json.loads(out.stdout)["total_fps"])

    return measure


def runner_side(
    board: Board, contexts: int, run_us: int, seconds: float, work: Path, inputs: list[Path]
) -> Callable[[], float]:
    spec = {
        "v": PROTOCOL_VERSION,
        "backend": "rknnrt",
        "model": {"rknn": str(board.model)},
        "inputs": [[str(p)] for p in inputs],
        "data_format": ["nchw"],
        "output_dir": str(work / "out"),
        "warmup": 5,
        "save_outputs": False,
        "telemetry_interval_s": 1.0,
        "lock_path": str(work / "board.lock"),
        "lock_timeout_s": 30.0,
        "io_mode": "zero_copy",
        "throughput": {
            "seconds": seconds,
            "configs": [{"assignment": "per-core", "core_masks": [str(k % 3) for k in range(contexts)]}],
        },
    }
    spec_file = work / f"spec-throughput-{contexts}.json"
    spec_file.write_text(json.dumps(spec))

    def measure() -> float:
        events = run_spec_file(board, spec_file, run_us)
        [event] = [e for e in events if e["type"] == "throughput"]
        if event["runs"] != sum(c["runs"] for c in event["contexts"]):
            raise RuntimeError("the runner's total runs differ from its contexts' sum")
        return float(event["fps"])

    return measure


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_throughput", description=__doc__.splitlines()[0])
    ap.add_argument("--board", choices=("emulated", "local"), default="emulated")
    ap.add_argument("--contexts", type=int, default=3, help="contexts / threads per side (default 3)")
    ap.add_argument("--run-us", type=int, default=5000, help="the stand-in's NPU time per run (default 5000)")
    ap.add_argument("--seconds", type=float, default=2.0, help="window per side per round (default 2.0)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="rkbench-bench-throughput-") as tmp:
        work = Path(tmp)
        inputs = tiny_inputs(work)
        fps: dict[str, list[float]] = {"bare C": [], "runner": []}
        try:
            if args.board == "emulated":
                try:
                    board = _emulated(work, args, inputs, fps)
                except Exception as exc:  # no qemu/debootstrap here, or the board failed to build
                    print(f"the emulated board is not available ({exc}); measuring on this machine instead")
                    args.board = "local"
                    fps = {name: [] for name in fps}
            if args.board == "local":
                board = local_board(work)
                _rounds(board, args, work, inputs, fps)
        except RuntimeError as exc:
            print(f"cannot measure: {exc}")
            return 1

    ideal = args.contexts * 1e6 / args.run_us if args.contexts <= 3 else 3e6 / args.run_us
    print(
        f"board: {board.name}; tiny int8 model, stand-in run time {args.run_us} us per run per core, "
        f"{args.contexts} contexts on cores {','.join(str(k % 3) for k in range(args.contexts))}, "
        f"{args.rounds} alternating rounds of {args.seconds:.1f} s per side (ideal {ideal:.1f} FPS)"
    )
    for name, values in fps.items():
        print(f"  {name:<7} total FPS median {statistics.median(values):8.1f}  rounds: "
              + ", ".join(f"{v:.1f}" for v in values))  # fmt: skip
    ratios = [r / b for r, b in zip(fps["runner"], fps["bare C"])]
    ratio = statistics.median(ratios)
    verdict = "met" if ratio >= TARGET else "MISSED"
    print(f"runner / bare C total FPS: x{ratio:.3f} (per round: {', '.join(f'{r:.3f}' for r in ratios)}); "
          f"target >= x{TARGET:.2f}: {verdict}")  # fmt: skip
    return 0 if ratio >= TARGET else 1


def _rounds(board: Board, args, work: Path, inputs: list[Path], fps: dict) -> None:
    sides = {
        "bare C": bare_side(board, args.contexts, args.run_us, args.seconds),
        "runner": runner_side(board, args.contexts, args.run_us, args.seconds, work, inputs),
    }
    names = list(sides)
    for r in range(args.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            fps[name].append(sides[name]())
        print(f"round {r + 1}/{args.rounds}: " + "  ".join(f"{n} {fps[n][-1]:.1f} FPS" for n in names),
              file=sys.stderr)  # fmt: skip


def _emulated(work: Path, args, inputs: list[Path], fps: dict):
    from tests.emulated_board.bench_hook import emulated_board

    with emulated_board(work, serve=False) as eb:
        board = emulated_rk3588(eb)
        _rounds(board, args, work, inputs, fps)
    return board


if __name__ == "__main__":
    sys.exit(main())
