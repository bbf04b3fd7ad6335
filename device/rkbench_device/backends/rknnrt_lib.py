"""librknnrt itself, without numpy: finding and loading the library (with the reason in
words when it cannot be loaded), and one rknn_context (init, typed queries, core mask,
destroy). `availability()` and `info` use this module, so they work on a board Python
that has no numpy yet (the host's doctor then says what to provision).
"""

from __future__ import annotations

import os
import platform
import struct
from typing import Any, Dict, Optional, Sequence, Tuple

from rkbench_wire.constants import ERR_BACKEND_FAILED, ERR_BACKEND_MISSING, ERR_CORE_MASK_REFUSED

from .. import sysfs
from ..errors import RunnerError

try:
    import ctypes

    from . import rknnrt_abi as abi

    _NO_CTYPES: Optional[BaseException] = None
except ImportError as _exc:  # a board Python built without _ctypes (libffi missing)
    ctypes = None  # type: ignore[assignment]
    abi = None  # type: ignore[assignment]
    _NO_CTYPES = _exc

#: Environment variable naming the librknnrt.so to load (tests, unusual installs).
LIBRKNNRT_ENV = "RKBENCH_LIBRKNNRT"
PROVISION_FIX = "fix: rkbench provision BOARD --librknnrt PATH"

#: ELF e_machine -> name, and platform.machine() -> e_machine.
_ELF_MACHINES = {3: "x86 (i386)", 40: "arm (32-bit)", 62: "x86_64", 183: "aarch64"}
_HOST_MACHINES = {
    "x86_64": 62,
    "amd64": 62,
    "i386": 3,
    "i686": 3,
    "aarch64": 183,
    "arm64": 183,
    "armv7l": 40,
    "armv8l": 40,
    "armv6l": 40,
}


# -- the library ----------------------------------------------------------------------------
def library_path(root: str = "/") -> Optional[str]:
    """$RKBENCH_LIBRKNNRT, else the first librknnrt.so under `root` (sysfs.LIBRKNNRT_PATHS)."""
    override = os.environ.get(LIBRKNNRT_ENV)
    if override:
        return override
    return sysfs.librknnrt_path(root)


class Runtime:
    """A loaded librknnrt with our prototypes declared, and which optional symbols it lacks."""

    def __init__(self, lib: Any, path: str, missing: Sequence[str]) -> None:
        self.lib = lib
        self.path = path
        self.missing = set(missing)
        self.version = sysfs.librknnrt_file_version(path)

    def has(self, symbol: str) -> bool:
        return symbol not in self.missing

    def describe(self) -> str:
        return "librknnrt %s at %s" % (self.version or "(version string not found)", self.path)


def no_ctypes_message() -> str:
    return (
        "this board's Python (%s) has no working ctypes (%s): the rknnrt backend and "
        "rknn-toolkit-lite2 both need it; install the Python's libffi/ctypes support "
        "(e.g. the distribution's full python3 package) or use another Python with --python"
        % (platform.python_version(), _NO_CTYPES)
    )


def open_runtime(root: str = "/") -> Runtime:
    """Load librknnrt and declare the API; RunnerError(ERR_BACKEND_MISSING) saying why not."""
    if ctypes is None:
        raise RunnerError(ERR_BACKEND_MISSING, no_ctypes_message())
    path = library_path(root)
    if path is None:
        raise RunnerError(
            ERR_BACKEND_MISSING,
            "librknnrt.so is not on this board (looked for %s under %s): %s"
            % (", ".join("/" + p for p in sysfs.LIBRKNNRT_PATHS), root, PROVISION_FIX),
        )
    if not os.path.isfile(path):
        raise RunnerError(
            ERR_BACKEND_MISSING,
            "librknnrt.so not found at %s (%s=%s): %s"
            % (path, LIBRKNNRT_ENV, os.environ.get(LIBRKNNRT_ENV), PROVISION_FIX),
        )
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise RunnerError(ERR_BACKEND_MISSING, load_failure(path, str(exc))) from exc
    missing_required, missing_optional = abi.declare(lib)
    if missing_required:
        raise RunnerError(
            ERR_BACKEND_MISSING,
            "%s loads but lacks %s: it is not librknnrt (or a broken copy): %s"
            % (path, ", ".join(missing_required), PROVISION_FIX),
        )
    return Runtime(lib, path, missing_optional)


def elf_kind(path: str) -> Optional[Tuple[int, int]]:
    """(bits, e_machine) from the ELF header of a shared object, or None when the file is
    not one (no ELF magic, or e_type is not ET_DYN)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return None
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[4] not in (1, 2):
        return None
    endian = "<" if head[5] == 1 else ">"
    e_type, machine = struct.unpack(endian + "HH", head[16:20])
    if e_type != 3:  # ET_DYN
        return None
    return (32 if head[4] == 1 else 64), machine


def load_failure(path: str, dlerror: str) -> str:
    """Why dlopen failed, in words: wrong architecture, not a library, or a dependency."""
    kind = elf_kind(path)
    here_bits = ctypes.sizeof(ctypes.c_void_p) * 8 if ctypes is not None else 64
    here = platform.machine()
    if kind is None:
        return (
            "%s is not a shared library (no ELF shared-object header: a placeholder, a text file or a "
            "truncated copy; dlopen said: %s): %s" % (path, dlerror, PROVISION_FIX)
        )
    bits, machine = kind
    want = _HOST_MACHINES.get(here.lower())
    if bits != here_bits or (want is not None and machine != want):
        return (
            "%s is a %d-bit %s library but this Python is %d-bit on %s: wrong architecture (dlopen said: %s); "
            "install the %s build of librknnrt.so: %s"
            % (
                path,
                bits,
                _ELF_MACHINES.get(machine, "machine %d" % machine),
                here_bits,
                here,
                dlerror,
                here,
                PROVISION_FIX,
            )
        )
    return (
        "%s could not be loaded: %s (a library it needs is missing, or it was built for a newer glibc "
        "than this board's): %s" % (path, dlerror, PROVISION_FIX)
    )


def probe(root: str = "/") -> Tuple[bool, str]:
    """Whether librknnrt loads here (no model is run), and the reason in words."""
    try:
        runtime = open_runtime(root)
    except RunnerError as err:
        return False, err.message
    return True, "%s loads" % runtime.describe()


def versions(root: str = "/") -> Dict[str, Optional[str]]:
    path = library_path(root)
    return {
        "librknnrt": sysfs.librknnrt_file_version(path) if path else None,
        "librknnrt_path": path,
    }


def read_model(path: str) -> Any:
    """The .rknn as a writable ctypes buffer (rknn_init takes a void*, not a const one)."""
    with open(path, "rb") as fh:
        data = bytearray(fh.read())
    return (ctypes.c_char * len(data)).from_buffer(data), len(data)


class ContextError(RunnerError):
    """rknn_init / rknn_dup_context failed; out_of_memory when the runtime said
    RKNN_ERR_MALLOC_FAIL (a throughput sweep stops there instead of failing)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(ERR_BACKEND_FAILED, message)
        self.code = code
        self.out_of_memory = code == -4  # RKNN_ERR_MALLOC_FAIL


def context_error(call: str, ret: int, where: str) -> ContextError:
    return ContextError("%s (%s)" % (abi.describe_error(call, ret), where), ret)


class Context:
    """One rknn_context: rknn_init from the model buffer, queries, rknn_destroy."""

    def __init__(self, runtime: Runtime, model_path: str, flags: int = 0, share_with: Optional[Context] = None) -> None:
        """share_with: init with RKNN_FLAG_SHARE_WEIGHT_MEM and extend->ctx = that context
        (the weights are not loaded again)."""
        self.runtime = runtime
        self.lib = runtime.lib
        self.handle = abi.rknn_context(0)
        buf, size = read_model(model_path)
        extend = None
        if share_with is not None:
            flags |= abi.RKNN_FLAG_SHARE_WEIGHT_MEM
            # the larger (2.5) struct: its first fields are the 2.3 one's, the rest stays zero
            ext = abi.RknnInitExtendV25()
            ext.ctx = share_with.handle.value
            extend = ctypes.byref(ext)
        ret = self.lib.rknn_init(ctypes.byref(self.handle), buf, size, flags, extend)
        if ret != 0:
            raise context_error("rknn_init", ret, "model %s, flags 0x%x, %s" % (model_path, flags, runtime.describe()))
        self.alive = True

    @classmethod
    def dup(cls, parent: Context) -> Context:
        """A second context on the same model with rknn_dup_context (weights shared)."""
        ctx = cls.__new__(cls)
        ctx.runtime = parent.runtime
        ctx.lib = parent.lib
        ctx.handle = abi.rknn_context(0)
        ret = ctx.lib.rknn_dup_context(ctypes.byref(parent.handle), ctypes.byref(ctx.handle))
        if ret != 0:
            raise context_error("rknn_dup_context", ret, parent.runtime.describe())
        ctx.alive = True
        return ctx

    def query(self, cmd: int, out: Any) -> int:
        return self.lib.rknn_query(self.handle, cmd, ctypes.byref(out), ctypes.sizeof(out))

    def check(self, ret: int, call: str, core_mask: Optional[str] = None) -> None:
        if ret != 0:
            raise RunnerError(
                ERR_BACKEND_FAILED,
                "%s (%s)" % (abi.describe_error(call, ret), self.runtime.describe()),
                core_mask=core_mask,
            )

    def attr(self, cmd: int, index: int) -> Tuple[int, Any]:
        attr = abi.RknnTensorAttr()
        attr.index = index
        return self.query(cmd, attr), attr

    def sdk_version(self) -> Tuple[Optional[str], Optional[str]]:
        sdk = abi.RknnSdkVersion()
        if self.query(abi.RKNN_QUERY_SDK_VERSION, sdk) != 0:
            return None, None
        return (
            sdk.api_version.decode("utf-8", "replace").strip() or None,
            sdk.drv_version.decode("utf-8", "replace").strip() or None,
        )

    def set_core_mask(self, mask: str, npu_cores: Optional[int]) -> None:
        """Single-core SoCs refuse rknn_set_core_mask (core 0 is the only core): skipped
        there, as for the rknnlite backend; "auto" on an unknown SoC is the default too."""
        if npu_cores == 1 or (mask == "auto" and npu_cores is None):
            return
        if not self.runtime.has("rknn_set_core_mask"):
            if mask == "auto":
                return
            raise RunnerError(
                ERR_CORE_MASK_REFUSED,
                "core mask %s needs rknn_set_core_mask, which %s lacks "
                "(an older runtime): run with core mask auto or update librknnrt (%s)"
                % (mask, self.runtime.describe(), PROVISION_FIX),
                core_mask=mask,
            )
        value = abi.CORE_MASKS[mask]
        ret = self.lib.rknn_set_core_mask(self.handle, value)
        if ret != 0:
            raise RunnerError(
                ERR_CORE_MASK_REFUSED,
                "%s (%s)"
                % (abi.describe_error("rknn_set_core_mask(%s [%d])" % (mask, value), ret), self.runtime.describe()),
                core_mask=mask,
            )

    def destroy(self) -> None:
        if self.alive:
            self.alive = False
            self.lib.rknn_destroy(self.handle)


def probe_model(root: str, model_path: str) -> Dict[str, Any]:
    """For `info --probe-model`: init the model and read SDK_VERSION (api and driver)."""
    out: Dict[str, Any] = {
        "model": model_path,
        "api_version": None,
        "drv_version": None,
        "source": "rknn_query(RKNN_QUERY_SDK_VERSION)",
        "error": None,
    }
    if not os.path.isfile(model_path):
        out["error"] = "model not found on the board: %s" % model_path
        return out
    try:
        runtime = open_runtime(root)
        context = Context(runtime, model_path)
    except RunnerError as err:
        out["error"] = err.message
        return out
    try:
        out["api_version"], out["drv_version"] = context.sdk_version()
        if out["api_version"] is None:
            out["error"] = "rknn_query(RKNN_QUERY_SDK_VERSION) failed (%s)" % runtime.describe()
    finally:
        context.destroy()
    return out
