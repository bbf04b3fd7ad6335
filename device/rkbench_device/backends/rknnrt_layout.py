"""Array conversions between what the host sends and what the NPU takes, for the rknnrt
backend: numpy only, on tensor attributes as plain dicts (rknnrt_abi.attr_to_dict).

Inputs are converted ONCE, before timing, into the native attr's type and layout
(quantized with its zp/scale, NHWC/NCHW/NC1HWC2 with the width stride), so rknn_inputs_set
or a zero-copy buffer gets bytes the runtime passes through unchanged. Outputs read in
the native layout (zero-copy) are turned back into float32 in the model's own layout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

Attr = Dict[str, Any]

#: rknn tensor type name -> numpy dtype name (types numpy lacks are absent: int4, bfloat16).
NUMPY_TYPES = {
    "float32": "float32",
    "float16": "float16",
    "int8": "int8",
    "uint8": "uint8",
    "int16": "int16",
    "uint16": "uint16",
    "int32": "int32",
    "uint32": "uint32",
    "int64": "int64",
    "bool": "bool",
}


@dataclass
class InputPlan:
    """One input as it will be fed: `data` (C-contiguous), its rknn type and format names,
    whether the runtime may pass it through unchanged, and what was done to get there."""

    data: Any
    type: str
    fmt: str
    pass_through: bool
    steps: List[str] = field(default_factory=list)


def logical_dims(attr: Attr) -> Optional[Tuple[int, int, int, int]]:
    """(N, C, H, W) of a 4-D attr in nchw/nhwc, or None."""
    dims = attr["dims"]
    if len(dims) != 4:
        return None
    if attr["fmt"] == "nhwc":
        n, h, w, c = dims
        return n, c, h, w
    if attr["fmt"] == "nchw":
        n, c, h, w = dims
        return n, c, h, w
    return None


def array_format(array: Any, data_format: Optional[str], user: Attr) -> str:
    """The layout of `array`: data_format when given, else whichever of the model's
    nhwc/nchw its shape fits. Raises ValueError naming the shapes when it fits neither."""
    shape = tuple(array.shape)
    logical = logical_dims(user)
    if array.ndim != 4 or logical is None:
        if int(np.prod(shape)) != int(np.prod(user["dims"] or [0])):
            raise ValueError("shape %s does not fit the model's %s" % (list(shape), user["dims"]))
        return "undefined"
    n, c, h, w = logical
    fits = {"nhwc": shape == (n, h, w, c), "nchw": shape == (n, c, h, w)}
    if data_format is not None:
        if not fits[data_format]:
            raise ValueError(
                "shape %s is not %s of the model's %s %s"
                % (list(shape), data_format.upper(), user["fmt"].upper(), user["dims"])
            )
        return data_format
    for fmt in (user["fmt"], "nhwc", "nchw"):
        if fits.get(fmt):
            return fmt
    raise ValueError(
        "shape %s is neither NHWC nor NCHW of the model's %s %s" % (list(shape), user["fmt"].upper(), user["dims"])
    )


def quantize(values: Any, attr: Attr) -> Any:
    """float -> the attr's integer type with its zp/scale (affine) or fl (dfp), rounded and clipped."""
    dtype = np.dtype(NUMPY_TYPES[attr["type"]])
    x = np.asarray(values, dtype=np.float32)
    if attr["qnt_type"] == "affine_asymmetric":
        q = np.round(x / np.float32(attr["scale"])) + attr["zp"]
    elif attr["qnt_type"] == "dfp":
        q = np.round(x * np.float32(2.0 ** attr["fl"]))
    else:
        q = np.round(x)
    info = np.iinfo(dtype)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: Any, attr: Attr) -> Any:
    """The attr's type -> float32 (inverse of quantize for quantized types; a cast otherwise)."""
    x = np.asarray(values)
    if attr["qnt_type"] == "affine_asymmetric" and np.issubdtype(x.dtype, np.integer):
        return ((x.astype(np.float32) - np.float32(attr["zp"])) * np.float32(attr["scale"])).astype(np.float32)
    if attr["qnt_type"] == "dfp" and np.issubdtype(x.dtype, np.integer):
        return (x.astype(np.float32) / np.float32(2.0 ** attr["fl"])).astype(np.float32)
    return x.astype(np.float32)


def _strides(attr: Attr, h: int, w: int) -> Tuple[int, int]:
    return max(int(attr.get("h_stride") or 0), h), max(int(attr.get("w_stride") or 0), w)


def pack(nchw: Any, native: Attr) -> Optional[Any]:
    """An NCHW array -> the native attr's layout with its strides (zero padding); None when
    the native format is not one we can lay out."""
    n, c, h, w = nchw.shape
    fmt = native["fmt"]
    dims = native["dims"]
    if fmt == "nc1hwc2" and len(dims) == 5:
        c1, c2 = int(dims[1]), int(dims[4])
        hs, ws = _strides(native, h, w)
        out = np.zeros((n, c1 * c2, hs, ws), dtype=nchw.dtype)
        out[:, :c, :h, :w] = nchw
        return np.ascontiguousarray(out.reshape(n, c1, c2, hs, ws).transpose(0, 1, 3, 4, 2))
    if fmt in ("nhwc", "nchw") and len(dims) == 4:
        hs, ws = _strides(native, h, w)
        if fmt == "nhwc":
            out = np.zeros((n, hs, ws, c), dtype=nchw.dtype)
            out[:, :h, :w, :] = nchw.transpose(0, 2, 3, 1)
        else:
            out = np.zeros((n, c, hs, ws), dtype=nchw.dtype)
            out[:, :, :h, :w] = nchw
        return out
    return None


def unpack(flat: Any, native: Attr, user: Attr) -> Any:
    """Values in the native layout (a flat array of the native element count) -> the
    model's own layout and dims (user attr)."""
    logical = logical_dims(user)
    fmt = native["fmt"]
    if logical is None or fmt not in ("nhwc", "nchw", "nc1hwc2"):
        return flat[: int(np.prod(user["dims"]))].reshape(user["dims"])
    n, c, h, w = logical
    hs, ws = _strides(native, h, w)
    if fmt == "nc1hwc2":
        c1, c2 = int(native["dims"][1]), int(native["dims"][4])
        blocks = flat[: n * c1 * hs * ws * c2].reshape(n, c1, hs, ws, c2)
        nchw = blocks.transpose(0, 1, 4, 2, 3).reshape(n, c1 * c2, hs, ws)[:, :c, :h, :w]
    elif fmt == "nhwc":
        nchw = flat[: n * hs * ws * c].reshape(n, hs, ws, c)[:, :h, :w, :].transpose(0, 3, 1, 2)
    else:
        nchw = flat[: n * c * hs * ws].reshape(n, c, hs, ws)[:, :, :h, :w]
    out = nchw.transpose(0, 2, 3, 1) if user["fmt"] == "nhwc" else nchw
    return np.ascontiguousarray(out)


def plan_input(
    k: int,
    array: Any,
    data_format: Optional[str],
    user: Attr,
    native: Optional[Attr],
    converted_in: str = "rknn_inputs_set",
) -> InputPlan:
    """How input k is fed: converted to the native type and layout (pass_through) where we
    can, else handed to the runtime as it is, which then converts inside the timed call
    `converted_in` (rknn_inputs_set in copy mode, rknn_run in zero-copy). Raises ValueError
    (with the reason) when the array does not fit the model at all."""
    arr = np.asarray(array)
    label = "input %d (%s)" % (k, user["name"])
    fmt = array_format(arr, data_format, user)
    steps: List[str] = []
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
        steps.append("%s: float64 -> float32" % label)
    described = "%s %s" % (arr.dtype, fmt.upper())
    why_not = _native_values(arr, native)
    if why_not is None and native is not None:
        values = arr
        target = np.dtype(NUMPY_TYPES[native["type"]])
        if arr.dtype != target:
            if native["qnt_type"] != "none" and np.issubdtype(target, np.integer):
                values = quantize(arr, native)
                how = (
                    "zp %d, scale %g" % (native["zp"], native["scale"])
                    if native["qnt_type"] == "affine_asymmetric"
                    else "fl %d" % native["fl"]
                )
                steps.append("%s: %s -> %s, quantized with the input's %s" % (label, arr.dtype, target, how))
            else:
                values = arr.astype(target)
                steps.append("%s: %s -> %s" % (label, arr.dtype, target))
        laid = _lay_out(values, fmt, native)
        expected = int(native["size_with_stride"] or native["size"])
        if laid is None:
            why_not = "native format %s is not one rkbench lays out" % native["fmt"].upper()
        elif laid.nbytes != expected:
            why_not = "%d bytes after conversion but the native attr wants %d" % (laid.nbytes, expected)
        else:
            if fmt != native["fmt"] or laid.size != values.size:
                padded = " (padded to width stride %d)" % native["w_stride"] if laid.size > values.size else ""
                steps.append(
                    "%s: %s -> native %s %s%s"
                    % (label, fmt.upper(), native["fmt"].upper(), list(native["dims"]), padded)
                )
            return InputPlan(np.ascontiguousarray(laid), native["type"], native["fmt"], True, steps)
    if arr.dtype.name not in NUMPY_TYPES.values():
        raise ValueError("dtype %s is not one the runtime takes (%s)" % (arr.dtype, ", ".join(sorted(NUMPY_TYPES))))
    steps.append(
        "%s: %s given to the runtime as it is (%s): librknnrt converts it to %s inside "
        "%s, in the timed %s stage"
        % (
            label,
            described,
            why_not,
            "%s %s" % (native["type"], native["fmt"].upper()) if native else "the model's input",
            converted_in,
            "run" if converted_in == "rknn_run" else "inputs_set",
        )
    )
    return InputPlan(np.ascontiguousarray(arr), arr.dtype.name, fmt, False, steps)


def _native_values(arr: Any, native: Optional[Attr]) -> Optional[str]:
    """None when rkbench can turn arr's values into the native type itself, else why not."""
    if native is None:
        return "the runtime gave no native input attr"
    target = NUMPY_TYPES.get(native["type"])
    if target is None:
        return "numpy has no %s" % native["type"]
    if arr.dtype == np.dtype(target):
        return None
    if np.issubdtype(arr.dtype, np.floating):
        return None  # float -> quantized (zp/scale) or float -> float16/32
    return "a %s array is only quantized by rkbench when it is float; send float32 to convert it once" % arr.dtype


def _lay_out(values: Any, fmt: str, native: Attr) -> Optional[Any]:
    if fmt == "undefined":
        if native["fmt"] in ("nhwc", "nchw", "nc1hwc2") and len(native["dims"]) >= 4:
            return None
        return values.reshape(-1)
    nchw = values if fmt == "nchw" else values.transpose(0, 3, 1, 2)
    return pack(nchw, native)


def output_float(raw: Any, native: Attr, user: Attr) -> Any:
    """A native output buffer (numpy, native dtype, flat) -> float32 in the model's layout."""
    return unpack(dequantize(raw, native).reshape(-1), native, user)
