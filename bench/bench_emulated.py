"""Python lite2 vs C: the REAL rknn-toolkit-lite2 wheel's inference() against the bare C
loop, on the same stand-in librknnrt, on the emulated aarch64 board.

    python -m bench.bench_emulated [--rounds 4] [--seconds 1.0] [--run-us 2000]

Sides, each a fresh process per round, alternating (ABBA), all on one emulated RK3588
(tests/emulated_board: Debian 12 arm64 Python under qemu-user, aarch64 stand-in):
  bare C    tests/standins/librknnrt bare_loop (aarch64, under qemu): rknn_run alone, inputs
            set once before the loop (the vendor's rknn_benchmark's shape)
  rknnlite  the runner with backend rknnlite: RKNNLite.inference() per iteration (inputs_set,
            run, outputs_get with float conversion, lite2's Python around them)
  rknnrt    the runner with backend rknnrt, zero-copy: our ctypes loop on the same board
The figures are the median over rounds of each round's ratio side / bare C.

Emulation runs the board's Python and C 10-50x slower than an RK3588's A76 would, while
the stand-in's NPU time (--run-us) is real time: the per-iteration overheads printed here
are the emulated board's, larger than a real board's. Compare sides with each other, not
with published figures. Figures only: no target, exit 1 only when a side fails.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from bench.bench_rknnrt import bare_side, compare, emulated_rk3588, ratio, runner_side, tiny_inputs  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_emulated", description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    ap.add_argument("--seconds", type=float, default=1.0, help="measurement per side per round (default 1.0)")
    ap.add_argument("--run-us", type=int, default=2000, help="the stand-in's NPU time per run (default 2000)")
    args = ap.parse_args(argv)

    from tests.emulated_board.bench_hook import emulated_board

    with tempfile.TemporaryDirectory(prefix="rkbench-bench-emulated-") as tmp:
        work = Path(tmp)
        try:
            with emulated_board(work, serve=False) as eb:
                board = emulated_rk3588(eb)
                inputs = tiny_inputs(work)
                sides = {
                    "bare C": bare_side(board, args.run_us, args.seconds),
                    "rknnlite": runner_side(board, "rknnlite", args.run_us, args.seconds, work, inputs),
                    "rknnrt": runner_side(
                        board, "rknnrt", args.run_us, args.seconds, work, inputs, io_mode="zero_copy"
                    ),
                }
                medians = compare(sides, args.rounds)
        except RuntimeError as exc:
            print(f"cannot measure: {exc}")
            return 1

    print(
        f"board: {board.name}; tiny int8 model (1x3x16x16 -> 1x20x16x16, 1x6), stand-in run time {args.run_us} us, "
        f"{args.rounds} alternating rounds of {args.seconds:.1f} s per side"
    )
    base = statistics.median(medians["bare C"])
    for name in sides:
        mid = statistics.median(medians[name])
        extra = (
            ""
            if name == "bare C"
            else "   x{:.2f} of bare C ({:+.0f} us per iteration)".format(
                1 + ratio(medians, name, "bare C"), (mid - base) / 1000
            )
        )
        print(f"  {name:<9} median {mid / 1000:9.1f} us{extra}")
    print(
        "Python lite2 vs C: x{:.2f} per iteration (rknnlite inference() / bare rknn_run); our rknnrt zero-copy "
        "loop on the same board: x{:.2f}".format(
            1 + ratio(medians, "rknnlite", "bare C"), 1 + ratio(medians, "rknnrt", "bare C")
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
