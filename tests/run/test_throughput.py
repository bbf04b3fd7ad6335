"""Throughput mode on the host: the sweep's plan (masks the SoC lacks refused before the
run), run_on_board on the local board with the STAND-IN librknnrt (tests/standins/librknnrt:
runs serialised per NPU core for RKNN_STANDIN_RUN_US, not the vendor runtime), the best
configurations picked, the store (its migration step), the table and the HTML page."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from rkbench.errors import UsageError
from rkbench.report.throughput import render_throughput_html, throughput_table
from rkbench.results.model import RunResult
from rkbench.results.store import SCHEMA_VERSION, Store
from rkbench.run.plan import MeasureOptions
from rkbench.run.session import run_on_board
from rkbench.run.throughput import FPS_TIE, pick, plan_configs
from rkbench_wire import ModelRef
from tests.standins.librknnrt import build_standin
from tests.support.boards import BOARD_PYTHON, FIXTURES

RUN_US = 5000


def test_the_sweep_plan_and_refused_masks():
    configs = plan_configs("rk3588", "b", sweep=True)
    counts = [len(c["core_masks"]) for c in configs]
    assert max(counts) == 6 and counts == sorted(counts)  # 1..2x cores, smaller first
    assert {c["assignment"] for c in configs} == {"per-core", "0_1_2", "auto"}
    assert {"assignment": "per-core", "core_masks": ["0", "1", "2", "0"]} in configs
    assert not [c for c in configs if c["assignment"] == "0_1_2" and len(c["core_masks"]) > 3]
    assert {c["assignment"] for c in plan_configs("rk3566", "b", sweep=True)} == {"auto"}
    assert plan_configs("rk3566", "b", sweep=True)[-1]["core_masks"] == ["auto", "auto"]
    assert plan_configs("rk3588", "b", sweep=False) == [{"assignment": "per-core", "core_masks": ["0", "1", "2"]}]
    with pytest.raises(UsageError) as err:
        plan_configs("rk3566", "myboard", sweep=False, contexts=2, masks=["1"])
    assert err.value.exit_code == 2
    msg = str(err.value)
    assert "core mask 1" in msg and "myboard (rk3566) has 1" in msg and "cores 0..0" in msg


@pytest.fixture(scope="module")
def tiny_rknn():
    pytest.importorskip("rknn")
    from tests.standins.model_builder import built_models

    return built_models()["tiny_rk3588"]


def test_a_sweep_on_the_standin_is_stored_and_reported(tiny_rknn, tmp_path, monkeypatch):
    inputs = tmp_path / "in0.npy"
    np.save(inputs, np.random.default_rng(1).uniform(0, 1, (1, 16, 16, 3)).astype(np.float32))
    configs = [c for c in plan_configs("rk3588", "local", sweep=True) if c["assignment"] != "auto"]
    configs = [c for c in configs if len(c["core_masks"]) in (1, 3, 6)]  # keep the test short
    options = MeasureOptions(backend="rknnrt", throughput=True, sweep=True, throughput_seconds=0.4, warmup=1)
    spec = options.spec(ModelRef(rknn=str(tiny_rknn)), [[str(inputs)]], ["nhwc"], False, configs)
    spec.lock_path = str(tmp_path / "board.lock")
    env = {
        "RKBENCH_LIBRKNNRT": str(build_standin()),
        "RKNN_STANDIN_ROOT": str(FIXTURES / "rk3588"),
        "RKNN_STANDIN_RUN_US": str(RUN_US),
        "RKNN_STANDIN_QUIET": "1",
        "RKNN_STANDIN_MAX_CONTEXTS": "5",  # six contexts do not fit
    }
    from rkbench.boards.connect import open_board

    with open_board("local", home=str(tmp_path / "home")) as board:
        outcome = run_on_board(board, spec, python=BOARD_PYTHON, sysfs_root=str(FIXTURES / "rk3588"), runner_env=env)
    events = outcome.throughput
    assert [len(e.core_masks) for e in events] == [1, 1, 3, 3, 6]
    assert events[-1].out_of_memory and all(e.out_of_memory is None for e in events[:-1])
    chosen = pick(events, max_p99_ms=None)
    assert chosen.best_fps.core_masks == ["0", "1", "2"]  # three contexts on three cores
    assert chosen.best_fps.fps > 2.2 * chosen.baseline.fps and chosen.stopped
    # a bound at the one-context-on-all-cores figure (its runs take RUN_US / 3 * 1.5): the most
    # FPS among the configurations within it; a bound below every p99: none
    bound = events[1].stats.p99_ms
    within = [e for e in events[:-1] if e.stats.p99_ms <= bound]
    best = pick(events, max_p99_ms=bound).best_p99
    assert best.stats.p99_ms <= bound and best.fps >= max(e.fps for e in within) * (1 - FPS_TIE)
    assert pick(events, max_p99_ms=min(e.stats.p99_ms for e in events[:-1]) * 0.5).best_p99 is None

    table = throughput_table(events, chosen, None, npu_cores=3)
    assert "most FPS: 3 ctx per-core [0,1,2]" in table and "did not fit" in table and "stopped early" in table
    html = render_throughput_html(events, chosen, "tp <b>", soc="rk3588")
    assert "tp &lt;b&gt;" in html and "FPS vs contexts" in html and "latency vs FPS" in html
    assert html.count('class="plot"') == 2  # two charts

    db = tmp_path / "results.db"
    meta = RunResult(group="g1", model="tiny", model_sha256="ab" * 32, board="local", backend="rknnrt",
                     core_mask=None, board_soc="rk3588")  # fmt: skip
    with Store(db) as store:
        store.add_throughput(meta, events)
        rows = store.throughput_rows(model_sha256="ab" * 32)
    assert [r["contexts"] for r in rows] == [1, 1, 3, 3, 6] and rows[-1]["fps"] is None
    assert rows[2]["fps"] == pytest.approx(events[2].fps) and rows[2]["event"]["runs"] == events[2].runs


def test_a_version_2_store_gains_the_throughput_table(tmp_path):
    db = tmp_path / "old.db"
    with Store(db):
        pass
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE throughput")
    conn.execute("DROP TABLE confirmations")  # schema version 4's
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with Store(db) as store:
        assert store.throughput_rows() == []
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    conn.close()


def test_fps_verdicts_higher_is_better_and_the_suite_section():
    from rkbench.errors import InputFileError
    from rkbench.lab.throughput import check_section, fps_verdict

    assert fps_verdict(90.0, 100.0, 0.05).kind == "regression"  # fewer FPS: worse
    assert fps_verdict(110.0, 100.0, 0.05).kind == "improvement"
    same = fps_verdict(98.0, 100.0, 0.05)
    assert same.kind == "same" and same.effect == pytest.approx(-0.02)
    assert fps_verdict(98.0, None, 0.05).kind == "no-baseline"
    assert check_section({"seconds": 2, "sweep": True}, "s.toml: [throughput]") == {"seconds": 2, "sweep": True}
    with pytest.raises(InputFileError, match=r"s.toml: \[throughput\]: unknown key\(s\) thread"):
        check_section({"thread": 2}, "s.toml: [throughput]")


def test_rkbench_run_throughput_prints_the_table_stores_and_writes_html(rk, tiny_rknn, isolated, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    np.save(folder / "a.npy", np.random.default_rng(2).uniform(0, 1, (1, 16, 16, 3)).astype(np.float32))
    env = {
        "RKBENCH_LIBRKNNRT": str(build_standin()),
        "RKNN_STANDIN_ROOT": str(FIXTURES / "rk3588"),
        "RKNN_STANDIN_RUN_US": str(RUN_US),
        "RKNN_STANDIN_QUIET": "1",
    }
    done = rk(
        "run", "--model", tiny_rknn, "--inputs", folder, "--backend", "rknnrt", "--target", "rk3588",
        "--throughput", "--contexts", "2", "--throughput-seconds", "0.3",
        "--db", isolated["db"], "-o", isolated["out"], **env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SoC unknown" in done.stderr  # the local board has no device tree: one core assumed
    assert "ctx  assignment" in done.stdout and "most FPS: 2 ctx auto [auto,auto]" in done.stdout
    assert (isolated["out"] / "report.html").is_file()
    with Store(isolated["db"]) as store:
        [row] = store.throughput_rows()
    assert row["contexts"] == 2 and row["fps"] > 0 and row["backend"] == "rknnrt"
    refused = rk(
        "run", "--model", tiny_rknn, "--inputs", folder, "--backend", "rknnrt", "--throughput", "--per-layer",
        "--db", isolated["db"], **env,
    )  # fmt: skip
    assert refused.returncode == 2 and "drop --per-layer" in refused.stderr


def test_ties_in_fps_go_to_the_fewest_contexts():
    from rkbench_wire import Throughput, summarize_ns

    def event(index, contexts, fps, p99_ns):
        return Throughput(index=index, assignment="per-core", core_masks=["0"] * contexts, backend="rknnrt",
                          runs=10, elapsed_s=1.0, fps=fps, stats=summarize_ns([p99_ns]))  # fmt: skip

    events = [event(0, 1, 100.0, 5e6), event(1, 3, 290.0, 6e6), event(2, 6, 294.0, 12e6), event(3, 4, 330.0, 9e6)]
    assert pick(events, None).best_fps.index == 3  # clearly the most
    chosen = pick(events[:3], None)
    assert chosen.best_fps.index == 1  # 294 is within 2% of 290: three contexts win
    assert chosen.best_p99.index == 0 and chosen.baseline.index == 0
    assert pick(events, max_p99_ms=10.0).best_p99.index == 3
