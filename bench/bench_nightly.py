"""Nightly regression over a lab: parallelism, false alarms, sensitivity, idle nightlies.

    python -m bench.bench_nightly [--trials 20]

Boards are real OpenSSH servers on loopback addresses (127.0.0.2-5) logging in to this
machine, with the real runner (onnxruntime backend: there is no NPU here) measuring the
bundled PP-OCR direction classifier. Targets (issue 6):
1. 20 A/A nightlies (nothing changed) give no DIFFERENT verdict;
2. a 10% slowdown injected in the runner (test-only knob) is DIFFERENT in at least 19 of 20;
3. a nightly where nothing changed builds nothing and pushes no model bytes;
4. a nightly over four boards takes no more than 1.3x the wall time of the same suite on one.
The A/A and slowdown trials run on one board, after a baseline is accepted. Other load on
this 2-core machine shifts latencies as a whole: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rkbench.model import examples

SUITE = """
name = "bench"
[measure]
backend = "onnxruntime"
cpu_threads = 1   # the host and four "boards" share this machine's two cores
warmup = 20
min_runs = 20
min_seconds = {seconds}
[[models]]
name = "ppocr-cls"
path = "{model}"
dataset = "{dataset}"
input_size = ["1,3,48,192"]
mean = ["127.5,127.5,127.5"]
std = ["127.5,127.5,127.5"]
boards = ["{selector}"]
"""


def nightly(root: Path, suite: str, *extra: str) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rkbench",
            "nightly",
            "--suite",
            suite,
            "--boards",
            "boards.toml",
            "--db",
            "results.db",
            "--known-hosts",
            "known_hosts",
            "-o",
            "out",
            *extra,
        ],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "RKBENCH_CACHE": str(root / "cache")},
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def suite_seconds(text: str) -> float:
    """How long the suite ran on the boards (the nightly's own figure, before reporting)."""
    return float(re.search(r"suite ran in ([0-9.]+) s", text).group(1))


def outcomes(text: str) -> list[str]:
    return re.findall(r"^\| `[^`]+` \| ([a-z-]+) \|", text, re.M)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_nightly")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement per cell (the example suite's)")
    args = parser.parse_args(argv)
    from tests.support.sshd import have_sshd, make_client_key, start_sshd

    if not have_sshd():
        print("bench_nightly: OpenSSH server not installed", file=sys.stderr)
        return 2
    failures = 0
    with tempfile.TemporaryDirectory(prefix="rkbench-bench-nightly-") as tmp:
        root = Path(tmp)
        os.environ["HOME"] = str(root / "home")
        os.environ.pop("SSH_AUTH_SOCK", None)
        key = make_client_key(root / "home" / ".ssh")
        example = examples.EXAMPLES["ppocr-cls"]
        dataset = examples.write_calibration_set(example, root / "calib", 24)
        servers = [start_sshd(root / f"sshd{i}", [key], host=f"127.0.0.{i}") for i in range(2, 6)]
        try:
            for server in servers:
                server.trust(root / "known_hosts")
            boards = []
            for i, server in enumerate(servers):
                tags = '"lab=all", "one"' if i == 0 else '"lab=all"'
                boards.append(
                    f'[boards.b{i}]\naddress = "{server.board}"\nsoc = "rk3588"\n'
                    f'tags = [{tags}]\npython = "{sys.executable}"\n'
                )
            (root / "boards.toml").write_text("\n".join(boards))
            for name, selector in (("all.toml", "lab=all"), ("one.toml", "one")):
                (root / name).write_text(
                    SUITE.format(
                        seconds=args.seconds, model=examples.model_path(example), dataset=dataset, selector=selector
                    )
                )
            # Warm everything (build, analysis, runner and blobs on every board), then time.
            code, text, _ = nightly(root, "all.toml", "--group", "warm")
            if code not in (0,):
                print(text)
                return 1
            time.sleep(2.0)  # let the warm-up's processes on the other boards finish first
            code, text, _ = nightly(root, "one.toml", "--group", "base", "--accept")
            same, different, idle_ok, effects = 0, 0, True, []
            for trial in range(args.trials):
                code, text, _ = nightly(root, "one.toml", "--group", f"aa{trial}", "--remeasure", "2")
                kinds = outcomes(text)
                effects += re.findall(r"median ([+-][0-9.]+%)", text)[:1]
                different += sum(k in ("regression", "improvement") for k in kinds)
                same += sum(k == "pass" for k in kinds)
                idle_ok &= "· 0 build(s) · 0 bytes pushed" in text
            print(
                f"1. A/A: {args.trials} nightlies with nothing changed: {different} DIFFERENT, {same} SAME "
                f"(the rest UNKNOWN after re-measuring): {'PASS' if different == 0 else 'FAIL'}; "
                f"median changes seen: {' '.join(effects)}"
            )
            failures += different > 0
            detected, effects = 0, []
            for trial in range(args.trials):
                code, text, _ = nightly(
                    root, "one.toml", "--group", f"slow{trial}", "--inject-slowdown", "0.10", "--remeasure", "2"
                )
                effects += re.findall(r"median ([+-][0-9.]+%)", text)[:1]
                detected += outcomes(text).count("regression")
            print(
                f"2. sensitivity: 10% slowdown injected in the runner: {detected}/{args.trials} reported "
                f"DIFFERENT (regression) (target >= 19): {'PASS' if detected >= 19 * args.trials / 20 else 'FAIL'}; "
                f"median changes seen: {' '.join(effects)}"
            )
            failures += detected < 19 * args.trials / 20
            print(
                f"3. idle nightlies (nothing changed) built nothing and pushed 0 bytes: {'PASS' if idle_ok else 'FAIL'}"
            )
            failures += not idle_ok
            _, text_one, one = nightly(root, "one.toml", "--group", "one")
            _, text_four, four = nightly(root, "all.toml", "--group", "four")
            ratio = suite_seconds(text_four) / suite_seconds(text_one)
            print(
                f"4. one board vs four boards in parallel ({args.seconds:.0f} s measured per cell): "
                f"the suite ran in {suite_seconds(text_one):.1f} s vs {suite_seconds(text_four):.1f} s: "
                f"ratio {ratio:.2f} (target <= 1.3): {'PASS' if ratio <= 1.3 else 'FAIL'}; whole command "
                f"with its reports {one:.1f} s vs {four:.1f} s ({four / one:.2f}x: the HTML report "
                "draws every cell)"
            )
            failures += ratio > 1.3

        finally:
            for server in servers:
                server.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
