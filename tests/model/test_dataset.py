from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rkbench.errors import InputFileError, UsageError
from rkbench.model.dataset import load_dataset, prepare_sample
from rkbench.model.info import ModelInfo, TensorInfo

INFO = ModelInfo(Path("m.onnx"), "onnx", (TensorInfo("x", (1, 3, 16, 32), "float"),), ())
SHAPES = [(1, 3, 16, 32)]


def image(path: Path, size=(32, 16), mode="RGB", value=100) -> Path:
    Image.new(mode, size, value if mode == "L" else (value, value // 2, 0)).save(path)
    return path


def test_txt_relative_paths_and_digest(tmp_path):
    image(tmp_path / "a.png")
    image(tmp_path / "b.png", value=30)
    (tmp_path / "dataset.txt").write_text("a.png\n\nb.png\n")
    data = load_dataset(tmp_path / "dataset.txt", INFO, SHAPES)
    assert [s[0].name for s in data.samples] == ["a.png", "b.png"]
    # The digest follows content, not names.
    image(tmp_path / "b.png", value=31)
    assert load_dataset(tmp_path / "dataset.txt", INFO, SHAPES).digest != data.digest


def test_missing_file_names_the_line(tmp_path):
    image(tmp_path / "a.png")
    (tmp_path / "dataset.txt").write_text("a.png\nmissing.png\n")
    with pytest.raises(InputFileError, match=r"dataset.txt line 2: missing.png does not exist"):
        load_dataset(tmp_path / "dataset.txt", INFO, SHAPES)


def test_wrong_size_and_channels(tmp_path):
    image(tmp_path / "big.png", size=(64, 64))
    with pytest.raises(InputFileError, match=r"big.png .* is 64x64 but input 'x' needs 32x16"):
        load_dataset(tmp_path, INFO, SHAPES)
    (tmp_path / "big.png").unlink()
    image(tmp_path / "gray.png", mode="L")
    with pytest.raises(InputFileError, match=r"gray.png .* has 1 channel\(s\) .* needs 3"):
        load_dataset(tmp_path, INFO, SHAPES)


def test_npy_shapes(tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((3, 16, 32), np.float32))
    assert len(load_dataset(tmp_path, INFO, SHAPES).samples) == 1
    np.save(tmp_path / "bad.npy", np.zeros((16, 32, 3), np.float32))
    with pytest.raises(InputFileError, match=r"bad.npy .* has shape \[16, 32, 3\] .*\(NCHW\)"):
        load_dataset(tmp_path, INFO, SHAPES)


def test_folder_for_multi_input_model_is_refused(tmp_path):
    info = ModelInfo(Path("m.onnx"), "onnx", INFO.inputs * 2, ())
    with pytest.raises(UsageError, match="write a dataset.txt"):
        load_dataset(tmp_path, info, SHAPES * 2)


def test_prepare_sample_normalizes_like_the_rknn_model(tmp_path):
    path = image(tmp_path / "a.png", value=200)
    sample = prepare_sample((path,), INFO, SHAPES, mean=((100.0, 0.0, 0.0),), std=((50.0, 1.0, 1.0),))
    assert sample.device[0].shape == (1, 16, 32, 3) and sample.device[0].dtype == np.uint8
    assert sample.data_format == ["nhwc"]
    golden = sample.golden[0]
    assert golden.shape == (1, 3, 16, 32) and golden.dtype == np.float32
    assert golden[0, 0, 0, 0] == pytest.approx((200 - 100) / 50)
    assert golden[0, 1, 0, 0] == pytest.approx(100.0)
