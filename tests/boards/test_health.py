"""board_info and doctor over real SSH and on the local board (fixture /sys trees
for a Rockchip board's clocks, driver and temperatures)."""

from __future__ import annotations

import os
import shutil

import pytest

from rkbench.boards.connect import open_board
from rkbench.boards.health import (
    FAIL,
    PASS,
    WARN,
    DoctorLimits,
    _runtime_vs_toolkit,
    board_info,
    doctor,
    host_toolkit_version,
    version_tuple,
    worst,
)
from tests.support.boards import BOARD_PYTHON, FIXTURES, python_without_numpy


def by_name(checks):
    return {c.name: c for c in checks}


def assert_fixes(checks):
    for c in checks:
        assert c.status in (PASS, WARN, FAIL)
        assert c.detail
        if c.status != PASS:
            assert c.fix, f"{c.name} ({c.status}) has no fix"


def test_board_info_over_ssh(ssh_board, sshd):
    info = board_info(ssh_board, python=BOARD_PYTHON)
    host = info["host"]
    assert host["transport"] == "ssh" and host["board"] == sshd.board
    assert host["ssh_server_version"].startswith("SSH-2.0-OpenSSH")
    assert host["runner_dir"].startswith(str(sshd.home))
    assert info["python"].startswith("3.") and info["numpy"]
    assert info["backends"]["onnxruntime"]["available"] is True
    assert info["cache_dir"] == f"{sshd.home}/.cache/rkbench" and info["disk_free_bytes"] > 0
    assert info["memory"]["MemTotal"] > 0


def test_board_info_of_a_rockchip_board(local_board):
    info = board_info(local_board, python=BOARD_PYTHON, sysfs_root=str(FIXTURES / "rk3588"))
    assert (info["soc"], info["npu_cores"]) == ("rk3588", 3)
    assert info["librknnrt"].startswith("2.3.0") and info["npu_driver"] == "v0.9.8"
    assert info["npu_devfreq"]["governor"] == "rknpu_ondemand"
    assert info["host"]["transport"] == "local" and info["host"]["ssh_server_version"] is None


def test_doctor_on_a_rockchip_board_over_ssh(ssh_board, sshd):
    checks = doctor(ssh_board, "2.5.0", python=BOARD_PYTHON, sysfs_root=str(FIXTURES / "rk3588"))
    assert_fixes(checks)
    c = by_name(checks)
    assert c["connection"].status == PASS and "OpenSSH" in c["connection"].detail
    assert c["soc"].status == PASS and "rk3588" in c["soc"].detail
    assert c["python"].status == PASS and c["numpy"].status == PASS
    # no lite2 in this Python: the fix is provision
    assert c["rknn-toolkit-lite2"].status == FAIL
    assert c["rknn-toolkit-lite2"].fix == f"rkbench provision {sshd.board}"
    # librknnrt 2.3.0 against toolkit 2.5.0: older runtime
    assert c["librknnrt"].status == FAIL and "older than rknn-toolkit2 2.5.0" in c["librknnrt"].detail
    assert "--librknnrt" in c["librknnrt"].fix
    assert c["npu-driver"].status == PASS and "v0.9.8" in c["npu-driver"].detail
    # the NPU governor is rknpu_ondemand: warn, with the echo command
    assert c["npu-clock"].status == WARN
    assert "echo performance > /sys/class/devfreq/fdab0000.npu/governor" in c["npu-clock"].fix
    assert c["cpu-clock"].status == PASS  # all three policies on performance
    assert c["temperature"].status == PASS and "45.2 C" in c["temperature"].detail
    assert c["disk"].status == PASS and c["memory"].status == PASS
    assert c["backends"].status == WARN and "rknnlite" in c["backends"].detail
    assert worst(checks) == FAIL


def test_doctor_version_skew_and_unknown_toolkit(local_board):
    root = str(FIXTURES / "rk3588")
    info = board_info(local_board, python=BOARD_PYTHON, sysfs_root=root)
    assert by_name(doctor(local_board, "2.3.1", info=info))["librknnrt"].status == PASS
    newer = by_name(doctor(local_board, "2.2.0", info=info))["librknnrt"]
    assert newer.status == WARN and "newer than" in newer.detail
    unknown = by_name(doctor(local_board, None, info=info, toolkit_note="rknn-toolkit2 is not installed"))
    assert unknown["librknnrt"].status == WARN and "not installed" in unknown["librknnrt"].detail
    assert "rkbench[toolkit]" in unknown["librknnrt"].fix


def test_doctor_lite2_against_toolkit_and_runtime(local_board):
    info = board_info(local_board, python=BOARD_PYTHON, sysfs_root=str(FIXTURES / "rk3588"))
    info.update(rknn_toolkit_lite2="2.5.0", librknnrt="2.5.0 (abc@2025)")
    assert by_name(doctor(local_board, "2.5.0", info=info))["rknn-toolkit-lite2"].status == PASS
    skew = by_name(doctor(local_board, "2.3.0", info=info))["rknn-toolkit-lite2"]
    assert skew.status == WARN and "--version 2.3.0" in skew.fix
    info.update(librknnrt="2.3.0 (c949ad889d@2024-11-07T11:35:33)")
    runtime = by_name(doctor(local_board, "2.5.0", info=info))["rknn-toolkit-lite2"]
    assert runtime.status == WARN and "different releases" in runtime.detail


def test_doctor_hot_board_and_loose_cpu_governor(local_board, tmp_path):
    root = tmp_path / "rk3566"
    shutil.copytree(FIXTURES / "rk3566", root)
    (root / "sys/class/thermal/thermal_zone0/temp").write_text("90000\n")
    (root / "sys/devices/system/cpu/cpufreq/policy0/scaling_governor").write_text("schedutil\n")
    c = by_name(doctor(local_board, "2.5.0", python=BOARD_PYTHON, sysfs_root=str(root)))
    assert c["temperature"].status == FAIL and "90.0 C" in c["temperature"].detail
    assert c["cpu-clock"].status == WARN and "scaling_governor" in c["cpu-clock"].fix
    assert c["npu-clock"].status == PASS  # userspace is a fixed clock
    (root / "sys/class/thermal/thermal_zone0/temp").write_text("75000\n")
    assert (
        by_name(doctor(local_board, "2.5.0", python=BOARD_PYTHON, sysfs_root=str(root)))["temperature"].status == WARN
    )


def test_doctor_low_disk_and_memory_limits(local_board):
    info = board_info(local_board, python=BOARD_PYTHON)
    limits = DoctorLimits(disk_fail_bytes=1 << 62, mem_warn_kb=1 << 40, mem_fail_kb=1)
    c = by_name(doctor(local_board, "2.5.0", info=info, limits=limits))
    assert c["disk"].status == FAIL and "free space" in c["disk"].fix
    assert c["memory"].status == WARN


def test_doctor_on_this_machine_warns_but_passes(local_board):
    checks = doctor(local_board, "2.5.0", python=BOARD_PYTHON)
    assert_fixes(checks)
    c = by_name(checks)
    assert c["soc"].status == WARN and "not a Rockchip board" in c["soc"].detail
    assert c["rknn-toolkit-lite2"].status == WARN  # not applicable off Rockchip
    assert worst(checks) != FAIL


def test_doctor_without_numpy_or_python(ssh_board, sshd, tmp_path):
    c = by_name(doctor(ssh_board, "2.5.0", python=str(python_without_numpy(tmp_path / "bin"))))
    assert c["numpy"].status == FAIL and c["numpy"].fix.startswith(f"rkbench provision {sshd.board}")
    checks = doctor(ssh_board, "2.5.0", python="/nonexistent/python3")
    assert [(x.name, x.status) for x in checks] == [("connection", PASS), ("python", FAIL)]
    assert "rkbench provision" in checks[1].fix
    assert_fixes(checks)


def test_versions():
    assert version_tuple("2.3.0 (c949ad889d@2024-11-07T11:35:33)") == (2, 3, 0)
    assert version_tuple("v0.9.8") == (0, 9, 8) and version_tuple(None) is None
    assert _runtime_vs_toolkit((2, 3, 0), (2, 5, 0)) == FAIL
    assert _runtime_vs_toolkit((1, 6, 0), (2, 5, 0)) == FAIL
    assert _runtime_vs_toolkit((2, 5, 1), (2, 5, 0)) == PASS
    assert _runtime_vs_toolkit((2, 6, 0), (2, 5, 0)) == WARN


def test_host_toolkit_version(tmp_path):
    version, note = host_toolkit_version()
    if version is None:  # this host has no rknn-toolkit2
        assert "rknn-toolkit2" in note
    else:
        assert version_tuple(version) and note == ""
    missing, why = host_toolkit_version(str(python_without_numpy(tmp_path / "bin")))
    assert missing is None and "not installed" in why


@pytest.mark.board
def test_real_board_info_and_doctor():
    """Against a real board: RKBENCH_TEST_BOARD=ssh://root@board.lab (plus the
    usual ssh setup); RKBENCH_TEST_BOARD_PYTHON if its Python is not python3."""
    address = os.environ.get("RKBENCH_TEST_BOARD")
    if not address:
        pytest.skip("RKBENCH_TEST_BOARD is not set")
    python = os.environ.get("RKBENCH_TEST_BOARD_PYTHON", "python3")
    with open_board(address) as board:
        info = board_info(board, python=python)
        assert info["python"] and info["machine"]
        checks = doctor(board, host_toolkit_version()[0], python=python, info=info)
    assert_fixes(checks)
    names = [c.name for c in checks]
    for name in (
        "connection",
        "soc",
        "python",
        "numpy",
        "rknn-toolkit-lite2",
        "librknnrt",
        "npu-driver",
        "temperature",
        "disk",
        "memory",
        "backends",
    ):
        assert name in names


@pytest.mark.toolkit
def test_the_npu_runtime_says_who_it_is_through_a_probe_model(local_board, monkeypatch, tmp_path):
    """board info / doctor push a probe model built for the SoC; the runtime initialises it and
    reports its api and driver versions (rknn_query), or why it cannot (here: our stand-in)."""
    from rkbench.model.build import BuildOptions
    from rkbench.model.cache import BuildCache
    from rkbench.model.probe import probe_model
    from tests.standins.librknnrt import build_standin, make_board_root

    root = str(FIXTURES / "rk3588")
    monkeypatch.setenv("RKBENCH_LIBRKNNRT", str(build_standin()))
    monkeypatch.setenv("RKNN_STANDIN_ROOT", str(make_board_root(tmp_path / "dt", "rk3588")))
    monkeypatch.setenv("RKNN_STANDIN_QUIET", "1")
    probe = probe_model("rk3588", BuildOptions(cache=BuildCache(tmp_path / "cache")))
    info = board_info(local_board, python=BOARD_PYTHON, sysfs_root=root, probe_model=probe)
    probed = info["runtime_probe"]
    assert "standin" in probed["api_version"] and "stand-in" in probed["drv_version"] and probed["error"] is None
    check = by_name(doctor(local_board, "2.5.0", info=info))["npu-runtime"]
    assert check.status == PASS and "api 2.5.0" in check.detail

    monkeypatch.setenv("RKNN_STANDIN_FAIL", "rknn_init=-3")  # the NPU device cannot be opened
    info = board_info(local_board, python=BOARD_PYTHON, sysfs_root=root, probe_model=probe)
    check = by_name(doctor(local_board, "2.5.0", info=info))["npu-runtime"]
    assert check.status == FAIL and "-3" in check.detail and "rknpu" in check.fix
