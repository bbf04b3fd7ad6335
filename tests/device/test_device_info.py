"""`python -m rkbench_device info`: the board-facts object."""

from __future__ import annotations

import subprocess
import sys

from device_testing import FAKES, FIXTURES, REPO, runner_env
from rkbench_wire import decode_board_info
from rkbench_wire.info import BOARD_INFO_KEYS


def info(root, *extra_paths, cache_dir=None):
    args = [sys.executable, "-m", "rkbench_device", "info", "--root", str(root)]
    if cache_dir:
        args += ["--cache-dir", str(cache_dir)]
    proc = subprocess.run(args, capture_output=True, env=runner_env(extra_paths), cwd=str(REPO), timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 1, "info prints exactly one JSON line"
    return decode_board_info(lines[0])


def test_info_on_rk3588_tree(tmp_path):
    data = info(FIXTURES / "rk3588", FAKES, cache_dir=tmp_path / "cache")
    for key in BOARD_INFO_KEYS:
        assert key in data
    assert data["soc"] == "rk3588" and data["npu_cores"] == 3
    assert data["soc_compatible"] == ["rockchip,rk3588-evb", "rockchip,rk3588"]
    assert data["kernel"] == "5.10.160-rockchip-rk3588"
    assert data["os"]["PRETTY_NAME"] == "Debian GNU/Linux 11 (bullseye)"
    assert data["librknnrt"] == "2.3.0 (c949ad889d@2024-11-07T11:35:33)"
    assert data["npu_driver"] == "v0.9.8"
    assert data["npu_load_pct"] == [21, 11, 0]
    assert data["npu_devfreq"]["device"] == "fdab0000.npu" and data["npu_devfreq"]["cur_freq_hz"] == 10**9
    assert [p["policy"] for p in data["cpufreq"]] == ["policy0", "policy4", "policy6"]
    assert data["temperatures_c"]["npu-thermal"] == 44.384
    assert data["memory"]["MemTotal"] == 7924928
    assert data["disk_free_bytes"] > 0  # cache dir does not exist yet: its parent's file system
    assert data["python"].startswith("3.")
    assert data["backends"]["rknnlite"]["available"] is True  # fake rknnlite + librknnrt in the tree
    assert data["backends"]["onnxruntime"]["available"] is True


def test_info_on_bare_tree():
    data = info(FIXTURES / "bare")
    assert data["soc"] is None and data["npu_cores"] is None and data["soc_compatible"] == []
    assert data["librknnrt"] is None and data["npu_driver"] is None and data["npu_devfreq"] is None
    assert data["cpufreq"] == [] and data["temperatures_c"] == {} and data["memory"] is None
    assert data["rknn_toolkit_lite2"] is None
    assert data["backends"]["rknnlite"] == {
        "available": False,
        "reason": "the rknnlite package (rknn-toolkit-lite2) is not installed",
    }
