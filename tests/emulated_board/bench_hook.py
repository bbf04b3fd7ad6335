"""An emulated board for benchmarks (bench/bench_emulated.py) and anything else outside
pytest: the cached root, a board of its own in `workdir`, the aarch64 stand-in and bare C
loop, and (serve=True) an sshd with a client key and a known_hosts file.

    with emulated_board(Path(tmp)) as eb:
        eb.board.python          # the board's python3 (qemu-user)
        eb.qemu + [eb.bare_loop, eb.lib, model]   # an aarch64 program on the board
        eb.server.board, eb.ssh_options           # for `rkbench ... --board` (no --python needed)
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from . import emulator, socfiles
from .board import LIBRKNNRT, EmulatedBoard, make_board
from .flavours import BOOKWORM, Flavour
from .serve import BoardServer, serve_board, ssh_options


@dataclass
class BenchBoard:
    board: EmulatedBoard
    bare_loop: Path  # tests/standins/librknnrt bare_loop, aarch64
    server: BoardServer | None = None
    ssh_key: Path | None = None
    known_hosts: Path | None = None
    ssh_config: Path | None = None

    @property
    def ssh_options(self) -> list[str]:
        """--known-hosts/--identity/--ssh-config for rkbench's board commands (serve=True)."""
        return ssh_options(self.known_hosts, self.ssh_key, self.ssh_config) if self.server else []

    @property
    def lib(self) -> Path:
        """The board's /usr/lib/librknnrt.so (the stand-in), as a path on this machine."""
        return self.board.root / LIBRKNNRT

    @property
    def qemu(self) -> list[str]:
        """The prefix that runs an aarch64 program (given by its path on this machine) on the board."""
        return emulator.prefix(self.board.root, socfiles.CPUS[self.board.soc])


@contextmanager
def emulated_board(
    workdir: Path, soc: str = "rk3588", flavour: Flavour = BOOKWORM, serve: bool = True, host: str = "127.0.0.3"
) -> Iterator[BenchBoard]:
    """Raises RuntimeError naming the packages when qemu or the cross compiler is missing."""
    missing = emulator.missing_tools()
    if missing:
        raise RuntimeError("the emulated aarch64 board needs " + "; ".join(missing))
    from tests.standins.librknnrt import build_bare_loop, build_standin
    from tests.support.sshd import make_client_key

    board = make_board(workdir / "board", flavour=flavour, soc=soc, librknnrt=build_standin("aarch64"))
    bench = BenchBoard(board=board, bare_loop=build_bare_loop("aarch64"))
    if serve:
        bench.ssh_key = make_client_key(workdir / "ssh")
        bench.known_hosts, bench.ssh_config = workdir / "ssh" / "known_hosts", workdir / "ssh" / "config"
        bench.server = serve_board(board, workdir / "sshd", [bench.ssh_key], host=host)
        bench.server.trust(bench.known_hosts)
    try:
        yield bench
    finally:
        if bench.server is not None:
            bench.server.stop()
