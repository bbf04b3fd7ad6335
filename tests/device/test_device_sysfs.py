"""The /proc and /sys readers against fixture trees (tests/device/fixtures/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from device_testing import FIXTURES
from rkbench_device import sysfs
from rkbench_device.telemetry import read_telemetry

RK3588 = str(FIXTURES / "rk3588")
RK3566 = str(FIXTURES / "rk3566")
BARE = str(FIXTURES / "bare")


def test_rk3588_tree():
    compatible = sysfs.soc_compatible(RK3588)
    assert compatible == ["rockchip,rk3588-evb", "rockchip,rk3588"]
    assert sysfs.soc_name(compatible) == "rk3588"
    assert sysfs.npu_core_count("rk3588") == 3
    assert sysfs.npu_load(RK3588) == [21, 11, 0]
    assert sysfs.npu_driver_version(RK3588) == "v0.9.8"
    devfreq = sysfs.npu_devfreq(RK3588)
    assert devfreq is not None
    assert devfreq["device"] == "fdab0000.npu"
    assert devfreq["cur_freq_hz"] == 1_000_000_000
    assert devfreq["governor"] == "rknpu_ondemand"
    assert devfreq["available_frequencies_hz"][0] == 300_000_000 and len(devfreq["available_frequencies_hz"]) == 8
    policies = sysfs.cpufreq(RK3588)
    assert [p["policy"] for p in policies] == ["policy0", "policy4", "policy6"]
    assert policies[1]["cpus"] == [4, 5] and policies[1]["cur_khz"] == 2_256_000
    assert policies[0]["governor"] == "performance"
    temps = sysfs.temperatures(RK3588)
    assert temps["soc-thermal"] == pytest.approx(45.23)
    assert temps["npu-thermal"] == pytest.approx(44.384)
    assert len(temps) == 7
    assert sysfs.librknnrt_version(RK3588) == "2.3.0 (c949ad889d@2024-11-07T11:35:33)"
    mem = sysfs.meminfo(RK3588)
    assert mem["MemTotal"] == 7924928 and mem["CmaFree"] == 61440
    assert sysfs.os_release(RK3588)["VERSION_ID"] == "11"
    assert sysfs.kernel_release(RK3588) == "5.10.160-rockchip-rk3588"


def test_rk3566_tree_single_core_format():
    assert sysfs.soc_name(sysfs.soc_compatible(RK3566)) == "rk3566"
    assert sysfs.npu_core_count("rk3566") == 1
    assert sysfs.npu_load(RK3566) == [33]
    devfreq = sysfs.npu_devfreq(RK3566)
    assert devfreq["device"] == "fde40000.npu"
    assert devfreq["cur_freq_hz"] == 900_000_000
    assert devfreq["min_freq_hz"] is None  # not in this tree: None, no crash
    assert sysfs.librknnrt_version(RK3566).startswith("1.6.0")
    assert sysfs.os_release(RK3566)["NAME"] == "Ubuntu"
    assert sysfs.kernel_release(RK3566) is None


def test_bare_tree_every_reader_returns_nothing():
    assert sysfs.soc_compatible(BARE) == []
    assert sysfs.soc_name([]) is None
    assert sysfs.npu_core_count(None) is None
    assert sysfs.npu_load(BARE) is None
    assert sysfs.npu_driver_version(BARE) is None
    assert sysfs.npu_devfreq(BARE) is None
    assert sysfs.cpufreq(BARE) == []
    assert sysfs.temperatures(BARE) == {}
    assert sysfs.meminfo(BARE) is None
    assert sysfs.process_memory(BARE) is None
    assert sysfs.os_release(BARE) is None
    assert sysfs.librknnrt_path(BARE) is None
    assert sysfs.librknnrt_version(BARE) is None
    reading = read_telemetry(BARE)
    assert reading.npu_load_pct is None and reading.npu_freq_hz is None and reading.cpu == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("NPU load:  Core0: 21%, Core1: 11%, Core2:  0%,", [21, 11, 0]),
        ("NPU load:  Core1: 5%, Core0: 7%,", [7, 5]),
        ("NPU load:  33%", [33]),
        ("NPU load:   0%\n", [0]),
        ("", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_parse_npu_load(text, expected):
    assert sysfs.parse_npu_load(text) == expected


def test_soc_name_variants():
    assert sysfs.soc_name(["xunlong,orangepi-5", "rockchip,rk3588s"]) == "rk3588s"
    assert sysfs.npu_core_count("rk3588s") == 3
    assert sysfs.npu_core_count("rk3576") == 2
    assert sysfs.npu_core_count("rk3568") == 1
    assert sysfs.npu_core_count("rk3399") is None
    assert sysfs.soc_name(["raspberrypi,4-model-b", "brcm,bcm2711"]) is None


def test_partial_and_unreadable_files(tmp_path: Path):
    devfreq = tmp_path / "sys/class/devfreq/fdab0000.npu"
    devfreq.mkdir(parents=True)
    (devfreq / "cur_freq").write_text("not a number\n")
    zone = tmp_path / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "type").write_text("soc-thermal\n")  # no temp file: the zone is skipped
    zone1 = tmp_path / "sys/class/thermal/thermal_zone1"
    zone1.mkdir(parents=True)
    (zone1 / "temp").write_text("61000\n")  # no type: named after the zone
    load = tmp_path / "sys/kernel/debug/rknpu/load"
    load.parent.mkdir(parents=True)
    load.write_text("NPU load:  Core0: 1%,")
    if os.geteuid() != 0:  # root reads anything; elsewhere check permission errors too
        load.chmod(0)
    info = sysfs.npu_devfreq(str(tmp_path))
    assert info["cur_freq_hz"] is None and info["governor"] is None and info["available_frequencies_hz"] == []
    assert sysfs.temperatures(str(tmp_path)) == {"thermal_zone1": 61.0}
    assert sysfs.npu_load(str(tmp_path)) in (None, [1])


def test_librknnrt_version_across_read_chunks(tmp_path: Path):
    lib = tmp_path / "usr/lib/librknnrt.so"
    lib.parent.mkdir(parents=True)
    mark = b"librknnrt version: "
    # the marker straddles the 1 MiB read boundary
    lib.write_bytes(b"\x01" * ((1 << 20) - 7) + mark + b"1.5.2 (abc@2023)\0tail")
    assert sysfs.librknnrt_version(str(tmp_path)) == "1.5.2 (abc@2023)"
    lib.write_bytes(b"\x01" * 5000)
    assert sysfs.librknnrt_version(str(tmp_path)) is None


def test_process_memory_of_this_process():
    mem = sysfs.process_memory("/")
    assert mem is not None
    assert mem["vm_rss_kb"] > 1000 and mem["vm_hwm_kb"] >= mem["vm_rss_kb"]


def test_read_telemetry_on_rk3588_tree():
    reading = read_telemetry(RK3588)
    assert reading.npu_load_pct == [21, 11, 0]
    assert reading.npu_freq_hz == 1_000_000_000 and reading.npu_governor == "rknpu_ondemand"
    assert [c["cur_khz"] for c in reading.cpu] == [1_800_000, 2_256_000, 2_256_000]
    assert reading.temperatures_c["soc-thermal"] == pytest.approx(45.23)
