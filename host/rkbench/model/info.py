"""What a source model declares: its inputs and outputs, read without the toolkit."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from rkbench.errors import InputFileError, UsageError

SUPPORTED = {".onnx": "onnx", ".tflite": "tflite"}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple  # ints, or strings/None for dynamic dimensions
    dtype: str

    @property
    def dynamic(self) -> bool:
        return any(not isinstance(dim, int) or dim <= 0 for dim in self.shape)


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    framework: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    #: every tensor a node writes (ONNX): where --outputs may cut the graph; None when unknown
    tensors: tuple[str, ...] | None = None


def framework_of(path: Path) -> str:
    framework = SUPPORTED.get(path.suffix.lower())
    if framework is None:
        raise InputFileError(
            f"{path}: unsupported model type '{path.suffix}': give an .onnx or .tflite model "
            "(or an rknn_convert .yml description)"
        )
    return framework


def check_readable(path: Path, what: str = "model") -> None:
    if not path.exists():
        raise InputFileError(f"{what} file {path} does not exist")
    if not path.is_file():
        raise InputFileError(f"{what} path {path} is not a file")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as err:
        raise InputFileError(f"cannot read {what} file {path}: {err.strerror}") from None


def read_model(path: Path, sha256: str | None = None, cache: Path | None = None) -> ModelInfo:
    """The model's inputs and outputs. With the file's sha256 and a cache folder, what was
    read once is kept there by content (importing onnx alone costs a run ~0.5 s)."""
    check_readable(path)
    framework = framework_of(path)
    kept = cache / f"{sha256}.json" if cache is not None and sha256 else None
    if kept is not None and kept.is_file():
        try:
            return _from_dict(path, json.loads(kept.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged entry: read the model again and rewrite it below
    info = _read_tflite(path) if framework == "tflite" else _read_onnx(path)
    if kept is not None:
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            tmp = kept.with_suffix(f".tmp-{os.getpid()}")
            tmp.write_text(json.dumps(_to_dict(info)))
            tmp.replace(kept)
        except OSError:
            pass  # a read-only cache: the facts are simply read again next time
    return info


def _to_dict(info: ModelInfo) -> dict:
    def tensors(items):
        return [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in items]

    return {
        "framework": info.framework,
        "inputs": tensors(info.inputs),
        "outputs": tensors(info.outputs),
        "tensors": list(info.tensors) if info.tensors is not None else None,
    }


def _from_dict(path: Path, data: dict) -> ModelInfo:
    def tensors(items):
        return tuple(TensorInfo(t["name"], tuple(t["shape"]), t["dtype"]) for t in items)

    names = data["tensors"]  # an entry written before tensors were kept is read again
    return ModelInfo(
        path,
        data["framework"],
        tensors(data["inputs"]),
        tensors(data["outputs"]),
        tuple(names) if names is not None else None,
    )


def _read_onnx(path: Path) -> ModelInfo:
    import onnx
    from onnx import TensorProto

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # onnx raises DecodeError, ValueError, ... for non-ONNX bytes
        raise InputFileError(
            f"{path} is not a valid ONNX model ({type(err).__name__}): export it again from the training framework"
        ) from None
    graph = model.graph
    if not graph.node:
        raise InputFileError(f"{path} is not a valid ONNX model: its graph has no nodes")
    initializers = {init.name for init in graph.initializer}

    def info(value) -> TensorInfo:
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim)
        dtype = TensorProto.DataType.Name(tensor.elem_type).lower() if tensor.elem_type else "unknown"
        return TensorInfo(value.name, dims, dtype)

    inputs = tuple(info(v) for v in graph.input if v.name not in initializers)
    outputs = tuple(info(v) for v in graph.output)
    written = tuple(dict.fromkeys(name for node in graph.node for name in node.output if name))
    return ModelInfo(path, "onnx", inputs, outputs, written)


def _read_tflite(path: Path) -> ModelInfo:
    try:
        import tensorflow as tf  # noqa: F401  (load_tflite in the toolkit needs it too)
    except ImportError:
        raise UsageError(
            f"{path}: TFLite models need TensorFlow: `pip install 'tensorflow-cpu<=2.14'` in the toolkit's environment"
        ) from None
    interpreter = tf.lite.Interpreter(model_path=str(path))
    inputs = tuple(
        TensorInfo(d["name"], tuple(int(x) for x in d["shape"]), str(d["dtype"].__name__))
        for d in interpreter.get_input_details()
    )
    outputs = tuple(
        TensorInfo(d["name"], tuple(int(x) for x in d["shape"]), str(d["dtype"].__name__))
        for d in interpreter.get_output_details()
    )
    return ModelInfo(path, "tflite", inputs, outputs)
