"""`rkbench analyze` end to end on the simulator."""

import json
import re

import pytest

from tests.support.model_cli import CLS_OPTIONS

pytestmark = pytest.mark.toolkit


def test_analyze_json_over_several_samples(cli, cls_model, cls_dataset, session_cache):
    done = cli("analyze", cls_model, "--dataset", cls_dataset, *CLS_OPTIONS, "--samples", "3", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["samples"]) == 3
    assert len({s[0] for s in report["samples"]}) == 3  # three different images
    layers = report["layers"]
    assert len(layers) > 100 and all(layer["samples"] == 3 for layer in layers)
    assert any(layer["fused"] for layer in layers)
    worst = report["worst_layers"]
    losses = [layer["single_loss"] for layer in worst]
    assert losses == sorted(losses, reverse=True) and losses[0] > 0
    (output,) = report["outputs"]
    assert output["shape"] == [1, 2]
    assert 0.5 < output["cos_min"] <= output["cos_mean"] <= 1.0
    assert output["top1_agreement"] in (0.0, 1 / 3, 2 / 3, 1.0)
    # The simulator's dumps are gone: nothing is left in the work area.
    assert not any((session_cache / "work").glob("analyze-*/**/*.npy"))


def test_worst_layer_matches_the_toolkits_own_file(cli, cls_model, cls_dataset, tmp_path):
    dumps = tmp_path / "dumps"
    done = cli(
        "analyze", cls_model, "--dataset", cls_dataset, *CLS_OPTIONS, "--samples", "1", "--keep-dumps", dumps, "--json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    text = (dumps / "snapshot_0000" / "error_analysis.txt").read_text()
    assert list((dumps / "snapshot_0000" / "simulator").iterdir())  # the dumps were kept
    # Read the toolkit's table independently: the row with the lowest single cosine.
    rows = re.findall(r"^\[\w+\]\s+(\S+)\s+[\d.]+ \| [\d.]+\s+([\d.]+) \|", text, re.M)
    tensor, cos = min(rows, key=lambda row: float(row[1]))
    assert report["worst_layers"][0]["tensor"] == tensor
    assert report["worst_layers"][0]["single_cos_min"] == pytest.approx(float(cos))


def test_analyze_prints_a_table_pointing_at_layers(cli, cls_model, cls_dataset):
    done = cli("analyze", cls_model, "--dataset", cls_dataset, *CLS_OPTIONS, "--samples", "2", "--worst", "5")
    assert done.returncode == 0, done.stderr
    assert "Final outputs, quantized simulator vs fp32 (onnxruntime)" in done.stdout
    assert "worst own (single) error first" in done.stdout
    table = done.stdout.split("(min over samples)")[1].strip().splitlines()
    assert len(table) == 5
