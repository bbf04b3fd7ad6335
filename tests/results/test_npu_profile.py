"""The PERF_DETAIL parser and summary: both layouts as our stand-in librknnrt prints them
(the fixtures, and live for RK3588, RK3576 and RK3566 boards), the shapes the vendor's logs
take (log prefixes, an empty MacUsage column, cut shape lists, the build log's table), and
damaged or random text, which must never raise."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

import numpy as np
import pytest

from rkbench.results.npu_profile import (
    IO_OPERATORS,
    NpuProfile,
    cores_in_mask,
    op_type_totals,
    parse_perf_detail,
    summarize,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "perf_detail"
CURRENT = (FIXTURES / "current.txt").read_text()
OLD = (FIXTURES / "old.txt").read_text()
LAYERS = 98  # the PP-OCR direction classifier's compiled graph (tests/standins/perf_fixtures.py)


@pytest.mark.parametrize("text, layout", [(CURRENT, "current"), (OLD, "old")])
def test_both_layouts(text, layout):
    profile = parse_perf_detail(text)
    assert profile.format == layout and profile.cores == 3 and not profile.problems
    assert [layer.id for layer in profile.layers] == list(range(1, LAYERS + 1))
    assert profile.total_time_us == 2000
    # The stand-in shares the run's NPU time out over the layers exactly.
    assert sum(layer.time_us for layer in profile.layers) == pytest.approx(profile.total_time_us)
    conv = profile.layers[1]
    assert (conv.op_type, conv.data_type, conv.target, conv.full_name) == (
        "ConvHardSwish",
        "INT8",
        "NPU",
        "Conv:Conv@0",
    )
    assert conv.input_shapes == [(1, 3, 48, 192), (8, 3, 3, 3), (8,)] and conv.output_shapes == [(1, 8, 24, 96)]
    assert (conv.ddr_cycles, conv.npu_cycles, conv.total_cycles, conv.time_us) == (15900, 53000, 53000, 53)
    assert conv.workload_pct == [33.3, 33.3, 33.3] and conv.cores_used == 3
    assert conv.mac_usage_pct[0] == 68.51
    first = profile.layers[0]
    assert first.op_type == "InputOperator" and first.on_cpu and first.input_shape == "" and first.mac_usage_pct is None
    # NPU cycles are filled for convolutions only.
    assert all(layer.npu_cycles == 0 for layer in profile.layers if not layer.op_type.startswith("Conv"))


def test_layouts_differ_where_they_should():
    current, old = parse_perf_detail(CURRENT), parse_perf_detail(OLD)
    assert current.memory_rw_kb == 3141.05 and old.memory_rw_kb == 3 * 1024  # the old one says MB
    assert [(a.op_type, a.time_us, a.workload_pct, a.target) for a in current.layers] == [
        (b.op_type, b.time_us, b.workload_pct, b.target) for b in old.layers
    ]
    assert len(current.layers[1].mac_usage_pct) == 3 and len(old.layers[1].mac_usage_pct) == 1  # per core vs one
    assert (
        old.layers[1].improve_pct == 66.7 and old.layers[1].task_number == 2 and current.layers[1].improve_pct is None
    )
    assert current.ranking[0].gpu_us == 0 and old.ranking[0].gpu_us is None  # the old table has no GPU column


@pytest.mark.parametrize("text", [CURRENT, OLD])
def test_op_type_totals_agree_with_the_runtimes_own_table(text):
    profile = parse_perf_detail(text)
    ours = {t.op_type: t for t in op_type_totals(profile.layers)}
    theirs = {row.op_type: row for row in profile.ranking}
    assert set(ours) == set(theirs) and len(theirs) == 12
    for op_type, row in theirs.items():
        assert ours[op_type].count == row.calls
        assert ours[op_type].time_us == pytest.approx(row.total_us)
        assert ours[op_type].share * 100 == pytest.approx(row.ratio_pct, abs=0.01)


def test_summary_ranks_and_flags():
    summary = summarize(parse_perf_detail(CURRENT), core_mask="0_1_2")
    times = [layer.time_us for layer in summary.slowest]
    assert times == sorted(times, reverse=True) and summary.slowest[0].time_us == 109
    assert summary.layers_time_us == 2000 and summary.total_time_us == 2000
    assert summary.by_op_type[0].op_type == "ConvHardSwish" and summary.by_op_type[0].count == 18
    assert sum(t.share for t in summary.by_op_type) == pytest.approx(1.0)
    # Reshape runs on the CPU; the Input/Output operators always do and are left out.
    assert [(layer.id, layer.op_type) for layer in summary.cpu_layers] == [(97, "Reshape")]
    # Mask 0_1_2: the stand-in splits convolutions over the three cores and leaves every
    # other NPU layer on core 0. Those are the ones flagged.
    assert summary.multi_core
    expected = [layer.id for layer in summary.slowest if not layer.on_cpu and not layer.op_type.startswith("Conv")]
    assert sorted(layer.id for layer in summary.single_core_layers) == sorted(expected)
    assert {layer.op_type for layer in summary.single_core_layers} == {"Mul", "MaxPool", "exDataConvert", "exSoftmax13"}


@pytest.mark.parametrize("mask", [None, "auto", "0", "2", 0, 4])
def test_no_single_core_flags_without_a_multi_core_mask(mask):
    summary = summarize(parse_perf_detail(CURRENT), core_mask=mask)
    assert not summary.multi_core and summary.single_core_layers == []


def test_cores_in_mask():
    assert [cores_in_mask(m) for m in ("auto", "0", "1", "2", "0_1", "0_1_2", "all", None)] == [1, 1, 1, 1, 2, 3, 3, 1]
    assert [cores_in_mask(m) for m in (0, 1, 2, 4, 3, 7, 0xFFFF)] == [1, 1, 1, 1, 2, 3, 3]


def test_round_trip_through_json():
    profile = parse_perf_detail(OLD)
    again = NpuProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again == profile


# ----------------------------------------------------------------------------------
# live from the stand-in runtime, on boards of three SoCs
# ----------------------------------------------------------------------------------
def _standin_table(tmp_path, monkeypatch, model: Path, soc: str, mask: int, **settings) -> str:
    from tests.standins.librknnrt import build_standin, make_board_root
    from tests.standins.rknn_caller import FLAG_COLLECT_PERF, NHWC, SUCC, UINT8, Runtime

    monkeypatch.setenv("RKNN_STANDIN_ROOT", str(make_board_root(tmp_path / soc, soc)))
    monkeypatch.setenv("RKNN_STANDIN_QUIET", "1")
    monkeypatch.setenv("RKNN_STANDIN_RUN_US", "3000")
    for name, value in settings.items():
        monkeypatch.setenv(f"RKNN_STANDIN_{name}", value)
    runtime = Runtime(build_standin())
    rc, ctx = runtime.init(model, FLAG_COLLECT_PERF)
    assert rc == SUCC, rc
    try:
        assert runtime.set_core_mask(ctx, mask) == SUCC
        attr = runtime.attr(ctx, "INPUT_ATTR", 0)
        assert runtime.inputs_set(ctx, [np.zeros(attr.shape, np.uint8)], [UINT8], [NHWC]) == SUCC
        assert runtime.run(ctx) == SUCC
        rc, text = runtime.perf_detail(ctx)
        assert rc == SUCC, rc
        return text
    finally:
        runtime.destroy(ctx)


@pytest.mark.toolkit
@pytest.mark.parametrize("layout", ["current", "old"])
def test_live_tables(tmp_path, monkeypatch, layout):
    from tests.standins.model_builder import built_models

    models = built_models()
    # RK3576: two cores, both asked for.
    two = parse_perf_detail(
        _standin_table(tmp_path, monkeypatch, models["tiny_rk3576"], "rk3576", 3, PERF_FORMAT=layout)
    )
    assert two.format == layout and two.cores == 2 and not two.problems
    assert all(len(layer.workload_pct) == 2 for layer in two.layers)
    assert sum(layer.time_us for layer in two.layers) == pytest.approx(two.total_time_us)
    flagged = summarize(two, core_mask="0_1").single_core_layers
    assert flagged and all(not layer.op_type.startswith("Conv") for layer in flagged)

    # RK3566: one core (AUTO); layers moved to the CPU on request are flagged.
    one = parse_perf_detail(
        _standin_table(
            tmp_path, monkeypatch, models["tiny_rk3566"], "rk3566", 0, PERF_FORMAT=layout, CPU_OPS="MaxPool,Gemm"
        )
    )
    assert not one.problems and one.total_time_us == 3000
    summary = summarize(one, core_mask="auto")
    assert summary.single_core_layers == [] and not summary.multi_core
    on_cpu = {layer.op_type for layer in summary.cpu_layers}
    assert "MaxPool" in on_cpu and not on_cpu & set(IO_OPERATORS)
    assert all(layer.npu_cycles == 0 for layer in summary.cpu_layers)


# ----------------------------------------------------------------------------------
# what the vendor's logs look like
# ----------------------------------------------------------------------------------
HEADER = (
    "ID   OpType             DataType Target InputShape                               OutputShape            "
    "Cycles(DDR/NPU/Total)    Time(us)     MacUsage(%)          WorkLoad(0/1/2)      RW(KB)       FullName"
)
ROWS = [
    "1    InputOperator      FLOAT16  CPU    \\                                        (1,256,1,300)          "
    "0/0/0                    12           \\                    0.0%/0.0%/0.0%       0            InputOperator:x",
    "2    ConvRelu           FLOAT16  NPU    (1,256,1,300),(2048,256,1,1),(2048)      (1,2048,1,300)         "
    "103119/311296/311296     390          78.77/0.00/0.00      100.0%/0.0%/0.0%     1182         Conv:/l1/MatMul#2",
    "3    ConvAdd            FLOAT16  NPU    (1,2048,1,300),(256,2048,1,1),(256),...  (1,256,1,300)          "
    "109310/311296/311296     979          31.38/0.00/0.00      100.0%/0.0%/0.0%     2375         Conv:/l2/MatMul#2_ConvAdd",
    # No MacUsage at all: the column is spaces.
    "4    exNorm             FLOAT16  NPU    (1,256,1,300),(1,256,1,1),...            (1,256,1,300)          "
    "0/0/0                    168                               100.0%/0.0%/0.0%     152          exNorm:/norm3/LayerNorm#1",
    # A value wider than its column pushes the rest to the right.
    "5    Gather             INT8     CPU    (1,1,1,33600),(33600)                    (1,1,1,33600),(1,1,1,33600),(1,1,1,33600) "
    "0/0/0                    2574         \\                    0.0%/0.0%/0.0%       295          Gather:785_rs",
]


def _logged(lines: list[str]) -> str:
    return "\n".join(f"D RKNN: [05:07:06.{566 + i}] {line}" for i, line in enumerate(lines))


def test_vendor_log_lines():
    text = _logged(
        ["-" * 120, "Network Layer Information Table".center(120), "-" * 120, HEADER, "-" * 120, *ROWS]
        + [
            "-" * 120,
            "Total Operator Elapsed Per Frame Time(us): 4123",
            "Total Memory Read/Write Per Frame Size(KB): 4004.50",
        ]
    )
    text = "I RKNN: [05:07:06.100] RKNN Runtime Information, librknnrt version: 2.3.2\n" + text
    profile = parse_perf_detail(text)
    assert not profile.problems and profile.format == "current"
    assert [layer.op_type for layer in profile.layers] == ["InputOperator", "ConvRelu", "ConvAdd", "exNorm", "Gather"]
    norm = profile.layers[3]
    assert norm.mac_usage_pct is None and norm.workload_pct == [100.0, 0.0, 0.0] and norm.rw_kb == 152
    assert norm.full_name == "exNorm:/norm3/LayerNorm#1" and norm.time_us == 168
    add = profile.layers[2]
    assert add.input_shape.endswith(",...") and add.input_shapes == [(1, 2048, 1, 300), (256, 2048, 1, 1), (256,)]
    assert profile.layers[4].time_us == 2574 and profile.layers[4].full_name == "Gather:785_rs"
    assert (profile.total_time_us, profile.memory_rw_kb) == (4123, 4004.5)
    summary = summarize(profile, core_mask="0_1_2")
    assert [layer.id for layer in summary.cpu_layers] == [5]
    assert [layer.id for layer in summary.single_core_layers] == [2, 3, 4]


def test_the_build_logs_table():
    """The toolkit's build log prints a table without times, MAC usage or workload."""
    text = "\n".join(
        [
            "ID   OpType           DataType Target InputShape               OutputShape            Cycles(DDR/NPU/Total)    RW(KB)       FullName",
            "0    InputOperator    UINT8    CPU    \\                        (1,3,224,224)          0/0/0                    147          InputOperator:input",
            "1    ConvRelu         INT8     NPU    (1,3,224,224),(32,3,3,3) (1,32,112,112)         132510/225792/225792     150          Conv:conv1",
        ]
    )
    profile = parse_perf_detail(text)
    assert profile.format == "build" and not profile.problems
    assert [(layer.id, layer.total_cycles, layer.rw_kb, layer.time_us) for layer in profile.layers] == [
        (0, 0, 147, None),
        (1, 225792, 150, None),
    ]
    assert summarize(profile).slowest == []  # nothing timed


def test_rows_that_do_not_read_are_reported():
    text = "\n".join(
        [
            HEADER,
            ROWS[1],
            "7    Conv",
            "8    Conv  INT8  NPU  (1,2) (1,2) 1/2/3 5 1.0 50%/50%/0% 3 Conv:x extra",
            ROWS[2],
        ]
    )
    profile = parse_perf_detail(text)
    assert [layer.id for layer in profile.layers] == [2, 8, 3]
    assert profile.layers[1].full_name == "Conv:x extra"  # a name with a space stays whole
    (problem,) = profile.problems
    assert problem.line == 3 and problem.text == "7    Conv" and "stops before" in problem.reason
    # A word that is none of the columns it stands in (a damaged time): refused, not misread.
    damaged = ROWS[1].replace(" 390 ", " 3x0 ")
    profile = parse_perf_detail("\n".join([HEADER, damaged]))
    assert profile.layers == [] and "do not line up" in profile.problems[0].reason
    assert not parse_perf_detail("").layers and parse_perf_detail("").problems[0].reason.startswith("no layer table")


# ----------------------------------------------------------------------------------
# damage and garbage: never an exception
# ----------------------------------------------------------------------------------
def _survives(text) -> NpuProfile:
    profile = parse_perf_detail(text)
    summary = summarize(profile, core_mask="0_1_2")
    assert len(profile.problems) <= 50 and isinstance(summary.layers_time_us, float)
    return profile


@pytest.mark.parametrize("text", [CURRENT, OLD])
def test_truncated_anywhere(text):
    """A table cut at any line, or mid-line: the layers before the cut, nothing invented."""
    lines = text.splitlines()
    rows = parse_perf_detail(text).layers
    for cut in range(len(lines) + 1):
        profile = _survives("\n".join(lines[:cut]))
        assert profile.layers == rows[: len(profile.layers)]
    for cut in random.Random(7).sample(range(len(text)), 200):
        profile = _survives(text[:cut])
        complete = profile.layers[:-1]  # the last row may be the one cut
        assert complete == rows[: len(complete)]


def test_random_garbage():
    rng = random.Random(2026)
    alphabet = string.printable + "\\/%()|,.-—ü\x00"
    for _ in range(300):
        _survives("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3000))))
    for _ in range(50):
        _survives(bytes(rng.getrandbits(8) for _ in range(2000)))


def test_mutated_tables():
    """Words dropped, duplicated, swapped or replaced in real tables."""
    rng = random.Random(11)
    junk = ["\\", "%", "1/2", "nan", "(", "-", "Up:", "ID", "OpType", "999999999999999999999", "1e999", "0.0%/"]
    for text in (CURRENT, OLD):
        lines = text.splitlines()
        for _ in range(150):
            mutated = []
            for line in lines:
                words = line.split(" ")
                if words and rng.random() < 0.3:
                    k = rng.randrange(len(words))
                    action = rng.choice(["drop", "dup", "swap", "junk"])
                    if action == "drop":
                        del words[k]
                    elif action == "dup":
                        words.insert(k, words[k])
                    elif action == "swap":
                        j = rng.randrange(len(words))
                        words[k], words[j] = words[j], words[k]
                    else:
                        words[k] = rng.choice(junk)
                mutated.append(" ".join(words))
            _survives("\n".join(mutated))
