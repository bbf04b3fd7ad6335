"""Our ctypes declarations of librknnrt's C API against the facts: every struct's size and
every field's offset (RKNN-FACTS.md, "librknnrt's C API"), the enum values, the error table.

check_layouts() is a plain function: the emulated-board tests run the same check under
qemu-aarch64 with
    python3 -c "from rkbench_device.backends.rknnrt_abi import check_layouts; print(check_layouts())"
"""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from device_testing import REPO, runner_env
from rkbench_device.backends import rknnrt_abi as abi

# From the facts, written out again here on purpose (not read from rknnrt_abi.LAYOUTS).
SIZES = {
    "RknnInputOutputNum": 8,
    "RknnTensorAttr": 376,
    "RknnInput": 32,
    "RknnOutput": 24,
    "RknnPerfRun": 8,
    "RknnPerfDetail": 16,
    "RknnSdkVersion": 512,
    "RknnMemSize": 64,
    "RknnTensorMem": 40,
    "RknnInitExtend": 136,
    "RknnInitExtendV25": 144,
}
OFFSETS = {
    "RknnTensorAttr": [
        ("index", 0),
        ("n_dims", 4),
        ("dims", 8),
        ("name", 72),
        ("n_elems", 328),
        ("size", 332),
        ("fmt", 336),
        ("type", 340),
        ("qnt_type", 344),
        ("fl", 348),
        ("zp", 352),
        ("scale", 356),
        ("w_stride", 360),
        ("size_with_stride", 364),
        ("pass_through", 368),
        ("h_stride", 372),
    ],
    "RknnInput": [("index", 0), ("buf", 8), ("size", 16), ("pass_through", 20), ("type", 24), ("fmt", 28)],
    "RknnOutput": [("want_float", 0), ("is_prealloc", 1), ("index", 4), ("buf", 8), ("size", 16)],
    "RknnMemSize": [
        ("total_weight_size", 0),
        ("total_internal_size", 4),
        ("total_dma_allocated_size", 8),
        ("total_sram_size", 16),
        ("free_sram_size", 20),
    ],
    "RknnTensorMem": [
        ("virt_addr", 0),
        ("phys_addr", 8),
        ("fd", 16),
        ("offset", 20),
        ("size", 24),
        ("flags", 28),
        ("priv_data", 32),
    ],
    "RknnSdkVersion": [("api_version", 0), ("drv_version", 256)],
    "RknnPerfDetail": [("perf_data", 0), ("data_len", 8)],
    "RknnInitExtendV25": [("user_key", 24)],
}


@pytest.mark.parametrize("name, size", sorted(SIZES.items()))
def test_struct_sizes_match_the_facts(name, size):
    assert ctypes.sizeof(getattr(abi, name)) == size


@pytest.mark.parametrize("name", sorted(OFFSETS))
def test_field_offsets_match_the_facts(name):
    struct = getattr(abi, name)
    assert [(field, getattr(struct, field).offset) for field, _ in OFFSETS[name]] == OFFSETS[name]


def test_check_layouts_passes_here_and_names_a_wrong_field(monkeypatch):
    assert abi.check_layouts() > 60
    assert ctypes.sizeof(abi.rknn_context) == 8
    wrong = list(abi.LAYOUTS)
    wrong[1] = (abi.RknnTensorAttr, 376, dict(wrong[1][2], scale=360))
    monkeypatch.setattr(abi, "LAYOUTS", wrong)
    with pytest.raises(AssertionError, match=r"RknnTensorAttr\.scale: offset 356, expected 360"):
        abi.check_layouts()


def test_check_layouts_runs_as_a_script():
    # the form the emulated-board helper runs under qemu-aarch64
    proc = subprocess.run(
        [sys.executable, "-c", "from rkbench_device.backends.rknnrt_abi import check_layouts; print(check_layouts())"],
        capture_output=True,
        text=True,
        env=runner_env(),
        cwd=str(REPO),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 60


def test_enum_values():
    assert [
        abi.RKNN_QUERY_IN_OUT_NUM,
        abi.RKNN_QUERY_PERF_DETAIL,
        abi.RKNN_QUERY_PERF_RUN,
        abi.RKNN_QUERY_SDK_VERSION,
        abi.RKNN_QUERY_MEM_SIZE,
        abi.RKNN_QUERY_NATIVE_INPUT_ATTR,
        abi.RKNN_QUERY_NATIVE_OUTPUT_ATTR,
        abi.RKNN_QUERY_INPUT_DYNAMIC_RANGE,
        abi.RKNN_QUERY_CURRENT_NATIVE_OUTPUT_ATTR,
    ] == [0, 3, 4, 5, 6, 8, 9, 13, 17]
    assert abi.RKNN_FLAG_COLLECT_PERF_MASK == 0x8 and abi.RKNN_FLAG_ENABLE_SRAM == 0x800
    assert abi.CORE_MASKS == {"auto": 0, "0": 1, "1": 2, "2": 4, "0_1": 3, "0_1_2": 7}
    assert abi.TENSOR_TYPES[abi.RKNN_TENSOR_INT8] == ("int8", "int8") and abi.RKNN_TENSOR_BFLOAT16 == 11
    assert (abi.RKNN_TENSOR_NCHW, abi.RKNN_TENSOR_NHWC, abi.RKNN_TENSOR_NC1HWC2) == (0, 1, 2)
    assert abi.RKNN_TENSOR_QNT_AFFINE_ASYMMETRIC == 2


def test_errors_have_names_and_what_to_do():
    assert sorted(abi.ERRORS) == list(range(-13, 0))
    assert abi.describe_error("rknn_init", -13) == (
        "rknn_init returned -13 RKNN_ERR_TARGET_PLATFORM_UNMATCH: the model was built for another SoC: "
        "rebuild it with --target set to this board's SoC"
    )
    assert abi.error_name(-3) == "RKNN_ERR_DEVICE_UNAVAILABLE" and "rknpu driver" in abi.error_meaning(-3)
    assert "not in rkbench's table" in abi.describe_error("rknn_run", -15)


def test_attr_to_dict_names_the_enums():
    attr = abi.RknnTensorAttr(
        index=1,
        n_dims=4,
        n_elems=768,
        size=768,
        fmt=abi.RKNN_TENSOR_NHWC,
        type=abi.RKNN_TENSOR_INT8,
        qnt_type=2,
        zp=-128,
        scale=0.5,
        w_stride=16,
        size_with_stride=768,
    )
    attr.name = b"image"
    for i, d in enumerate((1, 16, 16, 3)):
        attr.dims[i] = d
    got = abi.attr_to_dict(attr)
    assert got["dims"] == [1, 16, 16, 3] and got["name"] == "image"
    assert (got["fmt"], got["type"], got["qnt_type"], got["zp"], got["scale"]) == (
        "nhwc",
        "int8",
        "affine_asymmetric",
        -128,
        0.5,
    )
