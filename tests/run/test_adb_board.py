"""A run and board info over adb: the real adb client and server against the adbd
stand-in on loopback (tests/standins/adbd.py)."""

from __future__ import annotations

import numpy as np

from rkbench.boards.connect import open_board
from rkbench.boards.health import board_info
from rkbench.run.session import run_on_board
from tests.support.boards import BOARD_PYTHON, ort_outputs


def test_run_and_info_over_adb(adb_server, adbd_standin, spec, model_files, tmp_path):  # noqa: F811
    with open_board(adbd_standin.board, **adb_server.transport_opts()) as board:
        assert board.kind == "adb"
        info = board_info(board, python=BOARD_PYTHON)
        assert info["host"]["transport"] == "adb" and info["numpy"]
        out = run_on_board(board, spec, python=BOARD_PYTHON, out_dir=tmp_path / "out")
        again = run_on_board(board, spec, python=BOARD_PYTHON)
    assert out.transport == "adb" and out.backend == "onnxruntime"
    [mask] = out.results
    assert len(mask.samples_ns) == mask.result.counts["runs"]
    for o, want in zip(mask.outputs, ort_outputs(model_files["model"], model_files["inputs"])):
        np.testing.assert_allclose(np.load(o.local_path), want, rtol=1e-6, atol=1e-7)
    assert again.deploy.bytes_pushed == 0
