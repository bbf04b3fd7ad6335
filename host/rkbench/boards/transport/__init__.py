"""How the host talks to a board: run commands (argv lists, quoted), stream a process's
lines, move files. `Transport` (base.py) is the seam; ssh.py, adb.py and local.py are its
implementations, each registering itself here with `@register(kind)`.

    with open_transport("root@192.168.1.20") as board:
        board.run(["uname", "-m"], check=True).stdout

An implementation module is imported only when a board of its kind is opened (paramiko,
the adb client), so commands that never touch a board do not pay for them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from rkbench.boards.address import BoardAddress, parse_board
from rkbench.boards.transport.base import (
    CommandFailed,
    CompletedRun,
    RemoteProcess,
    TransferStats,
    Transport,
    TransportTimeout,
    quote_argv,
    short_command,
)
from rkbench.errors import BoardError

__all__ = [
    "CommandFailed",
    "CompletedRun",
    "RemoteProcess",
    "TransferStats",
    "Transport",
    "TransportTimeout",
    "open_transport",
    "quote_argv",
    "register",
    "short_command",
]

#: The module that implements each board kind; it registers its class when imported.
_MODULES = {
    "ssh": "rkbench.boards.transport.ssh",
    "adb": "rkbench.boards.transport.adb",
    "local": "rkbench.boards.transport.local",
}
_REGISTRY: dict[str, type[Transport]] = {}


def register(kind: str) -> Callable[[type[Transport]], type[Transport]]:
    """Class decorator: `@register("ssh")` makes open_transport use the class for ssh boards."""

    def add(cls: type[Transport]) -> type[Transport]:
        _REGISTRY[kind] = cls
        return cls

    return add


def open_transport(address: BoardAddress | str, **opts) -> Transport:
    """A connected transport for `address` (a BoardAddress or a --board string).

    ssh opts: known_hosts, trust_new, identity_files, ssh_config, connect_timeout,
    password_env, allow_agent, log (callable for one-line notices).
    local opts: home (what home() returns; default: this user's home), env
    (environment for the commands; default: inherited).
    """
    if isinstance(address, str):
        address = parse_board(address)
    if not isinstance(address, BoardAddress):
        raise TypeError(f"not a board address: {address!r}")
    if address.kind not in _MODULES:
        raise BoardError(f"unknown board kind {address.kind!r} for {address.raw!r}")
    if address.kind not in _REGISTRY:
        importlib.import_module(_MODULES[address.kind])
    return _REGISTRY[address.kind](address, **opts)
