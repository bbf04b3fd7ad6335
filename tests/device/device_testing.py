"""Helpers for the board-side runner tests (a uniquely named module, not conftest, so
it never clashes with other test folders): a tiny real ONNX model, and a helper that
runs `python -m rkbench_device` as a subprocess the way the host does (spec on stdin,
stdin kept open, events read from stdout)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from rkbench_wire import Event, decode_event

REPO = Path(__file__).resolve().parents[2]
DEVICE = REPO / "device"
SHARED = REPO / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FAKES = Path(__file__).resolve().parent / "fakes"

INPUT_SHAPE = (1, 3, 16, 16)
NUM_CLASSES = 6


def make_tiny_classifier(path: Path) -> Path:
    """conv3x3(3->4)+relu -> maxpool2 -> flatten -> gemm(256->6): fixed seeded weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(20240611)
    conv_w = rng.normal(0, 0.4, (4, 3, 3, 3)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, (4,)).astype(np.float32)
    fc_w = rng.normal(0, 0.2, (NUM_CLASSES, 4 * 8 * 8)).astype(np.float32)
    fc_b = rng.normal(0, 0.1, (NUM_CLASSES,)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("MaxPool", ["relu"], ["pool"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["scores"], transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "rkbench_test_tiny_classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(INPUT_SHAPE))],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, NUM_CLASSES])],
        [
            numpy_helper.from_array(conv_w, "conv_w"),
            numpy_helper.from_array(conv_b, "conv_b"),
            numpy_helper.from_array(fc_w, "fc_w"),
            numpy_helper.from_array(fc_b, "fc_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_cache_dir() -> Path:
    """~/.cache/rkbench-test (or $RKBENCH_TEST_CACHE): built models kept between runs."""
    base = os.environ.get("RKBENCH_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rkbench-test"
    )
    return Path(base)


_BUILD_RKNN = (
    "import sys\n"
    "from rknn.api import RKNN\n"
    "r = RKNN(verbose=False)\n"
    "r.config(mean_values=[[0,0,0]], std_values=[[1,1,1]], target_platform=sys.argv[3])\n"
    "assert r.load_onnx(model=sys.argv[1]) == 0\n"
    "assert r.build(do_quantization=True, dataset=sys.argv[4]) == 0\n"
    "assert r.export_rknn(sys.argv[2]) == 0\n"
)


def build_tiny_rknn(model_dir: Path, soc: str) -> Path:
    """The tiny classifier built by the real rknn-toolkit2 (int8) for `soc`, cached under
    test_cache_dir()/rknn/ by the ONNX bytes, calibration data and toolkit version."""
    from importlib import metadata

    digest = hashlib.sha256()
    digest.update((model_dir / "tiny.onnx").read_bytes())
    for line in (model_dir / "dataset.txt").read_text().split():
        digest.update(Path(line).read_bytes())
    digest.update((soc + metadata.version("rknn-toolkit2") + _BUILD_RKNN).encode())
    target = test_cache_dir() / "rknn" / digest.hexdigest()[:16] / ("tiny_%s.rknn" % soc)
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        subprocess.run(
            [
                sys.executable,
                "-c",
                _BUILD_RKNN,
                str(model_dir / "tiny.onnx"),
                str(partial),
                soc,
                str(model_dir / "dataset.txt"),
            ],
            check=True,
            env=runner_env(),
            capture_output=True,
            timeout=600,
            cwd=str(partial.parent),
        )
        partial.replace(target)
    return target


def runner_env(extra_paths: Sequence[Path] = (), **env: str) -> Dict[str, str]:
    out = dict(os.environ)
    paths = [str(p) for p in extra_paths] + [str(DEVICE), str(SHARED)]
    out["PYTHONPATH"] = os.pathsep.join(paths)
    out.pop("FAKE_RKNNLITE_FAIL", None)
    out.update(env)
    return out


@dataclass
class RunOutput:
    returncode: int
    events: List[Event]
    lines: List[str]
    stderr: str
    elapsed_s: float

    def of(self, kind: str) -> List[Any]:
        return [e for e in self.events if e.type == kind]

    def one(self, kind: str) -> Any:
        found = self.of(kind)
        assert len(found) == 1, "expected one %s event, got %d:\n%s" % (kind, len(found), self.dump())
        return found[0]

    def dump(self) -> str:
        return "stdout:\n%s\nstderr tail:\n%s" % (
            "\n".join(line[:300] for line in self.lines[-30:]),
            self.stderr[-3000:],
        )


def start_runner(
    args: Sequence[str] = ("run",), env: Optional[Dict[str, str]] = None, stderr_path: Optional[Path] = None
) -> subprocess.Popen:
    stderr = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "rkbench_device"] + list(args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env or runner_env(),
            cwd=str(REPO),
        )
    finally:
        if stderr_path:
            stderr.close()  # type: ignore[union-attr]


def run_runner(
    spec: Any, tmp_path: Path, args: Sequence[str] = (), env: Optional[Dict[str, str]] = None, timeout: float = 60.0
) -> RunOutput:
    """Run the runner like the host: spec line on stdin, stdin held open until stdout
    closes, every stdout line decoded as a protocol event (a stray print fails here)."""
    line = spec if isinstance(spec, str) else json.dumps(spec)
    stderr_path = tmp_path / ("runner-stderr-%d.txt" % time.monotonic_ns())
    started = time.monotonic()
    proc = start_runner(["run"] + list(args), env=env, stderr_path=stderr_path)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line.encode("utf-8") + b"\n")
    proc.stdin.flush()
    lines = []
    try:
        for raw in iter(proc.stdout.readline, b""):
            lines.append(raw.decode("utf-8").rstrip("\n"))
            if time.monotonic() - started > timeout:
                raise AssertionError("runner took longer than %.0f s" % timeout)
        code = proc.wait(timeout=timeout)
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    elapsed = time.monotonic() - started
    stderr = stderr_path.read_text(errors="replace")
    events = []
    for text in lines:
        try:
            events.append(decode_event(text))
        except Exception as exc:
            raise AssertionError(
                "stdout line is not a protocol event (%s): %r\nstderr:\n%s" % (exc, text[:300], stderr[-2000:])
            ) from exc
    return RunOutput(returncode=code, events=events, lines=lines, stderr=stderr, elapsed_s=elapsed)


def latencies(out: RunOutput, core_mask: Any = "any") -> List[int]:
    """All streamed raw latencies (for one core mask), checking batches are contiguous."""
    values: List[int] = []
    for event in out.of("samples"):
        if core_mask != "any" and event.core_mask != core_mask:
            continue
        assert event.offset == len(values), "a samples batch is missing or out of order"
        values.extend(event.latencies_ns)
    return values
