"""`rkbench build` end to end with the real rknn-toolkit2, as a user runs it."""

import json

import pytest

from tests.support.model_cli import CLS_OPTIONS

pytestmark = pytest.mark.toolkit


def test_build_then_cache_hit(cli, cls_model, cls_dataset, tmp_path):
    first = cli("build", cls_model, "--dataset", cls_dataset, *CLS_OPTIONS, "-o", tmp_path / "a")
    assert first.returncode == 0, first.stderr
    record = json.loads((tmp_path / "a" / "build.json").read_text())
    assert (tmp_path / "a" / "model.rknn").stat().st_size == record["rknn"]["bytes"] > 100_000
    assert record["toolkit_version"].startswith("2.5")
    assert record["recipe"]["config"]["target_platform"] == "rk3588"
    assert record["recipe"]["load"]["kwargs"]["input_size_list"] == [[1, 3, 48, 192]]
    assert record["dataset"]["samples"] == 8 and len(record["dataset"]["sha256"]) == 64
    assert {"load", "build", "export", "total"} <= set(record["timings_s"])
    assert (tmp_path / "a" / "toolkit.log").stat().st_size > 0

    second = cli("build", cls_model, "--dataset", cls_dataset, *CLS_OPTIONS, "-o", tmp_path / "b", "--json")
    assert second.returncode == 0, second.stderr
    assert "cache hit" in second.stderr
    assert "toolkit:" not in second.stderr  # no worker was started
    assert json.loads(second.stdout)["cache"] == "hit"
    assert (tmp_path / "b" / "model.rknn").read_bytes() == (tmp_path / "a" / "model.rknn").read_bytes()

    forced = cli("build", cls_model, "--dataset", cls_dataset, *CLS_OPTIONS, "-o", tmp_path / "c", "--no-cache")
    assert forced.returncode == 0 and "toolkit: build" in forced.stderr


def test_changed_calibration_content_is_a_new_build(cli, cls_model, cls_dataset, tmp_path):
    changed = tmp_path / "calib"
    changed.mkdir()
    images = sorted(cls_dataset.parent.glob("*.png"))
    for image in images[:-1]:
        (changed / image.name).write_bytes(image.read_bytes())
    (changed / images[-1].name).write_bytes(images[0].read_bytes())  # same names, other bytes
    done = cli("build", cls_model, "--dataset", changed, *CLS_OPTIONS, "-o", tmp_path / "out", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cache"] == "miss"


def test_rknn_convert_yaml_as_vendor_users_write_it(cli, cls_model, cls_dataset, tmp_path):
    config = tmp_path / "model_config.yml"
    config.write_text(f"""
models:
    name: ppocr_cls
    platform: onnx
    model_file_path: {cls_model}
    subgraphs:
      input_size_list:
        - 3,48,192
    quantize: true
    dataset: {cls_dataset}
    configs:
      quantized_dtype: asymmetric_quantized-8
      mean_values: [127.5, 127.5, 127.5]
      std_values: [127.5, 127.5, 127.5]
      quant_img_RGB2BGR: false
      quantized_algorithm: normal
      quantized_method: channel
""")
    done = cli("build", config, "--target", "rk3566", "-o", tmp_path / "out", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["target"] == "rk3566" and record["quant"] == "w8a8"
    assert record["model"]["name"] == "ppocr_cls"
    assert (tmp_path / "out" / "model.rknn").stat().st_size > 100_000
