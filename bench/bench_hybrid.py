"""Hybrid quantization: our search against the vendor's proposal and auto_hybrid.

    python -m bench.bench_hybrid

1. Outlier CNNs (one conv channel scaled by 1000 and by 10000, compensated downstream, so
   int8 breaks and fp32 does not): `rkbench hybrid --auto --target-cos 0.999`. Targets:
   the target is reached with no more float layers than the vendor's proposal, in at most
   12 builds.
2. A real model shipped in a wheel (PP-OCR direction classifier): the auto result at the
   default target and at 0.999 against `build(auto_hybrid=True)`. Target: reach it with
   fewer float layers than auto_hybrid, or say that int8 already meets it.
All on the same calibration and evaluation sets, with a fresh build cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rkbench.model import examples
from tests.support.outlier_model import make_outlier_model, write_inputs


def hybrid(cache: Path, out: Path, *args) -> tuple[int, dict]:
    done = subprocess.run(
        [sys.executable, "-m", "rkbench", "hybrid", *map(str, args), "--compare-vendor", "-o", str(out), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "RKBENCH_CACHE": str(cache)},
    )
    if not done.stdout.strip():
        print(done.stderr, file=sys.stderr)
        raise SystemExit(f"rkbench hybrid failed with exit {done.returncode}")
    return done.returncode, json.loads(done.stdout)


def row(name: str, candidate: dict) -> str:
    return (
        f"  {name:<22} cfg layers {len(candidate['layers']):>3}  float in model "
        f"{len(candidate['float_tensors']):>3}  cos mean {candidate['cos_mean']:.5f}  "
        f"size {candidate['rknn_bytes'] / 1024:7.1f} KB"
    )


def main() -> int:
    failures = 0
    with tempfile.TemporaryDirectory(prefix="rkbench-bench-hybrid-") as tmp:
        tmp = Path(tmp)
        calib = write_inputs(tmp / "calib", 16, seed=1)
        evaluation = write_inputs(tmp / "eval", 8, seed=2)
        for scale, seed in ((1000.0, 7), (10000.0, 3)):
            model = make_outlier_model(tmp / f"outlier-{scale:.0f}.onnx", scale=scale, seed=seed)
            code, record = hybrid(
                tmp / f"cache-{scale:.0f}",
                tmp / f"out-{scale:.0f}",
                model,
                "--dataset",
                calib,
                "--eval",
                evaluation,
                "--target-cos",
                "0.999",
            )
            ours, (proposal, auto) = record["chosen"], record["vendor"]
            print(f"outlier x{scale:.0f} (seed {seed}), target cos 0.999, eval 8 samples apart from calibration:")
            print(row("int8", record["candidates"][0]))
            print(row("rkbench --auto", ours) + f"  builds {record['builds']}")
            print(row("vendor proposal", proposal))
            print(row("vendor auto_hybrid", auto))
            ok = ours["cos_mean"] >= 0.999 and len(ours["layers"]) <= len(proposal["layers"]) and record["builds"] <= 12
            ratio = len(ours["layers"]) / max(1, len(proposal["layers"]))
            print(
                f"  float layers ours/proposal = {ratio:.2f}; builds {record['builds']}/12: {'PASS' if ok else 'FAIL'}"
            )
            failures += not ok

        example = examples.EXAMPLES["ppocr-cls"]
        data = examples.write_calibration_set(example, tmp / "cls", 32)
        model = examples.model_path(example)
        options = [
            "--input-size",
            "1,3,48,192",
            "--mean",
            "127.5,127.5,127.5",
            "--std",
            "127.5,127.5,127.5",
            "--dataset",
            data,
        ]
        for target in ("0.995", "0.999"):
            code, record = hybrid(tmp / "cache-cls", tmp / f"out-cls-{target}", model, *options, "--target-cos", target)
            ours, (proposal, auto) = record["chosen"], record["vendor"]
            print(f"{example.name} (real, from {examples.WHEEL_PIN}), target cos {target}:")
            print(row("int8", record["candidates"][0]))
            print(row("rkbench --auto", ours) + f"  builds {record['builds']}")
            print(row("vendor proposal", proposal))
            print(row("vendor auto_hybrid", auto))
            for note in record["notes"]:
                print(f"  note: {note}")
            reached = ours["cos_mean"] >= float(target)
            int8_enough = ours["label"] == "int8" and reached
            fewer = reached and (
                auto["cos_mean"] < float(target) or len(ours["float_tensors"]) < len(auto["float_tensors"])
            )
            print(
                f"  {'int8 already meets it' if int8_enough else 'auto reaches it, auto_hybrid does not or with more layers' if fewer else 'target missed'}: "
                f"{'PASS' if int8_enough or fewer else 'FAIL'}"
            )
            failures += not (int8_enough or fewer)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
