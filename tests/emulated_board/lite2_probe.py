"""Runs ON the emulated board (its Python, the real rknn-toolkit-lite2 wheel, our stand-in
librknnrt.so): drives the vendor's API the way users do and prints what it saw as one
JSON object on the last line of stdout. test_lite2_abi.py asserts on it.

    python3 lite2_probe.py MODEL.rknn SOC

Nothing here judges; it records return values, output dtypes/shapes, and the internals
the rknnlite backend relies on (rknnlite_internals.py).
"""

import json
import os
import sys

import numpy as np
from rknnlite.api import RKNNLite

MASKS = ["NPU_CORE_AUTO", "NPU_CORE_0", "NPU_CORE_1", "NPU_CORE_2", "NPU_CORE_0_1", "NPU_CORE_0_1_2", "NPU_CORE_ALL"]


def described(outputs):
    if outputs is None:
        return None
    return [{"dtype": str(o.dtype), "shape": list(o.shape)} for o in outputs]


def main(model, soc):
    seen = {"soc": soc}
    rknn = RKNNLite(verbose=False)
    seen["load_missing"] = rknn.load_rknn(model + ".missing")
    seen["load"] = rknn.load_rknn(model)
    seen["init"] = {}
    for name in MASKS:
        seen["init"][name] = rknn.init_runtime(core_mask=getattr(RKNNLite, name))
    seen["init_bad_mask"] = rknn.init_runtime(core_mask=0x99)
    seen["init_default"] = rknn.init_runtime()
    seen["sdk"] = rknn.get_sdk_version()
    runtime = rknn.rknn_runtime
    n_in, n_out = runtime.get_in_out_num()
    attr = runtime.get_tensor_attr(0)
    dims = [int(attr.dims[k]) for k in range(attr.n_dims)]
    seen["input_attr"] = {"dims": dims, "type": int(attr.type), "fmt": int(attr.fmt), "zp": int(attr.zp)}
    seen["n_in_out"] = [n_in, n_out]
    rng = np.random.default_rng(1)
    nhwc = rng.uniform(0, 1, dims).astype(np.float32)
    nchw = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))

    first = rknn.inference(inputs=[nhwc])
    seen["outputs"] = described(first)
    seen["same_bytes_same_outputs"] = all(np.array_equal(a, b) for a, b in zip(first, rknn.inference(inputs=[nhwc])))
    seen["dtypes"] = {
        dt: described(rknn.inference(inputs=[nhwc.astype(dt)]))
        for dt in ("float32", "float16", "int8", "uint8", "float64")
    }
    seen["three_dims"] = described(rknn.inference(inputs=[nhwc[0]]))
    seen["bare_array"] = described(rknn.inference(inputs=nhwc))
    seen["bogus_format"] = described(rknn.inference(inputs=[nhwc], data_format=["xyz"]))
    formats = ["nchw"]
    seen["nchw_first"] = described(rknn.inference(inputs=[nchw], data_format=formats))
    seen["nchw_list_after"] = list(formats)
    seen["nchw_same_list_again"] = described(rknn.inference(inputs=[nchw], data_format=formats))
    seen["nchw_as_nhwc_equal"] = bool(np.array_equal(rknn.inference(inputs=[nchw], data_format="nchw")[0], first[0]))

    seen["run_perf"] = repr(runtime.get_run_perf())
    os.environ["RKNN_STANDIN_FAIL"] = "rknn_run=-1"
    failed = rknn.inference(inputs=[nhwc])
    runtime.set_inputs([nhwc], None, None)
    seen["internal_run_code_on_failure"] = runtime.run(False)
    os.environ["RKNN_STANDIN_FAIL"] = ""
    seen["outputs_when_run_fails"] = described(failed)
    seen["release"] = rknn.release()
    seen["runtime_after_release"] = repr(getattr(rknn, "rknn_runtime", "absent"))
    print(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
