"""The aarch64 builds (what the emulated board loads) work under qemu-user and need nothing
newer from glibc than the aarch64 base version, so older board userlands can load them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from tests.standins.librknnrt import build_bare_loop, build_standin



def glibc_versions(binary) -> set:
    out = subprocess.run(["objdump", "-T", str(binary)], check=True, capture_output=True, text=True).stdout
    return set(re.findall(r"GLIBC_([0-9.]+)", out))


@pytest.mark.parametrize("variant", ["current", "old"])
def test_library_needs_only_the_aarch64_base_glibc(variant):
    lib = build_standin("aarch64", variant)
    header = lib.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64
    assert glibc_versions(lib) == {"2.17"}


@pytest.mark.toolkit  # the model
def test_bare_loop_runs_the_aarch64_library_under_qemu(models, boards):
    if shutil.which("qemu-aarch64-static") is None:
        pytest.fail("qemu-aarch64-static is missing: apt-get install qemu-user-static")
    env = {**os.environ, "RKNN_STANDIN_ROOT": str(boards["rk3588"]), "RKNN_STANDIN_RUN_US": "1000",
           "RKNN_STANDIN_QUIET": "1"}
    done = subprocess.run(["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", str(build_bare_loop("aarch64")),
                           str(build_standin("aarch64")), str(models["tiny_rk3588"]), "--runs", "10"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["perf_run_us"] == 1000 and len(out["run_ns"]) == 10 and min(out["run_ns"]) >= 1_000_000
