"""The .rknn reader on files the real rknn-toolkit2 wrote, and on broken ones."""

from __future__ import annotations

import json
import random
import re
import struct
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from rkbench.errors import InputFileError
from rkbench.model.rknn_file import (
    KNOWN_FORMAT_VERSIONS,
    RknnFileError,
    UnknownFormatVersion,
    parse_rknn,
    read_rknn,
)
from tests.model.rknn_variants import TWO_INPUT_SHAPES
from tests.standins.librknnrt import build_standin, make_board_root
from tests.standins.model_builder import TINY_FEATURES, TINY_SHAPE
from tests.standins.rknn_caller import Runtime

pytestmark = pytest.mark.toolkit  # the files come from the real rknn-toolkit2

TOOLKIT = metadata.version("rknn-toolkit2")
TINY_IO = {"image": list(TINY_SHAPE)}
TINY_OUT = {"feat": [1, TINY_FEATURES, 16, 16], "scores": [1, 6]}
RKNNCLI = "rknncli==0.3.3"
RKNNCLI_DIR = Path.home() / ".cache" / "rkbench-test" / "rknncli-0.3.3"


@pytest.mark.parametrize(
    "name, target", [("tiny_rk3588", "rk3588"), ("tiny_rk3566", "rk3566"), ("tiny_rk3576", "rk3576")]
)
def test_reads_what_the_toolkit_was_told(rknn_models, name, target):
    info = read_rknn(rknn_models[name])
    assert info.target_platforms == [target] and info.target == target
    assert info.format_version == 6
    assert info.toolkit_version == TOOLKIT
    assert re.fullmatch(re.escape(TOOLKIT) + r" \([0-9a-f]+@\d{4}-\d\d-\d\dT[\d:]+\)", info.compiler_version)
    assert info.source_framework == "ONNX"
    assert info.file_bytes == rknn_models[name].stat().st_size
    assert {t.name: t.shape for t in info.inputs} == TINY_IO
    assert [t.name for t in info.outputs] == list(TINY_OUT)  # the ONNX graph's output order
    assert {t.name: t.shape for t in info.outputs} == TINY_OUT
    assert [t.index for t in info.outputs] == [0, 1]
    (image,) = info.inputs
    # The runtime takes 4-D inputs as NHWC and gives 4-D outputs as NCHW.
    assert (image.dtype, image.layout, image.runtime_shape) == ("int8", "NHWC", [1, 16, 16, 3])
    assert [o.layout for o in info.outputs] == ["NCHW", "NCHW"]
    assert image.mean == [0.0] and image.std == [1.0]
    assert not info.dynamic_shape and not info.notes
    # The graph: conv+relu, maxpool, flatten, gemm and the I/O operators.
    assert info.operators >= 5 and info.cpu_operators.get("InputOperator") == 1


def test_native_layout_follows_the_npu(rknn_models):
    """The 20-channel int8 feature map in NC1HWC2: C2 = 16 on the RK3588's NPU, 8 on the RK3566's."""
    native = {name: read_rknn(rknn_models[name]).outputs[0].native_shape for name in ("tiny_rk3588", "tiny_rk3566")}
    assert native == {"tiny_rk3588": [1, 2, 16, 16, 16], "tiny_rk3566": [1, 3, 16, 16, 8]}
    assert read_rknn(rknn_models["tiny_rk3566"]).npu_format == "RKNPU lite"
    assert read_rknn(rknn_models["tiny_rk3588"]).npu_format == "RKNPU v2"


@pytest.mark.parametrize("name", ["cls_rk3588", "tiny_rk3588", "tiny_rk3566", "tiny_rk3576"])
def test_quantization_matches_the_calibrated_range(rknn_models, name):
    """Zero point and scale (from the graph's tensors) are an asymmetric int8 quantization of
    the range the toolkit calibrated (from the build attributes), widened to hold 0."""
    info = read_rknn(rknn_models[name])
    quantized = [t for t in info.inputs + info.outputs if t.quantization == "affine"]
    assert quantized and all(t.dtype == "int8" for t in quantized)
    for t in quantized:
        low, high = min(t.calibrated_range[0], 0.0), max(t.calibrated_range[1], 0.0)
        assert t.scale == pytest.approx((high - low) / 255, rel=1e-5), t.name
        assert t.zero_point == round(-128 - low / t.scale), t.name


def test_the_classifier(rknn_models):
    info = read_rknn(rknn_models["cls_rk3588"])
    (x,) = info.inputs
    # Its mean/std of 127.5 (model_builder's config) map 0..255 pixels onto -1..1.
    assert x.mean == [127.5] * 3 and x.std == [127.5] * 3
    assert -1.0 <= x.calibrated_range[0] < 0 < x.calibrated_range[1] <= 1.0
    (out,) = info.outputs  # the softmax output stays float16
    assert (out.dtype, out.quantization, out.scale, out.zero_point) == ("float16", "none", None, None)
    assert info.cpu_operators.get("Reshape") == 1


def test_quantization_agrees_with_the_standin_runtime(rknn_models, tmp_path, monkeypatch):
    """Our C stand-in reads the same fields through the runtime's ABI: both readers agree."""
    monkeypatch.setenv("RKNN_STANDIN_ROOT", str(make_board_root(tmp_path, "rk3566")))
    monkeypatch.setenv("RKNN_STANDIN_QUIET", "1")
    runtime = Runtime(build_standin())
    info = read_rknn(rknn_models["tiny_rk3566"])
    rc, ctx = runtime.init(rknn_models["tiny_rk3566"])
    assert rc == 0, rc
    try:
        for query, tensors in (("INPUT_ATTR", info.inputs), ("OUTPUT_ATTR", info.outputs)):
            for t in tensors:
                attr = runtime.attr(ctx, query, t.index)
                assert attr.name.decode() == t.name
                assert list(attr.shape) == t.runtime_shape
                assert attr.zp == t.zero_point
                assert attr.scale == pytest.approx(t.scale)
    finally:
        runtime.destroy(ctx)


def test_float_dfp_and_dynamic_builds(rknn_models):
    floats = read_rknn(rknn_models["float_rk3566"])
    assert {t.dtype for t in floats.inputs + floats.outputs} == {"float16"}
    assert {t.quantization for t in floats.inputs + floats.outputs} == {"none"}

    dfp = read_rknn(rknn_models["dfp_rk3588"])
    assert {(t.dtype, t.quantization, t.zero_point) for t in dfp.inputs + dfp.outputs} == {("int16", "dfp", 0)}

    dynamic = read_rknn(rknn_models["dynamic_rk3568"])
    assert dynamic.dynamic_shape and dynamic.target_platforms == ["rk3568"]
    assert [t.name for t in dynamic.inputs] == ["image", "bias"]
    for k, t in enumerate(dynamic.inputs):
        assert sorted(t.dynamic_shapes) == sorted(shapes[k] for shapes in TWO_INPUT_SHAPES)
    assert dynamic.cpu_operators == {"InputOperator": 2}


def test_agrees_with_rknncli(rknn_models):
    """The rknncli package (PyPI) reads the same files the same way where it reads them."""
    lib = _rknncli()
    probe = (
        "import json, sys\n"
        "from rknncli.parser import RKNNParser\n"
        "out = {}\n"
        "for path in sys.argv[1:]:\n"
        "    p = RKNNParser(path, parse_flatbuffers=True)\n"
        "    fb = p.get_flatbuffers_info()\n"
        "    out[path] = {'targets': p.get_target_platform(), 'version': p.get_version(),\n"
        "                 'compiler': fb.get('compiler'), 'source': fb.get('source'), 'format': fb.get('format'),\n"
        "                 'inputs': [[t['url'], t['size']] for t in p.get_input_info()],\n"
        "                 'outputs': [[t['url'], t['size']] for t in p.get_output_info()]}\n"
        "print(json.dumps(out))\n"
    )
    paths = [str(path) for path in rknn_models.values()]
    done = subprocess.run(
        [sys.executable, "-c", probe, *paths], capture_output=True, text=True, env={"PYTHONPATH": str(lib)}, timeout=120
    )
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout)
    for path in paths:
        ours, their = read_rknn(path), theirs[path]
        assert ours.target_platforms == their["targets"]
        assert ours.toolkit_version == their["version"]
        assert f"{ours.toolkit_version}(compiler version: {ours.compiler_version})" == their["compiler"]
        assert (ours.source_framework, ours.npu_format) == (their["source"], their["format"])
        assert [[t.name, t.shape] for t in ours.inputs] == their["inputs"]
        assert [[t.name, t.shape] for t in ours.outputs] == their["outputs"]


def _rknncli() -> Path:
    """rknncli 0.3.3 and its imports, installed once into a cache folder (not a dependency:
    it only serves as a second reader to compare with)."""
    if not (RKNNCLI_DIR / "rknncli" / "parser.py").is_file():
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(RKNNCLI_DIR), RKNNCLI]
            + ["flatbuffers", "graphviz"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot install {RKNNCLI} from PyPI to compare with: {done.stderr.strip()[-300:]}")
    return RKNNCLI_DIR


# ----------------------------------------------------------------------------------
# files that are not what they should be
# ----------------------------------------------------------------------------------
def test_errors_name_the_file(tmp_path):
    cases = {
        "empty.rknn": b"",
        "onnx.rknn": b"\x08\x07\x12\x07pytorch",
        "tiny.rknn": b"RKNN\0\0",
        "encrypted.rknn": b"CYPTRKNN" + bytes(64),
    }
    expected = {
        "empty.rknn": "is empty",
        "onnx.rknn": "is not an .rknn model",
        "tiny.rknn": "is truncated",
        "encrypted.rknn": "is an encrypted .rknn",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(RknnFileError) as err:
            read_rknn(tmp_path / name)
        message = str(err.value)
        assert str(tmp_path / name) in message and expected[name] in message and "\n" not in message
        assert err.value.exit_code == 4 and isinstance(err.value, InputFileError)
    with pytest.raises(RknnFileError, match="does not exist"):
        read_rknn(tmp_path / "missing.rknn")
    with pytest.raises(RknnFileError, match="is a directory"):
        read_rknn(tmp_path)


def test_unknown_format_version_names_the_known_ones(rknn_models):
    data = bytearray(rknn_models["tiny_rk3588"].read_bytes())
    for version in (1, 5, 7, 0x1001):
        data[8:16] = struct.pack("<Q", version)
        with pytest.raises(UnknownFormatVersion) as err:
            parse_rknn(bytes(data), "model.rknn")
        assert err.value.version == version
        message = str(err.value)
        assert f"format version {version} " in message and "model.rknn" in message
        assert all(str(known) in message for known in KNOWN_FORMAT_VERSIONS)


def test_every_truncation_is_a_clear_error(rknn_models):
    """A file cut anywhere (a copy that stopped) is refused as truncated, never misread."""
    data = rknn_models["tiny_rk3566"].read_bytes()
    (blob_bytes,) = struct.unpack_from("<Q", data, 16)
    cuts = sorted(
        {4, 8, 16, 23, 24, 63, 64, 64 + blob_bytes // 2, 64 + blob_bytes, 64 + blob_bytes + 7} | {len(data) - 1}
    )
    cuts += random.Random(1).sample(range(len(data)), 40)
    for cut in cuts:
        with pytest.raises(RknnFileError, match="truncated|not an .rknn"):
            parse_rknn(data[:cut], "cut.rknn")


def test_damaged_json_part(rknn_models):
    data = rknn_models["tiny_rk3588"].read_bytes()
    (blob_bytes,) = struct.unpack_from("<Q", data, 16)
    start = 72 + blob_bytes
    doc = json.loads(data[start:])

    def with_json(text: str) -> bytes:
        return data[: 64 + blob_bytes] + struct.pack("<Q", len(text)) + text.encode()

    with pytest.raises(RknnFileError, match="JSON part .* does not parse"):
        parse_rknn(with_json("{not json"), "bad.rknn")
    with pytest.raises(RknnFileError, match="no inputs or no outputs"):
        parse_rknn(with_json(json.dumps({**doc, "graph": []})), "bad.rknn")
    with pytest.raises(RknnFileError, match="links input 0 to a tensor it does not describe"):
        parse_rknn(with_json(json.dumps({**doc, "norm_tensor": []})), "bad.rknn")
    # No target in the JSON: the blob's own target field still says it.
    info = parse_rknn(with_json(json.dumps({k: v for k, v in doc.items() if k != "target_platform"})), "x.rknn")
    assert info.target_platforms == ["rk3588"]


def test_damaged_blob_keeps_the_json_facts(rknn_models):
    data = bytearray(rknn_models["tiny_rk3588"].read_bytes())
    data[68:72] = b"XXXX"  # the blob's FlatBuffers identifier
    info = parse_rknn(bytes(data), "x.rknn")
    assert info.target_platforms == ["rk3588"] and [t.name for t in info.inputs] == ["image"]
    assert info.inputs[0].layout is None and info.inputs[0].dtype == "int8"
    assert len(info.notes) == 1 and "graph blob could not be read" in info.notes[0]


def test_random_damage_never_escapes_as_another_error(rknn_models):
    """Flipped bytes anywhere in the blob or the JSON: a result (perhaps with notes) or an
    RknnFileError, never an IndexError, struct.error or the like."""
    data = rknn_models["tiny_rk3566"].read_bytes()
    rng = np.random.default_rng(2026)
    # Half the damage where the structure is (the header, the blob's tables at its start,
    # the JSON at the end), half anywhere (mostly weights).
    structure = np.r_[24 : 64 + 4096, len(data) - 1500 : len(data)]
    for round_ in range(400):
        damaged = bytearray(data)
        where = structure if round_ % 2 else np.arange(24, len(data))
        for pos in rng.choice(where, size=int(rng.integers(1, 8))):
            damaged[pos] = int(rng.integers(0, 256))
        try:
            info = parse_rknn(bytes(damaged), "damaged.rknn")
        except RknnFileError as err:
            assert "damaged.rknn" in str(err)
            continue
        assert info.inputs and info.outputs
        json.dumps(info.to_dict())  # whatever was read stays plain data


def test_json_of_the_wrong_shape_never_escapes(rknn_models):
    """Every value of the JSON part replaced, one at a time, by a value of another type."""
    data = rknn_models["tiny_rk3588"].read_bytes()
    (blob_bytes,) = struct.unpack_from("<Q", data, 16)
    doc = json.loads(data[72 + blob_bytes :])
    rng = random.Random(5)
    odd = [None, [], {}, "", "x", -1, 10**30, 1.5, float("nan"), float("inf"), [[1]], [None], {"a": [1]}, True]

    def paths(value, prefix=()):
        yield prefix
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
        for key, child in children:
            yield from paths(child, (*prefix, key))

    every = [p for p in paths(doc) if p]
    for path in every + rng.sample(every, 50):
        changed = json.loads(json.dumps(doc))
        holder = changed
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = rng.choice(odd)
        text = json.dumps(changed).encode()
        try:
            info = parse_rknn(data[: 64 + blob_bytes] + struct.pack("<Q", len(text)) + text, "odd.rknn")
        except RknnFileError as err:  # refused in one line naming the file: what a user sees
            assert "odd.rknn" in str(err) and "\n" not in str(err)
            continue
        assert info.inputs and info.outputs
