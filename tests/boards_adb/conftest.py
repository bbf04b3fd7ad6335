"""Fixtures for the adb path: the real `adb` client and server against the
adbd stand-in (tests/adbd_standin.py) on loopback."""

import sys
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from adbd_standin import adb_server, adbd_standin, adbd_standin_factory  # noqa: E402,F401


@pytest.fixture
def adb_transport(adb_server, adbd_standin):
    """An AdbTransport (adb://127.0.0.1:PORT) to a fresh stand-in."""
    from rkbench.boards.transport import open_transport

    with open_transport(adbd_standin.board, **adb_server.transport_opts()) as t:
        yield t
