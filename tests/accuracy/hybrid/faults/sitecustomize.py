"""Loaded by the toolkit worker in hybrid fault tests only (its PYTHONPATH points here):
makes the real rknn-toolkit2 crash or hang in hybrid step 2 for candidates with int16
entries, as it does on layers it cannot take in int16."""

import os
import signal
import time

FAULT = os.environ.get("RKBENCH_TEST_HYBRID_FAULT")
if FAULT:
    from rknn.api import RKNN

    real_step2 = RKNN.hybrid_quantization_step2

    def step2(self, model_input, data_input, model_quantization_cfg):
        with open(model_quantization_cfg) as handle:
            section = handle.read().split("quantize_parameters:")[0]
        if ": int16" in section:
            print("E RKNN: [test] Meet unsupported tensor dtype in Conv, tensor name is: conv2", flush=True)
            if FAULT == "segfault-int16":
                os.kill(os.getpid(), signal.SIGSEGV)
            time.sleep(3600)
        return real_step2(self, model_input, data_input, model_quantization_cfg)

    RKNN.hybrid_quantization_step2 = step2
