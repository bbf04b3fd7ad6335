"""LabgridPlace and open_labgrid_board against a real labgrid 26 coordinator and
exporter (labgrid's own venv), with the place's NetworkService pointing at a real sshd."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from rkbench.boards.labgrid import (
    CLIENT_ENV,
    CoordinatorUnreachable,
    LabgridClientMissing,
    LabgridPlace,
    NetworkService,
    NoNetworkService,
    PlaceBusy,
    PlaceNotFound,
    labgrid_board,
    open_labgrid_board,
)
from rkbench.boards.transport import open_transport
from rkbench.errors import BoardError

from .conftest import POWER_MATCH, _free_port, _listening


def lg(lab, name, **kw) -> LabgridPlace:
    return LabgridPlace(name, client=lab.client_path, coordinator=lab.coordinator, **kw)


def test_acquire_network_service_ssh_release(lab, place, ssh_opts):
    p = lg(lab, place)
    with p:
        assert p.acquired
        assert lab.holder(place) == p.holder == p.identity
        ns = p.network_service()
        assert ns == NetworkService("127.0.0.1", lab.sshd.user, lab.sshd.port)
        address, username, port = ns
        with open_transport(f"{username}@{address}:{port}", **ssh_opts) as t:
            assert t.run(["echo", "hi"], timeout=30).stdout == b"hi\n"
    assert not p.acquired
    assert lab.holder(place) is None
    p.release()  # twice is fine


def test_open_labgrid_board_runs_a_command(lab, place, ssh_opts):
    transport, release = open_labgrid_board(
        f"labgrid:{place}", client=lab.client_path, coordinator=lab.coordinator, **ssh_opts
    )
    try:
        assert lab.holder(place) is not None
        assert transport.run(["echo", "hi"], timeout=30).stdout == b"hi\n"
        assert transport.address.raw == f"labgrid:{place}"
        assert transport.describe() == f"ssh {lab.sshd.user}@127.0.0.1:{lab.sshd.port}"
    finally:
        release()
    assert lab.holder(place) is None
    release()  # idempotent


@pytest.mark.parametrize("exc", [RuntimeError("benchmark failed"), KeyboardInterrupt()])
def test_released_when_the_body_raises(lab, place, ssh_opts, exc):
    with pytest.raises(type(exc)):
        with labgrid_board(
            f"labgrid:{place}", client=lab.client_path, coordinator=lab.coordinator, **ssh_opts
        ) as transport:
            assert transport.run(["true"], timeout=30).returncode == 0
            assert lab.holder(place) is not None
            raise exc
    assert lab.holder(place) is None

    p = lg(lab, place)
    with pytest.raises(type(exc)):
        with p:
            raise exc
    assert lab.holder(place) is None


def test_ctrl_c_at_any_moment_leaves_the_place_free(lab, place):
    """A Ctrl-C (SIGINT) landing in show, in acquire, or in the body: never a place left acquired."""
    for delay in (0.15, 0.6, 1.2):
        timer = threading.Timer(delay, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                with lg(lab, place):
                    time.sleep(5)
        finally:
            timer.join()
        assert lab.holder(place) is None, f"left acquired after a Ctrl-C at {delay} s"


def test_released_when_ssh_fails(lab, place, ssh_opts, tmp_path):
    opts = dict(ssh_opts, known_hosts=str(tmp_path / "empty_known_hosts"))  # host key unknown
    with pytest.raises(BoardError) as err:
        open_labgrid_board(place, client=lab.client_path, coordinator=lab.coordinator, **opts)
    msg = str(err.value)
    assert f"labgrid:{place}" in msg and "host key" in msg.lower() and "\n" not in msg
    assert err.value.exit_code == 3
    assert lab.holder(place) is None


def test_second_client_sees_the_holder(lab, place):
    first = lg(lab, place, env={"LG_USERNAME": "alice"})
    second = lg(lab, place, env={"LG_USERNAME": "bob"})
    with first:
        assert first.holder.endswith("/alice")
        with pytest.raises(PlaceBusy) as err:
            second.acquire()
        msg = str(err.value)
        assert "'alice'" in msg and place in msg and "\n" not in msg
        assert err.value.holder == first.holder
        assert err.value.exit_code == 3
        assert not second.acquired
        second.release()  # holds nothing: releases nothing
        # the same labgrid identity again: another run of ours (or a leftover) holds it
        with pytest.raises(PlaceBusy, match="already acquired by you"):
            lg(lab, place, env={"LG_USERNAME": "alice"}).acquire()
        assert lab.holder(place) == first.holder
    assert lab.holder(place) is None


def test_waits_for_a_busy_place(lab, place):
    first = lg(lab, place, env={"LG_USERNAME": "alice"})
    notices = []
    second = lg(lab, place, env={"LG_USERNAME": "bob"}, poll_interval=0.3, log=notices.append)
    first.acquire()
    timer = threading.Timer(1.0, first.release)
    timer.start()
    try:
        t0 = time.monotonic()
        second.acquire(timeout=20)
        assert time.monotonic() - t0 >= 0.9
        assert second.holder.endswith("/bob") and lab.holder(place) == second.holder
        assert any("alice" in n and "waiting" in n for n in notices)
    finally:
        timer.join()
        second.release()
        first.release()


def test_unknown_place(lab, place):
    with pytest.raises(PlaceNotFound) as err:
        lg(lab, "no-such-place").acquire()
    assert "no-such-place" in str(err.value) and "no such place" in str(err.value)
    # labgrid-client alone would pick a place by substring; rkbench wants the full name
    with pytest.raises(PlaceNotFound, match="full place name"):
        lg(lab, place[:-2]).acquire()
    assert lab.holder(place) is None


def test_alias_is_accepted(lab, place):
    lab.client("-p", place, "add-alias", f"{place}-alias")
    p = lg(lab, f"{place}-alias")
    with p:
        assert lab.holder(place) == p.holder
    assert lab.holder(place) is None


def test_place_without_network_service(lab):
    name = lab.create_place(POWER_MATCH)
    try:
        with pytest.raises(NoNetworkService) as err:
            lg(lab, name).acquire()
        msg = str(err.value)
        assert "no NetworkService" in msg and "NetworkPowerPort" in msg and "add-match" in msg
        assert lab.holder(name) is None  # refused before acquiring
    finally:
        lab.delete_place(name)


def test_missing_labgrid_client(lab, place, tmp_path, monkeypatch):
    with pytest.raises(LabgridClientMissing) as err:
        LabgridPlace(place, client=str(tmp_path / "nope" / "labgrid-client"), coordinator=lab.coordinator)
    msg = str(err.value)
    assert "--labgrid-client" in msg and "pip install" in msg and "venv" in msg and "\n" not in msg
    assert err.value.exit_code == 3

    monkeypatch.delenv(CLIENT_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LabgridClientMissing, match="not found on PATH"):
        LabgridPlace(place, coordinator=lab.coordinator)


def test_client_and_coordinator_from_the_environment(lab, place, monkeypatch):
    # a venv directory is enough; LG_ENV / LG_PLACE of the caller must not leak into labgrid-client
    monkeypatch.setenv(CLIENT_ENV, str(lab.bin.parent))
    monkeypatch.setenv("LG_COORDINATOR", lab.coordinator)
    monkeypatch.setenv("LG_ENV", "/nonexistent/env.yaml")
    monkeypatch.setenv("LG_PLACE", "some-other-place")
    p = LabgridPlace(place)
    assert p.client == str(lab.bin / "labgrid-client")
    with p:
        assert lab.holder(place) == p.holder
    assert lab.holder(place) is None


def test_coordinator_down(lab, place):
    dead = f"127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(CoordinatorUnreachable) as err:
        LabgridPlace(place, client=lab.client_path, coordinator=dead).acquire()
    assert time.monotonic() - t0 < 20
    msg = str(err.value)
    assert dead in msg and "labgrid-coordinator" in msg and "\n" not in msg
    assert err.value.exit_code == 3


def test_coordinator_that_never_answers(lab, place):
    # a listening socket that never speaks gRPC: the command timeout applies
    import socket

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        addr = f"127.0.0.1:{srv.getsockname()[1]}"
        p = LabgridPlace(place, client=lab.client_path, coordinator=addr, command_timeout=2)
        t0 = time.monotonic()
        with pytest.raises(CoordinatorUnreachable) as err:
            p.show()
        assert time.monotonic() - t0 < 15
    assert addr in str(err.value)


def test_no_coordinator_given_names_the_default(lab, place, monkeypatch):
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    p = LabgridPlace(place, client=lab.client_path)
    if _listening(20408):
        pytest.skip("something listens on labgrid's default port 20408 on this machine")
    with pytest.raises(CoordinatorUnreachable, match="LG_COORDINATOR"):
        p.show()
