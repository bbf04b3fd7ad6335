"""An emulated board behind a real OpenSSH server on loopback.

The server's sessions get the board's bin/ first on PATH (sshd's SetEnv), so the login
`python3` is the emulated one: `rkbench ... --board root@127.0.0.3:PORT` needs no
--python, and everything else the board runs (sh, tar, sha256sum, cp) is this machine's.
HOME is the server's own folder (as with every test sshd), so the runner's cache on the
board lives in the test's tmp dir.

`writable_usr_lib=True` (root only) runs the server in a private mount namespace whose
/usr/lib is an overlay: what the board's sessions write there (`rkbench provision
--librknnrt` installs /usr/lib/librknnrt.so with this machine's cp) lands in the board's
folder, never in this machine's /usr/lib, and the emulated Python finds it at
/usr/lib/librknnrt.so (qemu falls back to the real path when the root lacks a file).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.sshd import SSHD, SshServer, _wait_banner

from .board import EmulatedBoard

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_OVERLAY = 'mount -t overlay overlay -o "lowerdir=/usr/lib,upperdir=$1,workdir=$2" /usr/lib && shift 2 && exec "$@"'


@dataclass
class BoardServer(SshServer):
    """SshServer whose sshd may run with /usr/lib overlaid (see the module's doc)."""

    usr_lib_upper: Path | None = None

    def _launch(self) -> bool:
        if self.usr_lib_upper is None:
            return super()._launch()
        cfg = self._write_config()
        work = self.usr_lib_upper.with_name(self.usr_lib_upper.name + ".work")
        self.usr_lib_upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        argv = [
            "unshare",
            "-m",
            "sh",
            "-c",
            _OVERLAY,
            "sh",
            str(self.usr_lib_upper),
            str(work),
            SSHD,
            "-D",
            "-e",
            "-f",
            str(cfg),
        ]
        with open(self.workdir / "sshd.log", "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if _wait_banner(self.host, self.port, self.proc):
            return True
        self.stop()
        return False


def overlay_problem(scratch: Path) -> str | None:
    """None when this machine lets us overlay /usr/lib in a private mount namespace, else why not."""
    if os.getuid() != 0:
        return "a board with a writable /usr/lib overlays it in a private mount namespace: that needs root"
    upper, work = scratch / "probe-upper", scratch / "probe-work"
    upper.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", _OVERLAY, "sh", str(upper), str(work), "true"], capture_output=True, text=True
    )
    if done.returncode != 0:
        return f"cannot overlay /usr/lib in a private mount namespace here: {done.stderr.strip()[-300:]}"
    return None


def serve_board(
    board: EmulatedBoard,
    workdir: Path,
    client_keys: list[Path],
    host: str = "127.0.0.3",
    writable_usr_lib: bool = False,
) -> BoardServer:
    """Start sshd for `board` on a free port of `host` (127.x only)."""
    if not host.startswith("127."):
        raise ValueError("test sshd servers listen on loopback only")
    if writable_usr_lib and os.getuid() != 0:
        raise PermissionError("a board with a writable /usr/lib needs root (a private mount namespace)")
    if os.getuid() == 0:
        os.makedirs("/run/sshd", exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    # sshd keeps only the first SetEnv line, so HOME (which the server's own config sets
    # to the same folder) goes into this one too
    setenv = f"SetEnv HOME={workdir / 'home'} PATH={board.bin}:{SYSTEM_PATH}"
    return BoardServer(
        workdir=workdir,
        host=host,
        client_pubkeys=list(client_keys),
        extra_config=setenv,
        usr_lib_upper=board.home / "usr-lib-upper" if writable_usr_lib else None,
    ).start()


def ssh_options(known_hosts: Path, identity: Path, ssh_config: Path) -> list:
    """The SSH files for rkbench's board commands (no --python: the login python3 is the
    board's own)."""
    if not ssh_config.exists():
        ssh_config.write_text("# empty: everything is on the command line\n")
    return [
        "--known-hosts",
        str(known_hosts),
        "--identity",
        str(identity),
        "--ssh-config",
        str(ssh_config),
        "--connect-timeout",
        "10",
    ]
