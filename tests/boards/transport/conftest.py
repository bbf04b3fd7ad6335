"""Fixtures for the adb transport: an AdbTransport to a fresh adbd stand-in."""

import pytest


@pytest.fixture
def adb_transport(adb_server, adbd_standin):
    """An AdbTransport (adb://127.0.0.1:PORT) to a fresh stand-in (tests/standins/adbd.py)."""
    from rkbench.boards.transport import open_transport

    with open_transport(adbd_standin.board, **adb_server.transport_opts()) as t:
        yield t
