"""An emulated aarch64 RK3588/RK3566 board for tests and benchmarks (no NPU exists here).

Debian's own arm64 Python (3.11 from bookworm; 3.9 from bullseye, like Ubuntu 20.04
boards) runs under qemu-user with a root of its own: the real aarch64 numpy and
rknn-toolkit-lite2 wheels from PyPI, a device tree saying rk3588/rk3566, the /sys files
the runner reads, and our stand-in librknnrt.so (tests/standins/librknnrt) at
/usr/lib/librknnrt.so. A real OpenSSH server on loopback serves it, its login `python3`
being the emulated one.

    rootfs.py    the cached root (Debian packages, wheels), rebuilt only when its inputs change
    board.py     one board: a hard-link copy of a root + SoC files + librknnrt + python3 wrapper
    serve.py     sshd for a board
    debian.py    apt with private state; wheels.py aarch64 wheels; emulator.py qemu-user
    socfiles.py  device tree, /sys, /dev files; flavours.py what a board is made of
"""
