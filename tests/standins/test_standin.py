"""The stand-in librknnrt (x86_64 build) driven through its C ABI with ctypes.

STAND-IN FOR HARDWARE: there is no NPU here. These tests check that the stand-in speaks
the ABI, reads real .rknn files (built by rknn-toolkit2 in this session), and keeps the
behaviours the product relies on: per-core serialisation, PERF_RUN/PERF_DETAIL/MEM_SIZE,
zero-copy, failure injection, deterministic outputs. Timing assertions are lower bounds
(which noise cannot break) or generous ratios measured side by side.
"""

from __future__ import annotations

import ast
import json
import os
import re
import struct
import subprocess
import threading
import time

import numpy as np
import pytest

from tests.standins.librknnrt import build_bare_loop, build_standin
from tests.standins.rknn_caller import (ERR_CTX_INVALID, ERR_DEVICE_UNAVAILABLE, ERR_INPUT_INVALID, ERR_MODEL_INVALID,
                                        ERR_OUTPUT_INVALID, ERR_PARAM_INVALID, ERR_TARGET_PLATFORM_UNMATCH, FLAG_COLLECT_PERF,
                                        FLAG_ENABLE_SRAM, FLAG_SHARE_WEIGHT_MEM, FLOAT16, FLOAT32, INT8, NC1HWC2, NCHW, NHWC,
                                        SUCC, UINT8, UNDEFINED, InitExtend, MemSize, Output, PerfRun, Runtime,
                                        SdkVersion, TensorAttr, mem_bytes, mem_write)

pytestmark = pytest.mark.toolkit  # the models come from the real rknn-toolkit2


# -- helpers -------------------------------------------------------------------------------

def load(rt, path, flags=0, mask=None):
    rc, ctx = rt.init(path, flags)
    assert rc == SUCC, rc
    if mask is not None:
        assert rt.set_core_mask(ctx, mask) == SUCC
    return ctx


def feed(rt, ctx, seed=0):
    """uint8 inputs in each input's reported layout; returns them."""
    n_in, _ = rt.io_num(ctx)
    arrays, fmts = [], []
    for i in range(n_in):
        a = rt.attr(ctx, "INPUT_ATTR", i)
        arrays.append(np.random.default_rng(seed + i).integers(0, 256, a.shape, dtype=np.uint8))
        fmts.append(a.fmt if a.fmt in (NCHW, NHWC) else NCHW)
    assert rt.inputs_set(ctx, arrays, [UINT8] * n_in, fmts) == SUCC
    return arrays


def run_and_get(rt, ctx, want_float=True):
    assert rt.run(ctx) == SUCC
    rc, outs = rt.outputs(ctx, rt.io_num(ctx)[1], want_float)
    assert rc == SUCC
    return outs


def trailer(path):
    """The .rknn's JSON part, parsed here independently of the stand-in."""
    data = path.read_bytes()
    payload = struct.unpack_from("<Q", data, 16)[0]
    (json_len,) = struct.unpack_from("<Q", data, 64 + payload)
    return json.loads(data[72 + payload:72 + payload + json_len])


def quant_table(path):
    """The toolkit's own record of each I/O tensor's calibrated range (a Python literal)."""
    data = path.read_bytes()
    start = data.find(b"{'attrs'")
    return ast.literal_eval(data[start:data.find(b"\0", start)].decode())["quant_tab"]


def timed_threads(fn_per_thread):
    threads = [threading.Thread(target=fn) for fn in fn_per_thread]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def looper(rt, ctx, runs, results):
    def go():
        results.extend(rt.run(ctx) for _ in range(runs))
    return go


# -- loading --------------------------------------------------------------------------------

def test_init_from_buffer_and_from_path_agree(rt, models):
    path = models["tiny_rk3588"]
    rc, by_path = rt.init(path)
    assert rc == SUCC
    rc, by_buffer = rt.init(path.read_bytes())
    assert rc == SUCC and by_buffer != by_path
    for ctx in (by_path, by_buffer):
        assert rt.io_num(ctx) == (1, 2)
    assert bytes(rt.attr(by_path, "OUTPUT_ATTR", 1)) == bytes(rt.attr(by_buffer, "OUTPUT_ATTR", 1))
    assert rt.destroy(by_path) == SUCC and rt.destroy(by_buffer) == SUCC


@pytest.mark.parametrize("name", ["tiny_rk3588", "cls_rk3588"])
def test_attrs_match_the_model_file(rt, models, name):
    path = models[name]
    js = trailer(path)
    quant = quant_table(path)
    norm = {t["tensor_id"]: t for t in js["norm_tensor"]}
    inputs = [norm[g["right_tensor_id"]] for g in js["graph"] if g["left"] == "input"]
    outputs = [norm[g["right_tensor_id"]] for g in js["graph"] if g["left"] == "output"]
    ctx = load(rt, path)
    assert rt.io_num(ctx) == (len(inputs), len(outputs))
    for kind, tensors in (("INPUT_ATTR", inputs), ("OUTPUT_ATTR", outputs)):
        for i, t in enumerate(tensors):
            a = rt.attr(ctx, kind, i)
            assert a.index == i and a.name.decode() == t["url"]
            dims = t["size"]
            if kind == "INPUT_ATTR":  # 4-D image inputs are reported NHWC
                assert a.fmt == NHWC and a.shape == (dims[0], dims[2], dims[3], dims[1])
            else:
                assert a.shape == tuple(dims) and a.fmt == (NCHW if len(dims) == 4 else UNDEFINED)
            assert a.n_elems == int(np.prod(dims))
            if t["dtype"]["qnt_type"] == "int8":
                lo, hi = min(quant[t["url"]]["min"][0], 0.0), max(quant[t["url"]]["max"][0], 0.0)
                assert a.type == INT8 and a.qnt_type == 2 and a.size == a.n_elems
                assert a.scale == pytest.approx((hi - lo) / 255, rel=1e-4)
                assert abs(a.zp - round(-128 - lo / a.scale)) <= 1
            else:  # not quantized: float16 on the NPU
                assert a.type == FLOAT16 and a.qnt_type == 0 and a.size == 2 * a.n_elems


def test_native_attrs(rt, models):
    ctx = load(rt, models["tiny_rk3588"])
    feat = rt.attr(ctx, "OUTPUT_ATTR", 0)
    assert feat.name == b"feat" and feat.shape == (1, 20, 16, 16) and feat.fmt == NCHW
    native = rt.attr(ctx, "NATIVE_OUTPUT_ATTR", 0)
    assert native.fmt == NC1HWC2 and native.shape == (1, 2, 16, 16, 16)  # 20 channels -> 2 x 16
    assert native.size == 2 * 16 * 16 * 16 and (native.zp, native.scale) == (feat.zp, feat.scale)
    nhwc = rt.attr(ctx, "NATIVE_NHWC_OUTPUT_ATTR", 0)
    assert nhwc.fmt == NHWC and nhwc.shape == (1, 16, 16, 20)
    assert rt.attr(ctx, "NATIVE_OUTPUT_ATTR", 1).shape == (1, 6)  # 2-D: no NC1HWC2
    assert rt.attr(ctx, "NATIVE_INPUT_ATTR", 0).fmt == NHWC
    for current, plain in (("CURRENT_INPUT_ATTR", "INPUT_ATTR"), ("CURRENT_OUTPUT_ATTR", "OUTPUT_ATTR"),
                           ("CURRENT_NATIVE_OUTPUT_ATTR", "NATIVE_OUTPUT_ATTR")):
        assert bytes(rt.attr(ctx, current, 0)) == bytes(rt.attr(ctx, plain, 0))
    bad = TensorAttr()
    bad.index = 2
    assert rt.query(ctx, "OUTPUT_ATTR", bad) == ERR_PARAM_INVALID


@pytest.mark.parametrize("damage", ["not_rknn", "truncated", "missing"])
def test_a_file_that_is_not_a_model_is_refused(rt, models, tmp_path, capfd, damage):
    if damage == "not_rknn":
        rc, _ = rt.init(b"\x7fELF" + bytes(500))
    elif damage == "truncated":
        rc, _ = rt.init(models["tiny_rk3588"].read_bytes()[:5000])
    else:
        rc, _ = rt.init(tmp_path / "nope.rknn")
    assert rc == ERR_MODEL_INVALID
    err = capfd.readouterr().err
    assert "E RKNN: [stand-in] rknn_init:" in err
    assert {"not_rknn": "not an .rknn model", "truncated": "truncated", "missing": "nope.rknn"}[damage] in err


def test_model_offset_inside_a_bigger_file(rt, models, tmp_path):
    """rknn_init_extend.real_model_offset/size pick the model out of a file with a header."""
    model = models["tiny_rk3588"].read_bytes()
    bundle = tmp_path / "bundle.bin"
    bundle.write_bytes(b"H" * 100 + model + b"T" * 50)
    ext = InitExtend(real_model_offset=100, real_model_size=len(model))
    rc, ctx = rt.init(bundle, 0, ext)
    assert rc == SUCC and rt.io_num(ctx) == (1, 2)
    assert rt.init(bundle)[0] == ERR_MODEL_INVALID  # without the offset it is not a model


# -- the board ------------------------------------------------------------------------------

@pytest.mark.parametrize("model,board,ok", [
    ("tiny_rk3566", "rk3588", False), ("tiny_rk3588", "rk3566", False), ("tiny_rk3576", "rk3588", False),
    ("tiny_rk3588", "rk3588s", True), ("tiny_rk3566", "rk3568", True), ("tiny_rk3576", "rk3576", True),
])
def test_model_must_match_the_board_soc(rt, models, boards, monkeypatch, capfd, model, board, ok):
    monkeypatch.setenv("RKNN_STANDIN_ROOT", str(boards[board]))
    rc, _ = rt.init(models[model])
    if ok:
        assert rc == SUCC
    else:
        assert rc == ERR_TARGET_PLATFORM_UNMATCH
        built_for = model.split("_")[1]
        assert (f"E RKNN: [stand-in] rknn_init: the model was built for target platform {built_for}, "
                f"but this board is {board}") in capfd.readouterr().err


@pytest.mark.parametrize("board", ["x86", "none"])
def test_no_rockchip_soc(rt, models, boards, monkeypatch, capfd, board):
    monkeypatch.setenv("RKNN_STANDIN_ROOT", str(boards[board]))
    assert rt.init(models["tiny_rk3588"])[0] == ERR_DEVICE_UNAVAILABLE
    assert "proc/device-tree/compatible" in capfd.readouterr().err


@pytest.mark.parametrize("board,model,accepted,refused", [
    ("rk3588", "tiny_rk3588", [0, 1, 2, 4, 3, 7, 0xFFFF], [5, 6, 8]),
    ("rk3576", "tiny_rk3576", [0, 1, 2, 3, 0xFFFF], [4, 7]),
    ("rk3566", "tiny_rk3566", [0], [1, 2, 3, 7, 0xFFFF]),
])
def test_core_masks_per_soc(rt, models, boards, monkeypatch, capfd, board, model, accepted, refused):
    monkeypatch.setenv("RKNN_STANDIN_ROOT", str(boards[board]))
    ctx = load(rt, models[model])
    assert [rt.set_core_mask(ctx, m) for m in accepted] == [SUCC] * len(accepted)
    capfd.readouterr()
    assert [rt.set_core_mask(ctx, m) for m in refused] == [ERR_PARAM_INVALID] * len(refused)
    err = capfd.readouterr().err
    assert err.count("E RKNN: [stand-in] rknn_set_core_mask") == len(refused)
    if board == "rk3566":
        assert "only supported by RK3588, RK3576" in err


# -- timing -----------------------------------------------------------------------------------

def test_perf_run_reports_the_configured_npu_time(rt, models, monkeypatch):
    monkeypatch.setenv("RKNN_STANDIN_RUN_US", "3000")
    monkeypatch.setenv("RKNN_STANDIN_MULTICORE_OVERHEAD", "0.2")
    figures = {}
    for mask in (0, 1, 3, 7):
        ctx = load(rt, models["tiny_rk3588"], mask=mask)
        assert rt.perf_run_us(ctx) == 0  # before any run
        feed(rt, ctx)
        t0 = time.perf_counter()
        assert rt.run(ctx) == SUCC
        wall = time.perf_counter() - t0
        figures[mask] = rt.perf_run_us(ctx)
        assert wall >= figures[mask] / 1e6  # a run never returns before its NPU time
    # one core: RUN_US; n cores on one context: RUN_US / n * (1 + overhead)
    assert figures == {0: 3000, 1: 3000, 3: 1800, 7: 1200}


def test_runs_are_serialised_per_npu_core(rt, models, monkeypatch):
    monkeypatch.setenv("RKNN_STANDIN_RUN_US", "25000")
    monkeypatch.setenv("RKNN_STANDIN_IO_US", "0")
    runs = 8

    def wall(masks):
        ctxs = [load(rt, models["tiny_rk3588"], mask=m) for m in masks]
        for c in ctxs:
            feed(rt, c)
        results = []
        took = timed_threads([looper(rt, c, runs, results) for c in ctxs])
        assert results == [SUCC] * runs * len(masks)
        return took

    same_core = wall([1, 1])
    two_cores = wall([1, 2])
    auto = wall([0, 0])
    assert same_core >= 2 * runs * 0.025  # strictly serialised: cannot be faster
    assert two_cores < 0.8 * same_core and auto < 0.8 * same_core  # ~1x against ~2x
    # a 0_1_2 run occupies all three cores: a core-1 context waits for it
    monkeypatch.setenv("RKNN_STANDIN_MULTICORE_OVERHEAD", "0.5")
    both = wall([7, 2])  # 8 x 12.5 ms on all cores + 8 x 25 ms on core 1, never overlapping
    assert both >= runs * (0.0125 + 0.025)


def test_threads_with_their_own_contexts_run_concurrently_and_correctly(rt, models, monkeypatch):
    monkeypatch.setenv("RKNN_STANDIN_RUN_US", "1000")
    ctxs = [load(rt, models["tiny_rk3588"]) for _ in range(4)]
    expected = []
    for i, c in enumerate(ctxs):
        feed(rt, c, seed=100 + i)
        expected.append(run_and_get(rt, c, want_float=False))
    errors = []

    def worker(i):
        def go():
            for _ in range(15):
                if run_and_get(rt, ctxs[i], want_float=False) != expected[i]:
                    errors.append(i)
        return go

    timed_threads([worker(i) for i in range(4)])
    assert errors == []
    assert len({e[1] for e in expected}) == 4  # four different inputs, four different outputs


# -- profile and memory -----------------------------------------------------------------------

def parse_table(text, old=False):
    """(rows, total_us) from a PERF_DETAIL table; a row is a dict of the columns we check."""
    rows, total = [], None
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0].isdigit():
            if old:  # ... DDR NPU Total Time Mac "a/b/c" "-" "Up:x" Task Lut RW FullName
                rows.append({"op": parts[1], "target": parts[3], "time": int(parts[9]), "workload": parts[11],
                             "name": parts[-1]})
            else:  # ... Cycles Time MacUsage WorkLoad RW FullName
                rows.append({"op": parts[1], "target": parts[3], "time": int(parts[7]), "workload": parts[9],
                             "name": parts[-1]})
        m = re.match(r"Total Operator Elapsed (?:Per Frame )?Time\(us\): (\d+)", line)
        if m:
            total = int(m.group(1))
    return rows, total


def test_perf_detail_needs_the_collect_flag(rt, models, capfd):
    ctx = load(rt, models["tiny_rk3588"])
    feed(rt, ctx)
    rt.run(ctx)
    assert rt.perf_detail(ctx)[0] == ERR_PARAM_INVALID
    assert "RKNN_FLAG_COLLECT_PERF_MASK" in capfd.readouterr().err


def test_perf_detail_current_format(rt, models, monkeypatch):
    monkeypatch.setenv("RKNN_STANDIN_RUN_US", "1234")
    ctx = load(rt, models["tiny_rk3588"], flags=FLAG_COLLECT_PERF, mask=2)
    feed(rt, ctx)
    rt.run(ctx)
    rc, text = rt.perf_detail(ctx)
    assert rc == SUCC
    for needle in ("Network Layer Information Table",
                   "ID   OpType           DataType Target InputShape", "Cycles(DDR/NPU/Total)", "Time(us)",
                   "MacUsage(%)", "WorkLoad(0/1/2)", "RW(KB)", "FullName",
                   "Total Memory Read/Write Per Frame Size(KB): ", "Operator Time Consuming Ranking Table",
                   "OpType             CallNumber   CPUTime(us)  GPUTime(us)  NPUTime(us)  TotalTime(us)  TimeRatio(%)"):
        assert needle in text, needle
    rows, total = parse_table(text)
    # the model's own graph, in order, with its full names
    assert [r["name"] for r in rows] == ["InputOperator:image", "Conv:conv", "MaxPool:pool", "OutputOperator:feat",
                                         "Reshape:flat_tp_rs", "Conv:scores#2", "Reshape:scores_mm_tp_rs",
                                         "OutputOperator:scores"]
    assert total == sum(r["time"] for r in rows) == rt.perf_run_us(ctx) == 1234
    targets = {r["name"]: r["target"] for r in rows}
    assert targets["Conv:conv"] == "NPU" and targets["Reshape:scores_mm_tp_rs"] == "CPU"  # as compiled
    conv = next(r for r in rows if r["name"] == "Conv:conv")
    assert conv["workload"] == "0.0%/100.0%/0.0%"  # core mask 2 = core 1


def test_perf_detail_follows_core_mask_and_cpu_ops(rt, models, monkeypatch):
    monkeypatch.setenv("RKNN_STANDIN_CPU_OPS", "MaxPool")
    ctx = load(rt, models["tiny_rk3588"], flags=FLAG_COLLECT_PERF, mask=7)
    feed(rt, ctx)
    rt.run(ctx)
    rows, _ = parse_table(rt.perf_detail(ctx)[1])
    by_name = {r["name"]: r for r in rows}
    assert by_name["Conv:conv"]["workload"] == "33.3%/33.3%/33.3%"  # convolutions spread over the cores
    assert by_name["Reshape:flat_tp_rs"]["workload"] == "100.0%/0.0%/0.0%"  # the rest on the first
    assert by_name["MaxPool:pool"]["target"] == "CPU" and by_name["MaxPool:pool"]["workload"] == "0.0%/0.0%/0.0%"


def test_perf_detail_old_format(rt, models, monkeypatch):
    monkeypatch.setenv("RKNN_STANDIN_PERF_FORMAT", "old")
    monkeypatch.setenv("RKNN_STANDIN_RUN_US", "777")
    ctx = load(rt, models["tiny_rk3588"], flags=FLAG_COLLECT_PERF, mask=3)
    feed(rt, ctx)
    rt.run(ctx)
    text = rt.perf_detail(ctx)[1]
    for needle in ("Performance", "WorkLoad(0/1/2)-ImproveTherical", "DDR Cycles     NPU Cycles     Total Cycles",
                   "Total Memory RW Amount(MB): ", "Operator Time-Consuming Ranking:"):
        assert needle in text, needle
    assert "Network Layer Information Table" not in text
    rows, total = parse_table(text, old=True)
    assert total == sum(r["time"] for r in rows) == rt.perf_run_us(ctx) == round(777 / 2 * 1.5)
    assert next(r for r in rows if r["name"] == "Conv:conv")["workload"] == "50.0%/50.0%/0.0%"
    assert "50.0%/50.0%/0.0% - Up:50.0%" in text


def test_perf_detail_on_a_two_core_soc(rt, models, boards, monkeypatch):
    monkeypatch.setenv("RKNN_STANDIN_ROOT", str(boards["rk3576"]))
    ctx = load(rt, models["tiny_rk3576"], flags=FLAG_COLLECT_PERF, mask=3)
    feed(rt, ctx)
    rt.run(ctx)
    text = rt.perf_detail(ctx)[1]
    assert "WorkLoad(0/1) " in text and "50.0%/50.0% " in text


def test_mem_size_counts_shared_weights_once(rt, models, monkeypatch):
    path = models["cls_rk3588"]
    owner = load(rt, path)
    m = rt.mem_size(owner)
    size = path.stat().st_size
    assert 0.9 * size < m.total_weight_size <= size  # the compiled graph with its weights
    assert m.total_internal_size > 0 and m.total_internal_size % 4096 == 0
    assert m.total_dma_allocated_size == m.total_weight_size + m.total_internal_size
    rc, dup = rt.dup(owner)
    assert rc == SUCC
    d = rt.mem_size(dup)
    assert (d.total_weight_size, d.total_internal_size, d.total_dma_allocated_size) == (
        0, m.total_internal_size, m.total_internal_size)
    rc, shared = rt.init(path, FLAG_SHARE_WEIGHT_MEM, InitExtend(ctx=owner))
    assert rc == SUCC and rt.mem_size(shared).total_weight_size == 0
    # a dup runs on its own, with the same outputs for the same inputs
    for c in (owner, dup):
        feed(rt, c, seed=5)
    assert run_and_get(rt, owner) == run_and_get(rt, dup)
    assert rt.destroy(owner) == SUCC
    assert run_and_get(rt, dup)  # the model outlives the context that loaded it


def test_share_weight_mem_needs_the_same_model(rt, models, capfd):
    other = load(rt, models["tiny_rk3588"])
    rc, _ = rt.init(models["cls_rk3588"], FLAG_SHARE_WEIGHT_MEM, InitExtend(ctx=other))
    assert rc == ERR_MODEL_INVALID and "another model's weights" in capfd.readouterr().err
    assert rt.init(models["cls_rk3588"], FLAG_SHARE_WEIGHT_MEM)[0] == ERR_PARAM_INVALID


def test_mem_size_sram_and_created_mems(rt, models, monkeypatch):
    monkeypatch.setenv("RKNN_STANDIN_SRAM_KB", "956")
    plain = load(rt, models["tiny_rk3588"])
    with_sram = load(rt, models["tiny_rk3588"], flags=FLAG_ENABLE_SRAM)
    p, s = rt.mem_size(plain), rt.mem_size(with_sram)
    assert p.total_sram_size == s.total_sram_size == 956 * 1024
    assert p.free_sram_size == 956 * 1024 and s.free_sram_size == 956 * 1024 - min(s.total_internal_size, 956 * 1024)
    mem = rt.create_mem(plain, 10000)
    assert rt.mem_size(plain).total_dma_allocated_size == p.total_dma_allocated_size + 10000
    assert rt.destroy_mem(plain, mem) == SUCC
    assert rt.mem_size(plain).total_dma_allocated_size == p.total_dma_allocated_size


# -- inputs and outputs ---------------------------------------------------------------------------

def test_outputs_are_deterministic_functions_of_the_input(rt, models):
    ctx = load(rt, models["tiny_rk3588"])
    x = feed(rt, ctx, seed=1)[0]
    first = run_and_get(rt, ctx, want_float=False)
    assert run_and_get(rt, ctx, want_float=False) == first
    other = load(rt, models["tiny_rk3588"])  # another context, same bytes: same outputs
    assert rt.inputs_set(other, [x], [UINT8], [NHWC]) == SUCC
    assert run_and_get(rt, other, want_float=False) == first
    y = x.copy()
    y[0, 3, 4, 1] ^= 1  # one bit of one pixel
    assert rt.inputs_set(other, [y], [UINT8], [NHWC]) == SUCC
    changed = run_and_get(rt, other, want_float=False)
    assert changed[0] != first[0] and changed[1] != first[1]


def test_want_float_dequantizes_the_native_output(rt, models):
    ctx = load(rt, models["tiny_rk3588"])
    feed(rt, ctx, seed=2)
    raw = run_and_get(rt, ctx, want_float=False)
    floats = run_and_get(rt, ctx, want_float=True)
    for i in range(2):
        a = rt.attr(ctx, "OUTPUT_ATTR", i)
        q = np.frombuffer(raw[i], np.int8)
        f = np.frombuffer(floats[i], np.float32)
        assert q.size == f.size == a.n_elems
        np.testing.assert_allclose(f, (q.astype(np.float64) - a.zp) * a.scale, rtol=1e-6)
    cls = load(rt, models["cls_rk3588"])  # a float16 output
    feed(rt, cls)
    (h,), (f,) = run_and_get(rt, cls, want_float=False), run_and_get(rt, cls, want_float=True)
    np.testing.assert_array_equal(np.frombuffer(h, np.float16).astype(np.float32), np.frombuffer(f, np.float32))


def test_inputs_in_other_types_and_layouts(rt, models, capfd):
    ctx = load(rt, models["tiny_rk3588"])
    a = rt.attr(ctx, "INPUT_ATTR", 0)
    nchw = np.zeros((1, 3, 16, 16), np.float32)
    assert rt.inputs_set(ctx, [nchw], [FLOAT32], [NCHW]) == SUCC
    assert rt.inputs_set(ctx, [nchw.astype(np.float16)], [FLOAT16], [NCHW]) == SUCC
    native = np.zeros(a.shape, np.int8)
    assert rt.inputs_set(ctx, [native], [INT8], [NHWC], pass_through=True) == SUCC
    capfd.readouterr()
    assert rt.inputs_set(ctx, [np.zeros(700, np.uint8)], [UINT8], [NHWC]) == ERR_INPUT_INVALID
    err = capfd.readouterr().err
    assert "E RKNN: [stand-in] rknn_inputs_set: input 0 'image' has 700 bytes, expected 768 (1x16x16x3 UINT8)" in err
    assert rt.inputs_set(ctx, [nchw], [UINT8], [NCHW]) == ERR_INPUT_INVALID  # float bytes sent as uint8
    assert rt.inputs_set(ctx, [np.zeros(768, np.uint8)], [UINT8], [UNDEFINED]) == ERR_INPUT_INVALID
    assert rt.inputs_set(ctx, [np.zeros(768 * 8, np.uint8)], [8], [NHWC]) == ERR_INPUT_INVALID  # int64
    assert "rknn_inputs_set" in capfd.readouterr().err


def test_copying_costs_cpu_time_zero_copy_does_not(rt, models, monkeypatch):
    monkeypatch.setenv("RKNN_STANDIN_IO_US", "20000")
    ctx = load(rt, models["tiny_rk3588"])
    t0 = time.perf_counter()
    feed(rt, ctx)
    assert time.perf_counter() - t0 >= 0.02  # the copy's cost (spent busy, on the CPU)
    mem = rt.create_mem(ctx, rt.attr(ctx, "NATIVE_INPUT_ATTR", 0).size)
    t0 = time.perf_counter()
    assert rt.set_io_mem(ctx, mem, rt.attr(ctx, "NATIVE_INPUT_ATTR", 0)) == SUCC
    assert time.perf_counter() - t0 < 0.02


def test_run_and_outputs_need_their_predecessors(rt, models, capfd):
    ctx = load(rt, models["tiny_rk3588"])
    assert rt.outputs(ctx, 2)[0] == ERR_OUTPUT_INVALID
    assert rt.run(ctx) == ERR_INPUT_INVALID
    err = capfd.readouterr().err
    assert "call rknn_run first" in err and "input 0 'image' has no data" in err


def test_preallocated_outputs(rt, models):
    ctx = load(rt, models["tiny_rk3588"])
    feed(rt, ctx, seed=3)
    assert rt.run(ctx) == SUCC
    bufs = [np.zeros(20 * 16 * 16, np.float32), np.zeros(6, np.float32)]
    outs = (Output * 2)()
    for i, b in enumerate(bufs):
        outs[i] = Output(1, 1, i, b.ctypes.data, b.nbytes)
    assert rt.lib.rknn_outputs_get(ctx, 2, outs, None) == SUCC
    assert outs[0].buf == bufs[0].ctypes.data  # written in place
    assert rt.lib.rknn_outputs_release(ctx, 2, outs) == SUCC  # and not freed by the runtime
    (want_feat, want_scores) = run_and_get(rt, ctx, want_float=True)
    assert bufs[0].tobytes() == want_feat and bufs[1].tobytes() == want_scores
    outs[1].size = 8  # too small
    assert rt.lib.rknn_outputs_get(ctx, 2, outs, None) == ERR_OUTPUT_INVALID


# -- zero-copy --------------------------------------------------------------------------------------

def test_zero_copy_matches_the_copy_path(rt, models):
    ctx = load(rt, models["tiny_rk3588"])
    nat_in = rt.attr(ctx, "NATIVE_INPUT_ATTR", 0)
    x = np.random.default_rng(9).integers(-128, 128, nat_in.shape, dtype=np.int8)
    assert rt.inputs_set(ctx, [x], [INT8], [NHWC], pass_through=True) == SUCC
    want_feat, want_scores = run_and_get(rt, ctx, want_float=False)

    zc = load(rt, models["tiny_rk3588"])
    in_mem = rt.create_mem(zc, nat_in.size_with_stride)
    assert in_mem.contents.fd == -1 and in_mem.contents.phys_addr == 0
    mem_write(in_mem, x.tobytes())
    assert rt.set_io_mem(zc, in_mem, rt.attr(zc, "NATIVE_INPUT_ATTR", 0)) == SUCC
    nat_feat = rt.attr(zc, "NATIVE_OUTPUT_ATTR", 0)  # NC1HWC2 [1,2,16,16,16]
    feat_mem = rt.create_mem(zc, nat_feat.size_with_stride)
    assert rt.set_io_mem(zc, feat_mem, nat_feat) == SUCC
    scores_attr = rt.attr(zc, "OUTPUT_ATTR", 1)
    scores_attr.type = FLOAT32  # the caller may ask for float output in its own buffer
    scores_mem = rt.create_mem(zc, 6 * 4)
    assert rt.set_io_mem(zc, scores_mem, scores_attr) == SUCC
    assert rt.run(zc) == SUCC

    c1hwc2 = np.frombuffer(mem_bytes(feat_mem), np.int8).reshape(1, 2, 16, 16, 16)
    nchw = c1hwc2.transpose(0, 1, 4, 2, 3).reshape(1, 32, 16, 16)
    np.testing.assert_array_equal(nchw[:, :20], np.frombuffer(want_feat, np.int8).reshape(1, 20, 16, 16))
    assert not nchw[:, 20:].any()  # channel padding stays zero
    a = rt.attr(zc, "OUTPUT_ATTR", 1)
    np.testing.assert_allclose(np.frombuffer(mem_bytes(scores_mem), np.float32),
                               (np.frombuffer(want_scores, np.int8) - a.zp) * a.scale, rtol=1e-6)
    for mem in (in_mem, feat_mem, scores_mem):
        assert rt.destroy_mem(zc, mem) == SUCC
    assert rt.run(zc) == ERR_INPUT_INVALID  # the input's buffer is gone


def test_zero_copy_nhwc_output_and_binding_rules(rt, models, capfd):
    ctx = load(rt, models["tiny_rk3588"])
    feed(rt, ctx, seed=4)
    want_feat = np.frombuffer(run_and_get(rt, ctx, want_float=False)[0], np.int8).reshape(1, 20, 16, 16)
    nhwc = rt.attr(ctx, "NATIVE_NHWC_OUTPUT_ATTR", 0)
    mem = rt.create_mem(ctx, nhwc.size)
    assert rt.set_io_mem(ctx, mem, nhwc) == SUCC
    assert rt.run(ctx) == SUCC
    got = np.frombuffer(mem_bytes(mem), np.int8).reshape(1, 16, 16, 20)
    np.testing.assert_array_equal(got, want_feat.transpose(0, 2, 3, 1))

    capfd.readouterr()
    stranger = rt.attr(ctx, "OUTPUT_ATTR", 0)
    stranger.name = b"no_such_tensor"
    assert rt.set_io_mem(ctx, mem, stranger) == ERR_PARAM_INVALID
    small = rt.create_mem(ctx, 100)
    assert rt.set_io_mem(ctx, small, rt.attr(ctx, "OUTPUT_ATTR", 0)) == ERR_PARAM_INVALID
    wrong_index = rt.attr(ctx, "OUTPUT_ATTR", 0)
    wrong_index.index = 1
    assert rt.set_io_mem(ctx, mem, wrong_index) == ERR_PARAM_INVALID
    err = capfd.readouterr().err
    assert "neither an input nor an output" in err and "needs 5120 bytes" in err and "attr->index 1" in err


# -- versions and identity -----------------------------------------------------------------------

def test_it_says_it_is_a_stand_in(rt, models, standin_lib, monkeypatch, capfd):
    ctx = load(rt, models["tiny_rk3588"])
    v = SdkVersion()
    assert rt.query(ctx, "SDK_VERSION", v) == SUCC
    api = v.api_version.decode()
    assert re.fullmatch(r"2\.5\.0 \(standin@\d{4}-\d\d-\d\d\)", api)
    major, minor, rest = api.split(".")  # what lite2's get_sdk_version does with it
    assert (major, minor, rest.split(" ")[0]) == ("2", "5", "0")
    assert "stand-in" in v.drv_version.decode()
    assert b"librknnrt version: 2.5.0 (stand-in " in standin_lib.read_bytes()
    assert "I RKNN" not in capfd.readouterr().err  # RKNN_STANDIN_QUIET=1
    monkeypatch.delenv("RKNN_STANDIN_QUIET")
    load(rt, models["tiny_rk3588"])
    banner = capfd.readouterr().err
    assert banner.startswith("I RKNN: [stand-in] librknnrt version: 2.5.0 (stand-in") and "no NPU here" in banner


def test_version_can_be_built_in(models):
    lib = build_standin(version="1.6.0")
    assert b"librknnrt version: 1.6.0 (stand-in " in lib.read_bytes()
    rt = Runtime(lib)
    ctx = load(rt, models["tiny_rk3588"])
    v = SdkVersion()
    assert rt.query(ctx, "SDK_VERSION", v) == SUCC and v.api_version.startswith(b"1.6.0 (standin@")


def test_query_errors(rt, models, capfd):
    ctx = load(rt, models["tiny_rk3588"])
    assert rt.query(ctx, "INPUT_DYNAMIC_RANGE", TensorAttr()) == ERR_MODEL_INVALID  # static model: normal
    assert rt.query(ctx, 99, TensorAttr()) == ERR_PARAM_INVALID
    assert rt.query(ctx, "PERF_RUN", PerfRun(), 4) == ERR_PARAM_INVALID  # info too small
    assert rt.query(ctx, "CUSTOM_STRING", MemSize()) == ERR_PARAM_INVALID
    err = capfd.readouterr().err
    assert "static input shapes" in err and "unknown query id 99" in err and "not implemented" in err
    assert rt.destroy(ctx) == SUCC
    assert rt.destroy(ctx) == ERR_CTX_INVALID and rt.run(ctx) == ERR_CTX_INVALID
    assert rt.query(12345678, "PERF_RUN", PerfRun()) == ERR_CTX_INVALID


def test_set_input_shapes_accepts_only_the_static_shape(rt, models):
    ctx = load(rt, models["tiny_rk3588"])
    attrs = (TensorAttr * 1)(rt.attr(ctx, "INPUT_ATTR", 0))
    assert rt.lib.rknn_set_input_shapes(ctx, 1, attrs) == SUCC
    attrs[0].dims[1] = 32
    assert rt.lib.rknn_set_input_shapes(ctx, 1, attrs) == ERR_INPUT_INVALID


def test_bad_knobs_are_refused_at_init(rt, models, monkeypatch, capfd):
    for name, value in (("RKNN_STANDIN_RUN_US", "fast"), ("RKNN_STANDIN_PERF_FORMAT", "v3"),
                        ("RKNN_STANDIN_MULTICORE_OVERHEAD", "-1")):
        monkeypatch.setenv(name, value)
        assert rt.init(models["tiny_rk3588"])[0] == ERR_PARAM_INVALID
        assert f"{name}='{value}'" in capfd.readouterr().err
        monkeypatch.delenv(name)


# -- failure injection ---------------------------------------------------------------------------

def test_injected_failures(rt, models, monkeypatch, capfd):
    ctx = load(rt, models["tiny_rk3588"])
    feed(rt, ctx)
    monkeypatch.setenv("RKNN_STANDIN_FAIL", "rknn_run@3=-2,rknn_init=-6")
    assert [rt.run(ctx) for _ in range(4)] == [SUCC, SUCC, -2, -2]  # from the 3rd call on
    assert rt.init(models["tiny_rk3588"])[0] == -6
    err = capfd.readouterr().err
    assert "E RKNN: [stand-in] rknn_run: injected failure -2" in err and "rknn_init: injected failure -6" in err
    monkeypatch.setenv("RKNN_STANDIN_FAIL", "rknn_run@2=-1")  # a new value counts afresh
    assert [rt.run(ctx) for _ in range(2)] == [SUCC, -1]
    monkeypatch.setenv("RKNN_STANDIN_FAIL", "rknn_create_mem=-4")
    assert not rt.create_mem(ctx, 64)  # NULL
    monkeypatch.setenv("RKNN_STANDIN_FAIL", "rknn_run")
    assert rt.run(ctx) == ERR_PARAM_INVALID and "is malformed" in capfd.readouterr().err
    monkeypatch.delenv("RKNN_STANDIN_FAIL")
    assert rt.run(ctx) == SUCC


def test_unsupported_queries_like_an_old_runtime(rt, models, monkeypatch, capfd):
    ctx = load(rt, models["tiny_rk3588"], flags=FLAG_COLLECT_PERF)
    feed(rt, ctx)
    rt.run(ctx)
    monkeypatch.setenv("RKNN_STANDIN_UNSUPPORTED", "PERF_DETAIL,RKNN_QUERY_MEM_SIZE")
    assert rt.perf_detail(ctx)[0] == ERR_PARAM_INVALID
    assert rt.query(ctx, "MEM_SIZE", MemSize()) == ERR_PARAM_INVALID
    assert rt.perf_run_us(ctx) == 2000  # others still answer
    err = capfd.readouterr().err
    assert "query PERF_DETAIL (3) is not supported by this runtime" in err and "MEM_SIZE (6)" in err


def test_old_variant_lacks_the_newer_symbols(models):
    old = Runtime(build_standin(variant="old"))
    for symbol in ("rknn_create_mem", "rknn_set_io_mem", "rknn_destroy_mem", "rknn_dup_context"):
        assert not old.has(symbol), symbol
    assert Runtime(build_standin()).has("rknn_dup_context")
    ctx = load(old, models["tiny_rk3588"])
    feed(old, ctx)
    assert run_and_get(old, ctx)


# -- the bare C benchmark ----------------------------------------------------------------------------

def bare(args, env_extra=None, timeout=60):
    env = {**os.environ, **(env_extra or {})}
    done = subprocess.run([str(build_bare_loop()), str(build_standin()), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)
    return done


def test_bare_loop_single_context(models):
    done = bare([models["tiny_rk3588"], "--runs", 20], {"RKNN_STANDIN_RUN_US": "1500"})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["runs"] == len(out["run_ns"]) == 20 and out["perf_run_us"] == 1500
    assert min(out["run_ns"]) >= 1_500_000
    assert out["mem"]["weight"] > 0 and out["mem"]["dma"] == out["mem"]["weight"] + out["mem"]["internal"]
    assert out["sdk"]["api"].startswith("2.5.0 (standin@")


def test_bare_loop_contexts_scale_with_cores(models):
    # long runs, so that late wake-ups on a loaded machine weigh little against them
    args = [models["tiny_rk3588"], "--contexts", 3, "--seconds", 0.8]
    env = {"RKNN_STANDIN_RUN_US": "20000"}
    spread = bare([*args, "--core-masks", "1,2,4"], env)
    piled = bare([*args, "--core-masks", "1"], env)
    assert spread.returncode == 0 and piled.returncode == 0, spread.stderr + piled.stderr
    s, p = json.loads(spread.stdout), json.loads(piled.stdout)
    assert [c["core_mask"] for c in s["contexts"]] == [1, 2, 4]
    assert p["total_fps"] <= 1.05 / 0.020  # one core: at most 50 runs a second, shared
    assert s["total_fps"] > 2.0 * p["total_fps"]  # three cores: ~3x
    assert min(c["runs"] for c in p["contexts"]) >= 0.6 * max(c["runs"] for c in p["contexts"])  # FIFO: fair


def test_bare_loop_reports_a_failing_run(models):
    done = bare([models["tiny_rk3588"], "--runs", 5], {"RKNN_STANDIN_FAIL": "rknn_run@8=-1"})
    assert done.returncode == 1
    assert "bare_loop: error: rknn_run failed: -1" in done.stderr  # 5 warm-ups + 2 timed runs passed
    assert "E RKNN: [stand-in] rknn_run: injected failure -1" in done.stderr
