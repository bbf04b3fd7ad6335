import re

import pytest

from rkbench.errors import InputFileError, UsageError
from rkbench.lab.inventory import load_inventory
from rkbench.lab.suite import load_suite

BOARDS = """
[boards.a]
address = "root@127.0.0.2:2222"
soc = "rk3588"
tags = ["lab=shelf2", "camera"]

[boards.b]
address = "adb:SERIAL1"
soc = "rk3566"
tags = ["lab=shelf2"]

[boards.c]
address = "local"
soc = "rk3588"
"""


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "boards.toml"
    path.write_text(BOARDS)
    return load_inventory(path)


def test_selectors_by_name_tag_and_soc(inventory):
    assert [b.name for b in inventory.select(["a"])] == ["a"]
    assert [b.name for b in inventory.select(["lab=shelf2"])] == ["a", "b"]
    assert [b.name for b in inventory.select(["soc=rk3588"])] == ["a", "c"]
    assert [b.name for b in inventory.select(["camera", "c", "a"])] == ["a", "c"]  # no duplicates


def test_unknown_selector_names_the_boards(inventory):
    with pytest.raises(UsageError, match=r"selector 'lab=shelf9' matches no board .*boards: a, b, c"):
        inventory.select(["lab=shelf9"])


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("[boards.x]\nsoc = 'rk3588'\n", "'address' is missing"),
        ("[boards.x]\naddress = 'local'\ncolour = 'red'\n", "unknown key(s) colour"),
        ("[boards.x]\naddress = 'local'\ntags = 'a'\n", "'tags' must be a list"),
        ("name = 1\n", "no [boards.NAME] tables"),
        ("[boards.x\n", "not valid TOML"),
    ],
)
def test_inventory_errors(tmp_path, text, fragment):
    path = tmp_path / "boards.toml"
    path.write_text(text)
    with pytest.raises(InputFileError) as err:
        load_inventory(path)
    assert fragment in str(err.value) and str(path) in str(err.value)


def suite_text(model_path: str, extra: str = "") -> str:
    return f"""
name = "nightly"
[measure]
min_runs = 50
[[models]]
name = "cls"
path = "{model_path}"
boards = ["soc=rk3588", "b"]
core_masks = ["auto", "0_1_2"]
configs = [{{name = "int8"}}, {{name = "mmse", algorithm = "mmse"}}]
{extra}
[models.thresholds]
min_cos_fp32 = 0.99
max_latency_regression = 0.1
"""


def test_suite_cells(tmp_path, inventory):
    (tmp_path / "m.onnx").write_bytes(b"x")
    path = tmp_path / "suite.toml"
    path.write_text(suite_text("m.onnx"))
    suite = load_suite(path)
    assert suite.name == "nightly" and suite.measure == {"min_runs": 50}
    cells = suite.cells(inventory)
    # 2 configs x 3 boards (a, c by soc; b by name) x 2 masks
    assert len(cells) == 12
    assert cells[0].key == "cls/int8@a[auto]"
    assert suite.models[0].thresholds.min_cos_fp32 == 0.99
    assert suite.models[0].path == (tmp_path / "m.onnx").resolve()


@pytest.mark.parametrize(
    "extra,fragment",
    [
        ("dataset = 'calib'\nfoo = 1", "unknown key(s) foo"),
    ],
)
def test_suite_errors(tmp_path, extra, fragment):
    (tmp_path / "m.onnx").write_bytes(b"x")
    path = tmp_path / "suite.toml"
    path.write_text(suite_text("m.onnx", extra))
    with pytest.raises(InputFileError, match=re.escape(fragment)):
        load_suite(path)


def test_suite_naming_missing_model_board_or_mask(tmp_path, inventory):
    path = tmp_path / "suite.toml"
    path.write_text(suite_text("missing.onnx"))
    with pytest.raises(InputFileError, match="missing.onnx does not exist"):
        load_suite(path)
    (tmp_path / "m.onnx").write_bytes(b"x")
    path.write_text(suite_text("m.onnx").replace('"b"]', '"zz"]'))
    with pytest.raises(UsageError, match="model 'cls': board selector 'zz' matches no board"):
        load_suite(path).cells(inventory)
    path.write_text(suite_text("m.onnx").replace('"0_1_2"', '"0_3"'))
    with pytest.raises(InputFileError, match="'0_3' is not one of"):
        load_suite(path)
