"""Fixtures for the stand-in librknnrt tests: the x86_64 build, a ctypes caller, boards
(a directory with proc/device-tree/compatible per SoC), and real .rknn models built once
with rknn-toolkit2 and cached under ~/.cache/rkbench-test/standin-models/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.standins.librknnrt import build_standin, make_board_root
from tests.standins.model_builder import built_models
from tests.standins.rknn_caller import Runtime

BOARDS = {"rk3588": None, "rk3588s": "rk3588s-orangepi-5", "rk3566": "rk3566-radxa-zero3", "rk3568": None,
          "rk3576": None}


@pytest.fixture(scope="session")
def standin_lib() -> Path:
    return build_standin()


@pytest.fixture(scope="session")
def rt(standin_lib) -> Runtime:
    return Runtime(standin_lib)


@pytest.fixture(scope="session")
def boards(tmp_path_factory) -> dict:
    """SoC name -> a root directory for RKNN_STANDIN_ROOT; "x86" has a non-Rockchip tree."""
    base = tmp_path_factory.mktemp("boards")
    roots = {soc: make_board_root(base / soc, soc, board) for soc, board in BOARDS.items()}
    tree = base / "x86" / "proc" / "device-tree"
    tree.mkdir(parents=True)
    (tree / "compatible").write_bytes(b"qemu,virt\0")
    roots["x86"] = base / "x86"
    roots["none"] = base / "none"
    return roots


@pytest.fixture(autouse=True)
def standin_env(monkeypatch, boards):
    """Every test starts on an RK3588 board with the stand-in's defaults and no banner."""
    for name in list(os.environ):
        if name.startswith("RKNN_STANDIN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RKNN_STANDIN_ROOT", str(boards["rk3588"]))
    monkeypatch.setenv("RKNN_STANDIN_QUIET", "1")


@pytest.fixture(scope="session")
def models() -> dict:
    """name -> .rknn path (see model_builder.MODELS), built by the real toolkit once."""
    return built_models()
