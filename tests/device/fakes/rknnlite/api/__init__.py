"""FAKE rknnlite.api.RKNNLite for tests (no NPU here). Records calls; see ../../README.md."""

import json
import os
import sys
import time

import numpy as np


def _log(call, **fields):
    path = os.environ.get("FAKE_RKNNLITE_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(dict(call=call, **fields)) + "\n")


def _failing(name):
    return name in os.environ.get("FAKE_RKNNLITE_FAIL", "").split(",")


class _FakeRuntime:
    """Stands for lite2's internal RKNNRuntime: get_run_perf() gives the last run's 'NPU
    time' in microseconds (here: the fake's sleep)."""

    def __init__(self):
        self.last_us = 0

    def get_run_perf(self):
        return self.last_us


class RKNNLite:
    NPU_CORE_AUTO = 0x0
    NPU_CORE_0 = 0x1
    NPU_CORE_1 = 0x2
    NPU_CORE_2 = 0x4
    NPU_CORE_0_1 = 0x3
    NPU_CORE_0_1_2 = 0x7
    NPU_CORE_ALL = 0xFFFF

    def __init__(self, verbose=False, verbose_file=None):
        self._loaded = False
        self._ready = False
        self.rknn_runtime = None
        _log("__init__", verbose=verbose)
        # the real library chats on stdout; the runner must keep it off the event stream
        print("W rknn-toolkit-lite2 version: 2.5.0 (FAKE)")
        os.write(1, b"I RKNN: [fake] librknnrt loaded\n")

    def load_rknn(self, path):
        _log("load_rknn", path=path)
        if _failing("load_rknn") or not os.path.isfile(path):
            print("E load_rknn: fake failure")
            return -1
        self._loaded = True
        return 0

    def init_runtime(self, core_mask=NPU_CORE_AUTO, **kwargs):
        _log("init_runtime", core_mask=core_mask)
        if _failing("init_runtime") or not self._loaded:
            sys.stderr.write("E RKNN: [fake] failed to open rknpu module\n")
            return -1
        self._ready = True
        if not os.environ.get("FAKE_RKNNLITE_NO_RUN_PERF"):
            self.rknn_runtime = _FakeRuntime()
        return 0

    def get_sdk_version(self):
        return "API: 2.3.0 (fake)\nDRV: rknnrt: 2.3.0 (fake)"

    def inference(self, inputs, data_type=None, data_format=None, inputs_pass_through=None, get_frame_id=False):
        _log(
            "inference",
            shapes=[list(np.shape(x)) for x in inputs],
            dtypes=[str(np.asarray(x).dtype) for x in inputs],
            data_format=data_format,
        )
        if _failing("raise_inference"):
            raise RuntimeError("fake inference crash")
        if _failing("inference") or not self._ready:
            print("E inference: fake failure")
            return None
        delay = float(os.environ.get("FAKE_RKNNLITE_DELAY_S", "0.0005"))
        time.sleep(delay)
        if self.rknn_runtime is not None:
            self.rknn_runtime.last_us = int(delay * 1e6)
        x = np.asarray(inputs[0], dtype=np.float32)
        return [np.array([[x.sum(), x.mean(), x.max()]], dtype=np.float32)]

    def release(self):
        _log("release")
