"""Image files without Pillow: Targa frames in, PNGs out, checked against Pillow itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from semantify_engine.errors import RenderError
from semantify_engine.render.images import composite, labelled_grid, read_tga, save_png


@settings(max_examples=20, deadline=None)
@given(
    arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9), st.sampled_from([3, 4]))),
    st.booleans(),
)
def test_read_tga_matches_pillow(tmp_path_factory, pixels: np.ndarray, top_left: bool) -> None:
    path = tmp_path_factory.mktemp("tga") / "frame.tga"
    mode = "RGBA" if pixels.shape[2] == 4 else "RGB"
    Image.fromarray(pixels, mode).save(path, orientation=-1 if top_left else 1, compression=None)
    np.testing.assert_array_equal(read_tga(path), pixels)


def test_a_blender_frame_reads_the_same_as_with_pillow(capsule) -> None:
    from semantify_engine.render.blender import BlenderRenderer
    from semantify_engine.render.views import NAMED_VIEWS

    with BlenderRenderer(capsule, (NAMED_VIEWS["front"],)) as renderer:
        renderer.render(np.zeros((2, 3), np.float32))
        frame = next(renderer._folder.glob("*.tga"))
        with Image.open(frame) as image:
            np.testing.assert_array_equal(read_tga(frame), np.asarray(image))


@settings(max_examples=20, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(3))))
def test_png_writer_round_trips_through_pillow(tmp_path_factory, image: np.ndarray) -> None:
    path = save_png(image, tmp_path_factory.mktemp("png") / "image.png")
    with Image.open(path) as decoded:
        np.testing.assert_array_equal(np.asarray(decoded), image)


def test_bad_images_are_refused(tmp_path) -> None:
    with pytest.raises(RenderError, match="must end in .png"):
        save_png(np.zeros((2, 2, 3), np.uint8), tmp_path / "x.jpg")
    with pytest.raises(RenderError, match="RGB image"):
        save_png(np.zeros((2, 2), np.uint8), tmp_path / "x.png")
    Image.new("RGB", (3, 3)).save(tmp_path / "rle.tga", compression="tga_rle")
    with pytest.raises(RenderError, match="not an uncompressed true-colour Targa"):
        read_tga(tmp_path / "rle.tga")


def test_composite_and_grid_layout() -> None:
    rgba = np.array([[[200, 100, 0, 255], [200, 100, 0, 0], [200, 100, 0, 128]]], np.uint8)
    out = composite(rgba, (1.0, 1.0, 1.0))
    np.testing.assert_array_equal(out[0, 0], [200, 100, 0])
    np.testing.assert_array_equal(out[0, 1], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 2], np.rint((rgba[0, 2, :3].astype(int) * 128 + 255 * 127) / 255))
    cells = np.full((2, 3, 8, 8, 3), 200, np.uint8)
    sheet = labelled_grid(cells, ["a", "b"], ["x", "y", "z"], "title")
    assert sheet.shape == (40 + 2 * (18 + 8 + 4), 3 * 8 + 2 * 4, 3)
    assert np.all(sheet[40 + 18 : 40 + 18 + 8, 0:8] == 200)
