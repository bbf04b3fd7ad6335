"""Helpers for the session/health/provision tests: a tiny ONNX model made with
onnx.helper, board Pythons with and without numpy, and a hand-built wheel."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: The board's Python in these tests: this venv's (it has numpy and onnxruntime).
BOARD_PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "device" / "fixtures"
INPUT_SHAPE = (1, 3, 8, 8)


def make_model(path: Path, channels: int = 4, size: int = 8) -> Path:
    """conv3x3(3->channels)+relu -> global average pool -> flatten: fixed seeded weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    w = rng.normal(0, 0.5, (channels, 3, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, (channels,)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["image", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["scores"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "rkbench_session_test",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, channels])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_inputs(directory: Path, count: int = 3, size: int = 8, seed: int = 5) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        p = directory / f"input_{i}.npy"
        np.save(p, rng.uniform(0, 1, (1, 3, size, size)).astype(np.float32))
        paths.append(p)
    return paths


def ort_outputs(model: Path, inputs: Sequence[Path]) -> list[np.ndarray]:
    """What onnxruntime on this host gives for each input (first output)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return [session.run(None, {name: np.load(p)})[0] for p in inputs]


def write_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def python_without_numpy(directory: Path) -> Path:
    """A "board Python" that runs without site-packages: no numpy (PYTHONPATH still works)."""
    directory.mkdir(parents=True, exist_ok=True)
    return write_script(directory / "python3-bare", f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')


def noisy_python(directory: Path, message: str) -> Path:
    """A board Python that prints `message` on stderr first (for stderr tails)."""
    directory.mkdir(parents=True, exist_ok=True)
    return write_script(directory / "python3-noisy", f'#!/bin/sh\necho "{message}" >&2\nexec {sys.executable} "$@"\n')


def board_venv(directory: Path, see_host_packages: bool = True) -> Path:
    """A throwaway Python environment to install into, as a board's Python.

    see_host_packages: a .pth makes this venv's packages (numpy, onnxruntime, pip)
    importable there, while `pip install` still writes into the new venv. Without it
    the venv has neither numpy nor pip (a bare board)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    py = directory / "bin" / "python"
    if see_host_packages:
        site = subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        Path(site, "host_packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return py


def make_wheel(
    directory: Path,
    name: str = "rkbench_probe_pkg",
    version: str = "0.1.0",
    requires: Sequence[str] = (),
    files: dict[str, str] = None,
) -> Path:
    """A pure-Python py3-none-any wheel built by hand (no build backend, no network)."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    files = dict(files or {f"{dist}/__init__.py": f'VERSION = "{version}"\n'})
    info = f"{dist}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    files[f"{info}/METADATA"] = "\n".join(meta) + "\n"
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: rkbench-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/top_level.txt"] = dist + "\n"
    record = []
    for arc, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arc},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arc, text in files.items():
            zf.writestr(arc, text)
    return path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
