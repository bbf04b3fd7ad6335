"""Calibration and evaluation data: the vendor's dataset.txt or a folder, checked against the
model's inputs before the toolkit sees it (the toolkit silently resizes a wrong-size image
and expands a grayscale one, which quietly spoils the calibration)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rkbench.errors import InputFileError, UsageError
from rkbench.model.info import ModelInfo

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
DATA_SUFFIXES = IMAGE_SUFFIXES + (".npy",)


@dataclass(frozen=True)
class Dataset:
    source: Path  # what the user gave
    samples: tuple[tuple[Path, ...], ...]  # one file per model input, per sample
    digest: str  # sha256 over every file's bytes, in order: the cache key's part

    def write_txt(self, path: Path) -> Path:
        """A dataset.txt with absolute paths, for the toolkit.

        The toolkit splits its lines on whitespace and reads them as text, so a path with a
        space, a non-ASCII character or another unusual one cannot be written there: such a
        file is listed through a link of a plain name in `links_dir(path)` (remove both with
        discard_txt)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        links = None
        lines = []
        for number, sample in enumerate(self.samples):
            names = []
            for k, file in enumerate(sample):
                if not _SAFE_PATH.fullmatch(str(file)):
                    if links is None:
                        links = links_dir(path)
                        shutil.rmtree(links, ignore_errors=True)
                        links.mkdir()
                    link = links / f"{number:05d}_{k}{file.suffix.lower()}"
                    link.symlink_to(file)
                    file = link
                names.append(str(file))
            lines.append(" ".join(names) + "\n")
        path.write_text("".join(lines))
        return path

    def subset(self, indices) -> Dataset:
        samples = tuple(self.samples[i] for i in indices)
        return Dataset(self.source, samples, samples_digest(samples))

    def split_holdout(self, every: int = 4) -> tuple[Dataset, Dataset]:
        """(calibration, evaluation): every `every`-th sample is held out for evaluation, so
        a result is never judged on the data it was calibrated with."""
        held = [i for i in range(len(self.samples)) if i % every == every - 1]
        kept = [i for i in range(len(self.samples)) if i % every != every - 1]
        return self.subset(kept), self.subset(held)

    def pick(self, count: int) -> tuple[tuple[Path, ...], ...]:
        """`count` samples spread evenly over the set (not only the first ones)."""
        if count >= len(self.samples):
            return self.samples
        step = len(self.samples) / count
        return tuple(self.samples[int(i * step)] for i in range(count))


#: What a dataset.txt line can hold for the toolkit: ASCII without whitespace.
_SAFE_PATH = re.compile(r"[A-Za-z0-9_./+,:=@-]+")


def links_dir(txt: Path) -> Path:
    """Where write_txt puts links for files whose paths a dataset.txt cannot hold: a folder
    of a plain path (the txt's own folder may have a space too), named after the txt."""
    for base in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        if _SAFE_PATH.fullmatch(base) and os.path.isdir(base) and os.access(base, os.W_OK):
            digest = hashlib.sha256(str(txt.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
            return Path(base) / f"rkbench-dataset-{digest[:16]}"
    raise UsageError(
        "a calibration file's path has spaces or non-ASCII characters, which the toolkit's dataset.txt cannot "
        "hold, and no temporary folder with a plain path is writable for links to them: set TMPDIR to one"
    )


def discard_txt(txt: Path) -> None:
    """Remove a dataset.txt written by write_txt, and its links."""
    if txt.exists():
        shutil.rmtree(links_dir(txt), ignore_errors=True)
        txt.unlink()


def load_dataset(path: Path, info: ModelInfo, shapes: list[tuple[int, ...]]) -> Dataset:
    if not path.exists():
        raise InputFileError(f"dataset {path} does not exist: give a dataset.txt or a folder of images/.npy")
    if path.is_dir():
        samples = _from_folder(path, len(info.inputs))
    else:
        samples = _from_txt(path, len(info.inputs))
    if not samples:
        raise InputFileError(f"dataset {path} lists no files")
    for sample in samples:
        for index, file in enumerate(sample):
            check_input_file(file, info, shapes, index, path)
    return Dataset(path, tuple(samples), samples_digest(samples))


def samples_digest(samples) -> str:
    """sha256 over every file's bytes, in order: content, not names, counts."""
    digest = hashlib.sha256()
    for sample in samples:
        for file in sample:
            digest.update(file.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def _from_folder(folder: Path, inputs: int) -> list[tuple[Path, ...]]:
    if inputs != 1:
        raise UsageError(
            f"the model has {inputs} inputs: a folder cannot say which file feeds which input; "
            "write a dataset.txt with one line per sample and one path per input"
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in DATA_SUFFIXES and p.is_file())
    if not files:
        raise InputFileError(f"dataset folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}) or .npy files")
    return [(p.resolve(),) for p in files]


def _from_txt(txt: Path, inputs: int) -> list[tuple[Path, ...]]:
    try:
        text = txt.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputFileError(f"cannot read dataset file {txt}: {err}") from None
    samples = []
    for number, line in enumerate(text.splitlines(), start=1):
        names = line.split()
        if not names:
            continue
        if len(names) != inputs:
            raise InputFileError(
                f"{txt} line {number} lists {len(names)} file(s) but the model has {inputs} input(s): "
                "give one path per input, separated by spaces"
            )
        sample = []
        for name in names:
            file = (txt.parent / name).resolve()
            if not file.is_file():
                raise InputFileError(
                    f"{txt} line {number}: {name} does not exist (paths are relative to {txt.parent}, separated "
                    "by spaces: a file whose name has a space cannot be listed here; give its folder as --dataset)"
                )
            sample.append(file)
        samples.append(tuple(sample))
    return samples


def image_layout(info: ModelInfo, shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(height, width, channels) an image must have for a 4-D input, or None."""
    if len(shape) != 4:
        return None
    if info.framework == "onnx":  # NCHW
        return shape[2], shape[3], shape[1]
    return shape[1], shape[2], shape[3]  # TFLite: NHWC


def _image_channels(mode: str) -> int:
    # The toolkit reads colour images as 3 channels (alpha dropped); gray modes have one.
    return 1 if mode in ("L", "LA", "I", "I;16", "F", "1") else 3


def check_input_file(file: Path, info: ModelInfo, shapes, index: int, source: Path) -> None:
    tensor = info.inputs[index]
    shape = tuple(shapes[index])
    if file.suffix.lower() == ".npy":
        try:
            array = np.load(file, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise InputFileError(f"{file} (from {source}) is not a readable .npy file: {err}") from None
        if tuple(array.shape) not in (shape, shape[1:]):
            raise InputFileError(
                f"{file} (from {source}) has shape {list(array.shape)} but input '{tensor.name}' needs "
                f"{list(shape)} ({'NCHW' if info.framework == 'onnx' else 'NHWC'})"
            )
        return
    if file.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputFileError(f"{file} (from {source}): unsupported file type; use {', '.join(DATA_SUFFIXES)}")
    layout = image_layout(info, shape)
    if layout is None:
        raise InputFileError(
            f"{file} (from {source}) is an image but input '{tensor.name}' has shape {list(shape)}, "
            "not an image: give .npy files"
        )
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            width, height, mode = image.width, image.height, image.mode
    except (OSError, UnidentifiedImageError) as err:
        raise InputFileError(f"{file} (from {source}) is not a readable image: {err}") from None
    want_h, want_w, want_c = layout
    if (height, width) != (want_h, want_w):
        raise InputFileError(
            f"{file} (from {source}) is {width}x{height} but input '{tensor.name}' needs "
            f"{want_w}x{want_h} (width x height): resize the calibration images to the model's input"
        )
    channels = _image_channels(mode)
    if channels != want_c:
        raise InputFileError(
            f"{file} (from {source}) has {channels} channel(s) (mode {mode}) but input '{tensor.name}' needs {want_c}"
        )


@dataclass(frozen=True)
class SampleArrays:
    """One sample, prepared for the simulator (as the board gets it) and for fp32 golden."""

    device: list[np.ndarray]  # images as NHWC uint8, .npy as given
    data_format: list[str | None]
    golden: list[np.ndarray]  # float32 in the source model's layout, mean/std applied


def prepare_sample(files: tuple[Path, ...], info: ModelInfo, shapes, mean, std) -> SampleArrays:
    from PIL import Image

    device, formats, golden = [], [], []
    for index, file in enumerate(files):
        shape = tuple(shapes[index])
        if file.suffix.lower() == ".npy":
            array = np.load(file, allow_pickle=False)
            if array.ndim == len(shape) - 1:
                array = array[None]
            device.append(array)
            formats.append("nchw" if array.ndim == 4 and info.framework == "onnx" else None)
            source_layout = array.astype(np.float32)
        else:
            channels = image_layout(info, shape)[2]
            with Image.open(file) as image:
                pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"))
            nhwc = (pixels[..., None] if pixels.ndim == 2 else pixels)[None]
            device.append(np.ascontiguousarray(nhwc))
            formats.append("nhwc")
            source_layout = nhwc.astype(np.float32)
            if info.framework == "onnx":
                source_layout = source_layout.transpose(0, 3, 1, 2)
        golden.append(_normalize(source_layout, info, mean, std, index))
    return SampleArrays(device, formats, golden)


def _normalize(array: np.ndarray, info: ModelInfo, mean, std, index: int) -> np.ndarray:
    """Apply the build's mean/std the way the RKNN model does inside itself."""
    if array.ndim != 4 or (mean is None and std is None):
        return np.ascontiguousarray(array, dtype=np.float32)
    axis = 1 if info.framework == "onnx" else 3
    shape = [1, 1, 1, 1]
    shape[axis] = array.shape[axis]
    channels = array.shape[axis]

    def per_channel(values, default: float) -> np.ndarray:
        values = np.asarray(default if values is None else values[index], np.float32)
        return np.broadcast_to(values, (channels,)).reshape(shape)

    m, s = per_channel(mean, 0.0), per_channel(std, 1.0)
    return np.ascontiguousarray((array - m) / s, dtype=np.float32)
