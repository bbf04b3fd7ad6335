import dataclasses

import pytest

from rkbench.boards.address import BoardAddress, parse_board
from rkbench.errors import UsageError


@pytest.mark.parametrize(
    "text, kind, host, port, user, serial, display",
    [
        ("192.168.1.20", "ssh", "192.168.1.20", 22, "root", None, "root@192.168.1.20:22"),
        ("board7", "ssh", "board7", 22, "root", None, "root@board7:22"),
        ("pi@rock5b.lan", "ssh", "rock5b.lan", 22, "pi", None, "pi@rock5b.lan:22"),
        ("pi@10.1.2.3:2222", "ssh", "10.1.2.3", 2222, "pi", None, "pi@10.1.2.3:2222"),
        ("host:2200", "ssh", "host", 2200, "root", None, "root@host:2200"),
        ("ssh://linaro@board:2022", "ssh", "board", 2022, "linaro", None, "linaro@board:2022"),
        ("ssh://board", "ssh", "board", 22, "root", None, "root@board:22"),
        ("ssh://board/", "ssh", "board", 22, "root", None, "root@board:22"),
        ("[fe80::1]", "ssh", "fe80::1", 22, "root", None, "root@[fe80::1]:22"),
        ("u@[2001:db8::5]:2222", "ssh", "2001:db8::5", 2222, "u", None, "u@[2001:db8::5]:2222"),
        ("ssh://u@[::1]:23", "ssh", "::1", 23, "u", None, "u@[::1]:23"),
        ("fe80::2", "ssh", "fe80::2", 22, "root", None, "root@[fe80::2]:22"),
        ("adb:0123456789ABCDEF", "adb", None, None, None, "0123456789ABCDEF", "adb:0123456789ABCDEF"),
        ("adb://192.168.1.30:5555", "adb", "192.168.1.30", 5555, None, "192.168.1.30:5555", "adb:192.168.1.30:5555"),
        ("adb://board", "adb", "board", 5555, None, "board:5555", "adb:board:5555"),
        ("adb", "adb", None, None, None, None, "adb"),
        ("local", "local", None, None, None, None, "local"),
        ("LOCAL", "local", None, None, None, None, "local"),
    ],
)
def test_forms(text, kind, host, port, user, serial, display):
    a = parse_board(text)
    assert isinstance(a, BoardAddress)
    assert (a.kind, a.host, a.port, a.user, a.serial) == (kind, host, port, user, serial)
    assert a.display == display
    assert a.raw == text


def test_explicit_flags_and_frozen():
    a = parse_board("10.0.0.9")
    assert not a.explicit_user and not a.explicit_port
    b = parse_board("me@10.0.0.9:23")
    assert b.explicit_user and b.explicit_port
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.host = "x"  # frozen
    assert parse_board("a@b:1") == parse_board("a@b:1")


@pytest.mark.parametrize(
    "text, why",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a b", "white space"),
        ("host:0", "out of range"),
        ("host:70000", "out of range"),
        ("host:ssh", "not a number"),
        ("ftp://host", "unknown scheme"),
        ("[::1", "unclosed"),
        ("[nothex::zz]", "not an IPv6"),
        ("x;rm -rf", "white space"),
        ("x;rm", "not a valid host"),
        ("$(id)@host", "not a valid user"),
        ("ssh://host/path", "no path"),
        ("adb:", "not an adb serial"),
        ("adb://u@host", "host:port only"),
        ("root:hunter2@board", "RKBENCH_SSH_PASSWORD"),
    ],
)
def test_bad_strings(text, why):
    with pytest.raises(UsageError) as e:
        parse_board(text)
    msg = str(e.value)
    assert why in msg
    assert repr(text) in msg or "***" in msg  # names the string (password redacted)
    assert "adb:SERIAL" in msg and "user@host:port" in msg  # lists the accepted forms
    assert "\n" not in msg


def test_password_never_in_message():
    with pytest.raises(UsageError) as e:
        parse_board("ssh://root:s3cret@board")
    assert "RKBENCH_SSH_PASSWORD" in str(e.value)
    assert "s3cret" not in str(e.value)
    assert "root:***@board" in str(e.value)
