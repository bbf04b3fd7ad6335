"""Build (or find) the emulated boards' cached roots, e.g. as a CI step before the tests:

    .venv/bin/python -m tests.emulated_board [bookworm bullseye]

Prints each root, whether it was built now and how long that took; exit 1 with the reason
when a root cannot be built (no qemu-user-static, no network to the Debian mirror or PyPI).
"""

from __future__ import annotations

import sys
import time

from . import emulator, rootfs
from .flavours import FLAVOURS


def main(argv) -> int:
    names = argv or list(FLAVOURS)
    unknown = [n for n in names if n not in FLAVOURS]
    if unknown:
        print("unknown flavour(s) {}: known {}".format(", ".join(unknown), ", ".join(FLAVOURS)), file=sys.stderr)
        return 2
    missing = emulator.missing_tools()
    if missing:
        print("the emulated aarch64 board needs " + "; ".join(missing), file=sys.stderr)
        return 1
    for name in names:
        for packages in (False, True):
            started = time.monotonic()
            try:
                root = rootfs.cached_root(FLAVOURS[name], packages)
            except Exception as exc:  # the reason is the message: network, mirror, pip
                print(f"{rootfs.layer_name(FLAVOURS[name], packages)}: {exc}", file=sys.stderr)
                return 1
            print(f"{rootfs.layer_name(FLAVOURS[name], packages):<20} {root}  ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
