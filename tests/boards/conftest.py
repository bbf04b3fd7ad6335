"""Fixtures for board tests: real OpenSSH servers on loopback (see sshd.py)."""

from .sshd import ssh_client_key, ssh_home, sshd, sshd_factory  # noqa: F401
