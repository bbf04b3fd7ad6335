"""Core masks, throttling verdict, the timed loop, the board lock (in-process)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rkbench_device.coremask import check_core_masks, cores_needed, usable_masks
from rkbench_device.errors import RunnerError
from rkbench_device.lock import BoardLock
from rkbench_device.measure import measure, slowed
from rkbench_device.telemetry import throttle_verdict
from rkbench_wire import Telemetry


def test_core_masks_by_soc():
    assert [cores_needed(m) for m in ("auto", "0", "1", "2", "0_1", "0_1_2")] == [1, 1, 2, 3, 2, 3]
    check_core_masks(["auto", "0", "1", "2", "0_1", "0_1_2"], 3, "rk3588")
    check_core_masks(["0_1", "1"], 2, "rk3576")
    check_core_masks(["0_1_2"], None, None)  # unknown SoC: the runtime decides
    assert usable_masks(1) == ["auto", "0"]
    with pytest.raises(RunnerError) as info:
        check_core_masks(["auto", "0_1"], 1, "rk3566")
    assert info.value.kind == "core_mask_refused" and info.value.core_mask == "0_1"
    assert "rk3566 has 1" in info.value.message and "auto, 0" in info.value.message
    with pytest.raises(RunnerError, match="'2' needs 3"):
        check_core_masks(["2"], 2, "rk3576")


def reading(npu=None, cpu=None, temps=None):
    return Telemetry(
        timestamp=0.0,
        npu_freq_hz=npu,
        cpu=[{"policy": "policy0", "cur_khz": cpu}] if cpu is not None else [],
        temperatures_c=temps or {},
    )


def test_throttle_verdict():
    steady = [reading(1_000_000_000, 1_800_000, {"soc": 50.0}) for _ in range(3)]
    assert throttle_verdict(steady, 85.0) == (False, [])
    assert throttle_verdict([], 85.0) == (False, [])
    npu_drop = steady + [reading(800_000_000, 1_800_000, {"soc": 50.0})]
    throttled, reasons = throttle_verdict(npu_drop, 85.0)
    assert throttled and reasons == [
        "NPU clock changed during the runs: 1000000000 -> 800000000 Hz (min 800000000, max 1000000000)"
    ]
    cpu_drop = steady + [reading(1_000_000_000, 1_416_000, {"soc": 50.0})]
    throttled, reasons = throttle_verdict(cpu_drop, 85.0)
    assert throttled and "CPU policy0 clock changed" in reasons[0]
    hot = steady + [reading(1_000_000_000, 1_800_000, {"soc": 86.5})]
    throttled, reasons = throttle_verdict(hot, 85.0)
    assert throttled and reasons == ["soc reached 86.5 C (limit 85.0 C)"]
    # missing readings (None) are not a change
    assert throttle_verdict(steady + [reading(None, None)], 85.0) == (False, [])


def test_measure_respects_min_runs_and_min_seconds():
    calls = [lambda: None, lambda: None]
    batches = []
    m = measure(
        calls,
        min_runs=5,
        min_seconds=0.05,
        max_runs=10**9,
        max_seconds=5,
        on_batch=lambda off, b: batches.append((off, list(b))),
        batch_interval_s=0.01,
    )
    assert m.elapsed_s >= 0.05 and len(m.samples_ns) > 5 and m.stopped_by == "min_reached"
    streamed = []
    for off, batch in batches:
        assert off == len(streamed)
        streamed.extend(batch)
    assert streamed == m.samples_ns and len(batches) > 1

    def sleepy():
        time.sleep(0.002)

    m = measure([sleepy], min_runs=30, min_seconds=0.001, max_runs=1000, max_seconds=5, on_batch=lambda o, b: None)
    assert len(m.samples_ns) == 30 and min(m.samples_ns) >= 2_000_000


def test_measure_caps():
    m = measure([lambda: None], min_runs=10, min_seconds=100, max_runs=500, max_seconds=5, on_batch=lambda o, b: None)
    assert len(m.samples_ns) == 500 and m.stopped_by == "max_runs"
    m = measure(
        [lambda: time.sleep(0.001)],
        min_runs=10**6,
        min_seconds=100,
        max_runs=10**7,
        max_seconds=0.1,
        on_batch=lambda o, b: None,
    )
    assert m.stopped_by == "max_seconds" and 0.1 <= m.elapsed_s < 0.5


def test_measure_cycles_inputs_in_order():
    seen = []
    calls = [lambda i=i: seen.append(i) for i in range(3)]
    measure(calls, min_runs=7, min_seconds=0, max_runs=7, max_seconds=5, on_batch=lambda o, b: None)
    assert seen == [0, 1, 2, 0, 1, 2, 0]


def test_slowed_adds_the_fraction():
    def work():
        time.sleep(0.004)

    base = measure([work], min_runs=15, min_seconds=0, max_runs=15, max_seconds=5, on_batch=lambda o, b: None)
    slow = measure(
        [slowed(work, 0.5)], min_runs=15, min_seconds=0, max_runs=15, max_seconds=5, on_batch=lambda o, b: None
    )
    ratio = sorted(slow.samples_ns)[7] / sorted(base.samples_ns)[7]
    assert 1.35 < ratio < 1.8


def test_board_lock_in_process(tmp_path: Path):
    path = str(tmp_path / "sub" / "board.lock")
    first = BoardLock(path)
    first.acquire(0.0)
    assert "pid" in (first.holder() or "")
    waits = []
    second = BoardLock(path)
    started = time.monotonic()
    with pytest.raises(RunnerError) as info:
        second.acquire(0.3, on_wait=waits.append)
    assert time.monotonic() - started >= 0.3
    assert info.value.kind == "board_busy" and info.value.exit_code == 75
    assert len(waits) == 1 and "waiting up to 0.3 s" in waits[0]
    first.release()
    second.acquire(0.0)
    second.release()


def test_unexpected_exception_becomes_internal_error_event(tmp_path: Path, base_spec, monkeypatch):
    """A bug inside the timed loop: an `error` event of kind internal with the traceback
    tail as detail, a `done` with exit code 1, the board lock released."""
    import os

    from rkbench_device import runner as runner_mod
    from rkbench_device.backends.ort_backend import OnnxRuntimeBackend
    from rkbench_device.stream import EventWriter
    from rkbench_wire import RunSpec, decode_event

    class Broken(OnnxRuntimeBackend):
        def bind(self, feed):
            def boom():
                raise ZeroDivisionError("bug in the loop")

            return boom

    monkeypatch.setattr(runner_mod, "create_backend", lambda name: Broken())
    spec = RunSpec.from_dict(dict(base_spec, telemetry_interval_s=0))
    events_path = tmp_path / "events.jsonl"
    fd = os.open(str(events_path), os.O_WRONLY | os.O_CREAT)
    try:
        code = runner_mod.Runner(spec, EventWriter(fd)).run()
    finally:
        os.close(fd)
    events = [decode_event(line) for line in events_path.read_text().splitlines()]
    assert code == 1
    error = [e for e in events if e.type == "error"][0]
    assert error.kind == "internal" and "ZeroDivisionError: bug in the loop" in error.message
    assert "Traceback" in error.detail and "boom" in error.detail
    assert events[-1].type == "done" and events[-1].exit_code == 1
    lock = BoardLock(spec.lock_path)
    lock.acquire(0.0)  # released by the failed run
    lock.release()


def test_measure_passes_on_what_it_measured_when_a_call_fails():
    count = {"n": 0}

    def flaky():
        count["n"] += 1
        if count["n"] == 8:
            raise RuntimeError("rknn_run returned -2")

    batches = []
    with pytest.raises(RuntimeError, match="-2"):
        measure(
            [flaky],
            min_runs=100,
            min_seconds=10,
            max_runs=1000,
            max_seconds=10,
            on_batch=lambda off, b: batches.append((off, list(b))),
            batch_interval_s=100,
        )
    assert [(off, len(b)) for off, b in batches] == [(0, 7)]
