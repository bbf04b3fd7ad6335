"""`rkbench provision` on emulated boards that start bare, as field boards do: Debian's
Python with neither pip nor numpy. The wheels come from the host (the emulated board's
download cache doubles as rkbench's wheel cache, so PyPI is asked once per machine) and
pip runs ON the board, under emulation, with --no-index."""

from __future__ import annotations

import json
import os

import pytest

from tests.run.helpers import explain, run_ids

from .flavours import BULLSEYE
from .serve import overlay_problem

pytestmark = pytest.mark.emulated


def test_provision_a_bare_debian12_board_with_librknnrt_then_run_the_real_lite2(
    rk, new_board, serve, ssh_files, standin, tiny_onnx, tmp_path
):
    """A field board as it comes: no pip, no numpy, no lite2, no runtime library. One
    provision (with --librknnrt, the fix the missing-library error names) makes it run."""
    problem = overlay_problem(tmp_path)
    if problem:
        pytest.skip(problem)
    board = new_board(packages=False, librknnrt=None)
    server = serve(board, writable_usr_lib=True)
    done = rk("provision", server.board, "--librknnrt", standin["aarch64"], *ssh_files.options())
    assert done.returncode == 0, explain(done)
    assert "Python 3.11.2 on aarch64, numpy missing, rknn-toolkit-lite2 missing" in done.stderr
    # no pip on the board: the pushed pip wheel runs itself; Debian 12 marks its Python
    # externally managed, and the script says why it adds --break-system-packages
    assert "pip is not installed for python3: running it from pip-" in done.stderr
    assert "externally managed (PEP 668); installing with --break-system-packages" in done.stderr
    installed = [line for line in done.stdout.splitlines() if line.startswith("installed on")]
    assert installed and "numpy 1.26.4" in installed[0] and "rknn-toolkit-lite2 2.5.0" in installed[0], done.stdout
    assert "librknnrt.so installed as /usr/lib/librknnrt.so" in done.stdout
    # the packages went into the board's own Python (its root), nowhere else; the library
    # into the board's /usr/lib (the overlay's upper layer), not this machine's
    site = board.site_packages
    assert (site / "rknnlite" / "api" / "rknn_lite.py").is_file() and (site / "numpy").is_dir()
    assert (site / "psutil").is_dir() and (site / "ruamel" / "yaml").is_dir()
    assert (board.home / "usr-lib-upper" / "librknnrt.so").read_bytes() == standin["aarch64"].read_bytes()
    assert not os.path.exists("/usr/lib/librknnrt.so")

    info = rk("board", "info", server.board, *ssh_files.options(), "--json")
    assert info.returncode == 0, explain(info)
    backends = json.loads(info.stdout)["backends"]
    assert backends["rknnlite"]["available"] and backends["rknnrt"]["available"], backends

    done = rk(
        "run",
        "--board",
        server.board,
        "--backend",
        "rknnlite",
        *ssh_files.options(),
        "--model",
        tiny_onnx["model"],
        "--dataset",
        tiny_onnx["dataset"],
        "--input-count",
        "1",
        "--min-runs",
        "10",
        "--min-seconds",
        "0",
        "--db",
        tmp_path / "results.db",
        "-o",
        tmp_path / "out",
    )
    assert done.returncode == 0, explain(done)
    shown = rk.show(tmp_path / "results.db", run_ids(done.stdout)[0])
    assert shown["backend"] == "rknnlite" and shown["versions"]["rknn_toolkit_lite2"] == "2.5.0"
    assert "stand-in" in shown["versions"]["librknnrt"]


def test_provision_on_debian11_without_distutils_says_what_to_install(rk, new_board, serve, ssh_files):
    """Like Ubuntu 20.04 images without python3-pip: pip before Python 3.10 needs the
    distutils Debian ships apart, so no pushed pip can run there."""
    server = serve(new_board(flavour=BULLSEYE, packages=False))
    done = rk("provision", server.board, *ssh_files.options())
    assert done.returncode == 3, explain(done)
    error = done.stderr.strip().splitlines()[-1]
    assert error == (
        f"rkbench: error: ssh {server.board}: provisioning failed (pip cannot run on the board's "
        "Python): pip cannot run on python3: Python 3.9 without distutils (Debian/Ubuntu split it off); "
        "install python3-distutils or python3-pip on the board (apt-get install python3-pip), then run "
        "rkbench provision again"
    )
