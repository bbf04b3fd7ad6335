"""Which dtype each hybrid entry can take, known before building where the toolkit lets us
know, and learned from the toolkit's own words where it does not.

Before building (from hybrid step 1: its graph and quantize_parameters):
- Only tensors a node of the step-1 graph computes, and that step 1 quantized (int8), can be
  entries. Constants appear in quantize_parameters too (int32/int16 anchors, scales) and are
  refused ("Invalid operands name ... in custom_quantize_layers!").
- float16 overflows above 65504. Step 1 records each tensor's calibration range; a tensor
  whose range reaches half of that (other inputs run past the calibration range, and a
  float16 layer accumulates past its output) goes to int16 instead.
- int16 is refused for a layer that reads a constant the toolkit keeps in int32 (a YOLO
  head's anchor points read by Sub/Add): rknn-toolkit2 2.5 dies in hybrid step 2 (SIGILL)
  after "Meet unsupported tensor dtype in Sub, tensor name is: <the constant>". Such a
  layer goes to float16, which works there.
While searching (from a failed build's log): the tensors the toolkit names are kept out of
later candidates of that dtype (or of every dtype, for a name it does not know).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from rkbench.accuracy.hybrid.groups import LayerGraph

FLOAT16_MAX = 65504.0
FLOAT16_HEADROOM = 2.0
HIGH = ("float16", "int16")
QUANTIZED = ("int8", "uint8")

UNSUPPORTED_DTYPE = re.compile(r"Meet unsupported tensor dtype in (\w+), tensor name is: (\S+)")
INVALID_NAME = re.compile(r"Invalid operands name '(.+?)' in custom_quantize_layers")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def other(dtype: str) -> str:
    return "int16" if dtype == "float16" else "float16"


@dataclass
class DtypeRules:
    eligible: list[str]  # tensors that can be entries, in graph order
    magnitude: dict[str, float]  # tensor -> largest |value| in its calibration range
    int32_constants: dict[str, str]  # tensor -> an int32 constant its node reads
    learned: dict[str, dict[str, str]] = field(default_factory=lambda: {"float16": {}, "int16": {}})

    def refusal(self, tensor: str, dtype: str) -> str | None:
        """Why `dtype` will not work for `tensor`, or None."""
        if tensor not in self.magnitude:
            return "not a tensor step 1 quantized (a constant, or a graph input/output)"
        if tensor in self.learned[dtype]:
            return self.learned[dtype][tensor]
        if dtype == "float16" and self.magnitude[tensor] > FLOAT16_MAX / FLOAT16_HEADROOM:
            return (
                f"its calibration range reaches {self.magnitude[tensor]:.4g}: float16 overflows above {FLOAT16_MAX:.0f}"
            )
        if dtype == "int16" and tensor in self.int32_constants:
            return (
                f"it reads the constant {self.int32_constants[tensor]}, which the toolkit keeps in "
                "int32: int16 there makes hybrid step 2 fail ('Meet unsupported tensor dtype')"
            )
        return None

    def dtype_for(self, tensor: str, preferred: str) -> str | None:
        """`preferred` where it works, the other high-precision dtype where only that does."""
        for dtype in (preferred, other(preferred)):
            if self.refusal(tensor, dtype) is None:
                return dtype
        return None

    def assign(self, tensors: list[str], preferred: str) -> dict[str, str]:
        layers = {}
        for tensor in tensors:
            dtype = self.dtype_for(tensor, preferred)
            if dtype is not None:
                layers[tensor] = dtype
        return layers

    def learn(self, log_text: str, layers: dict[str, str], graph: LayerGraph) -> list[str]:
        """Keep the tensors a failed build's log names out of later candidates; returns
        what was learned, as sentences."""
        text = ANSI.sub("", log_text)
        said = []
        readers = graph.readers()
        for op, name in set(UNSUPPORTED_DTYPE.findall(text)):
            # The name is the operand the op could not take; the entries to change are that
            # operand (if it is one) and the layers that read it.
            for tensor in [name, *readers.get(name, ())]:
                dtype = layers.get(tensor)
                if dtype in HIGH and tensor not in self.learned[dtype]:
                    self.learned[dtype][tensor] = (
                        f"the toolkit refused it in {dtype}: unsupported tensor dtype in {op} ({name})"
                    )
                    said.append(
                        f"{tensor} is kept out of {dtype} (the toolkit: unsupported tensor dtype in {op}, "
                        f"tensor {name})"
                    )
        for name in set(INVALID_NAME.findall(text)):
            for dtype in HIGH:
                self.learned[dtype][name] = "the toolkit does not know this name"
            said.append(f"{name} is not an entry the toolkit takes: left out")
        return said


def read_rules(graph: LayerGraph, parameters: dict) -> DtypeRules:
    magnitude, constants = {}, {}
    for name, params in parameters.items():
        if not isinstance(params, dict):
            continue
        dtype = str(params.get("dtype"))
        if name in graph.order and dtype in QUANTIZED:
            values = [
                abs(float(v))
                for key in ("min", "max", "ori_min", "ori_max")
                for v in (params.get(key) or [])
                if v is not None
            ]
            magnitude[name] = max(values, default=0.0)
        elif name not in graph.order and dtype == "int32":
            constants[name] = dtype
    int32_readers = {}
    for tensor, inputs in graph.operands.items():
        for name in inputs:
            if name in constants and tensor in magnitude:
                int32_readers[tensor] = name
    eligible = sorted(magnitude, key=lambda t: graph.order.get(t, 0))
    return DtypeRules(eligible, magnitude, int32_readers)


def log_text(workdir: Path) -> str:
    try:
        return (workdir / "toolkit.log").read_text(errors="replace")
    except OSError:
        return ""


def toolkit_line(text: str) -> str | None:
    """The line of a failed build's log that says what went wrong, if one does."""
    text = ANSI.sub("", text)
    for pattern in (UNSUPPORTED_DTYPE, INVALID_NAME):
        found = list(pattern.finditer(text))
        if found:
            line_start = text.rfind("\n", 0, found[-1].start()) + 1
            line_end = text.find("\n", found[-1].end())
            return text[line_start : line_end if line_end >= 0 else None].strip()
    return None
