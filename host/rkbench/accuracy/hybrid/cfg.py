"""The vendor's hybrid quantization file (`<name>.quantization.cfg`, YAML):

    custom_quantize_layers:            # <running output cosine of the proposal>
        conv2: float16
        relu2: float16                 # 0.878
    quantize_parameters:
        conv2: {qtype: asym, dtype: int8, min: [...], max: [...], ...}

Step 1 writes it, the user (or we) fill `custom_quantize_layers`, step 2 reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from rkbench.errors import InputFileError

DTYPES = ("float16", "int16", "int8")
COMMENT = re.compile(r"#\s*([-+0-9.eE]+|nan)\s*$")


@dataclass(frozen=True)
class ProposalEntry:
    tensor: str
    dtype: str
    running_cos: float | None  # the vendor's note: output cosine with the entries so far


@dataclass
class QuantizationCfg:
    custom: dict[str, str]  # tensor -> dtype
    parameters: dict  # quantize_parameters as the toolkit wrote them
    baseline_cos: float | None = None  # the note on the first line (all int8), if any
    proposal: list[ProposalEntry] | None = None

    @property
    def tensors(self) -> list[str]:
        return list(self.parameters)

    def text(self) -> str:
        """The file as the toolkit reads it, with our custom layers."""
        body = yaml.safe_dump({"quantize_parameters": self.parameters}, sort_keys=False, default_flow_style=False)
        if not self.custom:
            return "custom_quantize_layers: {}\n" + body
        # Through the YAML writer, so a name YAML would read as a number ('845', as PyTorch
        # exports name tensors) stays a string: the toolkit refuses an int key.
        layers = "".join(
            f"    {yaml.safe_dump(name, width=1 << 30).splitlines()[0]}: {dtype}\n"
            for name, dtype in self.custom.items()
        )
        return "custom_quantize_layers:\n" + layers + body

    def with_custom(self, custom: dict[str, str]) -> QuantizationCfg:
        return QuantizationCfg(dict(custom), self.parameters, self.baseline_cos)


def parse_cfg(text: str, source: str) -> QuantizationCfg:
    """Read a cfg; a file not in the vendor's format names the wrong line."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise InputFileError(f"{source}{where}: not YAML ({getattr(err, 'problem', err)})") from None
    if root is None or not isinstance(root, yaml.MappingNode):
        raise InputFileError(
            f"{source} line 1: expected the vendor's format, a mapping with "
            "custom_quantize_layers and quantize_parameters"
        )
    sections = {key.value: (key, value) for key, value in root.value}
    for key, _ in root.value:
        if key.value not in ("custom_quantize_layers", "quantize_parameters"):
            raise InputFileError(
                f"{source} line {key.start_mark.line + 1}: unknown section "
                f"'{key.value}' (expected custom_quantize_layers, quantize_parameters)"
            )
    if "custom_quantize_layers" not in sections:
        raise InputFileError(f"{source} line 1: custom_quantize_layers is missing")
    key, layers = sections["custom_quantize_layers"]
    custom: dict[str, str] = {}
    if isinstance(layers, yaml.MappingNode):
        for name, dtype in layers.value:
            if not isinstance(dtype, yaml.ScalarNode) or dtype.value not in DTYPES:
                value = getattr(dtype, "value", "?")
                raise InputFileError(
                    f"{source} line {dtype.start_mark.line + 1}: '{name.value}: {value}' "
                    f"is not a layer dtype (use {', '.join(DTYPES)})"
                )
            custom[str(name.value)] = dtype.value
    elif not layers.tag.endswith(":null"):
        raise InputFileError(
            f"{source} line {layers.start_mark.line + 1}: custom_quantize_layers "
            "must map tensor names to float16, int16 or int8"
        )
    parameters = {}
    if "quantize_parameters" in sections:
        _, node = sections["quantize_parameters"]
        if not isinstance(node, yaml.MappingNode):
            raise InputFileError(
                f"{source} line {node.start_mark.line + 1}: quantize_parameters must "
                "map tensor names to their parameters"
            )
        parameters = yaml.safe_load(text).get("quantize_parameters") or {}
    baseline, proposal = _comments(text, key, layers)
    return QuantizationCfg(custom, parameters, baseline, proposal)


def _comments(text: str, section, layers) -> tuple[float | None, list[ProposalEntry]]:
    """The proposal's running cosines: a note on the section line (int8, nothing floated) and
    one after each group of entries. Found by the nodes' lines, so quoted names and names
    with '#' in them (the toolkit makes such names) read right."""
    lines = text.splitlines()

    def note(line: int) -> float | None:
        found = COMMENT.search(lines[line]) if line < len(lines) else None
        return float(found.group(1)) if found else None

    entries = []
    if isinstance(layers, yaml.MappingNode):
        for name, dtype in layers.value:
            entries.append(ProposalEntry(str(name.value), dtype.value, note(dtype.end_mark.line)))
    return note(section.start_mark.line), entries


def read_cfg(path: Path) -> QuantizationCfg:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(f"cannot read hybrid cfg {path}: {err}") from None
    return parse_cfg(text, str(path))
