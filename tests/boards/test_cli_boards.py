"""The board commands as a user runs them: exit codes, one-line errors, tables."""

from __future__ import annotations

import json

from rkbench.cli import main
from tests.support.boards import BOARD_PYTHON, make_wheel, python_without_numpy


def rkbench(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_board_info_table_and_json(capsys, sshd):
    code, out, err = rkbench(capsys, "board", "info", sshd.board, "--python", BOARD_PYTHON)
    assert code == 0, err
    for label in (
        "Board",
        "SoC",
        "Kernel",
        "OS",
        "Python",
        "numpy",
        "rknn-toolkit-lite2",
        "librknnrt",
        "NPU driver",
        "NPU clock",
        "CPU clocks",
        "Temperatures",
        "Memory",
        "Free disk",
        "backend onnxruntime",
    ):
        assert any(line.startswith(label) for line in out.splitlines()), label
    assert sshd.board in out and "OpenSSH" in out
    code, out, _ = rkbench(capsys, "board", "info", sshd.board, "--python", BOARD_PYTHON, "--json")
    assert code == 0 and json.loads(out)["host"]["transport"] == "ssh"


def test_doctor_exit_codes(capsys, sshd, tmp_path, monkeypatch):
    monkeypatch.setenv("RKBENCH_BOARD_PYTHON", BOARD_PYTHON)
    code, out, err = rkbench(capsys, "doctor", "local")
    assert code == 0, out + err  # warnings only on this x86 machine
    assert "WARN" in out and "fix:" in out and "failed" in out.splitlines()[-1]

    bare = python_without_numpy(tmp_path / "bin")
    code, out, err = rkbench(capsys, "doctor", sshd.board, "--python", str(bare))
    assert code == 1
    assert "FAIL  numpy" in out and f"fix: rkbench provision {sshd.board}" in out
    # without site-packages no backend imports either
    assert err.strip() == f"rkbench: error: {sshd.board}: 2 check(s) failed: numpy, backends"

    code, out, _ = rkbench(capsys, "doctor", sshd.board, "--python", str(bare), "--json")
    doc = json.loads(out)
    assert code == 1 and doc["status"] == "fail"
    assert {c["name"] for c in doc["checks"] if c["status"] == "fail"} == {"numpy", "backends"}


def test_unreachable_board_is_exit_3_with_address(capsys, ssh_home):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = rkbench(capsys, "doctor", f"root@127.0.0.1:{port}", "--connect-timeout", "2")
    assert code == 3
    assert f"127.0.0.1:{port}" in err and "connection refused" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_board_string_is_exit_2(capsys):
    code, _, err = rkbench(capsys, "board", "info", "ftp://x")
    assert code == 2 and "unknown scheme" in err


def test_trust_new_board_shows_and_records_the_fingerprint(capsys, sshd_factory, ssh_home, ssh_client_key):
    server = sshd_factory(trusted=False)
    code, _, err = rkbench(
        capsys, "board", "info", server.board, "--python", BOARD_PYTHON, "--identity", str(ssh_client_key)
    )
    assert code == 3 and "--trust-new-board" in err and server.fingerprint() in err
    code, out, err = rkbench(
        capsys,
        "board",
        "info",
        server.board,
        "--python",
        BOARD_PYTHON,
        "--identity",
        str(ssh_client_key),
        "--trust-new-board",
    )
    assert code == 0, err
    assert server.fingerprint() in err and "recorded" in err
    assert server.host_pubkey() in (ssh_home / ".ssh" / "known_hosts").read_text()


def test_provision_with_a_wheel(capsys, sshd, tmp_path):
    from tests.support.boards import board_venv

    py = board_venv(tmp_path / "venv")
    whl = make_wheel(tmp_path / "wheels", "cli-probe", "0.3")
    code, out, err = rkbench(capsys, "provision", sshd.board, "--python", str(py), "--wheel", str(whl))
    assert code == 0, err
    assert "cli-probe 0.3  (given with --wheel)" in out
    assert "on the board: " in out and "--no-index" in out
    assert "installed on" in out and "cli-probe 0.3" in out.splitlines()[-1]
    code, _, err = rkbench(capsys, "provision", sshd.board, "--python", str(py), "--wheel", str(tmp_path / "x.whl"))
    assert code == 4 and "not a .whl" in err
