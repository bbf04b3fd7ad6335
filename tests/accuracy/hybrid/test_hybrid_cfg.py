import pytest

from rkbench.accuracy.hybrid.cfg import parse_cfg
from rkbench.errors import InputFileError

# As hybrid_quantization_step1(proposal=True) writes it (rknn-toolkit2 2.5), shortened.
PROPOSAL = """\
custom_quantize_layers:                                                                             # 0.8804280087545087
    conv2: float16
    relu2: float16                                                                                  # 0.8781344803737364
    conv3: float16
    relu3: float16                                                                                  # 0.999928008796575
quantize_parameters:
    input:
        qtype: asym
        dtype: float32
        min:
        -   -3.4
        max:
        -   3.8
    conv2:
        qtype: asym
        dtype: int8
        min:
        -   -926490.875
        max:
        -   133706.375
"""


def test_proposal_with_running_cosines():
    cfg = parse_cfg(PROPOSAL, "p.cfg")
    assert cfg.custom == {"conv2": "float16", "relu2": "float16", "conv3": "float16", "relu3": "float16"}
    assert cfg.baseline_cos == pytest.approx(0.88042800875)
    notes = [(e.tensor, e.running_cos) for e in cfg.proposal]
    assert notes == [
        ("conv2", None),
        ("relu2", pytest.approx(0.87813448)),
        ("conv3", None),
        ("relu3", pytest.approx(0.99992801)),
    ]
    assert cfg.tensors == ["input", "conv2"]


def test_written_file_reads_back_with_new_layers():
    cfg = parse_cfg(PROPOSAL, "p.cfg").with_custom({"conv2": "int16", "relu2": "int16"})
    again = parse_cfg(cfg.text(), "again.cfg")
    assert again.custom == {"conv2": "int16", "relu2": "int16"}
    assert again.parameters == cfg.parameters
    assert parse_cfg(cfg.with_custom({}).text(), "x").custom == {}


@pytest.mark.parametrize(
    "text,line,fragment",
    [
        ("custom_quantize_layers:\n    a: float16\n    b: float32\n", 3, "'b: float32' is not a layer dtype"),
        ("custom_quantize_layer:\n    a: float16\n", 1, "unknown section 'custom_quantize_layer'"),
        ("quantize_parameters: {}\n", 1, "custom_quantize_layers is missing"),
        ("custom_quantize_layers:\n  a: float16\n quantize_parameters: x\n", 3, "not YAML"),
        ("custom_quantize_layers: {}\nquantize_parameters: [1, 2]\n", 2, "quantize_parameters must map"),
    ],
)
def test_not_the_vendor_format_names_the_line(text, line, fragment):
    with pytest.raises(InputFileError) as err:
        parse_cfg(text, "bad.cfg")
    assert f"bad.cfg line {line}" in str(err.value) and fragment in str(err.value)
