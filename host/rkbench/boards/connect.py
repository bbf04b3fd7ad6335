"""Open a board from a --board string: ssh, adb, local, or a labgrid place.

with open_board("192.168.1.20", trust_new=True) as board:
    board.run(["uname", "-m"])
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rkbench.boards.address import BoardAddress, parse_board
from rkbench.boards.transport import Transport, open_transport

DEFAULT_PYTHON = "python3"


def board_python(board: str, python: str | None = None) -> str:
    """The board's interpreter: as given, else python3 -- except on the local board, which
    is this machine: its runner uses this interpreter (it has onnxruntime, and in rkbench's
    own environment rknn-toolkit2 for the simulator backend)."""
    if python:
        return python
    return sys.executable if board == "local" else DEFAULT_PYTHON


def open_board(
    board: str | BoardAddress,
    trust_new: bool = False,
    *,
    known_hosts: str | None = None,
    identity_files: Sequence[str] = (),
    ssh_config: str | None = None,
    connect_timeout: float = 10.0,
    log: Callable[[str], None] | None = None,
    labgrid: Mapping[str, Any] | None = None,
    **transport_opts: Any,
) -> Transport:
    """Parse a --board string and open its transport (ssh, adb, local, or the SSH
    NetworkService of a labgrid place: `labgrid:PLACE`, acquired now and released when
    the transport is closed; `labgrid` holds client, coordinator, acquire_timeout).

    The ssh options (trust_new, known_hosts, identity_files, ssh_config,
    connect_timeout) are ignored for adb and local boards. `transport_opts` go to
    the transport as they are (local: home, env; adb: adb_path, server_port, ...).
    `log` gets one-line notices (e.g. "trusting new host key ... recorded in ...").
    """
    if isinstance(board, str):
        from rkbench.boards.labgrid import parse_labgrid_board

        place = parse_labgrid_board(board)
        if place is not None:
            return _open_labgrid(
                place, trust_new, known_hosts, identity_files, ssh_config, connect_timeout, log, labgrid
            )
    address = parse_board(board) if isinstance(board, str) else board
    opts: dict[str, Any] = dict(transport_opts)
    if address.kind == "ssh":
        opts.update(
            known_hosts=known_hosts,
            trust_new=trust_new,
            identity_files=list(identity_files),
            ssh_config=ssh_config,
            connect_timeout=connect_timeout,
        )
        if log is not None:
            opts["log"] = log
    elif address.kind == "adb" and log is not None:
        opts.setdefault("log", log)
    return open_transport(address, **opts)


def _open_labgrid(
    place: str,
    trust_new: bool,
    known_hosts: str | None,
    identity_files: Sequence[str],
    ssh_config: str | None,
    connect_timeout: float,
    log: Callable[[str], None] | None,
    labgrid: Mapping[str, Any] | None,
) -> Transport:
    from rkbench.boards.labgrid import open_labgrid_board

    transport, release = open_labgrid_board(
        place,
        log=log,
        trust_new=trust_new,
        known_hosts=known_hosts,
        identity_files=list(identity_files),
        ssh_config=ssh_config,
        connect_timeout=connect_timeout,
        **dict(labgrid or {}),
    )
    transport.on_close(release)  # the place is released with the connection
    return transport
