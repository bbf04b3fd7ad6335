"""Our rknn_abi.h against the layouts and values in the facts file, on x86_64 and aarch64.

A C program compiled with the header prints sizeof/offsetof of every struct and field the
facts list (and the enum and flag values); each number is checked against the facts. The
aarch64 program runs under qemu-aarch64-static. rknn_init_extend: the facts give 136 bytes
(SDK 2.3.2 header) and 144 bytes (what lite2 2.5.0 passes, with user_key @24); the header
declares the 2.5.0 one, and both share the first 24 bytes, the only ones the stand-in reads.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.standins.librknnrt.build import CFLAGS, COMPILERS, HERE

# struct -> (size, {field: offset}), as RKNN-FACTS.md gives them (same on both architectures).
LAYOUTS = {
    "rknn_input_output_num": (8, {"n_input": 0, "n_output": 4}),
    "rknn_tensor_attr": (376, {"index": 0, "n_dims": 4, "dims": 8, "name": 72, "n_elems": 328, "size": 332,
                               "fmt": 336, "type": 340, "qnt_type": 344, "fl": 348, "zp": 352, "scale": 356,
                               "w_stride": 360, "size_with_stride": 364, "pass_through": 368, "h_stride": 372}),
    "rknn_input": (32, {"index": 0, "buf": 8, "size": 16, "pass_through": 20, "type": 24, "fmt": 28}),
    "rknn_output": (24, {"want_float": 0, "is_prealloc": 1, "index": 4, "buf": 8, "size": 16}),
    "rknn_perf_run": (8, {"run_duration": 0}),
    "rknn_perf_detail": (16, {"perf_data": 0, "data_len": 8}),
    "rknn_sdk_version": (512, {"api_version": 0, "drv_version": 256}),
    "rknn_mem_size": (64, {"total_weight_size": 0, "total_internal_size": 4, "total_dma_allocated_size": 8,
                           "total_sram_size": 16, "free_sram_size": 20, "reserved": 24}),
    "rknn_tensor_mem": (40, {"virt_addr": 0, "phys_addr": 8, "fd": 16, "offset": 20, "size": 24, "flags": 28,
                             "priv_data": 32}),
    "rknn_init_extend": (144, {"ctx": 0, "real_model_offset": 8, "real_model_size": 12, "model_buffer_fd": 16,
                               "model_buffer_flags": 20, "user_key": 24, "reserved": 32}),
    "rknn_init_extend_v2_3_2": (136, {"ctx": 0, "real_model_offset": 8, "real_model_size": 12,
                                      "model_buffer_fd": 16, "model_buffer_flags": 20, "reserved": 24}),
    "rknn_context": (8, {}),
}

VALUES = {
    # query ids
    "RKNN_QUERY_IN_OUT_NUM": 0, "RKNN_QUERY_INPUT_ATTR": 1, "RKNN_QUERY_OUTPUT_ATTR": 2,
    "RKNN_QUERY_PERF_DETAIL": 3, "RKNN_QUERY_PERF_RUN": 4, "RKNN_QUERY_SDK_VERSION": 5, "RKNN_QUERY_MEM_SIZE": 6,
    "RKNN_QUERY_CUSTOM_STRING": 7, "RKNN_QUERY_NATIVE_INPUT_ATTR": 8, "RKNN_QUERY_NATIVE_OUTPUT_ATTR": 9,
    "RKNN_QUERY_NATIVE_NHWC_INPUT_ATTR": 10, "RKNN_QUERY_NATIVE_NHWC_OUTPUT_ATTR": 11,
    "RKNN_QUERY_DEVICE_MEM_INFO": 12, "RKNN_QUERY_INPUT_DYNAMIC_RANGE": 13, "RKNN_QUERY_CURRENT_INPUT_ATTR": 14,
    "RKNN_QUERY_CURRENT_OUTPUT_ATTR": 15, "RKNN_QUERY_CURRENT_NATIVE_INPUT_ATTR": 16,
    "RKNN_QUERY_CURRENT_NATIVE_OUTPUT_ATTR": 17,
    # init flags
    "RKNN_FLAG_PRIOR_HIGH": 0x0, "RKNN_FLAG_PRIOR_MEDIUM": 0x1, "RKNN_FLAG_PRIOR_LOW": 0x2,
    "RKNN_FLAG_ASYNC_MASK": 0x4, "RKNN_FLAG_COLLECT_PERF_MASK": 0x8, "RKNN_FLAG_MEM_ALLOC_OUTSIDE": 0x10,
    "RKNN_FLAG_SHARE_WEIGHT_MEM": 0x20, "RKNN_FLAG_ENABLE_SRAM": 0x800, "RKNN_FLAG_SHARE_SRAM": 0x1000,
    # errors
    "RKNN_ERR_FAIL": -1, "RKNN_ERR_TIMEOUT": -2, "RKNN_ERR_DEVICE_UNAVAILABLE": -3, "RKNN_ERR_MALLOC_FAIL": -4,
    "RKNN_ERR_PARAM_INVALID": -5, "RKNN_ERR_MODEL_INVALID": -6, "RKNN_ERR_CTX_INVALID": -7,
    "RKNN_ERR_INPUT_INVALID": -8, "RKNN_ERR_OUTPUT_INVALID": -9, "RKNN_ERR_DEVICE_UNMATCH": -10,
    "RKNN_ERR_INCOMPATILE_PRE_COMPILE_MODEL": -11, "RKNN_ERR_INCOMPATILE_OPTIMIZATION_LEVEL_VERSION": -12,
    "RKNN_ERR_TARGET_PLATFORM_UNMATCH": -13,
    # tensor enums
    "RKNN_TENSOR_FLOAT32": 0, "RKNN_TENSOR_FLOAT16": 1, "RKNN_TENSOR_INT8": 2, "RKNN_TENSOR_UINT8": 3,
    "RKNN_TENSOR_INT16": 4, "RKNN_TENSOR_UINT16": 5, "RKNN_TENSOR_INT32": 6, "RKNN_TENSOR_UINT32": 7,
    "RKNN_TENSOR_INT64": 8, "RKNN_TENSOR_BOOL": 9, "RKNN_TENSOR_INT4": 10, "RKNN_TENSOR_BFLOAT16": 11,
    "RKNN_TENSOR_NCHW": 0, "RKNN_TENSOR_NHWC": 1, "RKNN_TENSOR_NC1HWC2": 2, "RKNN_TENSOR_UNDEFINED": 3,
    "RKNN_TENSOR_QNT_NONE": 0, "RKNN_TENSOR_QNT_DFP": 1, "RKNN_TENSOR_QNT_AFFINE_ASYMMETRIC": 2,
    # core masks (the values lite2 passes)
    "RKNN_NPU_CORE_AUTO": 0, "RKNN_NPU_CORE_0": 1, "RKNN_NPU_CORE_1": 2, "RKNN_NPU_CORE_2": 4,
    "RKNN_NPU_CORE_0_1": 3, "RKNN_NPU_CORE_0_1_2": 7, "RKNN_NPU_CORE_ALL": 0xFFFF,
}

ENUM_TYPES = ("rknn_query_cmd", "rknn_tensor_type", "rknn_tensor_format", "rknn_tensor_qnt_type", "rknn_core_mask")


def probe_source() -> str:
    lines = ['#include <stdio.h>', '#include "rknn_abi.h"', "int main(void) {"]
    for struct, (_, fields) in LAYOUTS.items():
        lines.append(f'    printf("sizeof {struct} %zu\\n", sizeof({struct}));')
        for field in fields:
            lines.append(f'    printf("offset {struct}.{field} %zu\\n", offsetof({struct}, {field}));')
    for enum in ENUM_TYPES:
        lines.append(f'    printf("sizeof {enum} %zu\\n", sizeof({enum}));')
    for name in VALUES:
        lines.append(f'    printf("value {name} %lld\\n", (long long)({name}));')
    lines += ["    return 0;", "}"]
    return "\n".join(lines) + "\n"


def expected() -> dict:
    out = {}
    for struct, (size, fields) in LAYOUTS.items():
        out[f"sizeof {struct}"] = size
        for field, offset in fields.items():
            out[f"offset {struct}.{field}"] = offset
    for enum in ENUM_TYPES:
        out[f"sizeof {enum}"] = 4
    for name, value in VALUES.items():
        out[f"value {name}"] = value
    return out


def run_probe(arch: str, tmp_path) -> dict:
    compiler = COMPILERS[arch][0]
    if shutil.which(compiler) is None:
        pytest.fail(f"{compiler} is missing: apt-get install {COMPILERS[arch][1]}")
    src = tmp_path / "probe.c"
    src.write_text(probe_source())
    exe = tmp_path / f"probe-{arch}"
    subprocess.run([compiler, *CFLAGS, f"-I{HERE}", "-o", str(exe), str(src)], check=True,
                   capture_output=True, text=True)
    cmd = [str(exe)]
    if arch == "aarch64":
        if shutil.which("qemu-aarch64-static") is None:
            pytest.fail("qemu-aarch64-static is missing: apt-get install qemu-user-static")
        cmd = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", str(exe)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)
    found = {}
    for line in done.stdout.splitlines():
        key, _, number = line.rpartition(" ")
        found[key] = int(number)
    return found


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_layouts_and_values_match_the_facts(arch, tmp_path):
    found = run_probe(arch, tmp_path)
    want = expected()
    assert set(found) == set(want)
    wrong = {k: (found[k], want[k]) for k in want if found[k] != want[k]}
    assert not wrong, f"{arch}: (ours, facts) differ for {wrong}"


def test_the_probe_sees_the_architecture(tmp_path):
    """The aarch64 probe really is an aarch64 program (not the host one run twice)."""
    src = tmp_path / "arch.c"
    src.write_text('#include <stdio.h>\nint main(void) {\n#ifdef __aarch64__\nputs("aarch64");\n#else\n'
                   'puts("other");\n#endif\nreturn 0;\n}\n')
    exe = tmp_path / "arch"
    subprocess.run([COMPILERS["aarch64"][0], "-o", str(exe), str(src)], check=True)
    out = subprocess.run(["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", str(exe)], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "aarch64"
