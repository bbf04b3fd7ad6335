"""A real labgrid lab on loopback: coordinator + exporter (from labgrid's own venv,
see setup_labgrid_venv.py) exporting a NetworkService that points at a real sshd.

Fixtures
  labgrid_bin   (session) bin directory with labgrid-client/-coordinator/-exporter
                ($RKBENCH_TEST_LABGRID_BIN, else the cached venv, created on first use;
                the tests skip only when that venv cannot be made)
  lab_sshd      (session) the "board": an OpenSSH server on 127.0.0.1
  lab           (session) a running coordinator + exporter; lab.client(...) runs labgrid-client
  place         a fresh place matching the sshd's NetworkService; deleted afterwards
  ssh_opts      open_transport options that trust exactly lab_sshd (test-local files)
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.sshd import SshServer, start_sshd

from .setup_labgrid_venv import LabgridVenvError, ensure_labgrid_venv

EXPORTER = "rkb-exp"
SSH_GROUP = "rkb-ssh"  # NetworkService -> lab_sshd
POWER_GROUP = "rkb-power"  # a place built on this has no NetworkService
SSH_MATCH = f"{EXPORTER}/{SSH_GROUP}/NetworkService"
POWER_MATCH = f"{EXPORTER}/{POWER_GROUP}/NetworkPowerPort"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class Lab:
    bin: Path
    workdir: Path
    sshd: SshServer
    port: int = 0
    coordinator_proc: subprocess.Popen | None = None
    exporter_proc: subprocess.Popen | None = None
    places: list[str] = field(default_factory=list)

    @property
    def coordinator(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_path(self) -> str:
        return str(self.bin / "labgrid-client")

    def client(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
        full_env = {k: v for k, v in os.environ.items() if k not in ("LG_ENV", "LG_PLACE", "PYTHONPATH")}
        full_env.update(env or {})
        res = subprocess.run(
            [self.client_path, "-x", self.coordinator, *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=full_env,
            stdin=subprocess.DEVNULL,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"labgrid-client {' '.join(args)} failed: {res.stderr.strip()[-800:]}")
        return res

    def log(self, name: str) -> str:
        p = self.workdir / f"{name}.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""

    # -- lifecycle --------------------------------------------------------
    def start(self) -> Lab:
        for _attempt in range(5):
            self.port = _free_port()
            log = open(self.workdir / "coordinator.log", "ab")
            self.coordinator_proc = subprocess.Popen(
                [str(self.bin / "labgrid-coordinator"), "--listen", self.coordinator],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
            log.close()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.coordinator_proc.poll() is None:
                if _listening(self.port):
                    break
                time.sleep(0.05)
            if self.coordinator_proc.poll() is None and _listening(self.port):
                break
            _stop(self.coordinator_proc)
        else:
            raise RuntimeError(f"labgrid-coordinator did not start:\n{self.log('coordinator')}")

        cfg = self.workdir / "exporter.yaml"
        cfg.write_text(
            f"""{SSH_GROUP}:
  NetworkService:
    address: {self.sshd.host}
    username: {self.sshd.user}
    port: {self.sshd.port}
{POWER_GROUP}:
  NetworkPowerPort:
    model: simplerest
    host: http://127.0.0.1:9/power
    index: 0
"""
        )
        log = open(self.workdir / "exporter.log", "ab")
        self.exporter_proc = subprocess.Popen(
            [
                str(self.bin / "labgrid-exporter"),
                "-c",
                self.coordinator,
                "-n",
                EXPORTER,
                "--hostname",
                "127.0.0.1",
                str(cfg),
            ],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.exporter_proc.poll() is not None:
                raise RuntimeError(f"labgrid-exporter exited:\n{self.log('exporter')}")
            out = self.client("resources", check=False).stdout
            if SSH_GROUP in out and POWER_GROUP in out:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"the exporter's resources never reached the coordinator:\n{self.log('exporter')}")

    def stop(self) -> None:
        _stop(self.exporter_proc)
        _stop(self.coordinator_proc)

    # -- places -------------------------------------------------------------
    def create_place(self, *matches: str, name: str | None = None) -> str:
        name = name or f"rkb-{uuid.uuid4().hex[:8]}"
        self.client("-p", name, "create")
        if matches:
            self.client("-p", name, "add-match", *matches)
        self.places.append(name)
        return name

    def holder(self, name: str) -> str | None:
        for line in self.client("-p", name, "show").stdout.splitlines():
            if line.strip().startswith("acquired:"):
                value = line.split(":", 1)[1].strip()
                return None if value == "None" else value
        raise AssertionError("no 'acquired:' line in labgrid-client show")

    def delete_place(self, name: str) -> None:
        if self.client("-p", name, "delete", check=False).returncode != 0:  # still acquired
            self.client("-p", name, "release", "--kick", check=False)
            self.client("-p", name, "delete", check=False)


@pytest.fixture(scope="session")
def labgrid_bin() -> Path:
    given = os.environ.get("RKBENCH_TEST_LABGRID_BIN")
    if given:
        return Path(given)
    try:
        return ensure_labgrid_venv()
    except LabgridVenvError as exc:
        pytest.skip(f"cannot create labgrid's own venv (is PyPI reachable?): {exc}")


@pytest.fixture(scope="session")
def lab_sshd(tmp_path_factory, ssh_client_key):  # noqa: F811
    server = start_sshd(tmp_path_factory.mktemp("lab-sshd"), [ssh_client_key])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def lab(labgrid_bin, lab_sshd, tmp_path_factory):
    lab = Lab(bin=labgrid_bin, workdir=tmp_path_factory.mktemp("labgrid"), sshd=lab_sshd)
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def place(lab):
    name = lab.create_place(SSH_MATCH)
    yield name
    lab.delete_place(name)


@pytest.fixture
def ssh_opts(tmp_path, lab_sshd, ssh_client_key, ssh_home):  # noqa: F811
    """Strict host-key checking against exactly lab_sshd, with the test client key."""
    known = tmp_path / "known_hosts"
    lab_sshd.trust(known)
    empty_cfg = tmp_path / "ssh_config"
    empty_cfg.write_text("")
    return dict(
        known_hosts=str(known),
        identity_files=[str(ssh_client_key)],
        ssh_config=str(empty_cfg),
        allow_agent=False,
        connect_timeout=10.0,
    )
