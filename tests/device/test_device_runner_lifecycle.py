"""Process-level behaviour: the runner dies when the host goes away (stdin EOF), and
the board lock makes a second runner wait, then fail with board_busy (exit 75)."""

from __future__ import annotations

import json
import queue
import threading
import time

from device_testing import run_runner, start_runner
from rkbench_wire import decode_event


class EventReader:
    """Reads a live runner's stdout on a thread so the test can wait for an event."""

    def __init__(self, proc):
        self.proc = proc
        self.events = queue.Queue()
        self.seen = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.events.put(decode_event(raw))
        self.events.put(None)

    def wait_for(self, predicate, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "timed out; events so far: %s" % [e.type for e in self.seen]
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            assert event is not None, "runner ended early; events: %s" % self.seen
            self.seen.append(event)
            if predicate(event):
                return event


def launch(spec, tmp_path, name):
    proc = start_runner(["run"], stderr_path=tmp_path / ("%s.stderr" % name))
    proc.stdin.write(json.dumps(spec).encode() + b"\n")
    proc.stdin.flush()
    return proc, EventReader(proc)


def long_spec(spec):
    out = dict(spec)
    out.update(min_runs=10, min_seconds=60.0, max_seconds=120.0, save_outputs=False, telemetry_interval_s=0.2)
    return out


def test_stdin_eof_kills_runner_mid_run(base_spec, tmp_path):
    proc, reader = launch(long_spec(base_spec), tmp_path, "eof")
    try:
        reader.wait_for(lambda e: e.type == "samples")  # measuring now
        closed = time.monotonic()
        proc.stdin.close()  # the host went away
        code = proc.wait(timeout=5)
        gone_after = time.monotonic() - closed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert gone_after < 2.0
    assert code == 3
    rest = []
    while True:
        event = reader.events.get(timeout=5)
        if event is None:
            break
        rest.append(event.type)
    assert "result" not in rest and "done" not in rest
    assert "stdin closed" in (tmp_path / "eof.stderr").read_text()


def test_board_lock_busy_then_free(base_spec, tmp_path):
    holder, reader = launch(long_spec(base_spec), tmp_path, "holder")
    try:
        reader.wait_for(lambda e: e.type == "progress" and e.stage == "lock")
        # a second run waits for the lock, says so, then gives up with board_busy / 75
        busy = dict(base_spec, lock_timeout_s=0.5, output_dir=str(tmp_path / "out2"))
        started = time.monotonic()
        out = run_runner(busy, tmp_path)
        assert out.returncode == 75, out.dump()
        assert time.monotonic() - started >= 0.5
        waiting = [p for p in out.of("progress") if p.stage == "lock"]
        assert waiting and "waiting up to 0.5 s" in waiting[0].message
        assert "pid %d" % holder.pid in waiting[0].message
        error = out.one("error")
        assert error.kind == "board_busy" and "busy" in error.message
        assert out.events[-1].type == "done" and out.events[-1].exit_code == 75
        assert not out.of("result")

        # a third run with a longer timeout gets the board once the holder's host goes away
        patient, patient_reader = launch(
            dict(base_spec, lock_timeout_s=20.0, min_runs=5, min_seconds=0.1, output_dir=str(tmp_path / "out3")),
            tmp_path,
            "patient",
        )
        try:
            patient_reader.wait_for(lambda e: e.type == "progress" and "waiting" in e.message)
            holder.stdin.close()
            holder.wait(timeout=5)
            result = patient_reader.wait_for(lambda e: e.type == "result", timeout=20)
            assert result.counts["runs"] >= 5
            done = patient_reader.wait_for(lambda e: e.type == "done")
            assert done.ok
        finally:
            patient.stdin.close()
            patient.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
