"""`--board labgrid:PLACE` from the command line, against the real coordinator and exporter."""

import json
import os
import subprocess
import sys


def test_board_info_on_a_labgrid_place(lab, place, ssh_opts):
    argv = [
        sys.executable,
        "-m",
        "rkbench",
        "board",
        "info",
        f"labgrid:{place}",
        "--json",
        "--labgrid-client",
        str(lab.client_path),
        "--lg-coordinator",
        lab.coordinator,
        "--known-hosts",
        ssh_opts["known_hosts"],
        "--identity",
        ssh_opts["identity_files"][0],
        "--ssh-config",
        ssh_opts["ssh_config"],
        "--python",
        sys.executable,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["host"]["transport"] == "ssh"
    assert str(lab.sshd.port) in info["host"]["describe"]
    assert lab.holder(place) is None  # released after the command


def test_unknown_place_from_the_command_line(lab, place):
    argv = [
        sys.executable,
        "-m",
        "rkbench",
        "board",
        "info",
        f"labgrid:{place}-nope",
        "--labgrid-client",
        str(lab.client_path),
        "--lg-coordinator",
        lab.coordinator,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr and place in done.stderr
