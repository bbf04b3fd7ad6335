"""rkbench as users run it against the emulated board over real SSH: `run` with the real
rknn-toolkit-lite2 wheel, `board info`, `doctor`, and the board faults a field engineer
meets (no runtime library, one of the wrong architecture, no device tree). No --python
anywhere: the board's login python3 is its own (emulated) one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.run.helpers import explain, run_ids

pytestmark = pytest.mark.emulated

QUICK = ["--input-count", "2", "--min-runs", "20", "--min-seconds", "0.3"]


def run_args(tiny_onnx, tmp_path: Path, *extra) -> list:
    return [
        "--model",
        tiny_onnx["model"],
        "--dataset",
        tiny_onnx["dataset"],
        *QUICK,
        "--db",
        tmp_path / "results.db",
        "-o",
        tmp_path / "out",
        *extra,
    ]


def test_run_with_the_real_lite2_over_ssh(rk, rk3588_sshd, ssh_files, tiny_onnx, tmp_path):
    done = rk(
        "run",
        "--board",
        rk3588_sshd.board,
        "--backend",
        "rknnlite",
        *ssh_files.options(),
        *run_args(tiny_onnx, tmp_path),
    )
    assert done.returncode == 0, explain(done)
    [run_id] = run_ids(done.stdout)
    shown = rk.show(tmp_path / "results.db", run_id)
    assert shown["backend"] == "rknnlite" and shown["status"] == "ok" and shown["board_soc"] == "rk3588"
    versions = shown["versions"]
    assert versions["rknn_toolkit_lite2"] == "2.5.0" and versions["python"].startswith("3.11.")
    assert "stand-in" in versions["librknnrt"]  # results carry which runtime produced them
    # NPU time through lite2's internal get_run_perf: the stand-in's 2 ms per run, every run
    assert shown["npu_stats"]["p50_ms"] == 2.0 and shown["npu_stats"]["n"] == shown["stats"]["n"]
    assert shown["stats"]["min_ms"] > 2.0  # lite2's Python and the copies come on top
    # the NCHW float .npy inputs were transposed and quantized once, not inside every timed call
    assert "inputs converted once before timing" in done.stderr and "NCHW -> NHWC" in done.stderr
    assert "float32 -> int8, quantized with the input's zp -128" in done.stderr
    assert "runtime: API 2.5.0 (standin@" in done.stderr
    assert "NPU time" in done.stdout and "backend rknnlite" in done.stdout
    # The login's `cat` sees no device tree (this machine's); the board's Python (its
    # emulated userland) does, and its SoC was the build target, not a guess.
    assert "no Rockchip SoC found" not in done.stderr + done.stdout


def test_board_info_and_doctor(rk, rk3588_sshd, ssh_files, rk3588):
    done = rk("board", "info", rk3588_sshd.board, *ssh_files.options(), "--json")
    assert done.returncode == 0, explain(done)
    info = json.loads(done.stdout)
    assert info["soc"] == "rk3588" and info["npu_cores"] == 3 and info["machine"] == "aarch64"
    assert info["python_executable"] == str(rk3588.root / "usr/bin/python3.11")
    assert info["numpy"] == "1.26.4" and info["rknn_toolkit_lite2"] == "2.5.0"
    assert info["librknnrt"].startswith("2.5.0 (stand-in") and info["npu_driver"] == "v0.9.8"
    assert info["backends"]["rknnlite"]["available"] and info["backends"]["rknnrt"]["available"]
    assert "Debian GNU/Linux 12 (bookworm)" in json.dumps(info["os"])
    # the runtime itself, asked through a probe model built for the board's SoC (rknn_query)
    probe = info["runtime_probe"]
    assert probe["api_version"].startswith("2.5.0 (standin@") and "stand-in" in probe["drv_version"]

    done = rk("doctor", rk3588_sshd.board, *ssh_files.options())
    assert done.returncode == 0, explain(done)  # warnings (an ondemand NPU clock), no failure
    lines = done.stdout.splitlines()
    for name in ("soc", "python", "numpy", "rknn-toolkit-lite2", "librknnrt", "npu-runtime", "backends"):
        assert any(line.startswith("pass  " + name) for line in lines), (name, done.stdout)
    assert any(line.startswith("WARN  npu-clock") for line in lines)


@pytest.mark.parametrize(
    "fault, board_kw, says",
    [
        (
            "no librknnrt",
            {"librknnrt": None},
            "librknnrt.so is missing from /usr/lib (rknn-toolkit-lite2 loads /usr/lib/librknnrt.so at init_runtime); "
            "fix: rkbench provision BOARD --librknnrt PATH/TO/librknnrt.so (the aarch64 build)",
        ),
        (
            "x86_64 librknnrt",
            {"librknnrt": "x86_64"},
            "/usr/lib/librknnrt.so is built for x86_64, but this board is aarch64: rknn-toolkit-lite2 cannot load it "
            "(wrong architecture); fix: rkbench provision BOARD --librknnrt",
        ),
        (
            "no device tree",
            {"device_tree": False},
            "this board has no /proc/device-tree/compatible: rknn-toolkit-lite2 reads the SoC from it",
        ),
    ],
)
def test_board_faults_are_one_line_errors(rk, new_board, serve, ssh_files, tiny_onnx, tmp_path, fault, board_kw, says):
    server = serve(new_board(**board_kw))
    done = rk(
        "run", "--board", server.board, "--backend", "rknnlite", *ssh_files.options(), *run_args(tiny_onnx, tmp_path)
    )
    assert done.returncode == 3, explain(done)
    error = [line for line in done.stderr.splitlines() if line.startswith("rkbench: error:")]
    assert len(error) == 1 and says in error[0], done.stderr[-3000:]
    assert server.board in error[0]

    # doctor names the same fault
    done = rk("doctor", server.board, *ssh_files.options())
    checks = {
        line[6:26].strip(): line for line in done.stdout.splitlines() if line[:6] in ("pass  ", "WARN  ", "FAIL  ")
    }
    if fault == "no librknnrt":
        assert done.returncode == 1 and checks["librknnrt"].startswith("FAIL"), done.stdout
        assert f"fix: rkbench provision {server.board} --librknnrt" in done.stdout
    elif fault == "x86_64 librknnrt":
        # the version string is right, so only the backends check sees the architecture
        assert done.returncode == 1 and checks["backends"].startswith("FAIL"), done.stdout
        assert "built for x86_64, but this board is aarch64" in checks["backends"]
    else:
        assert checks["soc"].startswith("WARN") and "not a Rockchip board" in checks["soc"], done.stdout
        assert "rknnlite" not in checks["backends"].split("usable:")[1].split(";")[0]
