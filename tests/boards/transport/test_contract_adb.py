"""The shared transport contract (test_transport_contract.py beside it) run
against adb: its tests that take a `transport` are collected here again, with
`transport` bound to an AdbTransport on the adbd stand-in. Nothing is copied,
so a change to the contract is checked on adb too."""

import inspect

import pytest

from rkbench.boards.transport import open_transport
from tests.boards.transport import test_transport_contract as contract

for _name, _fn in list(vars(contract).items()):
    if _name.startswith("test_") and callable(_fn) and "transport" in inspect.signature(_fn).parameters:
        globals()[_name] = _fn
del _name, _fn


@pytest.fixture
def transport(adb_server, adbd_standin):
    with open_transport(adbd_standin.board, **adb_server.transport_opts()) as t:
        yield t
