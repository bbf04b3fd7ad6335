"""What an .rknn file says about itself, read on the host without rknn-toolkit2.

    info = read_rknn("model.rknn")
    info.target_platforms   # ["rk3588"]
    info.toolkit_version    # "2.5.0"; info.compiler_version "2.5.0 (74ea630ce@2026-09-29T14:54:20)"
    info.inputs[0].dtype, info.inputs[0].layout, info.inputs[0].runtime_shape

The layout (no specification is published; this is what rknn-toolkit2 2.5.0 wrote, and
1.x in format 2 files, see tests/standins/librknnrt/FORMAT.md): a 64-byte header ("RKNN", format version, length of
the graph blob), the graph blob (a FlatBuffers buffer with identifier "RKNN"), then a
length-prefixed JSON text. The JSON gives the target platform, the inputs and outputs (names,
order, source shapes); the blob adds what the runtime will present (dtype, layout, zero point,
scale, native shape), the compiler string, the source framework, the build's mean/std and the
operator list. A blob that does not read as expected still gives the JSON's facts, with a
note saying what is missing.
"""

from __future__ import annotations

import ast
import json
import re
import struct
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rkbench.errors import InputFileError

MAGIC = b"RKNN"
ENCRYPTED_MAGIC = b"CYPTRKNN"
HEADER_BYTES = 64
#: Format versions whose layout we have read (the header's third field): 2 in files of
#: rknn-toolkit2 1.x (the vendor's SDK 1.5 examples), 6 from rknn-toolkit2 2.x.
KNOWN_FORMAT_VERSIONS = (2, 6)
KNOWN_VERSIONS_TEXT = "2 from rknn-toolkit2 1.x, 6 from 2.x"
#: Fields of the blob's root table, found by reading files the toolkit wrote (FORMAT.md).
_ROOT_NPU_FORMAT, _ROOT_GRAPHS, _ROOT_BUILD_ATTRS = 1, 2, 3
_ROOT_COMPILER, _ROOT_TARGET, _ROOT_SOURCE = 7, 8, 9
_ROOT_INPUT_JSON, _ROOT_OUTPUT_JSON, _ROOT_SHAPE_KIND = 12, 13, 16
_GRAPH_TENSORS, _GRAPH_NODES = 0, 1
_TENSOR_KIND, _TENSOR_NATIVE_SHAPE, _TENSOR_NAME, _TENSOR_SCALE, _TENSOR_ZP = 2, 3, 5, 10, 11
_NODE_OP, _NODE_TARGET = 1, 3
_KIND_INPUT, _KIND_OUTPUT, _KIND_INTERMEDIATE = 1, 2, 3
_TARGET_NPU = 2
#: The build attributes are a Python literal; a bigger one is not a toolkit's.
_MAX_ATTRS_CHARS = 4 << 20
# "2.5.0(compiler version: 2.5.0 (74ea630ce@2026-09-29T14:54:20))": the toolkit, then its compiler.
_COMPILER = re.compile(r"^(?P<toolkit>[^(]*)\(compiler version:\s*(?P<compiler>.+)\)\s*$")
_DFP_QTYPES = ("dfp", "dynamic_fixed_point")
_INTEGER_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int4")


class RknnFileError(InputFileError):
    """Not an .rknn, truncated, encrypted or unreadable (exit code 4)."""


class UnknownFormatVersion(RknnFileError):
    """An .rknn whose header names a format version we have not read."""

    def __init__(self, message: str, version: int):
        super().__init__(message)
        self.version = version


@dataclass
class TensorInfo:
    """One input or output as the runtime will present it.

    shape: as in the source model (NCHW for an ONNX image input); runtime_shape: what the
    runtime's attrs give (4-D NHWC tensors as [N, H, W, C]). dtype: what the NPU exchanges
    (int8, int16, float16, ...). quantization: "affine" (zero point and scale), "dfp", or
    "none" for a float tensor; calibrated_range: the [min, max] the toolkit calibrated the
    tensor's values to (what the quantization covers: an outlier shows here). native_shape:
    the NPU's own layout (NC1HWC2 [N, C1, H, W, C2] for wide int8 feature maps).
    dynamic_shapes: the shapes a dynamic-shape model accepts."""

    index: int
    name: str
    shape: list[int]
    dtype: str
    layout: str | None = None
    quantization: str = "none"
    zero_point: int | None = None
    scale: float | None = None
    calibrated_range: list[float] | None = None
    native_shape: list[int] | None = None
    dynamic_shapes: list[list[int]] = field(default_factory=list)
    mean: list[float] | None = None
    std: list[float] | None = None

    @property
    def runtime_shape(self) -> list[int]:
        if self.layout == "NHWC" and len(self.shape) == 4:
            n, c, h, w = self.shape
            return [n, h, w, c]
        return list(self.shape)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "runtime_shape": self.runtime_shape}


@dataclass
class RknnInfo:
    """What an .rknn file says. toolkit_version: the rknn-toolkit2 that built it ("2.5.0");
    compiler_version: its NPU compiler's own string ("2.5.0 (hash@date)"; in 1.x toolkits
    it differs from the toolkit's); operators counts the compiled graph's operators and
    cpu_operators those the NPU does not run, by op type (the Input/Output operators among
    them). notes: what could not be read, in words."""

    path: str
    file_bytes: int
    format_version: int
    target_platforms: list[str]
    toolkit_version: str | None
    compiler_version: str | None
    source_framework: str | None
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    npu_format: str | None = None
    dynamic_shape: bool = False
    operators: int | None = None
    cpu_operators: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def target(self) -> str | None:
        return self.target_platforms[0] if self.target_platforms else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = [t.to_dict() for t in self.inputs]
        data["outputs"] = [t.to_dict() for t in self.outputs]
        return data


def read_rknn(path: str | Path) -> RknnInfo:
    """The facts of an .rknn file. RknnFileError (one line naming the file) when it is not an
    .rknn, is truncated, encrypted, or of a format version we do not know."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RknnFileError(f"model file {path} does not exist") from None
    except IsADirectoryError:
        raise RknnFileError(f"model path {path} is a directory, not an .rknn file") from None
    except OSError as err:
        raise RknnFileError(f"cannot read model file {path}: {err.strerror or err}") from None
    return parse_rknn(data, str(path))


def parse_rknn(data: bytes, name: str) -> RknnInfo:
    """read_rknn on bytes already in memory; `name` is the file named in errors."""
    version, blob, trailer = _split(data, name)
    try:
        doc = json.loads(trailer.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise RknnFileError(f"{name}: the JSON part of this .rknn does not parse (damaged file?)") from None
    if not isinstance(doc, dict):
        raise RknnFileError(f"{name}: the JSON part of this .rknn is not an object (damaged file?)")
    notes: list[str] = []
    inputs, outputs = _io_from_json(doc, name)
    info = RknnInfo(
        path=name,
        file_bytes=len(data),
        format_version=version,
        target_platforms=_targets(doc.get("target_platform")),
        toolkit_version=_text(doc.get("version")),
        compiler_version=None,
        source_framework=_text(doc.get("ori_network_platform")) or _text(doc.get("network_platform")),
        inputs=inputs,
        outputs=outputs,
        notes=notes,
    )
    try:
        _add_blob_facts(info, _FlatBuffer(blob))
    except (_Malformed, struct.error) as err:
        notes.append(f"the graph blob could not be read ({err}): dtypes, layouts and quantization are the JSON's")
    if not info.target_platforms:
        notes.append("the file names no target platform")
    return info


# ----------------------------------------------------------------------------------
# container
# ----------------------------------------------------------------------------------
def _split(data: bytes, name: str) -> tuple[int, bytes, bytes]:
    """(format version, graph blob, JSON bytes) of the container, or RknnFileError."""
    if not data:
        raise RknnFileError(f"{name} is empty (0 bytes), not an .rknn model")
    if data.startswith(ENCRYPTED_MAGIC):
        raise RknnFileError(
            f"{name} is an encrypted .rknn (rknn-toolkit2's export_encrypted_rknn_model): its contents "
            "cannot be read on the host; inspect the model it was made from"
        )
    if not data.startswith(MAGIC):
        raise RknnFileError(
            f"{name} is not an .rknn model (it does not start with {MAGIC.decode()!r}); build one with "
            "`rkbench build MODEL.onnx`"
        )
    if len(data) < 24:
        raise RknnFileError(f"{name} is truncated: {len(data)} bytes, shorter than an .rknn header")
    version, blob_bytes = struct.unpack_from("<QQ", data, 8)
    if version not in KNOWN_FORMAT_VERSIONS:
        raise UnknownFormatVersion(
            f"{name}: .rknn format version {version} is not one rkbench reads (it knows {KNOWN_VERSIONS_TEXT}): "
            "rebuild the model with rknn-toolkit2 2.x",
            version,
        )
    end_of_blob = HEADER_BYTES + blob_bytes
    if len(data) < end_of_blob + 8:
        raise RknnFileError(
            f"{name} is truncated: {len(data)} bytes, but its header announces a {blob_bytes}-byte graph "
            "(copy the file again)"
        )
    (json_bytes,) = struct.unpack_from("<Q", data, end_of_blob)
    if json_bytes == 0 or len(data) < end_of_blob + 8 + json_bytes:
        raise RknnFileError(
            f"{name} is truncated: its JSON part ({json_bytes} bytes announced) is missing or cut (copy the file again)"
        )
    start = end_of_blob + 8
    return version, data[HEADER_BYTES:end_of_blob], data[start : start + json_bytes]


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _targets(value: Any) -> list[str]:
    names = [value] if isinstance(value, str) else _list(value)
    return [n.strip().lower() for n in names if isinstance(n, str) and n.strip()]


def _io_from_json(doc: dict, name: str) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Inputs and outputs in slot order: the JSON's graph links slots to norm_tensor entries."""
    tensors = {t.get("tensor_id"): t for t in map(_dict, _list(doc.get("norm_tensor"))) if _is_id(t.get("tensor_id"))}
    links = [g for g in map(_dict, _list(doc.get("graph"))) if isinstance(g.get("left_tensor_id"), int)]
    sides: dict[str, list[TensorInfo]] = {"input": [], "output": []}
    for side, found in sides.items():
        slots = sorted(
            ((g["left_tensor_id"], g.get("right_tensor_id")) for g in links if g.get("left") == side),
            key=lambda pair: pair[0],
        )
        for slot, tensor_id in slots:
            t = tensors.get(tensor_id) if _is_id(tensor_id) else None
            if t is None:
                raise RknnFileError(f"{name}: its JSON part links {side} {slot} to a tensor it does not describe")
            found.append(_tensor_from_json(len(found), t))
    if not sides["input"] or not sides["output"]:
        raise RknnFileError(f"{name}: its JSON part lists no inputs or no outputs (damaged file?)")
    return sides["input"], sides["output"]


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str))


def _tensor_from_json(index: int, t: dict) -> TensorInfo:
    qnt = _text(_dict(t.get("dtype")).get("qnt_type"))
    return TensorInfo(
        index=index,
        name=str(t.get("url") or f"tensor{t.get('tensor_id')}"),
        shape=_ints(t.get("size")) or [-1] * len(_list(t.get("size"))),
        # No quantized type: the tensor stays float, float16 on the NPU.
        dtype=qnt or "float16",
        quantization="affine" if qnt in _INTEGER_DTYPES else "none",
    )


# ----------------------------------------------------------------------------------
# the graph blob
# ----------------------------------------------------------------------------------
def _add_blob_facts(info: RknnInfo, fb: _FlatBuffer) -> None:
    root = fb.root()
    compiler = fb.string(root, _ROOT_COMPILER)
    found = _COMPILER.match(compiler or "")
    if found:
        info.toolkit_version = found.group("toolkit").strip() or info.toolkit_version
        info.compiler_version = found.group("compiler").strip()
    elif compiler:
        info.compiler_version = compiler.strip()
    info.source_framework = fb.string(root, _ROOT_SOURCE) or info.source_framework
    info.npu_format = fb.string(root, _ROOT_NPU_FORMAT)
    if not info.target_platforms:
        info.target_platforms = _targets(fb.string(root, _ROOT_TARGET))
    info.dynamic_shape = fb.string(root, _ROOT_SHAPE_KIND) == "dynamic_shape"
    for key, tensors in ((_ROOT_INPUT_JSON, info.inputs), (_ROOT_OUTPUT_JSON, info.outputs)):
        _apply_runtime_io(fb.string(root, key), tensors)
    _apply_build_attrs(fb.string(root, _ROOT_BUILD_ATTRS), info)

    graphs = fb.tables(root, _ROOT_GRAPHS)
    if not graphs:
        info.notes.append("the graph blob holds no graph")
        return
    graph = graphs[0]
    by_name = {t.name: t for t in info.inputs}
    out_by_name = {t.name: t for t in info.outputs}
    for table in fb.tables(graph, _GRAPH_TENSORS):
        kind = fb.u8(table, _TENSOR_KIND)
        if kind not in (_KIND_INPUT, _KIND_OUTPUT, _KIND_INTERMEDIATE):
            continue
        # An output that later layers also read is an intermediate tensor in the file.
        names = by_name if kind == _KIND_INPUT else out_by_name
        tensor = names.get(fb.string(table, _TENSOR_NAME) or "")
        if tensor is None:
            continue
        tensor.native_shape = fb.ints(table, _TENSOR_NATIVE_SHAPE) or None
        if tensor.quantization != "none":
            scales, zero_points = fb.floats(table, _TENSOR_SCALE), fb.ints(table, _TENSOR_ZP)
            tensor.scale = scales[0] if scales else None
            tensor.zero_point = zero_points[0] if zero_points else None
    ops = [(fb.string(node, _NODE_OP) or "?", fb.u8(node, _NODE_TARGET)) for node in fb.tables(graph, _GRAPH_NODES)]
    info.operators = len(ops)
    info.cpu_operators = dict(Counter(op for op, target in ops if target != _TARGET_NPU))


def _apply_runtime_io(text: str | None, tensors: list[TensorInfo]) -> None:
    """{"name": {"dtype": "int8", "layout": "NHWC"}}: what the runtime's attrs will say."""
    try:
        described = _dict(json.loads(text) if text else {})
    except (ValueError, RecursionError):
        return
    for tensor in tensors:
        entry = _dict(described.get(tensor.name))
        dtype, layout = _text(entry.get("dtype")), _text(entry.get("layout"))
        if dtype:
            tensor.dtype = dtype.lower()
            if tensor.dtype not in _INTEGER_DTYPES:
                tensor.quantization = "none"
        if layout:
            tensor.layout = layout.upper()


def _apply_build_attrs(text: str | None, info: RknnInfo) -> None:
    """The build's attributes (a Python literal): mean/std per input, dfp vs affine
    quantization per tensor, the shapes of a dynamic-shape model."""
    if not text or len(text) > _MAX_ATTRS_CHARS:
        return
    try:
        attrs = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        info.notes.append("the build attributes (mean/std, quantization kinds) could not be read")
        return
    if not isinstance(attrs, dict):
        return
    per_tensor, quant = _dict(attrs.get("attrs")), _dict(attrs.get("quant_tab"))
    dynamic = _dict(attrs.get("dynamic_shapes"))
    for tensor in info.inputs:
        own = _dict(per_tensor.get(tensor.name))
        tensor.mean, tensor.std = _numbers(own.get("mean")), _numbers(own.get("std"))
    for tensor in info.inputs + info.outputs:
        q = _dict(quant.get(tensor.name))
        if tensor.quantization != "none":
            low, high = _numbers(q.get("min")), _numbers(q.get("max"))
            if low and high:
                tensor.calibrated_range = [min(low), max(high)]
            if q.get("qtype") in _DFP_QTYPES:
                tensor.quantization = "dfp"
        shapes = dynamic.get(tensor.name)
        if isinstance(shapes, list):
            tensor.dynamic_shapes = [s for s in (_ints(s) for s in shapes) if s]


def _numbers(value: Any) -> list[float] | None:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (int, float)) for v in value):
        return None
    return [float(v) for v in value]


def _ints(value: Any) -> list[int]:
    """A list of integers (a shape), or [] when `value` is not one."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) for v in value):
        return []
    return [int(v) for v in value]


class _Malformed(Exception):
    """The blob is not a FlatBuffers buffer of the shape we know."""


class _FlatBuffer:
    """Bounds-checked reads of a little-endian FlatBuffers buffer (no schema needed: tables
    are addressed by field number). Every read outside the buffer raises _Malformed."""

    def __init__(self, buf: bytes):
        if len(buf) < 8 or buf[4:8] != MAGIC:
            raise _Malformed("no FlatBuffers identifier 'RKNN'")
        self.buf = buf

    def _u32(self, pos: int) -> int:
        if pos < 0 or pos + 4 > len(self.buf):
            raise _Malformed(f"offset {pos} outside the blob")
        return struct.unpack_from("<I", self.buf, pos)[0]

    def root(self) -> int:
        return self._table(0)

    def _table(self, pos: int) -> int:
        table = pos + self._u32(pos)
        self._u32(table)  # the table's vtable offset must be inside the blob
        return table

    def _field(self, table: int, index: int) -> int | None:
        vtable = table - struct.unpack_from("<i", self.buf, table)[0]
        if vtable < 0 or vtable + 4 > len(self.buf):
            raise _Malformed(f"vtable of the table at {table} outside the blob")
        (vsize,) = struct.unpack_from("<H", self.buf, vtable)
        entry = 4 + 2 * index
        if entry + 2 > vsize:
            return None
        if vtable + entry + 2 > len(self.buf):
            raise _Malformed(f"vtable at {vtable} cut short")
        (offset,) = struct.unpack_from("<H", self.buf, vtable + entry)
        return table + offset if offset else None

    def u8(self, table: int, index: int) -> int | None:
        pos = self._field(table, index)
        if pos is None:
            return None
        if pos >= len(self.buf):
            raise _Malformed(f"field at {pos} outside the blob")
        return self.buf[pos]

    def _vector(self, table: int, index: int, item_bytes: int) -> tuple[int, int] | None:
        pos = self._field(table, index)
        if pos is None:
            return None
        start = pos + self._u32(pos)
        count = self._u32(start)
        if start + 4 + count * item_bytes > len(self.buf):
            raise _Malformed(f"vector of {count} items at {start} runs past the blob")
        return start + 4, count

    def string(self, table: int, index: int) -> str | None:
        vec = self._vector(table, index, 1)
        return None if vec is None else self.buf[vec[0] : vec[0] + vec[1]].decode("utf-8", "replace")

    def ints(self, table: int, index: int) -> list[int]:
        vec = self._vector(table, index, 4)
        return [] if vec is None else list(struct.unpack_from(f"<{vec[1]}i", self.buf, vec[0]))

    def floats(self, table: int, index: int) -> list[float]:
        vec = self._vector(table, index, 4)
        return [] if vec is None else list(struct.unpack_from(f"<{vec[1]}f", self.buf, vec[0]))

    def tables(self, table: int, index: int) -> list[int]:
        vec = self._vector(table, index, 4)
        return [] if vec is None else [self._table(vec[0] + 4 * i) for i in range(vec[1])]
