"""The event fold: one accumulator turns the runner's events into what the run measured."""

import pytest

from rkbench.boards.runner_command import RunnerFailed
from rkbench.run.events import EventFold
from rkbench_wire import Done, Hello, Progress, Result, Samples, encode_event, summarize_ns


def hello() -> Hello:
    return Hello(
        runner_version="1", python="3.11", numpy="1.26", soc="rk3588", backend="onnxruntime", backend_reason="test"
    )


def result(mask, samples) -> Result:
    return Result(core_mask=mask, backend="rknnrt", counts={"runs": len(samples)}, stats=summarize_ns(samples))


def test_samples_are_folded_per_core_mask_in_order():
    fold = EventFold("board")
    for event in (
        hello(),
        Progress(stage="measure", message="m"),
        Samples(core_mask="0", offset=0, latencies_ns=[1, 2]),
        Samples(core_mask="0", offset=2, latencies_ns=[3]),
        result("0", [1, 2, 3]),
        Samples(core_mask="1", offset=0, latencies_ns=[4]),
        result("1", [4]),
        Done(ok=True, exit_code=0),
    ):
        fold.add(fold.decode(encode_event(event).encode()))
    assert [(r.core_mask, r.samples_ns) for r in fold.results] == [("0", [1, 2, 3]), ("1", [4])]
    assert fold.stage == "measure: m" and fold.done.ok


@pytest.mark.parametrize(
    "events, message",
    [
        ([Samples(core_mask=None, offset=0, latencies_ns=[1])], "before hello"),
        ([hello(), Samples(core_mask=None, offset=5, latencies_ns=[1])], "out of order"),
        ([hello(), Samples(core_mask=None, offset=0, latencies_ns=[1]), result(None, [1, 2])], "counts 2 runs but 1"),
    ],
)
def test_protocol_violations_are_named(events, message):
    fold = EventFold("ssh root@board:22")
    with pytest.raises(RunnerFailed, match=message) as err:
        for event in events:
            fold.add(event)
    assert err.value.kind == "protocol" and str(err.value).startswith("ssh root@board:22: ")


def test_lines_before_hello_that_are_not_events_are_kept_for_errors():
    fold = EventFold("board")
    assert fold.decode(b"Welcome to the board!\n") is None and fold.stray == ["Welcome to the board!"]
    fold.add(hello())
    with pytest.raises(RunnerFailed, match="not an event"):
        fold.decode(b"a stray print\n")
    with pytest.raises(RunnerFailed, match="protocol version 99 is not supported"):
        fold.decode(b'{"v": 99, "type": "done"}\n')
