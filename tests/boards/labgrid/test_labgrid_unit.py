"""Parsing and client-finding in rkbench.boards.labgrid (no labgrid needed).

The `show` texts below were printed by labgrid-client 26.0.1."""

from __future__ import annotations

import signal
import stat
import sys
import textwrap
import threading

import pytest

from rkbench.boards.labgrid import (
    CLIENT_ENV,
    LabgridClientMissing,
    LabgridPlace,
    NoNetworkService,
    describe_holder,
    find_labgrid_client,
    parse_labgrid_board,
    parse_show,
)
from rkbench.errors import UsageError

SHOW_FREE = """\
Place 'rk3588-a':
  aliases: a1, alice:mine
  comment: RK3588 EVB desk 4
  tags: rack=2, soc=rk3588
  matches:
    rkb-exp/rkb-power/NetworkPowerPort
    rkb-exp/rkb-ssh/NetworkService -> ssh
  acquired: None
  acquired resources:
  created: 2026-11-25 17:28:25.513123
  changed: 2026-11-25 17:28:27.785093
Matching resource 'NetworkPowerPort' (rkb-exp/rkb-power/NetworkPowerPort/NetworkPowerPort):
  {'acquired': None,
   'avail': True,
   'cls': 'NetworkPowerPort',
   'params': {'extra': {'proxy': 'localhost', 'proxy_required': False},
              'host': 'http://127.0.0.1:9/power',
              'index': 0,
              'model': 'simplerest'}}
Matching resource 'ssh' (rkb-exp/rkb-ssh/NetworkService/NetworkService):
  {'acquired': None,
   'avail': True,
   'cls': 'NetworkService',
   'params': {'address': '127.0.0.1',
              'extra': {'proxy': 'localhost', 'proxy_required': False},
              'port': 34091,
              'username': 'root'}}
"""

SHOW_ACQUIRED = """\
Place 'rk3588-a':
  matches:
    rkb-exp/rkb-ssh/NetworkService -> ssh
  acquired: ci-7/jenkins
  acquired resources:
    rkb-exp/rkb-ssh/NetworkService/NetworkService -> ssh
  allowed: dev/bob
  created: 2026-11-25 17:28:25.513123
  changed: 2026-11-25 17:28:29.239887
Acquired resource 'ssh' (rkb-exp/rkb-ssh/NetworkService/NetworkService):
  {'acquired': 'rk3588-a',
   'avail': True,
   'cls': 'NetworkService',
   'params': {'address': 'fe80::1%eth1',
              'extra': {'proxy': 'exporter-3', 'proxy_required': True},
              'port': 2222,
              'username': 'root'}}
"""

SHOW_ORPHANED = """\
Place 'rk3588-a':
  matches:
    rkb-exp/rkb-ssh/NetworkService
  acquired: ci-7/jenkins
  acquired resources:
    rkb-exp/rkb-ssh/NetworkService/NetworkService
  created: 2026-11-25 17:28:25.513123
  changed: 2026-11-25 17:28:29.239887
Orphaned resource 'NetworkService' (rkb-exp/rkb-ssh/NetworkService/NetworkService)
"""


def test_parse_show_free_place():
    st = parse_show(SHOW_FREE)
    assert st.name == "rk3588-a"
    assert st.aliases == ("a1", "alice:mine")
    assert st.comment == "RK3588 EVB desk 4"
    assert st.tags == {"rack": "2", "soc": "rk3588"}
    assert st.matches == ("rkb-exp/rkb-power/NetworkPowerPort", "rkb-exp/rkb-ssh/NetworkService -> ssh")
    assert st.acquired is None and st.acquired_resources == ()
    assert [r.cls for r in st.resources] == ["NetworkPowerPort", "NetworkService"]
    (svc,) = st.services()
    assert svc.name == "ssh" and svc.path == ("rkb-exp", "rkb-ssh", "NetworkService", "NetworkService")
    assert svc.params == {"address": "127.0.0.1", "port": 34091, "username": "root"}
    assert svc.extra == {"proxy": "localhost", "proxy_required": False}


def test_parse_show_acquired_and_orphaned():
    st = parse_show(SHOW_ACQUIRED)
    assert st.acquired == "ci-7/jenkins" and st.allowed == ("dev/bob",)
    assert st.acquired_resources == ("rkb-exp/rkb-ssh/NetworkService/NetworkService",)
    assert st.changed.startswith("2026-11-25 17:28:29")
    (svc,) = st.services()
    assert svc.params["address"] == "fe80::1%eth1" and svc.extra["proxy_required"] is True

    orphan = parse_show(SHOW_ORPHANED)
    (svc,) = orphan.services()
    assert svc.orphaned and svc.params == {}


def test_parse_show_rejects_other_text():
    with pytest.raises(ValueError):
        parse_show("Error: something else\n")


def test_parse_labgrid_board():
    assert parse_labgrid_board("labgrid:rk3588-a") == "rk3588-a"
    assert parse_labgrid_board("LabGrid:rk3588-a") == "rk3588-a"
    assert parse_labgrid_board("labgrid://rk3588-a/") == "rk3588-a"
    assert parse_labgrid_board("labgrid:+TOKEN123") == "+TOKEN123"
    for other in ("192.168.1.20", "root@board:22", "adb:1234", "local", "labgridhost"):
        assert parse_labgrid_board(other) is None
    for bad in ("labgrid:", "labgrid:two words", "labgrid:a/b", "labgrid:-x"):
        with pytest.raises(UsageError):
            parse_labgrid_board(bad)


def test_describe_holder():
    assert describe_holder("ci-7/jenkins") == "user 'jenkins' on host 'ci-7'"


def _fake_client(tmp_path, body: str):
    """A stand-in labgrid-client (a Python script) that logs its argv."""
    path = tmp_path / "bin" / "labgrid-client"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys, time\n"
        "here = pathlib.Path(__file__).parent\n"
        "with open(here / 'calls.log', 'a') as f: f.write(' '.join(sys.argv[1:]) + '\\n')\n" + textwrap.dedent(body)
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_labgrid_client(tmp_path, monkeypatch):
    client = _fake_client(tmp_path / "venv", "")
    assert find_labgrid_client(str(client)) == str(client)
    assert find_labgrid_client(str(tmp_path / "venv")) == str(client)  # a venv directory
    assert find_labgrid_client(env={CLIENT_ENV: str(client), "PATH": ""}) == str(client)
    assert find_labgrid_client(env={"PATH": str(client.parent)}) == str(client)
    with pytest.raises(LabgridClientMissing, match=r"not found on PATH.*pip install"):
        find_labgrid_client(env={"PATH": str(tmp_path)})
    with pytest.raises(LabgridClientMissing, match=rf"\${CLIENT_ENV}"):
        find_labgrid_client(env={CLIENT_ENV: str(tmp_path / "missing"), "PATH": ""})


def test_release_survives_ctrl_c(tmp_path):
    """A Ctrl-C while the release runs does not stop it; the KeyboardInterrupt comes after."""
    client = _fake_client(
        tmp_path,
        """
        if "release-from" in sys.argv:
            time.sleep(1.0)
            (here / "released").write_text("yes")
            print("released")
        """,
    )
    place = LabgridPlace("rk3588-a", client=str(client), coordinator="127.0.0.1:9")
    place._holder = "ci-7/jenkins"  # as if acquired
    main = threading.main_thread().ident
    timer = threading.Timer(0.3, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            place.release()
    finally:
        timer.join()
    assert (client.parent / "released").read_text() == "yes"
    assert not place.acquired
    calls = (client.parent / "calls.log").read_text().splitlines()
    assert calls == ["-x 127.0.0.1:9 -p rk3588-a release-from ci-7/jenkins"]


def test_place_busy_in_a_race_and_service_checks(tmp_path):
    """`show` says free, `acquire` loses the race: the holder is named from the next `show`."""
    client = _fake_client(
        tmp_path,
        f"""
        n = len((here / 'calls.log').read_text().splitlines())
        if sys.argv[-1] == "show":
            text = {SHOW_FREE!r} if n == 1 else {SHOW_ACQUIRED!r}
            print(text)
        elif sys.argv[-1] == "acquire":
            print("labgrid-client: Error: Place rk3588-a is already acquired by ci-7/jenkins.", file=sys.stderr)
            sys.exit(1)
        """,
    )
    place = LabgridPlace("rk3588-a", client=str(client), coordinator="127.0.0.1:9", env={"LG_USERNAME": "me"})
    with pytest.raises(Exception) as err:
        place.acquire()
    assert "'jenkins' on host 'ci-7'" in str(err.value) and type(err.value).__name__ == "PlaceBusy"
    assert not place.acquired


def test_service_needs_one_network_service(tmp_path):
    two = SHOW_ACQUIRED.replace("acquired: ci-7/jenkins", "acquired: h/me") + SHOW_ACQUIRED.split("\n", 9)[9].replace(
        "'ssh'", "'ssh2'"
    )
    client = _fake_client(tmp_path, f"print({two!r})\n")
    place = LabgridPlace(
        "rk3588-a", client=str(client), coordinator="127.0.0.1:9", env={"LG_USERNAME": "me", "LG_HOSTNAME": "h"}
    )
    place._holder = "h/me"
    with pytest.raises(NoNetworkService, match="2 NetworkServices"):
        place.service()
    assert place.service("ssh2").name == "ssh2"
    assert place.network_service("ssh") == ("fe80::1%eth1", "root", 2222)


def test_proxy_jump_follows_labgrid(tmp_path, monkeypatch):
    import getpass

    from rkbench.boards.labgrid import _proxy_jump

    svc = parse_show(SHOW_ACQUIRED).services()[0]  # proxy_required: True, proxy: exporter-3
    cfg = tmp_path / "ssh_config"
    cfg.write_text("")
    assert _proxy_jump(svc, {}, str(cfg)) == f"{getpass.getuser()}@exporter-3"
    cfg.write_text("Host exporter-3\n  User lab\n")
    assert _proxy_jump(svc, {}, str(cfg)) == "exporter-3"  # ~/.ssh/config decides, as for plain ssh
    direct = parse_show(SHOW_FREE).services()[0]  # proxy_required: False
    assert _proxy_jump(direct, {}, str(cfg)) is None
    assert _proxy_jump(direct, {"LG_PROXY": "ops@gate:2200"}, str(cfg)) == "ops@gate:2200"
