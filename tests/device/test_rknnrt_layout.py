"""rknnrt_layout: inputs converted once to the native type/layout, outputs back to float32."""

from __future__ import annotations

import numpy as np
import pytest

from rkbench_device.backends.rknnrt_layout import (
    array_format,
    dequantize,
    output_float,
    pack,
    plan_input,
    quantize,
    unpack,
)


def attr(dims, fmt, type_="int8", qnt="affine_asymmetric", zp=-128, scale=1 / 255, w_stride=0, size=None, name="image"):
    n = int(np.prod(dims))
    item = {"int8": 1, "uint8": 1, "float16": 2, "float32": 4, "int4": 1}[type_]
    size = n * item if size is None else size
    return {
        "index": 0,
        "name": name,
        "dims": list(dims),
        "n_elems": n,
        "size": size,
        "fmt": fmt,
        "type": type_,
        "qnt_type": qnt,
        "fl": 0,
        "zp": zp,
        "scale": scale,
        "w_stride": w_stride,
        "h_stride": 0,
        "size_with_stride": size,
        "pass_through": 0,
    }


USER = attr([1, 16, 16, 3], "nhwc")


def test_array_format_from_data_format_or_shape():
    assert array_format(np.zeros((1, 3, 16, 16)), None, USER) == "nchw"
    assert array_format(np.zeros((1, 16, 16, 3)), None, USER) == "nhwc"
    assert array_format(np.zeros((1, 16, 16, 3)), "nhwc", USER) == "nhwc"
    with pytest.raises(ValueError, match=r"shape \[1, 16, 16, 3\] is not NCHW"):
        array_format(np.zeros((1, 16, 16, 3)), "nchw", USER)
    with pytest.raises(ValueError, match="neither NHWC nor NCHW"):
        array_format(np.zeros((1, 3, 8, 8)), None, USER)


def test_float_nchw_is_quantized_and_transposed_once_for_pass_through():
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, 16, 16)).astype(np.float32)
    plan = plan_input(0, x, "nchw", USER, attr([1, 16, 16, 3], "nhwc"))
    assert plan.pass_through and plan.type == "int8" and plan.fmt == "nhwc"
    want = np.clip(np.round(x.transpose(0, 2, 3, 1) * 255) - 128, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(plan.data, want)
    assert plan.data.flags["C_CONTIGUOUS"]
    assert plan.steps == [
        "input 0 (image): float32 -> int8, quantized with the input's zp -128, scale 0.00392157",
        "input 0 (image): NCHW -> native NHWC [1, 16, 16, 3]",
    ]


def test_native_width_stride_and_nc1hwc2_packing_round_trip():
    x = np.arange(1 * 5 * 2 * 3, dtype=np.float32).reshape(1, 5, 2, 3)  # N C H W
    native = attr([1, 2, 2, 4, 4], "nc1hwc2", type_="float32", qnt="none", w_stride=4, size=1 * 2 * 2 * 4 * 4 * 4)
    packed = pack(x, native)
    assert packed.shape == (1, 2, 2, 4, 4)
    assert packed[0, 1, 1, 2, 0] == x[0, 4, 1, 2] and packed[0, 1, 1, 2, 1] == 0  # padded channels are zero
    assert packed[0, 0, 0, 3].tolist() == [0, 0, 0, 0]  # padded width
    user = attr([1, 5, 2, 3], "nchw", type_="float32", qnt="none")
    np.testing.assert_array_equal(unpack(packed.reshape(-1), native, user), x)
    nhwc = attr([1, 2, 4, 5], "nhwc", type_="float32", qnt="none", w_stride=4, size=1 * 2 * 4 * 5 * 4)
    padded = pack(x, nhwc)
    assert padded.shape == (1, 2, 4, 5) and padded[0, :, 3].sum() == 0
    np.testing.assert_array_equal(unpack(padded.reshape(-1), nhwc, user), x)


def test_quantize_and_dequantize():
    a = attr([4], "undefined", zp=3, scale=0.5)
    q = quantize(np.array([0.0, 1.0, -100.0, 100.0]), a)
    assert q.dtype == np.int8 and q.tolist() == [3, 5, -128, 127]
    assert dequantize(q, a).tolist() == [0.0, 1.0, -65.5, 62.0]
    dfp = dict(a, qnt_type="dfp", fl=2)
    assert quantize(np.array([1.0, 0.25]), dfp).tolist() == [4, 1]


def test_integer_arrays_of_another_type_go_to_the_runtime_as_they_are():
    x = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(1, 16, 16, 3)
    plan = plan_input(0, x, "nhwc", USER, attr([1, 16, 16, 3], "nhwc"))
    assert not plan.pass_through and plan.type == "uint8" and plan.fmt == "nhwc" and plan.data is not None
    assert len(plan.steps) == 1 and "librknnrt converts it to int8 NHWC inside rknn_inputs_set" in plan.steps[0]
    assert "only quantized by rkbench when it is float" in plan.steps[0]
    # no native attr at all (an old runtime): also the runtime's job
    plan = plan_input(0, x.astype(np.float32), None, USER, None)
    assert not plan.pass_through and plan.type == "float32" and "gave no native input attr" in plan.steps[0]
    # numpy has no int4: the runtime converts
    plan = plan_input(0, x.astype(np.float32), None, USER, attr([1, 16, 16, 3], "nhwc", type_="int4"))
    assert not plan.pass_through and "numpy has no int4" in plan.steps[0]


def test_matching_array_is_fed_unchanged_and_size_mismatch_falls_back():
    native = attr([1, 16, 16, 3], "nhwc", type_="uint8", qnt="none")
    x = np.ones((1, 16, 16, 3), np.uint8)
    plan = plan_input(0, x, None, dict(USER, type="uint8"), native)
    assert plan.pass_through and plan.steps == [] and plan.data.tobytes() == x.tobytes()
    odd = dict(native, size_with_stride=999)
    plan = plan_input(0, x, None, USER, odd)
    assert not plan.pass_through and "768 bytes after conversion but the native attr wants 999" in plan.steps[0]


def test_output_float_from_native_int8_nc1hwc2():
    user = attr([1, 3, 2, 2], "nchw", type_="float32", qnt="none", name="scores")
    native = attr([1, 1, 2, 2, 16], "nc1hwc2", zp=1, scale=0.25, size=64)
    values = np.random.default_rng(2).integers(-128, 128, (1, 3, 2, 2)).astype(np.int8)
    raw = pack(values, native).reshape(-1)
    got = output_float(raw, native, user)
    assert got.dtype == np.float32 and got.shape == (1, 3, 2, 2)
    np.testing.assert_allclose(got, (values.astype(np.float32) - 1) * 0.25)
