"""rknnrt backend vs a bare C loop on the same (stand-in) librknnrt: what the runner's
Python + ctypes loop costs per iteration.

    python -m bench.bench_rknnrt [--rounds 8] [--seconds 0.5] [--run-us 2000]

Sides, each a fresh process per round, alternating (ABBA) so drift hits all alike:
  bare C       tests/standins/librknnrt bare_loop: rknn_run alone in a C loop, inputs set
               once before it (the vendor's rknn_benchmark's shape)
  zero_copy    the runner (`python -m rkbench_device run`), backend rknnrt, io_mode
               zero_copy: per iteration a memcpy into the NPU buffer, rknn_run, PERF_RUN
  copy         the same in copy mode: rknn_inputs_set + rknn_run + rknn_outputs_get/release
               (work the bare loop does not do: printed, not held to the target)
  copy+profile copy with --profile-layers: the profiling pass runs after the timed loop,
               so the timed medians must not move
Each round gives a median per side; the figure is the median over rounds of the per-round
ratio side/bare. Target: zero_copy within 5% of the bare loop; copy+profile within 5% of copy.

The stand-in's run takes --run-us (default 2000 us, the stand-in's own default, about a
mobilenet on one RK3588 core). The emulated-board helper reuses `Board`, `bare_side`,
`runner_side` and `compare` with a qemu-aarch64 Python and the aarch64 stand-in (and adds
`runner_side(board, "rknnlite", ...)` with the real lite2 wheel: "Python lite2 vs C").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rkbench_wire import PROTOCOL_VERSION

REPO = Path(__file__).resolve().parents[1]
TARGET_ZERO_COPY = 0.05
TARGET_PROFILE = 0.05


@dataclass
class Board:
    """Where the sides run: this machine, or an emulated board (qemu-aarch64 prefixes)."""

    name: str
    lib: Path  # the librknnrt.so the runner and the bare loop load
    bare_loop: Path
    model: Path  # a .rknn for the board's SoC
    root: Path  # the board's file tree (device-tree compatible, sysfs)
    python: list[str] = field(default_factory=lambda: [sys.executable])
    exec_prefix: list[str] = field(default_factory=list)  # e.g. ["qemu-aarch64-static", "-L", SYSROOT]
    env: dict[str, str] = field(default_factory=dict)


def board_env(board: Board, run_us: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(REPO / "device"), str(REPO / "shared")]),
        RKBENCH_LIBRKNNRT=str(board.lib),
        RKNN_STANDIN_ROOT=str(board.root),
        RKNN_STANDIN_RUN_US=str(run_us),
        RKNN_STANDIN_QUIET="1",
    )
    env.update(board.env)
    return env


def bare_side(board: Board, run_us: int, seconds: float) -> Callable[[], float]:
    """Median ns of rknn_run in the bare C loop."""
    runs = max(20, int(seconds * 1e6 / run_us))

    def measure() -> float:
        out = subprocess.run(
            board.exec_prefix
            + [str(board.bare_loop), str(board.lib), str(board.model), "--runs", str(runs), "--warmup", "5"],
            capture_output=True,
            text=True,
            env=board_env(board, run_us),
            timeout=600,
        )
        if out.returncode != 0:
            raise RuntimeError(f"bare_loop failed: {out.stderr[-1000:]}")
        return float(statistics.median(json.loads(out.stdout)["run_ns"]))

    return measure


def emulated_rk3588(eb) -> Board:
    """The emulated RK3588 of tests.emulated_board.bench_hook.emulated_board() as a Board."""
    from tests.standins.model_builder import built_models

    return Board(
        name="emulated RK3588 (Debian 12 arm64 under qemu-user, aarch64 stand-in librknnrt)",
        lib=eb.lib,
        bare_loop=eb.bare_loop,
        model=built_models()["tiny_rk3588"],
        root=eb.board.root,
        python=[str(eb.board.python)],
        exec_prefix=eb.qemu,
    )


def tiny_inputs(work: Path, count: int = 3) -> list[Path]:
    """Float32 NCHW inputs for the tiny model (1x3x16x16), as .npy files in `work`."""
    import numpy as np

    paths = []
    for i in range(count):
        path = work / f"input_{i}.npy"
        np.save(path, np.random.default_rng(i).uniform(0, 1, (1, 3, 16, 16)).astype(np.float32))
        paths.append(path)
    return paths


def run_spec_file(board: Board, spec_file: Path, run_us: int) -> list[dict]:
    """The runner on `board` with a spec file: its events, or RuntimeError with its errors."""
    out = subprocess.run(
        board.python + ["-m", "rkbench_device", "run", "--spec", str(spec_file), "--root", str(board.root)],
        capture_output=True,
        text=True,
        env=board_env(board, run_us),
        timeout=600,
        cwd=str(REPO),
    )
    events = [json.loads(line) for line in out.stdout.splitlines()]
    errors = [e for e in events if e["type"] == "error"]
    if out.returncode != 0 or errors:
        raise RuntimeError(f"runner failed: {errors}\n{out.stderr[-1000:]}")
    return events


def runner_side(
    board: Board, backend: str, run_us: int, seconds: float, work: Path, inputs: Sequence[Path], **spec_extra
) -> Callable[[], float]:
    """Median ns per timed iteration of the runner with `backend` (end to end, as it reports)."""
    spec = {
        "v": PROTOCOL_VERSION,
        "backend": backend,
        "model": {"rknn": str(board.model)},
        "inputs": [[str(p)] for p in inputs],
        "data_format": ["nchw"],
        "output_dir": str(work / "out"),
        "warmup": 5,
        "min_runs": 10,
        "min_seconds": seconds,
        "max_seconds": seconds * 5 + 5,
        "save_outputs": False,
        "telemetry_interval_s": 1.0,
        "lock_path": str(work / "board.lock"),
        "lock_timeout_s": 30.0,
    }
    spec.update(spec_extra)
    spec_file = work / (
        "spec-{}-{}.json".format(backend, "-".join("{}={}".format(*kv) for kv in sorted(spec_extra.items())))
    )
    spec_file.write_text(json.dumps(spec))

    def measure() -> float:
        events = run_spec_file(board, spec_file, run_us)
        samples = [v for e in events if e["type"] == "samples" for v in e["latencies_ns"]]
        return float(statistics.median(samples))

    return measure


def compare(sides: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each side's median per round, the order reversed every other round (ABBA)."""
    medians: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            medians[name].append(sides[name]())
        print(
            f"round {r + 1}/{rounds}: " + "  ".join(f"{n} {medians[n][-1] / 1000:.1f} us" for n in names),
            file=sys.stderr,
        )
    return medians


def ratio(medians: dict[str, list[float]], side: str, base: str) -> float:
    return statistics.median(a / b for a, b in zip(medians[side], medians[base])) - 1.0


def local_board(work: Path) -> Board:
    import numpy as np

    from tests.device.device_testing import FIXTURES, build_tiny_rknn, make_tiny_classifier
    from tests.standins.librknnrt import build_bare_loop, build_standin

    model_dir = work / "model"
    model_dir.mkdir()
    make_tiny_classifier(model_dir / "tiny.onnx")
    rng = np.random.default_rng(7)
    for i in range(8):
        np.save(model_dir / f"calib_{i}.npy", rng.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32))
    (model_dir / "dataset.txt").write_text("".join(f"{model_dir / f'calib_{i}.npy'}\n" for i in range(8)))
    return Board(
        name="local x86_64 (stand-in librknnrt)",
        lib=build_standin(),
        bare_loop=build_bare_loop(),
        model=build_tiny_rknn(model_dir, "rk3588"),
        root=FIXTURES / "rk3588",
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_rknnrt", description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8, help="alternating rounds (default 8)")
    ap.add_argument("--seconds", type=float, default=0.5, help="measurement per side per round (default 0.5)")
    ap.add_argument("--run-us", type=int, default=2000, help="the stand-in's NPU time per run (default 2000)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="rkbench-bench-rknnrt-") as tmp:
        work = Path(tmp)
        board = local_board(work)
        inputs = tiny_inputs(work)
        sides = {
            "bare C": bare_side(board, args.run_us, args.seconds),
            "zero_copy": runner_side(board, "rknnrt", args.run_us, args.seconds, work, inputs, io_mode="zero_copy"),
            "copy": runner_side(board, "rknnrt", args.run_us, args.seconds, work, inputs),
            "copy+profile": runner_side(board, "rknnrt", args.run_us, args.seconds, work, inputs, profile_layers=True),
        }
        medians = compare(sides, args.rounds)

    print(
        f"board: {board.name}; tiny int8 model, stand-in run time {args.run_us} us, {args.rounds} "
        f"alternating rounds of {args.seconds:.1f} s per side"
    )
    base = statistics.median(medians["bare C"])
    for name in sides:
        mid = statistics.median(medians[name])
        extra = (
            ""
            if name == "bare C"
            else "   {:+.2f}% vs bare C ({:+.1f} us per iteration)".format(
                100 * ratio(medians, name, "bare C"), (mid - base) / 1000
            )
        )
        print(f"  {name:<13} median {mid / 1000:8.1f} us{extra}")
    ok = True
    zero = ratio(medians, "zero_copy", "bare C")
    verdict = "PASS" if zero <= TARGET_ZERO_COPY else "FAIL"
    ok &= verdict == "PASS"
    print(
        f"{verdict}  rknnrt zero-copy iteration within {100 * TARGET_ZERO_COPY:.0f}% of the bare C loop's rknn_run ({100 * zero:+.2f}%)"
    )
    profiled = ratio(medians, "copy+profile", "copy")
    verdict = "PASS" if abs(profiled) <= TARGET_PROFILE else "FAIL"
    ok &= verdict == "PASS"
    print(
        f"{verdict}  --profile-layers leaves the timed loop alone: copy+profile vs copy {100 * profiled:+.2f}% (within {100 * TARGET_PROFILE:.0f}%)"
    )
    print(
        "      copy mode also does rknn_inputs_set + rknn_outputs_get each iteration (the stand-in charges "
        "RKNN_STANDIN_IO_US for each), which the bare loop leaves out: %+.2f%%"
        % (100 * ratio(medians, "copy", "bare C"))
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
