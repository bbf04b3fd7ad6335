"""Nightly regression over a lab: parallelism, false alarms, sensitivity, idle nightlies,
confirmation before blame on a drifting board.

    python -m bench.bench_nightly [--trials 20] [--seconds 5]

Boards are real OpenSSH servers on loopback addresses (127.0.0.2-5) logging in to this
machine, with the real runner (onnxruntime backend: there is no NPU here) measuring the
bundled PP-OCR direction classifier. Targets (issue 6):
1. 20 A/A nightlies (nothing changed) give no DIFFERENT verdict;
2. a 10% slowdown injected in the runner (test-only knob) is DIFFERENT in at least 19 of 20;
3. a nightly where nothing changed builds nothing and pushes no model bytes;
4. a nightly over four boards takes no more than 1.3x the wall time of the same suite on one.
And (issue 11, confirmation before blame):
5. the board drifts between nights: on most nights it is slower for every build by a
   night-dependent factor (the nightly's test-only --inject-drift, 0..30%), on top of whatever
   this noisy machine does. The stored-baseline verdict cries wolf on those nights; the
   interleaved confirmation must not (target 1 counts the confirmed verdicts), and the
   slowdown nights (target 2) drift the same way;
6. confirmation runs only for suspected cells (DIFFERENT or UNKNOWN against the stored
   baseline, or any verdict on a board listed as unstable: there a drift can hide a change
   as well as fake one), and a confirmed cell costs at most 3x its measurement time.
The A/A and slowdown trials run on one board, after a baseline is accepted.
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


def cells(text: str) -> list[list[str]]:
    """The summary's cell rows: cell, outcome, p50, stored verdict, confirmed, drift, note."""
    return [
        [part.strip() for part in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| `")
    ]


def drift_of(trial: int) -> float:
    """The board's drift on night `trial`: 0 on every fourth night, else 5..30% slower."""
    return 0.0 if trial % 4 == 0 else 0.05 + 0.25 * ((trial * 7) % 11) / 10


class Tally:
    """What the trials saw: verdicts before and after confirmation, and its cost."""

    def __init__(self):
        self.stored_wolf = self.confirmed = self.suspected = self.unneeded = 0
        self.ratios: list[float] = []
        self.drifts: list[str] = []

    def add(self, text: str) -> None:
        for row in cells(text):
            stored, confirmed, drift, note = row[3], row[4], row[5], row[-1]
            self.stored_wolf += stored.startswith("DIFFERENT")
            # Suspected: not SAME against the stored baseline, or on a board listed as unstable.
            suspect = stored.startswith(("DIFFERENT", "UNKNOWN")) or "the board is unstable" in note
            self.suspected += suspect
            self.confirmed += confirmed != "-"
            self.unneeded += (confirmed != "-") and not suspect
            self.ratios += [float(x) for x in re.findall(r"([0-9.]+)x the cell's", note)]
            if drift != "-":
                self.drifts.append(drift.split(" (")[0])


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
            aa, slow = Tally(), Tally()
            for trial in range(args.trials):
                code, text, _ = nightly(
                    root, "one.toml", "--group", f"aa{trial}", "--inject-drift", str(drift_of(trial))
                )
                kinds = outcomes(text)
                effects += re.findall(r"median ([+-][0-9.]+%)", text)[:1]
                different += sum(k in ("regression", "improvement") for k in kinds)
                same += sum(k == "pass" for k in kinds)
                idle_ok &= "· 0 build(s) · 0 bytes pushed" in text
                aa.add(text)
            print(
                f"1. A/A: {args.trials} nightlies with nothing changed, the board drifting 0..30% between nights: "
                f"{different} DIFFERENT after confirmation (the stored-baseline verdict alone: {aa.stored_wolf} "
                f"DIFFERENT), {same} SAME (the rest UNKNOWN): {'PASS' if different == 0 else 'FAIL'}; "
                f"stored-baseline median changes: {' '.join(effects)}; drift named: {', '.join(aa.drifts)}"
            )
            failures += different > 0
            detected, effects = 0, []
            for trial in range(args.trials):
                code, text, _ = nightly(
                    root,
                    "one.toml",
                    "--group",
                    f"slow{trial}",
                    "--inject-slowdown",
                    "0.10",
                    "--inject-drift",
                    str(drift_of(trial)),
                )
                effects += re.findall(r"confirmed DIFFERENT \(regression\) ([+-][0-9.]+%)", text)[:1]
                detected += outcomes(text).count("regression")
                slow.add(text)
            print(
                f"2. sensitivity: 10% slowdown injected in the runner, the board drifting as in 1: "
                f"{detected}/{args.trials} reported DIFFERENT (regression) after confirmation (target >= 19): "
                f"{'PASS' if detected >= 19 * args.trials / 20 else 'FAIL'}; confirmed changes: {' '.join(effects)}"
            )
            failures += detected < 19 * args.trials / 20
            both = Tally()
            for tally in (aa, slow):
                for name in ("suspected", "confirmed", "unneeded"):
                    setattr(both, name, getattr(both, name) + getattr(tally, name))
                both.ratios += tally.ratios
            worst = max(both.ratios, default=0.0)
            mean = sum(both.ratios) / len(both.ratios) if both.ratios else 0.0
            only_suspects = both.unneeded == 0 and both.confirmed == both.suspected
            print(
                f"5/6. confirmation: {both.confirmed} of {2 * args.trials} cells confirmed, {both.suspected} "
                f"suspected, {both.unneeded} confirmed without suspicion ({'PASS' if only_suspects else 'FAIL'}); "
                f"cost per confirmed cell {mean:.2f}x its measurement on average, {worst:.2f}x at most "
                f"(target <= 3): {'PASS' if worst <= 3.0 else 'FAIL'}"
            )
            failures += (not only_suspects) + (worst > 3.0)
            print(
                f"3. idle nightlies (nothing changed) built nothing and pushed 0 bytes: {'PASS' if idle_ok else 'FAIL'}"
            )
            failures += not idle_ok
            # Parallelism, not verdicts: without confirmation (it would add time to b0 alone).
            _, text_one, one = nightly(root, "one.toml", "--group", "one", "--no-confirm")
            _, text_four, four = nightly(root, "all.toml", "--group", "four", "--no-confirm")
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
