"""The lab's boards (`boards.toml`): names, addresses, SoCs and tags.

    [boards.shelf2-a]
    address = "root@10.0.0.21"      # anything --board takes: ssh, adb:SERIAL, labgrid:PLACE, local
    soc = "rk3588"
    tags = ["lab=shelf2", "camera"]
    identity = "~/.ssh/lab_ed25519"  # optional SSH options
    known_hosts = "~/.ssh/lab_known_hosts"
    python = "python3"               # the board's interpreter

A selector picks boards by name, by tag (`lab=shelf2`, `camera`) or by `soc=rk3588`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (requires-python): the same parser, from PyPI
    import tomli as tomllib

from rkbench.errors import InputFileError, UsageError

BOARD_KEYS = {"address", "soc", "tags", "identity", "known_hosts", "python", "ssh_config", "description"}


@dataclass(frozen=True)
class Board:
    name: str
    address: str
    soc: str | None = None
    tags: tuple[str, ...] = ()
    identity: str | None = None
    known_hosts: str | None = None
    ssh_config: str | None = None
    python: str = "python3"
    description: str = ""

    def matches(self, selector: str) -> bool:
        if selector == self.name or selector in self.tags:
            return True
        key, _, value = selector.partition("=")
        return key == "soc" and value != "" and (self.soc or "").lower() == value.lower()


@dataclass
class Inventory:
    path: Path | None
    boards: dict[str, Board] = field(default_factory=dict)

    def select(self, selectors: list[str], where: str = "") -> list[Board]:
        """Boards matching any selector, in inventory order; a selector matching nothing is an error."""
        chosen: list[Board] = []
        for selector in selectors:
            found = [b for b in self.boards.values() if b.matches(selector)]
            if not found:
                known = ", ".join(self.boards) or "none"
                raise UsageError(
                    f"{where}board selector '{selector}' matches no board in "
                    f"{self.path or 'the inventory'} (boards: {known}; tags and soc=... select too)"
                )
            chosen += [b for b in found if b not in chosen]
        return chosen


def load_toml(path: Path, what: str) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise InputFileError(f"{what} {path} does not exist") from None
    except OSError as err:
        raise InputFileError(f"cannot read {what} {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise InputFileError(f"{path}: not valid TOML: {err}") from None


def load_inventory(path: Path) -> Inventory:
    data = load_toml(path, "board inventory")
    boards = data.get("boards")
    if not isinstance(boards, dict) or not boards:
        raise InputFileError(f"{path}: no [boards.NAME] tables (each with an address)")
    inventory = Inventory(path)
    for name, entry in boards.items():
        where = f"{path}: [boards.{name}]"
        if not isinstance(entry, dict):
            raise InputFileError(f"{where} must be a table")
        unknown = set(entry) - BOARD_KEYS
        if unknown:
            raise InputFileError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(BOARD_KEYS))})"
            )
        if not isinstance(entry.get("address"), str) or not entry["address"]:
            raise InputFileError(f'{where}: \'address\' is missing (e.g. "root@host", "adb:SERIAL", "labgrid:PLACE")')
        tags = entry.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InputFileError(f"{where}: 'tags' must be a list of strings")
        for key in sorted(BOARD_KEYS - {"address", "tags"}):
            if key in entry and not isinstance(entry[key], str):
                raise InputFileError(f"{where}: '{key}' must be a string")
        _check_values(where, entry)
        inventory.boards[name] = Board(
            name=name,
            address=entry["address"],
            soc=entry.get("soc"),
            tags=tuple(tags),
            identity=entry.get("identity"),
            known_hosts=entry.get("known_hosts"),
            ssh_config=entry.get("ssh_config"),
            python=entry.get("python", "python3"),
            description=entry.get("description", ""),
        )
    return inventory


def _check_values(where: str, entry: dict) -> None:
    """The values a board's options would take, checked as those options are (exit 2), so
    a bad address is a bad inventory when it is read, not an offline board later."""
    from rkbench.boards.address import parse_board
    from rkbench.boards.labgrid import parse_labgrid_board
    from rkbench.boards.runner_command import python_argv
    from rkbench.model.config import TARGETS

    def refuse(key: str, err: Exception) -> UsageError:
        why = str(err).split(": ", 1)[1] if str(err).startswith("--") else str(err)  # not "--board 'x': ..."
        return UsageError(f"{where}: {key} {entry[key]!r}: {why}")

    try:
        if parse_labgrid_board(entry["address"]) is None:
            parse_board(entry["address"])
    except UsageError as err:
        raise refuse("address", err) from None
    if "python" in entry:
        try:
            python_argv(entry["python"])
        except (UsageError, ValueError) as err:
            raise refuse("python", err) from None
    soc = entry.get("soc")
    if soc is not None and soc.lower() not in TARGETS:
        raise UsageError(f"{where}: soc {soc!r} is not a SoC rkbench builds for (known: {', '.join(TARGETS)})")
