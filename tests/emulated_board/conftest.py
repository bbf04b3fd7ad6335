"""Fixtures for the emulated aarch64 board (see __init__.py).

Session-wide (built once, shared): the root (cached on disk across sessions), the stand-in
librknnrt builds, one RK3588 board served by sshd, the `rkbench` CLI with one build cache.
Per test: `new_board(...)` (a hard-link copy, well under a second) and `serve(board)`.

Skipped, with the reason, only when this machine lacks qemu-user-static or the aarch64
cross compiler; CI installs both (.ci/run), so there they always run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.run.helpers import Rk

from . import emulator, rootfs
from .board import EmulatedBoard, make_board
from .serve import BoardServer, serve_board, ssh_options


@pytest.fixture(scope="session")
def emulator_tools() -> None:
    missing = emulator.missing_tools()
    if missing:
        pytest.skip("the emulated aarch64 board needs " + "; ".join(missing))


@pytest.fixture(scope="session")
def standin(emulator_tools) -> dict[str, Path]:
    """The stand-in librknnrt.so per architecture (not the vendor runtime)."""
    from tests.standins.librknnrt import build_standin

    return {"aarch64": build_standin("aarch64"), "x86_64": build_standin("x86_64")}


@pytest.fixture(scope="session")
def models() -> dict[str, Path]:
    """Real .rknn files (tiny_rk3588, tiny_rk3566, ...) built once by rknn-toolkit2."""
    from tests.standins.model_builder import built_models

    return built_models()


@pytest.fixture(scope="session")
def rk3588(emulator_tools, standin, tmp_path_factory) -> EmulatedBoard:
    """The session's RK3588 board (Debian 12, numpy + rknn-toolkit-lite2, stand-in runtime).
    Tests must not change it: make their own with new_board()."""
    return make_board(tmp_path_factory.mktemp("emulated") / "rk3588", librknnrt=standin["aarch64"])


@pytest.fixture
def new_board(emulator_tools, standin, tmp_path):
    """new_board(soc=..., flavour=..., packages=..., librknnrt="aarch64"|"x86_64"|None,
    device_tree=...) -> a fresh board of the test's own."""
    made = []

    def make(librknnrt="aarch64", **kw) -> EmulatedBoard:
        lib = standin[librknnrt] if librknnrt else None
        board = make_board(tmp_path / f"board{len(made)}", librknnrt=lib, **kw)
        made.append(board)
        return board

    return make


@dataclass
class SshFiles:
    """What the CLI is given to reach the boards (HOME is never relied upon)."""

    key: Path
    known_hosts: Path
    config: Path

    def options(self) -> list:
        return ssh_options(self.known_hosts, self.key, self.config)


@pytest.fixture(scope="session")
def ssh_files(ssh_client_key, tmp_path_factory) -> SshFiles:  # noqa: F811
    home = tmp_path_factory.mktemp("emulated-ssh")
    return SshFiles(ssh_client_key, home / "known_hosts", home / "ssh_config")


def _serve(board: EmulatedBoard, files: SshFiles, workdir: Path, host: str, **kw) -> BoardServer:
    server = serve_board(board, workdir, [files.key], host=host, **kw)
    server.trust(files.known_hosts)
    return server


@pytest.fixture(scope="session")
def rk3588_sshd(rk3588, ssh_files, tmp_path_factory) -> BoardServer:
    server = _serve(rk3588, ssh_files, tmp_path_factory.mktemp("rk3588-sshd"), "127.0.0.3")
    yield server
    server.stop()


@pytest.fixture
def serve(ssh_files, tmp_path):
    """serve(board, writable_usr_lib=False) -> a trusted sshd for it, stopped after the test."""
    servers = []

    def start(board: EmulatedBoard, **kw) -> BoardServer:
        server = _serve(board, ssh_files, tmp_path / f"sshd{len(servers)}", f"127.0.0.{4 + len(servers)}", **kw)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def rk(tmp_path_factory) -> Rk:
    """`python -m rkbench` with one build cache for the session. Its wheel cache for
    provisioning is the emulated board's download cache, so `rkbench provision` downloads a
    wheel from PyPI only once per machine."""
    cache = tmp_path_factory.mktemp("emulated-rkbench-cache")
    (cache / "wheels").mkdir()
    for flavour_tag in ("cp311", "cp39"):
        target = rootfs.downloads("wheels") / flavour_tag
        target.mkdir(parents=True, exist_ok=True)
        os.symlink(target, cache / "wheels" / f"aarch64-{flavour_tag}")
    return Rk(cache, tmp_path_factory.mktemp("emulated-home"))


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> dict[str, Path]:
    """The session tests' tiny conv model (1x3x8x8) and a calibration folder."""
    from tests.support.boards import make_inputs, make_model

    root = tmp_path_factory.mktemp("emulated-model")
    (root / "calib").mkdir()
    return {
        "model": make_model(root / "tiny.onnx"),
        "dataset": root / "calib",
        "inputs": make_inputs(root / "calib", count=4),
    }
