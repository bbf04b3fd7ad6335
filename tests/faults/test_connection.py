"""The connection to the board cut mid-stream (its sshd killed; a network link taken down),
the runner killed, the host killed. rkbench names what happened, exits 3 (0 for the run
after a killed host), keeps the samples, and leaves nothing running or locked on the board.

Processes are found by this test's own paths (the board's HOME is on every runner's command
line) or as children of servers this test started; nothing is killed by name."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.run.helpers import BOARD_PYTHON, children, explain, model_args, processes_mentioning, ssh_args
from tests.support.sshd import SSHD, SshServer, _wait_banner

from .helpers import LONG, assert_board_clean, descendants_gone, finish, runner_marker, wait_for_samples, wait_until


def _start(rk, cls_model, cls_dataset, board_args, db, out, env):
    return rk.popen(
        "run", *model_args(cls_model, cls_dataset), *LONG, "--backend", "onnxruntime", *board_args,
        "--db", db, "-o", out, **env,
    )  # fmt: skip


def _runner_pid(board_home: Path) -> int:
    """The runner's Python: the child of the shell whose command line names the board's
    runner folder (env(1) sets PYTHONPATH and execs Python, whose own argv does not)."""
    shells = processes_mentioning(runner_marker(board_home))
    found = [
        pid
        for shell in shells
        for pid in children(shell)
        if _cmdline(pid).startswith(BOARD_PYTHON) and "rkbench_device run" in _cmdline(pid)
    ]
    assert len(found) == 1, shells
    return found[0]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _aborted_with_samples(rk, db, before: dict) -> dict:
    [row] = rk.history(db)
    assert row["status"] == "aborted" and row["sample_count"] >= before["sample_count"] > 0, row
    return row


def test_sshd_killed_mid_measurement_is_a_lost_connection(
    rk, warm, cls_model, cls_dataset, sshd, ssh_home, ssh_client_key, tmp_path
):
    db, out = tmp_path / "r.db", tmp_path / "out"
    proc = _start(rk, cls_model, cls_dataset, ssh_args(sshd, ssh_home, ssh_client_key, tmp_path), db, out,
                  {"HOME": ssh_home})  # fmt: skip
    before = wait_for_samples(rk, db, proc)
    runner = _runner_pid(sshd.home)
    daemons = [pid for pid in children(sshd.proc.pid) | {sshd.proc.pid} if _comm(pid) == "sshd"]
    for pid in daemons:  # the listener and the session's sshd: the board's SSH server is gone
        os.kill(pid, signal.SIGKILL)
    code, stdout, stderr, took = finish(proc)
    assert code == 3, explain(subprocess.CompletedProcess([], code, stdout, stderr))
    assert took < 5, f"the lost connection took {took:.1f} s to notice"
    assert "the connection to the board was lost while the runner was at [measure" in stderr, stderr
    assert "out-of-memory" not in stderr and "SIGKILL" not in stderr and "Traceback" not in stderr
    assert "what was measured is kept in the store as aborted run(s)" in stderr
    _aborted_with_samples(rk, db, before)
    # the runner saw its stdin close and left (freeing the lock); its folder waits for the next run
    assert wait_until(lambda: not os.path.exists(f"/proc/{runner}"), 5) is not None
    assert_board_clean(sshd.home, runs_may_remain=True)
    print(f"detection: sshd killed -> rkbench exit 3 in {took:.2f} s")


def test_runner_killed_says_signal_and_keeps_samples(
    rk, warm, cls_model, cls_dataset, sshd, ssh_home, ssh_client_key, tmp_path
):
    db, out = tmp_path / "r.db", tmp_path / "out"
    proc = _start(rk, cls_model, cls_dataset, ssh_args(sshd, ssh_home, ssh_client_key, tmp_path), db, out,
                  {"HOME": ssh_home})  # fmt: skip
    before = wait_for_samples(rk, db, proc)
    os.kill(_runner_pid(sshd.home), signal.SIGKILL)
    code, stdout, stderr, took = finish(proc)
    assert code == 3 and took < 5, (code, took, stderr)
    assert "the runner died from signal 9 (SIGKILL) while at [measure" in stderr, stderr
    assert "out-of-memory killer" in stderr  # nobody on a real board sends it: the OOM killer does
    assert "connection" not in stderr.splitlines()[-1]
    _aborted_with_samples(rk, db, before)
    assert_board_clean(sshd.home)  # the host was there to remove the run's folder
    print(f"detection: runner killed -> rkbench exit 3 in {took:.2f} s")


def test_host_killed_then_the_next_run_cleans_up(
    rk, warm, cls_model, cls_dataset, sshd, ssh_home, ssh_client_key, tmp_path
):
    db, out = tmp_path / "r.db", tmp_path / "out"
    board = ssh_args(sshd, ssh_home, ssh_client_key, tmp_path)
    proc = _start(rk, cls_model, cls_dataset, board, db, out, {"HOME": ssh_home})
    before = wait_for_samples(rk, db, proc)
    runner = _runner_pid(sshd.home)
    os.kill(proc.pid, signal.SIGKILL)  # no handler runs: nothing is stored or cleaned by rkbench itself
    proc.communicate()
    gone = wait_until(lambda: not os.path.exists(f"/proc/{runner}") or not processes_mentioning(str(runner)), 5)
    assert gone is not None, "the runner outlived its host"
    assert_board_clean(sshd.home, runs_may_remain=True)
    orphans = list((sshd.home / ".cache" / "rkbench" / "runs").iterdir())
    assert len(orphans) == 1  # the killed run's folder

    done = rk("run", *model_args(cls_model, cls_dataset), "--backend", "onnxruntime", *board,
              "--db", db, "-o", out, HOME=ssh_home)  # fmt: skip
    assert done.returncode == 0, explain(done)
    assert (
        f"removed 1 folder(s) of earlier runs that ended without cleaning up (a host killed or cut off): {orphans[0].name}"
        in done.stderr
    )
    rows = rk.history(db)
    assert [r["status"] for r in rows] == ["ok", "aborted"]
    killed = rk.show(db, rows[1]["run_id"])
    assert "interrupted: process" in killed["error"] and "ended before the run finished" in killed["error"]
    assert killed["stats"]["n"] == rows[1]["sample_count"] >= before["sample_count"]
    assert_board_clean(sshd.home)
    print(f"detection: host killed -> runner gone in {gone:.2f} s")


# ------------------------------------------------------------------------------------
# a network link taken down: no FIN, no RST, the packets just stop
# ------------------------------------------------------------------------------------
class NetnsServer(SshServer):
    """An sshd inside a network namespace this test made, reached over a veth pair."""

    netns: str = ""

    def _launch(self) -> bool:
        cfg = self._write_config()
        log = open(self.workdir / "sshd.log", "ab")
        argv = ["ip", "netns", "exec", self.netns, SSHD, "-D", "-e", "-f", str(cfg)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        if _wait_banner(self.host, self.port, self.proc):
            return True
        self.stop()
        return False


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns_board(tmp_path, ssh_client_key, ssh_home):
    if os.getuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2 to make a network namespace")
    tag = uuid.uuid4().hex[:6]
    ns, host_if, board_if = f"rkb-{tag}", f"rkbh{tag}", f"rkbb{tag}"
    subnet = f"10.200.{int(tag[:2], 16)}"
    try:
        _ip("netns", "add", ns)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", board_if)
        _ip("link", "set", board_if, "netns", ns)
        _ip("addr", "add", f"{subnet}.1/24", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", ns, "addr", "add", f"{subnet}.2/24", "dev", board_if)
        _ip("-n", ns, "link", "set", board_if, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as err:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"cannot make a network namespace here: {err.stderr.decode().strip()}")
    os.makedirs("/run/sshd", exist_ok=True)
    workdir = tmp_path / "netns-sshd"
    workdir.mkdir()
    server = NetnsServer(workdir=workdir, host=f"{subnet}.2", client_pubkeys=[ssh_client_key], port=2222)
    server.netns = ns
    server.start()
    server.trust(ssh_home / ".ssh" / "known_hosts")
    try:
        yield server, host_if
    finally:
        server.stop()
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.mark.slow
def test_link_down_is_a_lost_board_within_the_connect_timeout(
    rk, warm, cls_model, cls_dataset, netns_board, ssh_home, ssh_client_key, tmp_path
):
    server, host_if = netns_board
    db, out = tmp_path / "r.db", tmp_path / "out"
    board = ssh_args(server, ssh_home, ssh_client_key, tmp_path)
    board[board.index("--connect-timeout") + 1] = "3"
    proc = _start(rk, cls_model, cls_dataset, board, db, out, {"HOME": ssh_home})
    before = wait_for_samples(rk, db, proc)
    runner = _runner_pid(server.home)
    _ip("link", "set", host_if, "down")
    cut = time.monotonic()
    code, stdout, stderr, _ = finish(proc, timeout=30)
    took = time.monotonic() - cut
    assert code == 3, explain(subprocess.CompletedProcess([], code, stdout, stderr))
    assert took <= 3 + 0.5, f"a lost board took {took:.1f} s to notice (connect timeout 3 s)"
    assert "the connection to the board was lost while the runner was at [measure" in stderr, stderr
    assert "Traceback" not in stderr and "out-of-memory" not in stderr
    _aborted_with_samples(rk, db, before)
    # on the board, nobody closed the runner's stdin: it leaves when the heartbeat stops
    left = wait_until(lambda: not os.path.exists(f"/proc/{runner}"), 25, step=0.2)
    assert left is not None, "the runner stayed on the board after its host was cut off"
    assert_board_clean(server.home, runs_may_remain=True)
    assert descendants_gone(proc.pid)
    print(f"detection: link down -> rkbench exit 3 in {took:.2f} s; runner gone {left:.1f} s later")
