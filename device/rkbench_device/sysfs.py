"""Readers for what a board tells through /proc and /sys.

Every reader takes `root` (default "/") so tests point it at a fixture tree. None of
them raises for a missing or unreadable file (debugfs needs root): they return None,
or an empty list/dict for collections.
"""

from __future__ import annotations

import glob
import os
import re
from typing import Any, Dict, List, Optional

#: NPU cores per SoC (by the name in /proc/device-tree/compatible).
NPU_CORES = {
    "rk3588": 3,
    "rk3588s": 3,
    "rk3576": 2,
    "rk3566": 1,
    "rk3568": 1,
    "rk3562": 1,
}

#: Where librknnrt.so is looked for, in this order.
LIBRKNNRT_PATHS = (
    "usr/lib/librknnrt.so",
    "usr/lib64/librknnrt.so",
    "usr/lib/aarch64-linux-gnu/librknnrt.so",
    "usr/local/lib/librknnrt.so",
)

_LOAD_MULTI = re.compile(r"Core(\d+):\s*(\d+)%")
_LOAD_SINGLE = re.compile(r"NPU load:\s*(\d+)%")
_SOC = re.compile(r"^rockchip,(rk\d{4}[a-z]?)$")
_RKNNRT_MARK = b"librknnrt version: "


def path(root: str, rel: str) -> str:
    return os.path.join(root, rel.lstrip("/"))


def read_bytes(root: str, rel: str) -> Optional[bytes]:
    try:
        with open(path(root, rel), "rb") as fh:
            return fh.read()
    except OSError:
        return None


def read_text(root: str, rel: str) -> Optional[str]:
    data = read_bytes(root, rel)
    if data is None:
        return None
    return data.decode("utf-8", "replace").strip()


def read_int(root: str, rel: str) -> Optional[int]:
    text = read_text(root, rel)
    if not text:
        return None
    try:
        return int(text.split()[0])
    except ValueError:
        return None


def _int_list(text: Optional[str]) -> List[int]:
    out = []
    for token in (text or "").split():
        try:
            out.append(int(token))
        except ValueError:
            pass
    return out


def _natural_key(name: str) -> Any:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


# -- SoC ---------------------------------------------------------------------------


def soc_compatible(root: str = "/") -> List[str]:
    """The device-tree compatible strings, most specific first (NUL-separated in the file)."""
    for rel in ("proc/device-tree/compatible", "sys/firmware/devicetree/base/compatible"):
        data = read_bytes(root, rel)
        if data is not None:
            return [s.decode("ascii", "replace") for s in data.split(b"\0") if s]
    return []


def soc_name(compatible: List[str]) -> Optional[str]:
    """ "rk3588" from ["rockchip,rk3588-evb", "rockchip,rk3588"]; None when not a Rockchip SoC."""
    for entry in compatible:
        match = _SOC.match(entry.strip())
        if match:
            return match.group(1)
    return None


def npu_core_count(soc: Optional[str]) -> Optional[int]:
    if soc is None:
        return None
    if soc in NPU_CORES:
        return NPU_CORES[soc]
    return NPU_CORES.get(soc.rstrip("abcdefghijklmnopqrstuvwxyz"))


# -- NPU ---------------------------------------------------------------------------


def parse_npu_load(text: Optional[str]) -> Optional[List[int]]:
    """[21, 11, 0] from "NPU load:  Core0: 21%, Core1: 11%, Core2:  0%,"; [33] from
    "NPU load:  33%"; None when the text is neither."""
    if not text:
        return None
    cores = _LOAD_MULTI.findall(text)
    if cores:
        by_index = sorted((int(i), int(pct)) for i, pct in cores)
        return [pct for _, pct in by_index]
    match = _LOAD_SINGLE.search(text)
    if match:
        return [int(match.group(1))]
    return None


def npu_load(root: str = "/") -> Optional[List[int]]:
    """NPU load per core in percent (debugfs, root only)."""
    return parse_npu_load(read_text(root, "sys/kernel/debug/rknpu/load"))


def npu_driver_version(root: str = "/") -> Optional[str]:
    """ "v0.9.8" from "RKNPU driver: v0.9.8" (debugfs), or /sys/module/rknpu/version."""
    text = read_text(root, "sys/kernel/debug/rknpu/version")
    if text:
        return text.split(":", 1)[1].strip() if ":" in text else text
    return read_text(root, "sys/module/rknpu/version") or None


def npu_devfreq_dir(root: str = "/") -> Optional[str]:
    """The devfreq directory of the NPU (fdab0000.npu on RK3588, fde40000.npu on RK3566)."""
    found = sorted(glob.glob(path(root, "sys/class/devfreq/*.npu")))
    return found[0] if found else None


def npu_devfreq(root: str = "/") -> Optional[Dict[str, Any]]:
    """{"device", "cur_freq_hz", "governor", "available_frequencies_hz", "min_freq_hz", "max_freq_hz"}."""
    directory = npu_devfreq_dir(root)
    if directory is None:
        return None
    return {
        "device": os.path.basename(directory),
        "cur_freq_hz": read_int(directory, "cur_freq"),
        "governor": read_text(directory, "governor"),
        "available_frequencies_hz": _int_list(read_text(directory, "available_frequencies")),
        "min_freq_hz": read_int(directory, "min_freq"),
        "max_freq_hz": read_int(directory, "max_freq"),
    }


def librknnrt_path(root: str = "/") -> Optional[str]:
    for rel in LIBRKNNRT_PATHS:
        candidate = path(root, rel)
        if os.path.isfile(candidate):
            return candidate
    return None


def librknnrt_version(root: str = "/") -> Optional[str]:
    """ "2.3.0 (c949ad889d@2024-11-07T11:35:33)" from the bytes of librknnrt.so
    (what `strings librknnrt.so | grep "librknnrt version"` shows)."""
    lib = librknnrt_path(root)
    return None if lib is None else librknnrt_file_version(lib)


def librknnrt_file_version(lib: str) -> Optional[str]:
    """The "librknnrt version: ..." string inside the library file at `lib`."""
    try:
        with open(lib, "rb") as fh:
            tail = b""
            while True:
                chunk = fh.read(1 << 20)
                if not chunk:
                    return None
                data = tail + chunk
                at = data.find(_RKNNRT_MARK)
                if at >= 0:
                    rest = data[at + len(_RKNNRT_MARK) :]
                    if len(rest) < 200:
                        rest += fh.read(200)
                    end = len(rest)
                    for stop in (b"\0", b"\n"):
                        pos = rest.find(stop)
                        if 0 <= pos < end:
                            end = pos
                    return rest[:end].decode("ascii", "replace").strip() or None
                tail = data[-len(_RKNNRT_MARK) :]
    except OSError:
        return None


# -- CPU, thermal, memory ------------------------------------------------------------


def cpufreq(root: str = "/") -> List[Dict[str, Any]]:
    """One entry per cpufreq policy: {"policy", "cpus", "cur_khz", "governor",
    "min_khz", "max_khz", "available_khz"}."""
    out = []
    pattern = path(root, "sys/devices/system/cpu/cpufreq/policy*")
    for directory in sorted(glob.glob(pattern), key=lambda p: _natural_key(os.path.basename(p))):
        out.append(
            {
                "policy": os.path.basename(directory),
                "cpus": _int_list(read_text(directory, "related_cpus") or read_text(directory, "affected_cpus")),
                "cur_khz": read_int(directory, "scaling_cur_freq"),
                "governor": read_text(directory, "scaling_governor"),
                "min_khz": read_int(directory, "scaling_min_freq"),
                "max_khz": read_int(directory, "scaling_max_freq"),
                "available_khz": _int_list(read_text(directory, "scaling_available_frequencies")),
            }
        )
    return out


def temperatures(root: str = "/") -> Dict[str, float]:
    """Degrees C per thermal zone, keyed by the zone's type (e.g. "soc-thermal");
    a type seen twice gets the zone name appended."""
    out: Dict[str, float] = {}
    pattern = path(root, "sys/class/thermal/thermal_zone*")
    for directory in sorted(glob.glob(pattern), key=lambda p: _natural_key(os.path.basename(p))):
        millideg = read_int(directory, "temp")
        if millideg is None:
            continue
        name = read_text(directory, "type") or os.path.basename(directory)
        if name in out:
            name = "%s/%s" % (name, os.path.basename(directory))
        out[name] = millideg / 1000.0
    return out


def meminfo(root: str = "/") -> Optional[Dict[str, int]]:
    """/proc/meminfo in kB (MemTotal, MemFree, MemAvailable, CmaTotal, CmaFree, ...)."""
    text = read_text(root, "proc/meminfo")
    if not text:
        return None
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields:
            try:
                out[key.strip()] = int(fields[0])
            except ValueError:
                pass
    return out


def process_memory(root: str = "/", pid: str = "self") -> Optional[Dict[str, Optional[int]]]:
    """{"vm_hwm_kb", "vm_rss_kb"} from /proc/<pid>/status (peak and current resident set)."""
    text = read_text(root, "proc/%s/status" % pid)
    if not text:
        return None
    found: Dict[str, Optional[int]] = {"vm_hwm_kb": None, "vm_rss_kb": None}
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            found["vm_hwm_kb"] = _first_int(line)
        elif line.startswith("VmRSS:"):
            found["vm_rss_kb"] = _first_int(line)
    return found


def _first_int(line: str) -> Optional[int]:
    values = _int_list(line.split(":", 1)[1])
    return values[0] if values else None


# -- OS ------------------------------------------------------------------------------


def os_release(root: str = "/") -> Optional[Dict[str, str]]:
    """/etc/os-release (or /usr/lib/os-release) as a dict (NAME, VERSION_ID, PRETTY_NAME, ...)."""
    text = read_text(root, "etc/os-release") or read_text(root, "usr/lib/os-release")
    if not text:
        return None
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def kernel_release(root: str = "/") -> Optional[str]:
    return read_text(root, "proc/sys/kernel/osrelease") or None


def kernel_version(root: str = "/") -> Optional[str]:
    return read_text(root, "proc/version") or None
