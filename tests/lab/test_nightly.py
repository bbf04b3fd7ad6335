"""`rkbench nightly` end to end on real runners: local and SSH boards (real sshd)."""

import json
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.lab.conftest import LOCAL, write_lab

pytestmark = pytest.mark.toolkit


def test_baseline_then_same_then_injected_regression(nightly, lab_files):
    write_lab(lab_files, LOCAL)
    first = nightly("-o", "out1", "--group", "g1", "--accept")
    assert first.returncode == 0, first.stderr
    assert "no-baseline" in first.stdout and "accepted 1 run(s)" in first.stderr

    # Nothing changed: no build, no bytes pushed; the cell is compared with the baseline.
    second = nightly("-o", "out2", "--group", "g2")
    assert "· 0 build(s) · 0 bytes pushed" in second.stdout
    assert "vs baseline run" in second.stdout

    # The runner made twice as slow (test-only knob): a confirmed regression, exit 1.
    third = nightly("-o", "out3", "--group", "g3", "--inject-slowdown", "1.0", "--remeasure", "0")
    assert third.returncode == 1, third.stderr
    assert "| regression |" in third.stdout and "DIFFERENT vs baseline" in third.stdout
    junit = ET.parse(lab_files / "out3" / "junit.xml").getroot()
    failures = junit.findall(".//failure")
    assert failures and any("latency_vs_baseline" in (f.get("message") or "") for f in failures)
    assert (lab_files / "out3" / "summary.md").read_text().startswith("### rkbench nightly `g3`: REGRESSION")
    assert (lab_files / "out3" / "report.html").stat().st_size > 10_000


def test_offline_board_is_reported_and_the_others_finish(nightly, lab_files):
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    boards = (
        LOCAL
        + f"""
[boards.gone]
address = "root@127.0.0.1:{port}"
soc = "rk3588"
tags = ["lab=desk"]
"""
    )
    write_lab(lab_files, boards)
    done = nightly("-o", "out-offline", "--retries", "1")
    assert done.returncode == 3, done.stderr
    assert "| offline |" in done.stdout and f"127.0.0.1:{port}" in done.stdout
    assert "`cnn/int8@here[auto]` | no-baseline" in done.stdout  # the local board finished


def test_unknown_tag_in_suite(nightly, lab_files):
    write_lab(lab_files, LOCAL, selectors='["lab=nowhere"]')
    done = nightly("-o", "out-bad")
    assert done.returncode == 2
    assert "board selector 'lab=nowhere' matches no board" in done.stderr


def test_corrupt_store_is_refused(nightly, lab_files):
    write_lab(lab_files, LOCAL)
    nightly.db.write_bytes(b"SQLite format 3\x00" + b"\x13" * 4000)
    done = nightly("-o", "out-corrupt")
    assert done.returncode == 4
    assert str(nightly.db) in done.stderr


def test_two_ssh_boards_in_parallel(nightly, lab_files, sshd_factory, tmp_path):
    servers = [sshd_factory(host=f"127.0.0.{i}") for i in (2, 3)]
    known = tmp_path / "known_hosts"
    for server in servers:
        server.trust(known)
    boards = "".join(
        f"""
[boards.b{i}]
address = "{server.board}"
soc = "rk3588"
tags = ["lab=desk"]
python = "{sys.executable}"
known_hosts = "{known}"
"""
        for i, server in enumerate(servers)
    )
    write_lab(lab_files, boards)
    done = nightly("-o", "out-ssh", "--group", "ssh1", "--known-hosts", known)
    assert done.returncode == 0, done.stderr + done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("| `cnn")]
    assert len(rows) == 2 and all("| no-baseline |" in row for row in rows)
    history = json.loads(
        __import__("subprocess")
        .run([sys.executable, "-m", "rkbench", "history", "--db", nightly.db, "--json"], capture_output=True, text=True)
        .stdout
    )
    assert {row["board"] for row in history if row["group"] == "ssh1"} == {"b0", "b1"}


def test_boards_list_and_check(lab_files, tmp_path):
    import socket
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    boards = tmp_path / "boards.toml"
    boards.write_text(
        LOCAL.replace('address = "local"', f'address = "local"\npython = "{sys.executable}"')
        + f'\n[boards.gone]\naddress = "root@127.0.0.1:{port}"\nsoc = "rk3588"\n'
    )

    def rkbench(*args):
        return subprocess.run(
            [sys.executable, "-m", "rkbench", *args, "--boards", str(boards)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    listed = rkbench("boards", "list")
    assert listed.returncode == 0 and "here" in listed.stdout and f"127.0.0.1:{port}" in listed.stdout
    checked = rkbench("boards", "check")
    assert checked.returncode == 3, checked.stderr
    rows = {line.split()[0]: line for line in checked.stdout.splitlines()[1:]}
    assert "OFFLINE" in rows["gone"] and f"127.0.0.1:{port}" in rows["gone"]
    assert "OFFLINE" not in rows["here"]
    assert "Traceback" not in checked.stderr
