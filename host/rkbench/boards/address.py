"""`--board` strings parsed into a BoardAddress (what a board is, not how to talk to it).

Accepted forms:
  192.168.1.20              ssh, user root, port 22
  board7                    ssh to a host name or a ~/.ssh/config alias
  user@host  user@host:2222
  ssh://user@host:2222      ssh URL (user and port optional)
  [fe80::1]  user@[::1]:22  IPv6 in brackets (a bare IPv6 address works too)
  adb:SERIAL                an adb device by serial
  adb://host:5555           adb over TCP (serial host:5555; port defaults to 5555)
  adb                       the only adb device attached
  local                     this machine
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from rkbench.errors import UsageError

DEFAULT_SSH_USER = "root"
DEFAULT_SSH_PORT = 22
DEFAULT_ADB_PORT = 5555

ACCEPTED_FORMS = (
    "IP or HOST, user@host, user@host:port, ssh://user@host:port, "
    "[ipv6] or user@[ipv6]:port, adb:SERIAL, adb://host:port, adb, local"
)

_HOST_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,252})$")
_USER_RE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$")
_SERIAL_RE = re.compile(r"^[A-Za-z0-9._:\-\[\]]{1,128}$")


@dataclass(frozen=True)
class BoardAddress:
    kind: str  # 'ssh' | 'adb' | 'local'
    host: str | None = None  # ssh: host name or IP (no brackets); adb over TCP: host
    port: int | None = None  # ssh port / adb TCP port
    user: str | None = None  # ssh login user
    serial: str | None = None  # adb serial ("host:port" for adb over TCP)
    raw: str = ""
    # Whether user/port were written in the string (so ~/.ssh/config may fill them).
    explicit_user: bool = False
    explicit_port: bool = False

    @property
    def display(self) -> str:
        """Printable, stable name of the board; never holds a secret."""
        if self.kind == "local":
            return "local"
        if self.kind == "adb":
            return f"adb:{self.serial}" if self.serial else "adb"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{self.user}@{host}:{self.port}"

    @property
    def is_ipv6(self) -> bool:
        return bool(self.host) and ":" in (self.host or "")

    def __str__(self) -> str:
        return self.display


_USERINFO_PASSWORD_RE = re.compile(r"^((?:ssh://)?[^@/:\[\]]*):[^@]*@")


def redact(raw: str) -> str:
    """The string with a password in user:password@ replaced by ***."""
    return _USERINFO_PASSWORD_RE.sub(r"\1:***@", raw)


def _bad(raw: str, why: str) -> UsageError:
    return UsageError(f"--board {redact(raw)!r}: {why}; accepted forms: {ACCEPTED_FORMS}")


def _parse_port(raw: str, text: str) -> int:
    if not text.isdigit():
        raise _bad(raw, f"port {text!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise _bad(raw, f"port {port} is out of range 1-65535")
    return port


def _check_host(raw: str, host: str) -> str:
    if not host:
        raise _bad(raw, "no host given")
    if ":" in host:
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise _bad(raw, f"{host!r} is not an IPv6 address") from None
        return host
    if not _HOST_RE.match(host) or ".." in host:
        raise _bad(raw, f"{host!r} is not a valid host name or address")
    return host


def _split_host_port(raw: str, hostport: str) -> tuple:
    """'host', 'host:22', '[v6]', '[v6]:22', or a bare IPv6 address -> (host, port|None)."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _bad(raw, "unclosed '[' around an IPv6 address")
        host = hostport[1:end]
        rest = hostport[end + 1 :]
        if rest == "":
            return _check_host(raw, host), None
        if not rest.startswith(":"):
            raise _bad(raw, f"unexpected {rest!r} after ']'")
        return _check_host(raw, host), _parse_port(raw, rest[1:])
    if hostport.count(":") >= 2:  # bare IPv6, no port possible
        return _check_host(raw, hostport), None
    if ":" in hostport:
        host, port = hostport.split(":", 1)
        return _check_host(raw, host), _parse_port(raw, port)
    return _check_host(raw, hostport), None


def _parse_ssh(raw: str, rest: str) -> BoardAddress:
    user = None
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
        if ":" in user:
            raise _bad(
                raw,
                "passwords are not accepted on the command line; "
                "set RKBENCH_SSH_PASSWORD in the environment or use a key",
            )
        if not _USER_RE.match(user):
            raise _bad(raw, f"{user!r} is not a valid user name")
    host, port = _split_host_port(raw, rest)
    return BoardAddress(
        kind="ssh",
        host=host,
        port=port if port is not None else DEFAULT_SSH_PORT,
        user=user if user is not None else DEFAULT_SSH_USER,
        raw=raw,
        explicit_user=user is not None,
        explicit_port=port is not None,
    )


def parse_board(text: str) -> BoardAddress:
    """Parse a --board string; UsageError naming the string if it is not one."""
    if not isinstance(text, str):
        raise UsageError(f"--board must be a string, got {type(text).__name__}")
    raw = text
    s = text.strip()
    if not s:
        raise _bad(raw, "empty")
    if any(c.isspace() for c in s):
        raise _bad(raw, "white space inside")
    low = s.lower()
    if low == "local":
        return BoardAddress(kind="local", raw=raw)
    if low == "adb":
        return BoardAddress(kind="adb", raw=raw)
    if low.startswith("adb://"):
        rest = s[6:].rstrip("/")
        if "/" in rest or "@" in rest:
            raise _bad(raw, "adb:// takes host:port only")
        host, port = _split_host_port(raw, rest)
        port = port if port is not None else DEFAULT_ADB_PORT
        hostpart = f"[{host}]" if ":" in host else host
        return BoardAddress(kind="adb", host=host, port=port, serial=f"{hostpart}:{port}", raw=raw, explicit_port=True)
    if low.startswith("adb:"):
        serial = s[4:]
        if not serial or not _SERIAL_RE.match(serial):
            raise _bad(raw, f"{serial!r} is not an adb serial")
        return BoardAddress(kind="adb", serial=serial, raw=raw)
    if low.startswith("ssh://"):
        rest = s[6:]
        if rest.endswith("/"):
            rest = rest[:-1]
        if "/" in rest or "?" in rest or "#" in rest:
            raise _bad(raw, "ssh:// takes user@host:port only (no path)")
        return _parse_ssh(raw, rest)
    if "://" in s:
        raise _bad(raw, f"unknown scheme {s.split('://', 1)[0]!r}")
    return _parse_ssh(raw, s)
