"""A suite's [throughput] in `rkbench nightly` on the local board (onnxruntime contexts in
threads): FPS stored with the baseline, then judged like latency the other way round."""

import pytest

from rkbench.results.store import Store
from tests.lab.conftest import LOCAL, write_lab

pytestmark = pytest.mark.toolkit


def test_fps_is_stored_with_the_baseline_and_a_drop_is_a_regression(nightly, lab_files):
    write_lab(lab_files, LOCAL, measure="[throughput]\nseconds = 0.4")
    first = nightly("-o", "out-t1", "--group", "t1", "--accept")
    assert first.returncode == 0, first.stderr
    assert "throughput 1 ctx auto: no-baseline" in first.stderr
    # twice as slow per run (test-only knob): FPS about halves, a regression higher-is-better
    second = nightly("-o", "out-t2", "--group", "t2", "--inject-slowdown", "1.0", "--remeasure", "0")
    assert second.returncode == 1, second.stderr
    assert "throughput 1 ctx auto: regression: FPS" in second.stderr
    with Store(nightly.db) as store:
        fps = {row["group"]: row["fps"] for row in store.throughput_rows()}
    assert set(fps) == {"t1", "t2"} and fps["t2"] < fps["t1"] * 0.8
