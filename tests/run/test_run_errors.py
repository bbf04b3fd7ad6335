"""`rkbench run` failures a user meets first: a board that does not answer, and a model
built for another SoC than the board's. One line on stderr, the documented exit code,
no traceback, nothing built or stored for nothing."""

from __future__ import annotations

import json
import socket
import sys
import time

from tests.support.boards import FIXTURES, write_script

from .helpers import explain, model_args


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once closed


def test_unreachable_board_exits_3_naming_the_address(rk, cls_model, cls_dataset, tmp_path, isolated):
    port = _closed_port()
    started = time.monotonic()
    done = rk(
        "run",
        *model_args(cls_model, cls_dataset),
        "--board",
        f"root@127.0.0.1:{port}",
        "--connect-timeout",
        "5",
        "--db",
        isolated["db"],
        "-o",
        isolated["out"],
        HOME=tmp_path,
    )
    assert done.returncode == 3, explain(done)
    assert time.monotonic() - started < 30
    errors = [line for line in done.stderr.splitlines() if line.startswith("rkbench: error:")]
    assert len(errors) == 1 and f"127.0.0.1:{port}" in errors[0], done.stderr
    assert "toolkit:" not in done.stderr and "cache hit" not in done.stderr  # the board comes first
    assert not isolated["db"].exists() or not rk.history(isolated["db"])
    assert not (isolated["out"] / "report.html").exists()


def test_target_of_another_soc_is_refused(rk, cls_model, cls_dataset, tmp_path, isolated):
    """The CLI has no sysfs switch; the board's Python does: a wrapper interpreter that
    runs the runner on the rk3588 fixture tree (tests/device/fixtures/rk3588) makes the
    local board an RK3588 as far as rkbench can tell."""
    python = write_script(
        tmp_path / "python-rk3588", f'#!/bin/sh\nexec {sys.executable} "$@" --root {FIXTURES / "rk3588"}\n'
    )
    info = rk("board", "info", "local", "--python", python, "--json", HOME=tmp_path)
    assert info.returncode == 0 and json.loads(info.stdout)["soc"] == "rk3588", explain(info)  # the trick works
    done = rk(
        "run",
        *model_args(cls_model, cls_dataset),
        "--target",
        "rk3566",
        "--python",
        python,
        "--db",
        isolated["db"],
        "-o",
        isolated["out"],
        HOME=tmp_path,
    )
    assert done.returncode == 2, explain(done)
    errors = [line for line in done.stderr.splitlines() if line.startswith("rkbench: error:")]
    assert len(errors) == 1, done.stderr
    assert "rk3588 board" in errors[0] and "built for rk3566" in errors[0] and "--target rk3588" in errors[0]
    # refused at the latest when the runner names the SoC in its hello: before loading or
    # measuring anything (with --target given, run.py skips the board-info round trip, so a
    # build for the asked target may happen first)
    assert "board: loading" not in done.stderr and "board: measuring" not in done.stderr
    assert not isolated["db"].exists() or not rk.history(isolated["db"])
    assert not (isolated["out"] / "report.html").exists()
