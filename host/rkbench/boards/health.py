"""What a board is (`board_info`) and whether it is fit to measure on (`doctor`).

board_info deploys the runner and runs `python3 -m rkbench_device info` on the
board, then adds what the host sees (address, transport, SSH server version).
doctor turns those facts into pass / warn / fail checks, each failing or warning
check with the command that fixes it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rkbench.boards import deploy
from rkbench.boards.transport.base import Transport
from rkbench.errors import BoardError, UsageError
from rkbench_device.sysfs import soc_name
from rkbench_wire import ProtocolError, decode_board_info

PASS, WARN, FAIL = "pass", "warn", "fail"
#: Governors that keep a clock where it was put.
FIXED_GOVERNORS = ("performance", "userspace")
MIN_PYTHON = (3, 8)


@dataclass(frozen=True)
class DoctorLimits:
    temp_warn_c: float = 70.0
    temp_fail_c: float = 85.0
    disk_warn_bytes: int = 1 << 30
    disk_fail_bytes: int = 200 << 20
    mem_warn_kb: int = 256 << 10
    mem_fail_kb: int = 64 << 10


@dataclass
class Check:
    name: str
    status: str  # pass | warn | fail
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


# ----------------------------------------------------------------------------------
# board info
# ----------------------------------------------------------------------------------
def ssh_server_version(transport: Transport) -> str | None:
    """'SSH-2.0-OpenSSH_9.2p1 Debian-2' for an ssh board, else None."""
    inner = getattr(transport, "_t", None)  # paramiko.Transport of SshTransport
    version = getattr(inner, "remote_version", None)
    return str(version) if version else None


def host_view(transport: Transport, python: str | Sequence[str], runner_dir: str | None) -> dict[str, Any]:
    from rkbench.boards.runner_command import python_argv

    address = transport.address
    return {
        "board": address.display,
        "transport": transport.kind,
        "describe": transport.describe(),
        "ssh_server_version": ssh_server_version(transport),
        "python_command": " ".join(python_argv(python)),
        "runner_dir": runner_dir,
    }


def board_soc(transport: Transport, python: str | Sequence[str] = "python3") -> str | None:
    """The board's SoC (the build target), read from its device tree with one command and no
    Python start on the board. Where the login's tools see no device tree on a remote board
    (its Python may run in an emulated userland that has one), the runner's board info
    decides; this machine (the local board) is what `cat` sees."""
    for path in DEVICE_TREE_COMPATIBLE:
        res = transport.run(["cat", "--", path], timeout=30)
        if res.returncode == 0 and res.stdout:
            soc = _soc_of(res.stdout)
            if soc:
                return soc
    if transport.kind == "local":
        return None
    # What the board's Python sees, read by a Python without site or numpy (a tenth of the
    # runner's start); the runner's own board info says why when that Python cannot start.
    from rkbench.boards.runner_command import python_argv

    res = transport.run([*python_argv(python), "-S", "-c", _READ_COMPATIBLE], timeout=60)
    if res.returncode == 0:
        return _soc_of(res.stdout)
    return board_info(transport, python=python).get("soc")


DEVICE_TREE_COMPATIBLE = ("/proc/device-tree/compatible", "/sys/firmware/devicetree/base/compatible")
_READ_COMPATIBLE = (
    "import sys\n"
    f"for path in {DEVICE_TREE_COMPATIBLE!r}:\n"
    "    try:\n"
    "        with open(path, 'rb') as f:\n"
    "            sys.stdout.buffer.write(f.read())\n"
    "        break\n"
    "    except OSError:\n"
    "        continue\n"
)


def _soc_of(compatible: bytes) -> str | None:
    return soc_name([s.decode("ascii", "replace") for s in compatible.split(b"\0") if s])


def board_info(
    transport: Transport,
    *,
    python: str | Sequence[str] = "python3",
    cache: str | None = None,
    sysfs_root: str | None = None,
    timeout: float = 120.0,
    probe_model: Path | None = None,
) -> dict[str, Any]:
    """The board's facts (rkbench_wire.info keys) plus "host": what the host sees.

    probe_model: a small .rknn for the board's SoC; pushed and initialised by the NPU runtime
    so that runtime_probe holds the api and driver versions the runtime itself reports.

    Raises RunnerFailed (a BoardError) when the board's Python cannot run the
    runner (missing python3, too old), saying what to do."""
    from rkbench.boards.runner_command import explain_start_failure, runner_argv

    runner_dir = deploy.ensure_runner(transport, cache=cache)
    args = ["--cache-dir", deploy.cache_dir(transport, cache)]
    if sysfs_root:
        args += ["--root", sysfs_root]
    if probe_model is not None:
        args += ["--probe-model", deploy.ensure_blob(transport, probe_model, cache=cache)]
    res = transport.run(runner_argv(runner_dir, python, "info", *args), timeout=timeout)
    board = transport.describe()
    if res.returncode != 0:
        raise explain_start_failure(
            transport, python, res.returncode, res.stderr_text, what="`rkbench_device info`", runner_dir=runner_dir
        )
    try:
        info = decode_board_info(_last_json_line(res.stdout_text))
    except ProtocolError as exc:
        raise BoardError(
            f"{board}: the runner's board info is not understood: {exc}; delete {runner_dir} on the board and run again"
        ) from None
    info["host"] = host_view(transport, python, runner_dir)
    return info


def _last_json_line(text: str) -> str:
    """The info object (a login script may print before it)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.lstrip().startswith("{"):
            return line
    return text


# ----------------------------------------------------------------------------------
# versions
# ----------------------------------------------------------------------------------
def version_tuple(text: str | None) -> tuple[int, ...] | None:
    """(2, 3, 0) from "2.3.0 (c949ad889d@2024-11-07T11:35:33)", "v0.9.8", "2.5.0b0"."""
    if not text:
        return None
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not match:
        return None
    return tuple(int(g) for g in match.groups() if g is not None)


def host_toolkit_version(python: str | None = None) -> tuple[str | None, str]:
    """(rknn-toolkit2 version on this host or None, why not)."""
    from rkbench.toolkit.worker import toolkit_version

    try:
        return toolkit_version(python or sys.executable), ""
    except UsageError as exc:
        return None, str(exc)


def _runtime_vs_toolkit(runtime: tuple[int, ...], toolkit: tuple[int, ...]) -> str:
    """pass | warn | fail for librknnrt against rknn-toolkit2 (major.minor)."""
    if runtime[:1] != toolkit[:1]:
        return FAIL
    if runtime[:2] < toolkit[:2]:
        return FAIL  # a model from a newer toolkit than the runtime may be refused
    if runtime[:2] != toolkit[:2]:
        return WARN
    return PASS


# ----------------------------------------------------------------------------------
# doctor
# ----------------------------------------------------------------------------------
LIBRKNNRT_SOURCE = (
    "librknnrt.so from rknn-toolkit2's rknpu2/runtime/Linux/librknn_api/aarch64/ "
    "(github.com/airockchip/rknn-toolkit2), same release as your toolkit"
)


def doctor(
    transport: Transport,
    toolkit_version: str | None,
    *,
    python: str | Sequence[str] = "python3",
    cache: str | None = None,
    sysfs_root: str | None = None,
    info: dict[str, Any] | None = None,
    limits: DoctorLimits = DoctorLimits(),
    toolkit_note: str = "",
    probe_model: Path | None = None,
) -> list[Check]:
    """Checks of a board, in the order a field engineer would fix them.

    toolkit_version: rknn-toolkit2 on the host (None when it is not installed there;
    `toolkit_note` then says why). `info` skips the board_info call when given."""
    from rkbench.boards.runner_command import RunnerFailed, board_name

    board_arg = board_name(transport)
    provision = f"rkbench provision {board_arg}"
    checks: list[Check] = []
    if info is None:
        try:
            info = board_info(transport, python=python, cache=cache, sysfs_root=sysfs_root, probe_model=probe_model)
        except RunnerFailed as err:
            checks.append(Check("connection", PASS, transport.describe()))
            checks.append(Check("python", FAIL, str(err), _python_fix(err.kind, provision)))
            return checks
    host = info.get("host") or {}
    conn = host.get("describe") or transport.describe()
    if host.get("ssh_server_version"):
        conn += f" ({host['ssh_server_version']})"
    checks.append(Check("connection", PASS, conn))

    soc = info.get("soc")
    rockchip = soc is not None
    if rockchip:
        cores = info.get("npu_cores")
        checks.append(Check("soc", PASS, f"{soc}" + (f", {cores} NPU core(s)" if cores else "")))
    else:
        checks.append(
            Check(
                "soc",
                WARN,
                "not a Rockchip board (no rockchip,rkXXXX in /proc/device-tree/"
                f"compatible; machine {info.get('machine') or '?'}): only the onnxruntime and "
                "simulator backends can run here",
                "use a Rockchip RK3566/RK3588 board to measure the NPU",
            )
        )

    checks += _python_checks(info, provision)
    checks += _runtime_checks(info, toolkit_version, toolkit_note, rockchip, provision)
    probe = _probe_check(info, rockchip, provision)
    if probe is not None:
        checks.append(probe)
    checks += _clock_checks(info, rockchip)
    checks.append(_temperature_check(info, limits))
    checks.append(_disk_check(info, limits))
    checks.append(_memory_check(info, limits))
    checks.append(_backend_check(info, provision))
    return checks


def _probe_check(info: dict[str, Any], rockchip: bool, provision: str) -> Check | None:
    """Did the NPU runtime initialise a model and say who it is (rknn_query SDK_VERSION)?"""
    probe = info.get("runtime_probe") or {}
    if not info.get("librknnrt_path"):
        return None  # the librknnrt check already says what is missing
    if probe.get("api_version"):
        return Check(
            "npu-runtime",
            PASS,
            f"the runtime initialised a model for {info.get('soc') or '?'}: api {probe['api_version']}, "
            f"driver {probe.get('drv_version') or '?'}",
        )
    if probe.get("error"):
        return Check(
            "npu-runtime",
            FAIL if rockchip else WARN,
            f"the NPU runtime could not initialise a model: {probe['error']}",
            "load the rknpu driver (`modprobe rknpu`, or a kernel with it), check /dev/rknpu or "
            f"/dev/dri, and that librknnrt matches the driver; then `{provision} --librknnrt PATH` if needed",
        )
    return Check(
        "npu-runtime",
        WARN,
        "not asked: " + (probe.get("source") or "no probe model"),
        "install rknn-toolkit2 on this host so rkbench can build a probe model for the board's SoC",
    )


def _python_fix(kind: str, provision: str) -> str:
    if kind == "numpy_missing":
        return provision
    return (
        f"install Python 3.8+ on the board (apt-get install python3 python3-numpy) or give its path with "
        f"--python, then {provision}"
    )


def _python_checks(info: dict[str, Any], provision: str) -> list[Check]:
    out = []
    py = info.get("python") or "?"
    exe = info.get("python_executable")
    where = f" ({exe})" if exe else ""
    if (version_tuple(py) or (0,)) >= MIN_PYTHON:
        out.append(Check("python", PASS, f"Python {py}{where}"))
    else:
        out.append(
            Check(
                "python",
                FAIL,
                f"Python {py}{where} is older than 3.8 (the runner needs 3.8+)",
                f"install a newer python3 on the board or point --python at one, then {provision}",
            )
        )
    numpy = info.get("numpy")
    if numpy:
        out.append(Check("numpy", PASS, f"numpy {numpy}"))
    else:
        out.append(
            Check(
                "numpy",
                FAIL,
                "numpy is not installed for the board's Python (the runner needs it)",
                f"{provision} (pushes a numpy wheel matching the board; the board needs no internet)",
            )
        )
    return out


def _runtime_checks(
    info: dict[str, Any], toolkit: str | None, toolkit_note: str, rockchip: bool, provision: str
) -> list[Check]:
    out = []
    tk = version_tuple(toolkit)
    # rknn-toolkit-lite2 (the Python API of the NPU runtime)
    lite2 = info.get("rknn_toolkit_lite2")
    if not lite2:
        out.append(
            Check(
                "rknn-toolkit-lite2",
                FAIL if rockchip else WARN,
                "rknn-toolkit-lite2 (rknnlite) is not installed: the rknnlite backend cannot run"
                + ("" if rockchip else " (not a Rockchip board: it would not run here anyway)"),
                provision if rockchip else "only Rockchip aarch64 boards can use it",
            )
        )
    elif tk is not None and (version_tuple(lite2) or ())[:2] != tk[:2]:
        out.append(
            Check(
                "rknn-toolkit-lite2",
                WARN,
                f"rknn-toolkit-lite2 {lite2} on the board, rknn-toolkit2 {toolkit} on the host (major.minor differ)",
                f"{provision} --version {toolkit}",
            )
        )
    elif info.get("librknnrt") and (version_tuple(lite2) or ())[:2] != (version_tuple(info["librknnrt"]) or ())[:2]:
        out.append(
            Check(
                "rknn-toolkit-lite2",
                WARN,
                f"rknn-toolkit-lite2 {lite2} but librknnrt "
                f"{info['librknnrt']} (major.minor differ: the Python API and the runtime come from "
                "different releases)",
                f"{provision} --version <the librknnrt version>, or a matching --librknnrt",
            )
        )
    else:
        out.append(Check("rknn-toolkit-lite2", PASS, f"rknn-toolkit-lite2 {lite2}"))

    # librknnrt.so against the host's toolkit
    rt = info.get("librknnrt")
    rt_path = info.get("librknnrt_path") or "/usr/lib/librknnrt.so"
    lib_fix = f"{provision} --librknnrt PATH/TO/librknnrt.so   ({LIBRKNNRT_SOURCE})"
    if not rt:
        found = info.get("librknnrt_path")
        detail = (
            f"{found} carries no 'librknnrt version' string"
            if found
            else "librknnrt.so is not in /usr/lib (the NPU runtime library rknnlite loads)"
        )
        out.append(
            Check(
                "librknnrt",
                FAIL if rockchip else WARN,
                detail,
                lib_fix if rockchip else "only Rockchip boards have an NPU runtime",
            )
        )
    else:
        rtv = version_tuple(rt)
        if tk is None:
            out.append(
                Check(
                    "librknnrt",
                    WARN,
                    f"librknnrt {rt} ({rt_path}); cannot compare with rknn-toolkit2: "
                    f"{toolkit_note or 'not installed on this host'}",
                    "pip install 'rkbench[toolkit]' on this host (or --toolkit-python) to compare versions",
                )
            )
        elif rtv is None:
            out.append(Check("librknnrt", WARN, f"librknnrt version {rt!r} not understood", lib_fix))
        else:
            verdict = _runtime_vs_toolkit(rtv, tk)
            if verdict == PASS:
                out.append(Check("librknnrt", PASS, f"librknnrt {rt}, matches rknn-toolkit2 {toolkit}"))
            else:
                why = ("older than" if rtv[:2] < tk[:2] else "newer than") + f" rknn-toolkit2 {toolkit} on the host"
                effect = (
                    "models it builds may be refused ('Invalid RKNN model version') or run wrong"
                    if verdict == FAIL
                    else "usually works, but results are only comparable within one release"
                )
                out.append(Check("librknnrt", verdict, f"librknnrt {rt} ({rt_path}) is {why}: {effect}", lib_fix))

    # NPU kernel driver
    driver = info.get("npu_driver")
    if driver:
        out.append(Check("npu-driver", PASS, f"RKNPU driver {driver}"))
    elif rockchip:
        out.append(
            Check(
                "npu-driver",
                WARN,
                "the RKNPU driver version is not readable "
                "(/sys/kernel/debug/rknpu/version needs root and a mounted debugfs)",
                "log in as root, and: mount -t debugfs none /sys/kernel/debug",
            )
        )
    else:
        out.append(
            Check(
                "npu-driver", WARN, "no RKNPU driver (not a Rockchip board)", "only Rockchip boards have an NPU driver"
            )
        )
    return out


def _mhz(hz: int | None, per: int) -> str:
    return "?" if hz is None else f"{hz / per:.0f} MHz"


def _clock_checks(info: dict[str, Any], rockchip: bool) -> list[Check]:
    out = []
    dev = info.get("npu_devfreq")
    if dev:
        gov = dev.get("governor") or "?"
        path = f"/sys/class/devfreq/{dev.get('device')}"
        avail = dev.get("available_frequencies_hz") or []
        top = max(avail) if avail else dev.get("max_freq_hz")
        detail = f"NPU at {_mhz(dev.get('cur_freq_hz'), 1_000_000)}, governor {gov}"
        if gov in FIXED_GOVERNORS:
            out.append(Check("npu-clock", PASS, detail))
        else:
            fix = f"echo performance > {path}/governor"
            if top:
                fix += f"   (or: echo userspace > {path}/governor; echo {top} > {path}/userspace/set_freq)"
            out.append(
                Check(
                    "npu-clock",
                    WARN,
                    f"{detail}: the clock moves with load, so latencies drift "
                    "(the vendor locks clocks before benchmarking)",
                    fix,
                )
            )
    elif rockchip:
        out.append(
            Check(
                "npu-clock",
                WARN,
                "the NPU clock is not visible (no /sys/class/devfreq/*.npu)",
                "check the kernel's rknpu devfreq support; numbers may not match the published ones",
            )
        )
    cpus = info.get("cpufreq") or []
    if cpus:
        loose = [p for p in cpus if (p.get("governor") or "") not in FIXED_GOVERNORS]
        summary = ", ".join(
            f"{p.get('policy')} {_mhz(p.get('cur_khz'), 1000)} {p.get('governor') or '?'}" for p in cpus
        )
        if loose:
            names = " ".join(str(p.get("policy")) for p in loose)
            out.append(
                Check(
                    "cpu-clock",
                    WARN,
                    f"CPU governors not fixed ({summary}): latencies drift with the "
                    "load (the vendor locks clocks before benchmarking)",
                    f"for p in {names}; do echo performance > /sys/devices/system/cpu/cpufreq/$p/"
                    "scaling_governor; done",
                )
            )
        else:
            out.append(Check("cpu-clock", PASS, summary))
    else:
        out.append(
            Check(
                "cpu-clock",
                WARN,
                "CPU clocks are not visible (no cpufreq in /sys)",
                "nothing to do if the kernel has no cpufreq; otherwise check that the board exposes it",
            )
        )
    return out


def _temperature_check(info: dict[str, Any], limits: DoctorLimits) -> Check:
    temps = info.get("temperatures_c") or {}
    if not temps:
        return Check(
            "temperature",
            WARN,
            "no thermal zone is readable (/sys/class/thermal)",
            "check the board's thermal driver; a hot NPU throttles without telling",
        )
    zone, hottest = max(temps.items(), key=lambda kv: kv[1])
    detail = f"hottest {zone} {hottest:.1f} C"
    fix = "let the board cool down, add a heatsink or fan, then run again"
    if hottest >= limits.temp_fail_c:
        return Check("temperature", FAIL, f"{detail}: at or above {limits.temp_fail_c:g} C the SoC throttles", fix)
    if hottest >= limits.temp_warn_c:
        return Check("temperature", WARN, f"{detail}: close to throttling ({limits.temp_fail_c:g} C)", fix)
    return Check("temperature", PASS, detail)


def _bytes(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.1f} GB"
    return f"{n / (1 << 20):.0f} MB"


def _disk_check(info: dict[str, Any], limits: DoctorLimits) -> Check:
    free = info.get("disk_free_bytes")
    where = info.get("cache_dir") or "~/.cache/rkbench"
    fix = f"free space on the board (old models live in {where}/blobs: rm -rf {where}/blobs when no run is going)"
    if free is None:
        return Check("disk", WARN, f"free space in {where} is not readable", fix)
    detail = f"{_bytes(free)} free in {where}"
    if free < limits.disk_fail_bytes:
        return Check("disk", FAIL, f"{detail}: models and outputs will not fit", fix)
    if free < limits.disk_warn_bytes:
        return Check("disk", WARN, f"{detail}: big models may not fit", fix)
    return Check("disk", PASS, detail)


def _memory_check(info: dict[str, Any], limits: DoctorLimits) -> Check:
    mem = info.get("memory") or {}
    avail = mem.get("MemAvailable", mem.get("MemFree"))
    total = mem.get("MemTotal")
    if avail is None:
        return Check("memory", WARN, "memory is not readable (/proc/meminfo)", "check /proc on the board")
    detail = f"{_bytes(avail * 1024)} available" + (f" of {_bytes(total * 1024)}" if total else "")
    fix = "stop other programs on the board (top / systemctl) before measuring"
    if avail < limits.mem_fail_kb:
        return Check("memory", FAIL, f"{detail}: a model load may be killed", fix)
    if avail < limits.mem_warn_kb:
        return Check("memory", WARN, f"{detail}: other programs may disturb the figures", fix)
    return Check("memory", PASS, detail)


def _backend_check(info: dict[str, Any], provision: str) -> Check:
    backends = info.get("backends") or {}
    usable = sorted(name for name, b in backends.items() if (b or {}).get("available"))
    listing = "; ".join(
        f"{name}: {'yes' if b.get('available') else 'no'} ({b.get('reason')})" for name, b in sorted(backends.items())
    )
    if not usable:
        return Check("backends", FAIL, f"no backend can run a model here: {listing}", provision)
    if "rknnlite" not in usable and info.get("soc"):
        return Check("backends", WARN, f"usable: {', '.join(usable)}; the NPU (rknnlite) is not: {listing}", provision)
    return Check("backends", PASS, f"usable: {', '.join(usable)}")


def worst(checks: Sequence[Check]) -> str:
    statuses = {c.status for c in checks}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS
