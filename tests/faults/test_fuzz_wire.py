"""The wire protocol's parsers fuzzed with hypothesis, on both sides: the runner's reading
of the spec line (read_spec_line, RunSpec.from_json, and the runner process itself), the
host's event decoding and fold (decode_event, EventFold), and the host's line reader
(LinePump). No input may make either side hang, end in anything but the parser's own error,
or hold more than its bounds. Each property is bounded by its example count and a deadline
per example (a few seconds in all); the database is off, so nothing is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rkbench.boards.runner_command import RunnerFailed
from rkbench.boards.transport.base import LinePump, LineTooLong
from rkbench.run.events import EventFold
from rkbench_device.stream import read_spec_line
from rkbench_wire import (
    PROTOCOL_VERSION,
    Done,
    Hello,
    Progress,
    ProtocolError,
    Result,
    RunSpec,
    Samples,
    Telemetry,
    decode_event,
    encode_event,
    summarize_ns,
)
from tests.support.boards import REPO

FUZZ = settings(max_examples=200, deadline=1000, database=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)


def spec_dict() -> dict:
    return RunSpec.from_dict(
        {"v": PROTOCOL_VERSION, "model": {"onnx": "/b/m.onnx"}, "inputs": [["/b/a.npy"]], "output_dir": "/b/out"}
    ).to_dict()


def _mutated(base: dict, draw) -> dict:
    data = json.loads(json.dumps(base))
    for key in draw(st.lists(st.sampled_from(sorted(data)), max_size=4, unique=True)):
        action = draw(st.sampled_from(["replace", "delete"]))
        if action == "delete":
            del data[key]
        else:
            data[key] = draw(json_values)
    if draw(st.booleans()):
        data[draw(st.text(max_size=8))] = draw(json_values)
    return data


@st.composite
def spec_lines(draw) -> str:
    kind = draw(st.sampled_from(["text", "json", "mutated", "deep", "number"]))
    if kind == "text":
        return draw(st.text(max_size=200))
    if kind == "json":
        return json.dumps(draw(json_values))
    if kind == "deep":
        depth = draw(st.integers(1, 100_000))
        return "[" * depth + "]" * draw(st.integers(0, depth))
    if kind == "number":
        return '{"v": %s}' % ("9" * draw(st.integers(60, 200_000)))
    return json.dumps(_mutated(spec_dict(), draw))


@FUZZ
@given(spec_lines())
def test_run_spec_from_json_takes_anything(line):
    sys.set_int_max_str_digits(0)  # as on Python 3.8 before 3.8.14: no limit of its own
    try:
        RunSpec.from_json(line)
    except ProtocolError:
        pass
    finally:
        sys.set_int_max_str_digits(4300)


def _events() -> list[str]:
    stats = summarize_ns([1_000_000, 2_000_000])
    hello = Hello(runner_version="1", python="3.11", numpy="1", soc="rk3588", backend="onnxruntime", backend_reason="r")
    return [
        encode_event(e)
        for e in (
            hello,
            Progress(stage="load", message="loading"),
            Samples(core_mask=None, offset=0, latencies_ns=[1_000_000, 2_000_000]),
            Telemetry(timestamp=1.0, cpu=[{"policy": 0, "cur_khz": 1000}], temperatures_c={"soc": 40.0}),
            Result(core_mask=None, backend="onnxruntime", counts={"runs": 2}, stats=stats),
            Done(ok=True, exit_code=0, results=1),
        )
    ]


@st.composite
def event_lines(draw) -> str:
    kind = draw(st.sampled_from(["valid", "mutated", "text", "json", "deep"]))
    if kind == "valid":
        return draw(st.sampled_from(_events()))
    if kind == "mutated":
        base = json.loads(draw(st.sampled_from(_events())))
        return json.dumps(_mutated(base, draw))
    if kind == "deep":
        return '{"a":' * draw(st.integers(1, 50_000)) + "1"
    if kind == "json":
        return json.dumps(draw(json_values))
    return draw(st.text(max_size=200))


@FUZZ
@given(event_lines())
def test_decode_event_takes_anything(line):
    try:
        decode_event(line)
    except ProtocolError:
        pass


@settings(FUZZ, max_examples=100)
@given(st.lists(event_lines(), max_size=30))
def test_the_host_fold_takes_any_stream(lines):
    fold = EventFold("fuzz-board", max_runs=1000)
    try:
        for line in lines:
            event = fold.decode(line.encode("utf-8", "surrogatepass"))
            if event is not None:
                fold.add(event)
    except RunnerFailed as err:
        assert err.kind == "protocol" and "\n" not in str(err)[:500]
    assert len(fold.stray) <= EventFold.STRAY_KEPT
    assert fold.samples_received <= 1000 * 6


@FUZZ
@given(st.lists(st.binary(max_size=5000), max_size=20), st.integers(16, 4096))
def test_read_spec_line_ends_on_any_bytes(chunks, limit):
    read_fd, write_fd = os.pipe()

    def feed():
        with os.fdopen(write_fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        line, rest = read_spec_line(read_fd, limit=limit)
        assert b"\n" not in line and len(line) <= limit
    except ProtocolError as err:
        assert "longer than" in str(err)
    finally:
        os.close(read_fd)
        writer.join(5)
        assert not writer.is_alive()


@FUZZ
@given(st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")), max_size=20), st.data())
def test_line_pump_gives_back_every_line_and_bounds_the_long_ones(lines, data):
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    # read() returns b"" only at the end of the stream
    pieces = [piece for a, b in zip([0, *cuts], [*cuts, len(stream)]) if (piece := stream[a:b])] + [b""]
    chunks = iter(pieces)
    pump = LinePump(lambda n: next(chunks, b""), max_line=100)
    got = []
    while True:
        try:
            line = pump.readline(timeout=5)
        except LineTooLong:
            got.append(None)
            continue
        if not line:
            break
        got.append(line)
    assert got == [line + b"\n" if len(line) + 1 <= 100 else None for line in lines]


@settings(max_examples=12, deadline=None, database=None)
@given(line=spec_lines())
def test_the_runner_process_takes_any_spec_line(tmp_path_factory, line):
    """The device side as it runs: python -m rkbench_device run with the line on stdin
    (not watching stdin, which closes at once here: a closed stdin means the host is gone)."""
    home = tmp_path_factory.mktemp("fuzz-home")
    env = dict(os.environ, HOME=str(home), PYTHONPATH=f"{REPO / 'device'}:{REPO / 'shared'}")
    proc = subprocess.run(
        [sys.executable, "-m", "rkbench_device", "run", "--no-watch-stdin"],
        input=(line.replace("\n", " ") + "\n").encode("utf-8", "surrogatepass"),
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr[-2000:]
    events = [decode_event(raw) for raw in proc.stdout.splitlines()]
    assert isinstance(events[-1], Done)
    if proc.returncode == 2:  # the spec was refused: one error saying why, then done
        assert [e.type for e in events] == ["error", "done"] and events[0].kind == "protocol"


def test_a_spec_line_without_end_is_refused_at_the_bound():
    read_fd, write_fd = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(write_fd, b"x" * 70_000), os.close(write_fd)))
    writer.start()
    with pytest.raises(ProtocolError, match="longer than 65536 bytes"):
        read_spec_line(read_fd, limit=65536)
    os.close(read_fd)
    writer.join(5)
