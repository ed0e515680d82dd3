"""Image plumbing shared by the renderer and the previews: numpy in, numpy out.

Reading Blender's frames and writing PNGs needs nothing but numpy and zlib, because Blender's own Python
(where ``blender -b -c semantify ...`` runs the renderer) ships numpy but not Pillow. Pillow is used only
for the text labels of contact sheets, when it is there.
"""

from __future__ import annotations

import os
import struct
import zlib
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


def read_tga(path: str | os.PathLike[str]) -> np.ndarray:
    """An uncompressed 24/32-bit Targa (what Blender's TARGA_RAW writes) as RGB(A) uint8 ``(H, W, 3|4)``.

    A read-only view of the file's bytes where it can be (RGB): the renderer cuts frames into tiles and
    copies each tile once, so copying the whole frame here first would be wasted.
    """
    data = Path(path).read_bytes()
    id_length, colour_map, kind = data[0], data[1], data[2]
    width, height, depth, descriptor = struct.unpack_from("<HHBB", data, 12)
    if colour_map != 0 or kind != 2 or depth not in (24, 32):
        raise RenderError(f"{path} is not an uncompressed true-colour Targa (type {kind}, {depth} bits).")
    channels = depth // 8
    start = 18 + id_length
    pixels = np.frombuffer(data, np.uint8, count=width * height * channels, offset=start)
    pixels = pixels.reshape(height, width, channels)
    if not descriptor & 0x20:  # origin at the bottom left unless bit 5 says top left
        pixels = pixels[::-1]
    if channels == 3:  # stored BGR: a reversed view, copied once by whoever keeps the pixels
        return pixels[..., ::-1]
    return pixels[..., [2, 1, 0, 3]]  # stored BGRA


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image ``(H, W, 3)``: 8-bit truecolour, no filtering, zlib level 6."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise RenderError(f"A PNG needs an (H, W, 3) RGB image, got shape {image.shape}.")
    height, width, _ = image.shape
    rows = np.zeros((height, width * 3 + 1), np.uint8)  # each row starts with filter type 0
    rows[:, 1:] = image.reshape(height, -1)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def save_png(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write an RGB uint8 image as PNG, atomically, with an error that names the path on failure."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise RenderError(f"Output {path} must end in .png.")
    payload = encode_png(image)
    with atomic_output(path) as stream:
        stream.write(payload)
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
    """Cells ``(rows, columns, S, S, 3)`` laid out with a title, column headers and a label per row.

    The layout is numpy; the text is drawn with Pillow when it is installed (inside Blender's own Python
    it is not, and the sheet comes without text).
    """
    rows, columns, size = cells.shape[0], cells.shape[1], cells.shape[2]
    gap, label_height, header_height = 4, 18, 40
    width = columns * size + (columns - 1) * gap
    sheet = np.full((header_height + rows * (label_height + size + gap), width, 3), 30, np.uint8)
    for row in range(rows):
        top = header_height + row * (label_height + size + gap) + label_height
        for column in range(columns):
            left = column * (size + gap)
            sheet[top : top + size, left : left + size] = cells[row, column]
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return sheet
    picture = Image.fromarray(sheet)
    draw = ImageDraw.Draw(picture)
    draw.text((4, 2), title, fill=(235, 235, 235))
    for column, header in enumerate(headers):
        draw.text((column * (size + gap) + 4, 22), header, fill=(200, 200, 200))
    for row, label in enumerate(row_labels):
        draw.text((4, header_height + row * (label_height + size + gap) + 2), label, fill=(235, 235, 140))
    return np.asarray(picture)
