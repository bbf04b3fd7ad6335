"""The REAL rknn-toolkit-lite2 2.5.0 wheel against our stand-in librknnrt.so, on the
emulated board: the check that the stand-in's ABI is right (lite2 is compiled against the
vendor's rknn_api.h), and a record of what the real wheel does that the rknnlite backend
must handle (see device/rkbench_device/backends/rknnlite_internals.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .flavours import BULLSEYE

pytestmark = pytest.mark.emulated

PROBE = Path(__file__).with_name("lite2_probe.py")
MASKS = ["NPU_CORE_AUTO", "NPU_CORE_0", "NPU_CORE_1", "NPU_CORE_2", "NPU_CORE_0_1", "NPU_CORE_0_1_2", "NPU_CORE_ALL"]
TINY_OUTPUTS = [{"dtype": "float32", "shape": [1, 20, 16, 16]}, {"dtype": "float32", "shape": [1, 6]}]


def probe(board, model: Path, soc: str) -> dict:
    done = board.run_python(str(PROBE), str(model), soc, env={"RKNN_STANDIN_QUIET": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


def test_real_lite2_on_rk3588(rk3588, models):
    seen, stderr = probe(rk3588, models["tiny_rk3588"], "rk3588")
    assert seen["load_missing"] == -1 and seen["load"] == 0
    assert seen["init"] == {name: 0 for name in MASKS}  # every core mask on a 3-core SoC
    assert seen["init_bad_mask"] == -1 and seen["init_default"] == 0
    # get_sdk_version() is a banner; the stand-in's versions reach it through RKNN_QUERY_SDK_VERSION
    assert "API: 2.5.0 (standin@" in seen["sdk"] and "DRV: 0.9.8 (stand-in" in seen["sdk"]
    # the attrs lite2 read from the runtime (NHWC int8, zp -128 seen through lite2's unsigned field)
    assert seen["input_attr"] == {"dims": [1, 16, 16, 3], "type": 2, "fmt": 1, "zp": 2**32 - 128}
    assert seen["n_in_out"] == [1, 2]
    # outputs: always float32 (want_float=1), the 4-D one in NCHW; deterministic
    assert seen["outputs"] == TINY_OUTPUTS and seen["same_bytes_same_outputs"]
    assert {dt: out == TINY_OUTPUTS for dt, out in seen["dtypes"].items()} == {
        "float32": True,
        "float16": True,
        "int8": True,
        "uint8": True,
        "float64": False,
    }
    assert seen["dtypes"]["float64"] is None and seen["three_dims"] is None and seen["bogus_format"] is None
    assert seen["bare_array"] == TINY_OUTPUTS and "Inputs should be placed in a list" in stderr
    # 'nchw' works once, then the same list holds lite2's enum and the next call fails
    assert seen["nchw_first"] == TINY_OUTPUTS and seen["nchw_list_after"] == [1]
    assert seen["nchw_same_list_again"] is None and "Unsupport data format: 1" in stderr
    assert seen["nchw_as_nhwc_equal"]  # transposed inside: the same bytes as the NHWC call
    # the internal NPU time (the stand-in's default run time), a string
    assert seen["run_perf"] == "'2000'"
    # rknn_run failing: inference() still returns outputs; only the internal run() says -1
    assert seen["outputs_when_run_fails"] == TINY_OUTPUTS and seen["internal_run_code_on_failure"] == -1
    assert "E RKNN: [stand-in] rknn_run: injected failure -1" in stderr
    assert seen["release"] is None and seen["runtime_after_release"] == "None"


def test_real_lite2_on_rk3566_debian11_refuses_multicore_masks(new_board, models):
    board = new_board(flavour=BULLSEYE, soc="rk3566")
    seen, stderr = probe(board, models["tiny_rk3566"], "rk3566")
    assert seen["init"] == {name: 0 if name == "NPU_CORE_AUTO" else -1 for name in MASKS}
    # lite2 refuses by itself, from the device tree, before asking the runtime
    assert "The core_mask is only supported by ['RK3588', 'RK3576']" in stderr
    assert seen["init_default"] == 0 and seen["outputs"] == TINY_OUTPUTS
    assert seen["release"] is None


def test_rk3588_model_on_an_rk3566_board_is_refused(new_board, models):
    board = new_board(soc="rk3566")
    code = (
        "import sys; from rknnlite.api import RKNNLite; r = RKNNLite(); r.load_rknn(sys.argv[1]); "
        "print('init', r.init_runtime())"
    )
    done = board.run_python("-c", code, str(models["tiny_rk3588"]), env={"RKNN_STANDIN_QUIET": "1"})
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "init -1"
    # the stand-in's refusal (rknn_init -13) reaches the user through lite2, with its reason
    assert "RKNN init failed. error code: RKNN_ERR_TARGET_PLATFORM_UNMATCH" in done.stderr
    assert "built for target platform rk3588, but this board is rk3566" in done.stderr
