"""fp32 reference outputs of the source model, computed with onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rkbench.errors import ConversionError

ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


class GoldenModel:
    def __init__(self, model: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise ConversionError(f"onnxruntime cannot load {model} for the fp32 reference: {err}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_dtypes = [ORT_DTYPES.get(i.type, np.float32) for i in self.session.get_inputs()]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        feeds = {
            name: np.asarray(array).astype(dtype, copy=False)
            for name, array, dtype in zip(self.input_names, inputs, self.input_dtypes)
        }
        return self.session.run(None, feeds)
