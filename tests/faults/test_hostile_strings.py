"""Hostile strings in every field a user types: paths with spaces and non-ASCII characters
(the model, the calibration folder, the report folder, the store, the board's HOME), board
addresses that try the shell, tensor names, inventory values. A path works; anything else is
refused with one line naming the field (exit 2), or reaches the toolkit intact."""

from __future__ import annotations

import shutil
import time

import pytest

from tests.run.helpers import explain, model_args
from tests.support.model_cli import CLS_OPTIONS

from .helpers import assert_board_clean

ODD = "dïr wïth spaces ü"


def test_every_path_with_spaces_and_non_ascii(rk, warm, cls_model, cls_dataset, tmp_path):
    root = tmp_path / ODD
    model = root / "mödel ü" / "cls model.onnx"
    model.parent.mkdir(parents=True)
    shutil.copy(cls_model, model)
    calib = root / "calib dir ß"
    calib.mkdir()
    for image in cls_dataset.parent.glob("*.png"):
        shutil.copy(image, calib / f"bïld {image.name}")
    home = root / "board hömé"  # the local board's cache: ~/.cache/rkbench under it
    home.mkdir()
    db, out = root / "store dir" / "résults.db", root / "out dir ö"
    done = rk("run", *model_args(model, calib), "--backend", "onnxruntime", "--db", db, "-o", out, HOME=home)
    assert done.returncode == 0, explain(done)
    assert (out / "report.html").is_file()
    [row] = rk.history(db)
    assert row["status"] == "ok" and row["sample_count"] > 0
    assert_board_clean(home)
    assert not list((home / ".cache" / "rkbench" / "runs").iterdir())


HOSTILE_BOARDS = [
    "root@host;reboot",
    "root@$(reboot)",
    "`id`@host",
    "-oProxyCommand=touch /tmp/rkbench-pwned",
    "host\nname",
    "root@[::1",
    "ssh://root@host:0",
    "adb:ser;ial",
    "labgrid:",
    "ünïcode.hóst",
    "h" * 300,
    "",
]


@pytest.mark.parametrize("address", HOSTILE_BOARDS, ids=range(len(HOSTILE_BOARDS)))
def test_hostile_board_addresses_are_refused_before_anything_runs(rk, address, tmp_path):
    started = time.monotonic()
    done = rk("board", "info", "--", address)  # after --: an address, even one that looks like an option
    assert done.returncode == 2, explain(done)
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("rkbench: error: --board") and "accepted forms" in line or "labgrid" in line, line
    assert time.monotonic() - started < 10  # refused, not tried
    assert not (tmp_path / "rkbench-pwned").exists()


def test_hostile_tensor_names_are_refused_intact(rk, warm, cls_model, cls_dataset, tmp_path):
    """--outputs is checked against the graph on the host: the name comes back as given (no
    shell saw it), before the toolkit starts."""
    names = "x; rm -rf /,ü n"
    done = rk("build", cls_model, "--dataset", cls_dataset, *CLS_OPTIONS, "--outputs", names, "-o", tmp_path / "b")
    assert done.returncode == 2, explain(done)
    assert "--outputs 'x; rm -rf /' is not a tensor of" in done.stderr, done.stderr
    assert "toolkit:" not in done.stderr  # refused before the toolkit was started


@pytest.mark.slow
def test_hostile_float_names_are_refused_by_name(rk, warm, cls_model, cls_dataset, tmp_path):
    done = rk("hybrid", cls_model, "--dataset", cls_dataset, *CLS_OPTIONS, "--float", "x; rm -rf /",
              "--float", "ü n", "-o", tmp_path / "h")  # fmt: skip
    assert done.returncode == 2, explain(done)
    assert "--float 'x; rm -rf /' is not a tensor of this model" in done.stderr


@pytest.mark.parametrize(
    "entry,code,fragment",
    [
        ('address = "root@host;reboot"', 2, "address 'root@host;reboot': 'host;reboot' is not a valid host name"),
        ('address = "$(reboot)"', 2, "address '$(reboot)'"),
        ('address = "labgrid:a b"', 2, "address 'labgrid:a b'"),
        (
            'address = "local"\npython = "python3 \\"unbalanced"',
            2,
            "python 'python3 \"unbalanced': No closing quotation",
        ),
        ('address = "local"\nsoc = "rk9999; reboot"', 2, "soc 'rk9999; reboot' is not a SoC rkbench builds for"),
        ('address = "local"\nsoc = 3588', 4, "'soc' must be a string"),
        ('address = "local"\nidentity = ["a"]', 4, "'identity' must be a string"),
    ],
)
def test_hostile_inventory_values_are_a_bad_inventory(rk, tmp_path, entry, code, fragment):
    inventory = tmp_path / "boards.toml"
    inventory.write_text(f"[boards.shelf]\n{entry}\n")
    for command in (["boards", "list"], ["boards", "check"]):
        done = rk(*command, "--boards", inventory)
        assert done.returncode == code, explain(done)
        [line] = done.stderr.strip().splitlines()
        assert f"{inventory}: [boards.shelf]" in line and fragment in line, line


def test_harmless_unicode_in_inventory_names_and_tags_is_kept(rk, tmp_path):
    inventory = tmp_path / "boards.toml"
    inventory.write_text(
        '[boards."bänk 2 / links"]\naddress = "local"\ntags = ["läb=zwei", "a b"]\ndescription = "x\\ny"\n'
    )
    done = rk("boards", "list", "--boards", inventory)
    assert done.returncode == 0, explain(done)
    assert "bänk 2 / links" in done.stdout and "läb=zwei" in done.stdout
