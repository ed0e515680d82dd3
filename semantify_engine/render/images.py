"""Image plumbing shared by the renderer and the previews: numpy in, numpy out, PIL for files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import RenderError


def composite(rgba: np.ndarray, background: tuple[float, float, float]) -> np.ndarray:
    """Lay a straight-alpha RGBA uint8 image over a plain background; RGB uint8.

    Integer arithmetic (rounded ``(c·a + b·(255 − a)) / 255``): this runs on every rendered pixel, and
    16-bit integer maths is several times cheaper than float here.
    """
    alpha = rgba[..., 3:4].astype(np.uint16)
    backdrop = np.rint(np.asarray(background, dtype=np.float64) * 255.0).astype(np.uint16)
    mixed = rgba[..., :3].astype(np.uint16) * alpha
    mixed += backdrop * (255 - alpha)
    mixed += 127
    mixed //= 255
    return mixed.astype(np.uint8)


def downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor``×``factor`` pixel blocks (box filter), rounded: supersampling's second half."""
    if factor == 1:
        return image
    height, width, channels = image.shape
    blocks = image.reshape(height // factor, factor, width // factor, factor, channels)
    return to_uint8(blocks.mean(axis=(1, 3), dtype=np.float32))


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def save_png(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write an RGB uint8 image as PNG, atomically, with an error that names the path on failure."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise RenderError(f"Output {path} must end in .png.")
    with atomic_output(path) as stream:
        Image.fromarray(np.ascontiguousarray(image)).save(stream, format="PNG")
    return path


def grid(images: np.ndarray, columns: int, gap: int = 4, gap_value: int = 40) -> np.ndarray:
    """Lay ``(N, H, W, 3)`` images out row by row, ``columns`` per row, with thin gaps."""
    count, height, width, _ = images.shape
    rows = -(-count // columns)
    sheet = np.full(
        (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3), gap_value, np.uint8
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        sheet[top : top + height, left : left + width] = image
    return sheet


def labelled_grid(cells: np.ndarray, row_labels: list[str], headers: list[str], title: str) -> np.ndarray:
    """Cells ``(rows, columns, S, S, 3)`` laid out with a title, column headers and a label per row."""
    from PIL import Image, ImageDraw

    rows, columns, size = cells.shape[0], cells.shape[1], cells.shape[2]
    gap, label_height, header_height = 4, 18, 40
    width = columns * size + (columns - 1) * gap
    height = header_height + rows * (label_height + size + gap)
    sheet = Image.new("RGB", (width, height), (30, 30, 30))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), title, fill=(235, 235, 235))
    for column, header in enumerate(headers):
        draw.text((column * (size + gap) + 4, 22), header, fill=(200, 200, 200))
    for row in range(rows):
        top = header_height + row * (label_height + size + gap)
        draw.text((4, top + 2), row_labels[row], fill=(235, 235, 140))
        for column in range(columns):
            sheet.paste(Image.fromarray(cells[row, column]), (column * (size + gap), top + label_height))
    return np.asarray(sheet)
