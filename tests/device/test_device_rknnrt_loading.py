"""The rknnrt backend when librknnrt cannot be used: missing, not a library, the wrong
architecture, not librknnrt at all, a board Python without ctypes. Each is a clear error
naming the file and the fix, before anything is measured. The libraries here are tiny
ones gcc builds for the test (x86_64, i386, aarch64); none of them pretends to be the runtime."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from device_testing import FIXTURES, run_runner, runner_env

FIX = "fix: rkbench provision BOARD --librknnrt PATH"


def shared_lib(tmp_path, compiler, *flags, name="librknnrt.so"):
    if shutil.which(compiler) is None:
        pytest.skip("%s is not installed" % compiler)
    source = tmp_path / "lib.c"
    source.write_text("int rkbench_test_symbol(void) { return 0; }\n")
    target = tmp_path / name
    proc = subprocess.run(
        [compiler, "-shared", "-fPIC", *flags, "-o", str(target), str(source)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip("%s cannot build a shared library here: %s" % (compiler, proc.stderr[-300:]))
    return target


def rknnrt_spec(base_spec, tmp_path, **changes):
    model = tmp_path / "model.rknn"
    model.write_bytes(b"not read: the library fails first")
    np.save(tmp_path / "in.npy", np.zeros((1, 16, 16, 3), np.uint8))
    spec = dict(
        base_spec,
        backend="rknnrt",
        model={"rknn": str(model)},
        inputs=[[str(tmp_path / "in.npy")]],
        data_format=["nhwc"],
    )
    spec.update(changes)
    return spec


def failed(out):
    assert out.returncode == 1, out.dump()
    assert not out.of("result") and not out.of("samples")
    error = out.one("error")
    assert error.kind == "backend_missing"
    return error.message


def test_no_librknnrt_on_the_board(base_spec, tmp_path):
    out = run_runner(rknnrt_spec(base_spec, tmp_path), tmp_path, args=["--root", str(FIXTURES / "bare")])
    message = failed(out)
    assert out.one("hello").backend == "none"
    assert "librknnrt.so is not on this board (looked for /usr/lib/librknnrt.so" in message and FIX in message


def test_placeholder_file_is_not_a_library(base_spec, tmp_path):
    out = run_runner(rknnrt_spec(base_spec, tmp_path), tmp_path, args=["--root", str(FIXTURES / "rk3588")])
    message = failed(out)
    assert (
        "rk3588/usr/lib/librknnrt.so is not a shared library (no ELF shared-object header" in message and FIX in message
    )


@pytest.mark.parametrize(
    "compiler, flags, words",
    [
        (
            "aarch64-linux-gnu-gcc",
            [],
            "is a 64-bit aarch64 library but this Python is 64-bit on x86_64: wrong architecture",
        ),
        (
            "gcc",
            ["-m32", "-nostdlib"],
            "is a 32-bit x86 (i386) library but this Python is 64-bit on x86_64: wrong architecture",
        ),
    ],
)
def test_wrong_architecture_is_named(base_spec, tmp_path, compiler, flags, words):
    lib = shared_lib(tmp_path, compiler, *flags)
    out = run_runner(
        rknnrt_spec(base_spec, tmp_path),
        tmp_path,
        args=["--root", str(FIXTURES / "rk3588")],
        env=runner_env(RKBENCH_LIBRKNNRT=str(lib)),
    )
    message = failed(out)
    assert str(lib) in message and words in message and FIX in message


def test_a_library_without_the_api_is_not_librknnrt(base_spec, tmp_path):
    lib = shared_lib(tmp_path, "gcc")
    out = run_runner(
        rknnrt_spec(base_spec, tmp_path),
        tmp_path,
        args=["--root", str(FIXTURES / "rk3588")],
        env=runner_env(RKBENCH_LIBRKNNRT=str(lib)),
    )
    message = failed(out)
    assert "loads but lacks rknn_init, rknn_destroy, rknn_query" in message and "it is not librknnrt" in message


def test_override_pointing_nowhere(base_spec, tmp_path):
    out = run_runner(
        rknnrt_spec(base_spec, tmp_path),
        tmp_path,
        args=["--root", str(FIXTURES / "rk3588")],
        env=runner_env(RKBENCH_LIBRKNNRT=str(tmp_path / "absent.so")),
    )
    assert "librknnrt.so not found at %s (RKBENCH_LIBRKNNRT=" % (tmp_path / "absent.so") in failed(out)


def test_board_python_without_ctypes(base_spec, tmp_path):
    # what a Python built without libffi gives: `import _ctypes` fails
    shadow = tmp_path / "no_ctypes"
    shadow.mkdir()
    (shadow / "_ctypes.py").write_text("raise ImportError(\"No module named '_ctypes'\")\n")
    out = run_runner(
        rknnrt_spec(base_spec, tmp_path), tmp_path, args=["--root", str(FIXTURES / "rk3588")], env=runner_env([shadow])
    )
    message = failed(out)
    assert "has no working ctypes (No module named '_ctypes')" in message
    assert "rknn-toolkit-lite2 both need it" in message


def test_zero_copy_refused_when_rknnrt_is_not_what_runs(base_spec, tmp_path):
    spec = rknnrt_spec(base_spec, tmp_path, backend="auto", io_mode="zero_copy")
    spec["model"] = {"rknn": spec["model"]["rknn"], "onnx": base_spec["model"]["onnx"]}
    out = run_runner(spec, tmp_path, args=["--root", str(FIXTURES / "bare")])
    message = failed(out)
    assert out.one("hello").backend == "onnxruntime"
    assert message.startswith("io_mode zero_copy needs backend rknnrt, but onnxruntime runs here")
    assert "not rknnrt (librknnrt.so is not on this board" in message
