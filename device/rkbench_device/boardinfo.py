"""`info`: board facts in one JSON object (what `rkbench board info` and `doctor` show)."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any, Dict, Optional

from . import __version__, sysfs
from .backends import availability
from .versions import dist_version, numpy_version

DEFAULT_CACHE_DIR = "~/.cache/rkbench"


def disk_free_bytes(directory: str) -> Optional[int]:
    """Free bytes for an unprivileged user on the file system holding `directory`
    (or its nearest existing parent)."""
    current = os.path.abspath(os.path.expanduser(directory))
    while True:
        if os.path.exists(current):
            try:
                st = os.statvfs(current)
            except OSError:
                return None
            return st.f_bavail * st.f_frsize
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def runtime_probe(root: str, model: Optional[str]) -> Dict[str, Any]:
    """What librknnrt itself says about its versions: rknn_init of `model`, then
    RKNN_QUERY_SDK_VERSION (api and driver). Without a model only the file tells."""
    if not model:
        return {
            "model": None,
            "api_version": None,
            "drv_version": None,
            "source": 'the librknnrt.so file only (its "librknnrt version" string); api and driver '
            "versions need a model: info --probe-model MODEL.rknn",
            "error": None,
        }
    from .backends.rknnrt_lib import probe_model

    return probe_model(root, model)


def collect_board_info(
    root: str = "/", cache_dir: str = DEFAULT_CACHE_DIR, probe_model: Optional[str] = None
) -> Dict[str, Any]:
    compatible = sysfs.soc_compatible(root)
    soc = sysfs.soc_name(compatible)
    kernel = sysfs.kernel_release(root)
    if kernel is None and root == "/":
        kernel = platform.release() or None
    return {
        "runner_version": __version__,
        "soc": soc,
        "soc_compatible": compatible,
        "npu_cores": sysfs.npu_core_count(soc),
        "kernel": kernel,
        "kernel_version": sysfs.kernel_version(root),
        "machine": platform.machine(),
        "os": sysfs.os_release(root),
        "python": platform.python_version(),
        "python_executable": os.path.realpath(sys.executable) if sys.executable else None,
        "numpy": numpy_version(),
        "rknn_toolkit_lite2": dist_version(["rknn-toolkit-lite2", "rknn_toolkit_lite2"]),
        "onnxruntime": dist_version(["onnxruntime", "onnxruntime-gpu"]),
        "librknnrt": sysfs.librknnrt_version(root),
        "librknnrt_path": sysfs.librknnrt_path(root),
        "npu_driver": sysfs.npu_driver_version(root),
        "npu_load_pct": sysfs.npu_load(root),
        "npu_devfreq": sysfs.npu_devfreq(root),
        "cpufreq": sysfs.cpufreq(root),
        "temperatures_c": sysfs.temperatures(root),
        "memory": sysfs.meminfo(root),
        "cache_dir": cache_dir,
        "disk_free_bytes": disk_free_bytes(cache_dir),
        "backends": {name: {"available": a.available, "reason": a.reason} for name, a in availability(root).items()},
        "runtime_probe": runtime_probe(root, probe_model),
    }
