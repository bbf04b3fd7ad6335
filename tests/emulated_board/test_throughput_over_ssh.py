"""Throughput mode on the emulated RK3588 over SSH (the board's Python under qemu, the
aarch64 stand-in runtime: 2000 us per run per core, not the vendor runtime): the host reads
the SoC and plans for three cores, the contexts are dup'ed and overlap on the cores as the
stand-in's model says. (A mask the SoC lacks: tests/run and tests/device, on an RK3566.)"""

from __future__ import annotations

import pytest

from rkbench.results.store import Store
from tests.run.helpers import explain

pytestmark = pytest.mark.emulated


def test_throughput_over_ssh(rk, rk3588_sshd, ssh_files, tiny_onnx, tmp_path):
    common = [
        "--board", rk3588_sshd.board, "--backend", "rknnrt", *ssh_files.options(),
        "--model", tiny_onnx["model"], "--dataset", tiny_onnx["dataset"], "--input-count", "1",
        "--db", tmp_path / "results.db", "-o", tmp_path / "out",
    ]  # fmt: skip
    done = rk("run", *common, "--throughput", "--contexts", "3", "--throughput-seconds", "0.5")
    assert done.returncode == 0, explain(done)
    assert "most FPS: 3 ctx per-core [0,1,2]" in done.stdout
    with Store(tmp_path / "results.db") as store:
        [row] = store.throughput_rows()
    creations = [c["creation"] for c in row["event"]["contexts"]]
    assert creations == ["init", "dup_context", "dup_context"]
    # three contexts on three cores: well above one core's 500 FPS (qemu slows the Python side)
    assert row["fps"] > 500 * 1.8, row
