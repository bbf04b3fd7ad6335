"""An emulated board behind a real OpenSSH server on loopback.

The server's sessions get the board's bin/ first on PATH (sshd's SetEnv), so the login
`python3` is the emulated one: `rkbench ... --board root@127.0.0.3:PORT` needs no
--python, and everything else the board runs (sh, tar, sha256sum, cp) is this machine's.
HOME is the server's own folder (as with every test sshd), so the runner's cache on the
board lives in the test's tmp dir.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from tests.boards.sshd import SshServer, start_sshd

from .board import EmulatedBoard

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def serve_board(board: EmulatedBoard, workdir: Path, client_keys: List[Path], host: str = "127.0.0.3") -> SshServer:
    """Start sshd for `board` on a free port of `host` (127.x only)."""
    workdir.mkdir(parents=True, exist_ok=True)
    # sshd keeps only the first SetEnv line, so HOME (which the server's own config sets
    # to the same folder) goes into this one too
    setenv = f"SetEnv HOME={workdir / 'home'} PATH={board.bin}:{SYSTEM_PATH}"
    return start_sshd(workdir, client_keys, host=host, extra_config=setenv)


def ssh_options(known_hosts: Path, identity: Path, ssh_config: Path) -> list:
    """The SSH files for rkbench's board commands (no --python: the login python3 is the
    board's own)."""
    if not ssh_config.exists():
        ssh_config.write_text("# empty: everything is on the command line\n")
    return ["--known-hosts", str(known_hosts), "--identity", str(identity), "--ssh-config", str(ssh_config),
            "--connect-timeout", "10"]
