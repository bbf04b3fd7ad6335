"""The PERF_DETAIL example tables in tests/fixtures/perf_detail/, as the stand-in prints them.

They show the PP-OCR direction classifier (a real model, 98 operators) run on an RK3588
with core mask 0_1_2, in the current (2.x) and the old (1.x) layout, for parsers written
on the host. test_perf_fixtures.py checks they still are what the stand-in prints;
regenerate them after changing the stand-in's table with

    .venv/bin/python -m tests.standins.perf_fixtures
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from tests.standins.librknnrt import build_standin, make_board_root
from tests.standins.model_builder import built_models
from tests.standins.rknn_caller import FLAG_COLLECT_PERF, NHWC, SUCC, UINT8, Runtime

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "perf_detail"
MODEL = "cls_rk3588"
SETTINGS = {"RKNN_STANDIN_RUN_US": "4000", "RKNN_STANDIN_MULTICORE_OVERHEAD": "0.5", "RKNN_STANDIN_QUIET": "1"}
CORE_MASK = 7  # 0_1_2: 4000 us / 3 * 1.5 = 2000 us of NPU time per run


def render(rt: Runtime, model: Path, fmt: str) -> str:
    """One run's PERF_DETAIL text; the environment must already hold SETTINGS and a board root."""
    os.environ["RKNN_STANDIN_PERF_FORMAT"] = fmt
    try:
        rc, ctx = rt.init(model, FLAG_COLLECT_PERF)
        assert rc == SUCC, rc
        assert rt.set_core_mask(ctx, CORE_MASK) == SUCC
        a = rt.attr(ctx, "INPUT_ATTR", 0)
        assert rt.inputs_set(ctx, [np.zeros(a.shape, np.uint8)], [UINT8], [NHWC]) == SUCC
        assert rt.run(ctx) == SUCC
        rc, text = rt.perf_detail(ctx)
        assert rc == SUCC, rc
        rt.destroy(ctx)
        return text
    finally:
        del os.environ["RKNN_STANDIN_PERF_FORMAT"]


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        os.environ.update(SETTINGS, RKNN_STANDIN_ROOT=str(make_board_root(Path(root), "rk3588")))
        rt = Runtime(build_standin())
        FIXTURES.mkdir(parents=True, exist_ok=True)
        for fmt in ("current", "old"):
            path = FIXTURES / f"{fmt}.txt"
            path.write_text(render(rt, built_models()[MODEL], fmt))
            print(path)


if __name__ == "__main__":
    main()
