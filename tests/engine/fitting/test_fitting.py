"""Fitting: photo → shape, text → shape/expression, measurements → shape, the result files, the command."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from support.clip import capsule_clip_request
from support.fitting import SMALL, clip_text, photo_pixels, synthetic_dataset, train, write_png

from semantify_engine.dataset.sampling import SamplingPlan
from semantify_engine.dataset.store import DatasetFolder
from semantify_engine.errors import ClipWeightsError, SemantifyError
from semantify_engine.fitting import FitError, FitResult, fit_measurements
from semantify_engine.fitting import crop as crop_module
from semantify_engine.mapper import Descriptor, Mapper, load_mapper, save_mapper
from semantify_engine.models import save_model

WORDS = ("fat", "thin", "tall")
TEMPLATE = "a photo of a {} person"


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def word_dataset(capsule, tiny_spec, tmp_path_factory) -> Path:
    """24 capsules rendered front and side, scored by the tiny CLIP on three words, and measured."""
    from semantify_engine.dataset.builder import build_dataset

    folder = DatasetFolder(tmp_path_factory.mktemp("fit-words") / "data")
    # torch, as photo fits encode: the photo test checks a render scores exactly what the build cached
    # (another engine agrees within its fidelity bound, not exactly).
    request = capsule_clip_request(capsule, tiny_spec, WORDS, metrics=True, template=TEMPLATE, engine="torch")
    build_dataset(folder, request)
    return folder.folder


@pytest.fixture(scope="module")
def word_mapper(word_dataset, capsule) -> Mapper:
    return train(word_dataset, ["fat", "tall"], capsule, **SMALL)


@pytest.fixture(scope="module")
def mixed_mapper(word_dataset, capsule) -> Mapper:
    return train(word_dataset, ["fat", "height"], capsule, **SMALL)


@pytest.fixture(scope="module")
def metric_dataset(capsule, tmp_path_factory) -> Path:
    """Measured capsules only (no rendering): height follows coefficient 0 exactly."""
    from semantify_engine.dataset.builder import DatasetRequest, build_dataset
    from semantify_engine.render.views import parse_views

    folder = DatasetFolder(tmp_path_factory.mktemp("fit-metric") / "data")
    request = DatasetRequest(
        model_spec="capsule",
        model=capsule,
        samples=400,
        plan=SamplingPlan(seed=3, components=3),
        views=parse_views("front"),
        metrics=True,
        chunk_size=200,
    )
    build_dataset(folder, request)
    return folder.folder


@pytest.fixture(scope="module")
def height_mapper(metric_dataset, capsule) -> Mapper:
    pytest.importorskip("torch")
    return train(metric_dataset, ["height"], capsule, epochs=40, hidden=(64, 32), lr=1e-3, batch_size=32)


# ------------------------------------------------------------------------------------------- imports
def test_importing_fitting_pulls_in_neither_torch_nor_pillow_nor_opencv() -> None:
    code = (
        "import sys, semantify_engine.fitting, semantify_engine.cli.fit_cmd\n"
        "print(sorted(m for m in ('torch', 'PIL', 'cv2', 'open_clip') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------------------- photo → shape
@pytest.mark.blender
def test_a_photo_of_a_render_scores_exactly_like_the_render(
    word_dataset, word_mapper, capsule, tiny_spec, tmp_path
) -> None:
    """The photo goes through the mapper's CLIP and template with the build's cosine: a saved render of
    sample 5 scores what the dataset cached for its front view."""
    from semantify_engine.fitting import fit_image
    from semantify_engine.render.blender import BlenderRenderer
    from semantify_engine.render.settings import RenderSettings
    from semantify_engine.render.views import parse_views

    data = DatasetFolder(word_dataset).load()
    renderer = BlenderRenderer(
        capsule, parse_views("front,side"), RenderSettings(resolution=64), sigmas=3.0, framing_components=3
    )
    try:
        images = renderer.render(data["coefficients"][5:6])
    finally:
        renderer.close()
    photo = write_png(tmp_path / "render.png", images[0, 0])
    result = fit_image(photo, word_mapper, crop="centre")

    text = clip_text(tiny_spec, [TEMPLATE.format(word) for word in ("fat", "tall")])
    expected = data["embeddings"][5, 0].astype(np.float32) @ text.T
    scores = result.details["scores"]
    np.testing.assert_allclose([scores["fat"], scores["tall"]], expected, atol=2e-3)
    assert result.details["crop"] == "centre" and result.method == "image"
    lows, highs = word_mapper.lows, word_mapper.highs
    np.testing.assert_allclose(result.slider_vector, np.clip(expected, lows, highs), atol=2e-3)
    np.testing.assert_allclose(result.coefficients, word_mapper(result.slider_vector), atol=1e-6)
    outside = [
        d.name for d, s in zip(word_mapper.descriptors, expected, strict=True) if not d.low <= s <= d.high
    ]
    assert [item.descriptor for item in result.clamped] == outside


def test_image_scores_are_clamped_and_reported(word_mapper, tmp_path) -> None:
    from semantify_engine.fitting import fit_image

    photo = write_png(tmp_path / "p.png", photo_pixels())
    free = fit_image(photo, word_mapper, crop="centre")
    scores = free.details["scores"]
    narrow = tuple(
        Descriptor(
            d.name, d.kind, d.unit, scores[d.name] + 0.01, scores[d.name] + 0.02, scores[d.name] + 0.015
        )
        for d in word_mapper.descriptors
    )
    result = fit_image(photo, replace(word_mapper, descriptors=narrow), crop="centre")
    assert [item.descriptor for item in result.clamped] == ["fat", "tall"]
    assert result.sliders["fat"] == pytest.approx(scores["fat"] + 0.01, abs=1e-6)
    assert any("'fat'" in note and "outside the slider's range" in note for note in result.notes)


def test_measurement_sliders_stay_at_their_defaults_for_a_photo(mixed_mapper, tmp_path) -> None:
    from semantify_engine.fitting import fit_image

    result = fit_image(write_png(tmp_path / "p.png", photo_pixels()), mixed_mapper, crop="centre")
    height = mixed_mapper.descriptors[1]
    assert result.sliders["height"] == pytest.approx(height.default)
    assert result.defaults_kept == ["height"]
    assert any("height kept at its default: a photo gives no measurements" in n for n in result.notes)


def test_crop_falls_back_to_the_centre_without_a_detector(word_mapper, tmp_path, monkeypatch) -> None:
    from semantify_engine.fitting import fit_image

    monkeypatch.setattr(crop_module, "detector_available", lambda: False)
    photo = write_png(tmp_path / "wide.png", photo_pixels(height=64, width=160))
    result = fit_image(photo, word_mapper)
    assert result.details["crop"] == "centre"
    assert result.details["crop_box"] == {
        "method": "centre",
        "left": 48,
        "top": 0,
        "side": 64,
        "reason": "no person detector installed (pip install 'semantify[detect]' adds MediaPipe's)",
    }
    assert any(note.startswith("centre crop (no person detector installed") for note in result.notes)
    with pytest.raises(FitError, match="^crop person: no person detector installed") as caught:
        fit_image(photo, word_mapper, crop="person")
    assert caught.value.parameters == ("crop",)


def test_a_square_around_a_detection_frames_it_like_the_renders() -> None:
    box = crop_module.Box(left=100, top=50, width=60, height=200, score=0.9)
    square = crop_module.square_around(box, face=False)
    assert square.side == round(crop_module.BODY_SQUARE * 200) and square.method == "person-detector"
    assert square.left + square.side / 2 == pytest.approx(130, abs=1)
    assert square.top + square.side / 2 == pytest.approx(150 - crop_module.BODY_RAISE * 200, abs=1)
    face = crop_module.square_around(box, face=True)
    assert face.side == round(crop_module.FACE_SQUARE * 200) and face.method == "face-detector"
    assert face.scaled(2.0).to_json()["detection"]["height"] == 400.0


def test_the_part_of_a_square_beyond_the_photo_is_filled_with_its_border_colour() -> None:
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, :, 1] = 90  # border colour: green
    pixels[10:30, 50:60] = 255
    square = crop_module.Crop("person-detector", left=45, top=10, side=20)
    cut = crop_module.cut(pixels, square)
    assert cut.shape == (20, 20, 3)
    np.testing.assert_array_equal(cut[:, 5:15], 255)
    assert (cut[:, 15:] == [0, 90, 0]).all(), "outside the photo: the photo border's median colour"
    inside = crop_module.Crop("centre", left=10, top=5, side=30)
    np.testing.assert_array_equal(crop_module.cut(pixels, inside), pixels[5:35, 10:40])


@pytest.mark.blender
@pytest.mark.parametrize("model_name", ["anny-body", "anny-face-expression"])
def test_the_detector_finds_a_rendered_person_or_face_off_centre(model_name) -> None:
    pytest.importorskip("mediapipe")
    from semantify_engine.models import load
    from semantify_engine.render.blender import BlenderRenderer
    from semantify_engine.render.settings import RenderSettings
    from semantify_engine.render.views import parse_views

    model = load(model_name)
    renderer = BlenderRenderer(
        model, parse_views("front"), RenderSettings(resolution=256, background=(0.8,) * 3)
    )
    try:
        image = renderer.render(np.zeros((1, 10), np.float32))[0, 0]
    finally:
        renderer.close()
    photo = np.full((420, 900, 3), 204, np.uint8)  # a wide photo, the figure far right of centre
    photo[100:356, 600:856] = image
    kind = model.kind
    square = crop_module.choose_crop(photo, kind, "person")
    assert square.method == ("face-detector" if kind == "face-expression" else "person-detector")
    centre_x, centre_y = square.left + square.side / 2, square.top + square.side / 2
    assert abs(centre_x - (600 + 128)) < 20 and abs(centre_y - (100 + 128)) < 20
    assert 220 < square.side < 290, "the square frames the figure as its 256 px render frame did"


def test_no_person_in_a_plain_photo_falls_back_to_the_centre(word_mapper, tmp_path) -> None:
    pytest.importorskip("mediapipe")
    from semantify_engine.fitting import fit_image

    photo = write_png(tmp_path / "sky.png", np.full((200, 300, 3), (120, 160, 220), np.uint8))
    result = fit_image(photo, word_mapper)
    assert result.details["crop"] == "centre"
    assert "the person detector found no person" in result.details["crop_box"]["reason"]
    with pytest.raises(FitError, match="found no person"):
        fit_image(photo, word_mapper, crop="person")


# ---------------------------------------------------------------------------------------- bad photos
def png_with_size(path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG whose header claims ``width`` × ``height`` (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = b"IHDR" + header
    chunk = struct.pack(">I", len(header)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    idat = zlib.compress(b"\x00" * 4)
    idat_chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + idat_chunk + end)
    return path


def test_bad_photos_are_refused_with_clear_messages(word_mapper, tmp_path) -> None:
    from semantify_engine.fitting import fit_image

    good = write_png(tmp_path / "good.png", photo_pixels(height=200, width=200))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:300])
    jpeg = tmp_path / "good.jpg"
    from PIL import Image

    Image.fromarray(photo_pixels(height=300, width=200)).save(jpeg, quality=90)
    cut_jpeg = tmp_path / "cut.jpg"
    cut_jpeg.write_bytes(jpeg.read_bytes()[:200])
    (tmp_path / "notes.txt").write_text("not a photo")
    cases = {
        tmp_path / "missing.jpg": "does not exist",
        tmp_path: "is a folder",
        tmp_path / "notes.txt": "is not an image",
        truncated: "damaged or truncated",
        cut_jpeg: "damaged or truncated",
        write_png(tmp_path / "tiny.png", photo_pixels(height=10, width=40)): "only 40×10 pixels",
        png_with_size(tmp_path / "bomb.png", 10_000, 10_000): "more than 89 megapixels",
        png_with_size(tmp_path / "huge-bomb.png", 50_000, 50_000): "more than 89 megapixels",
    }
    for path, message in cases.items():
        with pytest.raises(FitError, match=message):
            fit_image(path, word_mapper, crop="centre")
    with pytest.raises(FitError, match="Unknown crop 'smart'"):
        fit_image(good, word_mapper, crop="smart")


def test_grayscale_sixteen_bit_and_transparent_photos_are_converted(word_mapper, tmp_path) -> None:
    from PIL import Image

    from semantify_engine.fitting.image import ImageFitter, load_photo

    rgb = photo_pixels(height=80, width=80)
    grey = rgb[..., 0]
    loaded = load_photo(write_png(tmp_path / "grey.png", grey))
    np.testing.assert_array_equal(loaded.pixels, np.repeat(grey[..., None], 3, axis=2))
    assert any("grayscale" in note for note in loaded.notes)

    wide = (grey.astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "grey16.png")
    sixteen = load_photo(tmp_path / "grey16.png")
    np.testing.assert_array_equal(sixteen.pixels[..., 0], grey)
    assert any("16-bit" in note or "32-bit" in note for note in sixteen.notes)

    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:20, :, 3] = 0  # a transparent band at the top
    write_png(tmp_path / "cutout.png", rgba)
    for background, value in (((0.0, 0.0, 0.0), 0), ((1.0, 1.0, 1.0), 255)):
        laid = load_photo(tmp_path / "cutout.png", background)
        np.testing.assert_array_equal(laid.pixels[:20], value)
        np.testing.assert_array_equal(laid.pixels[20:], rgb[20:])
    assert any(
        "transparent pixels laid on black" in note for note in load_photo(tmp_path / "cutout.png").notes
    )
    fitter = ImageFitter(word_mapper)
    from_file = fitter.fit(tmp_path / "cutout.png", crop="centre")
    composited = rgb.copy()
    composited[:20] = 0
    from_pixels = fitter.fit(composited, crop="centre")
    assert from_file.details["scores"] == pytest.approx(from_pixels.details["scores"], abs=1e-6)


def test_a_large_rotated_jpeg_is_oriented_and_scaled_down(tmp_path) -> None:
    from PIL import Image

    from semantify_engine.fitting.image import WORK_SIDE, load_photo

    pixels = np.zeros((1500, 2400, 3), np.uint8)
    pixels[:, :100] = 255  # a white band on the left of the stored image
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif, quality=90)
    photo = load_photo(tmp_path / "phone.jpg")
    assert photo.original_size == (2400, 1500)
    assert max(photo.pixels.shape[:2]) <= WORK_SIDE and photo.pixels.shape[0] > photo.pixels.shape[1]
    assert photo.pixels[:20].mean() > 200, "the band is on top once the photo is turned upright"
    assert any("scaled to" in note for note in photo.notes)


def test_mappers_a_photo_cannot_drive_are_refused(word_mapper, height_mapper, tmp_path) -> None:
    from semantify_engine.fitting import fit_image

    photo = write_png(tmp_path / "p.png", photo_pixels())
    with pytest.raises(FitError, match="only measurement sliders \\(height\\).*fit measure"):
        fit_image(photo, height_mapper)
    scorers = {**word_mapper.metadata["scorers"]}
    scorers.pop("clip")
    with pytest.raises(FitError, match="does not record which CLIP model"):
        fit_image(photo, replace(word_mapper, metadata={**word_mapper.metadata, "scorers": scorers}))
    missing = {**word_mapper.metadata["scorers"]["clip"], "pretrained": str(tmp_path / "gone.bin")}
    elsewhere = replace(word_mapper, metadata={**word_mapper.metadata, "scorers": {"clip": missing}})
    with pytest.raises(ClipWeightsError, match="does not exist"):
        fit_image(photo, elsewhere)


# ---------------------------------------------------------------------------------------- text → shape
def test_text_fit_ranks_the_cached_renders_by_clip_cosine(word_dataset, word_mapper, tiny_spec) -> None:
    from semantify_engine.fitting import TextFitter
    from semantify_engine.scoring.clip import average_view_scores

    data = DatasetFolder(word_dataset).load()
    prompt = TEMPLATE.format("tall")
    expected = average_view_scores(data["embeddings"].astype(np.float32), clip_text(tiny_spec, [prompt]))[
        :, 0
    ]
    fitter = TextFitter(word_mapper)
    np.testing.assert_allclose(fitter.similarities(prompt), expected, atol=1e-5)
    result = fitter.fit(prompt, top_k=3)
    order = np.argsort(-expected)
    assert [m["sample"] for m in result.details["matches"]] == list(order[:3])
    # the word's own stored score is the same cosine, so the top match has the dataset's highest "tall"
    assert result.details["matches"][0]["sample"] == int(np.argmax(data["scores"][:, WORDS.index("tall")]))
    weights = [m["weight"] for m in result.details["matches"]]
    assert sum(weights) == pytest.approx(1.0) and weights == sorted(weights, reverse=True)
    rows = order[:3]
    np.testing.assert_allclose(
        result.coefficients, np.asarray(weights) @ data["coefficients"][rows], atol=1e-5
    )
    stored = data["scores"][rows][:, [WORDS.index("fat"), WORDS.index("tall")]]
    blended = np.clip(np.asarray(weights) @ stored, word_mapper.lows, word_mapper.highs)
    np.testing.assert_allclose(result.slider_vector, blended, atol=1e-5)
    np.testing.assert_allclose(result.slider_coefficients, word_mapper(result.slider_vector), atol=1e-6)


@pytest.fixture(scope="module")
def face(capsule, tiny_spec, tmp_path_factory):
    """An expression model and a synthetic dataset in which sample 17's renders *are* "a surprised face"."""
    model = replace(
        capsule, name="capsule-face", kind="face-expression", coefficient_bounds=np.tile([0.0, 1.0], (3, 1))
    )
    words = ("surprised", "smiling")
    folder = tmp_path_factory.mktemp("face") / "data"
    folder, arrays = synthetic_dataset(folder, model, tiny_spec, "a photo of a {} face", words)
    target = clip_text(tiny_spec, ["a surprised face"])[0]
    arrays["embeddings"][17] = target.astype(np.float16)  # both views
    from semantify_engine.scoring.clip import average_view_scores

    text = clip_text(tiny_spec, [f"a photo of a {w} face" for w in words])
    arrays["scores"] = average_view_scores(arrays["embeddings"].astype(np.float32), text).astype(np.float32)
    DatasetFolder(folder).write_chunk(0, arrays)
    mapper = train(folder, list(words), model, **SMALL)
    return model, folder, mapper, arrays


def test_text_to_expression_picks_the_render_that_matches_the_prompt(face) -> None:
    from semantify_engine.fitting import fit_text

    _, _, mapper, arrays = face
    best = fit_text("a surprised face", mapper, top_k=1)
    assert best.details["matches"][0]["sample"] == 17
    assert best.details["matches"][0]["similarity"] == pytest.approx(1.0, abs=2e-3)
    np.testing.assert_allclose(best.coefficients, arrays["coefficients"][17], atol=1e-6)
    expected = np.clip(arrays["scores"][17], mapper.lows, mapper.highs)
    np.testing.assert_allclose(best.slider_vector, expected, atol=1e-6)
    scores = arrays["scores"][17]
    outside = [d.name for d, s in zip(mapper.descriptors, scores, strict=True) if not d.low <= s <= d.high]
    assert [item.descriptor for item in best.clamped] == outside
    flat = fit_text("a surprised face", mapper, top_k=4, temperature=1e6)
    rows = [m["sample"] for m in flat.details["matches"]]
    assert rows[0] == 17 and [m["weight"] for m in flat.details["matches"]] == pytest.approx([0.25] * 4)
    np.testing.assert_allclose(flat.coefficients, arrays["coefficients"][rows].mean(axis=0), atol=1e-6)


def test_the_neutral_difference_form_ranks_by_differences(face, tiny_spec) -> None:
    from semantify_engine.fitting import TextFitter
    from semantify_engine.fitting.text import neutral_prompt

    _, _, mapper, arrays = face
    fitter = TextFitter(mapper)
    assert fitter.neutral_prompt() == "a photo of a face"
    assert neutral_prompt("a photo of a {}") == "a photo of a neutral"
    assert neutral_prompt("{}") == "neutral"
    e = arrays["embeddings"].astype(np.float32)
    e /= np.linalg.norm(e, axis=-1, keepdims=True)
    t, t0 = clip_text(tiny_spec, ["a smiling face", "a photo of a face"])
    direction = (t - t0) / np.linalg.norm(t - t0)
    for render, reference in (("sample", e[3]), ("mean", e.mean(axis=0))):
        difference = e - reference[None]
        norms = np.linalg.norm(difference, axis=-1, keepdims=True)
        difference = difference / np.where(norms > 1e-12, norms, 1.0)
        expected = (difference @ direction).mean(axis=1)
        got = fitter.similarities("a smiling face", neutral=True, neutral_render=render)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        result = fitter.fit("a smiling face", neutral=True, neutral_render=render, top_k=2)
        assert result.details["matches"][0]["sample"] == int(np.argmax(expected))
        assert result.details["form"] == "neutral-difference"
        assert result.details["neutral"]["render"] == ("sample 3" if render == "sample" else "mean embedding")
    assert got[3] != 0 and fitter.similarities("a smiling face", True, "sample")[3] == 0.0
    with pytest.raises(FitError, match="is the neutral prompt itself"):
        fitter.fit("a photo of a face", neutral=True)


def test_bad_text_fits_are_refused_with_clear_messages(
    face, word_mapper, metric_dataset, word_dataset, tmp_path
) -> None:
    from semantify_engine.fitting import TextFitter, fit_text

    _, face_folder, face_mapper, _ = face
    for prompt, message in (
        ("", "empty"),
        ("   \n", "empty"),
        ("?! 42", "holds no words"),
        ("a" * 301, "77"),
    ):
        with pytest.raises(FitError, match=message):
            fit_text(prompt, face_mapper)
    fitter = TextFitter(face_mapper)
    for options, message in (
        ({"top_k": 0}, "^top_k must be a whole number ≥ 1"),
        ({"temperature": 0.0}, "^temperature must be a number > 0"),
        ({"temperature": float("nan")}, "^temperature"),
        ({"neutral": True, "neutral_render": "median"}, "Unknown neutral render"),
    ):
        with pytest.raises(FitError, match=message):
            fitter.fit("a happy face", **options)
    assert len(fitter.fit("a happy face", top_k=500).details["matches"]) == 40, "k beyond N blends all"
    with pytest.raises(FitError, match="built without CLIP"):
        fit_text("a tall person", word_mapper, dataset=metric_dataset)
    with pytest.raises(FitError, match="built for model 'capsule-face'.*mapper is for 'test-capsule'"):
        fit_text("a tall person", word_mapper, dataset=face_folder)
    gone = {**word_mapper.metadata["dataset"], "folder": str(tmp_path / "nowhere")}
    with pytest.raises(FitError, match="no longer there.*folder with dataset") as caught:
        fit_text("a tall person", replace(word_mapper, metadata={**word_mapper.metadata, "dataset": gone}))
    assert caught.value.parameters == ("dataset",), "the fit's error names the mapper's parameter too"
    other_clip = {**word_mapper.metadata["scorers"]["clip"], "template": "a {} statue"}
    with pytest.raises(FitError, match="template 'a {} statue'"):
        fit_text(
            "a tall person",
            replace(word_mapper, metadata={**word_mapper.metadata, "scorers": {"clip": other_clip}}),
        )


def test_text_fit_sets_measurement_sliders_from_the_matches(mixed_mapper, word_dataset) -> None:
    from semantify_engine.fitting import fit_text

    data = DatasetFolder(word_dataset).load()
    result = fit_text("a photo of a fat person", mixed_mapper, top_k=1)
    row = result.details["matches"][0]["sample"]
    height = float(np.clip(data["metrics"][row, 0], mixed_mapper.lows[1], mixed_mapper.highs[1]))
    assert result.sliders["height"] == pytest.approx(height, abs=1e-6)


# ------------------------------------------------------------------------------- measurements → shape
def test_a_requested_height_is_what_the_fitted_mesh_measures(height_mapper, capsule) -> None:
    from semantify_engine.scoring.metrics import MetricScorer

    result = fit_measurements(height_mapper, {"height": 1.80}, capsule)
    measured = MetricScorer.for_model(capsule).measure(capsule.vertices(result.coefficients))
    assert measured[0] == pytest.approx(1.80, abs=0.005)
    assert result.details["achieved"]["height"]["achieved"] == pytest.approx(float(measured[0]))
    assert result.sliders == {"height": pytest.approx(1.80)} and not result.clamped and not result.notes


def test_measurements_outside_the_range_are_clamped_or_refused(height_mapper, capsule) -> None:
    height = height_mapper.descriptors[0]
    span = height.high - height.low
    above = height.high + 0.5 * span
    result = fit_measurements(height_mapper, {"height": above}, capsule)
    assert result.sliders["height"] == pytest.approx(height.high)
    assert [item.descriptor for item in result.clamped] == ["height"]
    (note,) = result.notes
    assert f"{above * 100:.1f} cm is outside the slider's range [{height.low * 100:.1f} cm" in note
    assert result.details["achieved"]["height"]["achieved"] == pytest.approx(height.high, abs=0.01)
    with pytest.raises(FitError, match=r"height 5 m \(500.0 cm\) is impossible for this mapper"):
        fit_measurements(height_mapper, {"height": 5.0})
    with pytest.raises(FitError, match="If 180.0 cm was meant, check the unit"):
        fit_measurements(height_mapper, {"height": 180.0})
    for request, message in (
        ({}, "Give at least one measurement; this mapper takes height"),
        ({"height": float("nan")}, "give a number"),
        ({"waist": 0.8}, "This mapper has no 'waist' slider; its measurements are height"),
    ):
        with pytest.raises(FitError, match=message):
            fit_measurements(height_mapper, request)


def test_measurement_fits_need_measurement_sliders(word_mapper, mixed_mapper, capsule) -> None:
    with pytest.raises(FitError, match="no measurement sliders \\(its descriptors: fat, tall\\)"):
        fit_measurements(word_mapper, {"height": 1.7})
    with pytest.raises(FitError, match="'fat' is a word slider of this mapper, not a measurement"):
        fit_measurements(mixed_mapper, {"fat": 0.2})
    result = fit_measurements(mixed_mapper, {"height": 1.75}, capsule)
    assert result.defaults_kept == ["fat"] and result.sliders["fat"] == pytest.approx(
        mixed_mapper.defaults[0]
    )
    assert "not given, kept at the default: fat" in result.notes


# ---------------------------------------------------------------------------------------- result files
def test_results_write_json_and_an_obj_blender_imports_upright(height_mapper, capsule, tmp_path) -> None:
    from semantify_engine.models.shape_keys import Y_UP_TO_CANONICAL, read_obj

    result = fit_measurements(height_mapper, {"height": 1.62}, capsule)
    data = json.loads(result.write_json(tmp_path / "fit.json").read_text())
    assert data["format"] == "semantify-fit" and data["method"] == "measure"
    assert data["sliders"] == {"height": pytest.approx(1.62)}
    assert data["mapper"]["model"]["name"] == "test-capsule" and len(data["coefficients"]) == 3
    vertices, polygons = read_obj(result.write_obj(tmp_path / "fit.obj", capsule))
    np.testing.assert_allclose(
        vertices @ Y_UP_TO_CANONICAL.T, capsule.vertices(result.coefficients), atol=2e-6
    )
    assert np.ptp(vertices[:, 1]) == pytest.approx(1.62, abs=0.01), "Y is up in the file"
    np.testing.assert_array_equal(np.asarray(polygons), capsule.faces)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.json", "fit.obj"], "no partial files left"
    other = replace(capsule, name="other", template=capsule.template * 1.1)
    with pytest.raises(FitError, match="mapper for model 'test-capsule'"):
        result.write_obj(tmp_path / "other.obj", other)
    restored = FitResult(**{**result.__dict__})
    assert restored.to_json() == result.to_json()


# ------------------------------------------------------------------------------------------- command
@pytest.fixture
def cli(monkeypatch):
    """``semantify`` with the fit command registered (whether or not main.py lists it yet)."""
    import semantify_engine.cli.main as main_module
    from semantify_engine.cli import fit_cmd

    if fit_cmd not in main_module.COMMAND_MODULES:
        monkeypatch.setattr(main_module, "COMMAND_MODULES", (*main_module.COMMAND_MODULES, fit_cmd))
    return main_module.main


def test_fit_measure_command(cli, height_mapper, capsule, tmp_path, capsys) -> None:
    mapper = save_mapper(height_mapper, tmp_path / "height.npz")
    model = save_model(capsule, tmp_path / "capsule.npz")
    out, obj = tmp_path / "shape.json", tmp_path / "mesh.obj"
    code = cli(["fit", "measure", "--mapper", str(mapper), "--height", "180", "--out", str(out),
                "--obj", str(obj), "--model", str(model)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0 and json.loads(out.read_text())["sliders"]["height"] == pytest.approx(1.80)
    assert "height  180.0 cm" in printed and "mesh measures 180." in printed and obj.is_file()
    assert cli(["fit", "measure", "--mapper", str(mapper), "--height", "500"]) == 2
    assert "impossible for this mapper" in capsys.readouterr().err
    assert cli(["fit", "measure", "--mapper", str(mapper), "--set", "height=1.8"]) == 2
    assert "If 180.0 cm was meant" in capsys.readouterr().err
    assert cli(["fit", "measure", "--mapper", str(mapper), "--set", "height"]) == 2
    assert "--set takes NAME=VALUE" in capsys.readouterr().err
    code = cli(["fit", "measure", "--mapper", str(mapper), "--height", "175", "--obj", str(obj)])
    assert code == 2 and "--obj needs the mapper's model" in capsys.readouterr().err


def test_fit_image_and_text_commands(cli, word_mapper, tmp_path, capsys) -> None:
    mapper = save_mapper(word_mapper, tmp_path / "words.npz")
    photo = write_png(tmp_path / "p.png", photo_pixels())
    assert cli(["fit", "image", str(photo), "--mapper", str(mapper), "--crop", "centre", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["method"] == "image" and printed["details"]["crop"] == "centre"
    assert set(printed["sliders"]) == {"fat", "tall"}
    assert cli(["fit", "image", str(tmp_path / "words.npz"), "--mapper", str(mapper)]) == 2
    assert "is not an image" in capsys.readouterr().err
    out = tmp_path / "text.json"
    assert (
        cli(["fit", "text", "a tall person", "--mapper", str(mapper), "--top-k", "2", "--out", str(out)]) == 0
    )
    assert "plain ranking, top 2" in capsys.readouterr().out
    assert len(json.loads(out.read_text())["details"]["matches"]) == 2
    assert cli(["fit", "text", "  ", "--mapper", str(mapper)]) == 2
    assert "prompt is empty" in capsys.readouterr().err
    assert load_mapper(mapper).checksum() == word_mapper.checksum()


def test_a_fit_error_is_a_semantify_error() -> None:
    assert issubclass(FitError, SemantifyError)
