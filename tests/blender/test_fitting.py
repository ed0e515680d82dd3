"""The Fit panel, headless: measurements → sliders in Blender, text and photo → sliders in a background job.

The add-on is installed from its zip and enabled by conftest's fixtures (``installed``, ``glue``), and
:mod:`support.blender`'s helpers are reused. Measurement fits run on the bundled body with its
shipped mapper and are checked on the evaluated mesh with the engine's tape measure. Photo and text fits
run the real ``semantify fit`` command in a background process with the tiny CLIP fixture, on a capsule
model whose two-word mapper is trained on a synthetic dataset (no rendering); they check that the sliders
end where the fit's JSON says.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from support import ROOT
from support.blender import (
    MODULE,
    OperatorStandIn,
    add_body_with_default_mapper,
    evaluated_vertices,
    positions_of,
    weights_of,
)
from support.fitting import SMALL, photo_pixels, synthetic_dataset, train, write_png
from support.recording_layout import RecordingLayout

from semantify_engine.mapper import load_mapper, save_mapper
from semantify_engine.models import load, save_model
from semantify_engine.scoring.metrics import MetricScorer

bpy = pytest.importorskip("bpy")

SHIPPED_BODY = ROOT / "semantify_engine/data/mappers/anny-body-measurements.npz"
TEMPLATE = "a photo of a {} person"


def values_of(obj) -> np.ndarray:
    return np.array([slider.value for slider in obj.semantify.sliders], dtype=np.float32)


def scene_state(obj) -> tuple:
    """What a failed fit must leave as it was: slider positions, shape-key weights, notes, mapper."""
    state = obj.semantify
    return positions_of(obj), weights_of(obj).copy(), state.fit.notes, state.mapper_checksum


def assert_unchanged(obj, before: tuple) -> None:
    after = scene_state(obj)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]


def ask(obj, **measurements: float) -> None:
    """Type measurements into the Fit panel's fields (centimetres, kilograms), as a user would."""
    for name, value in measurements.items():
        obj.semantify.sliders[name].fit_measurement = value


# ------------------------------------------------------------------------------------- measurements
def test_a_requested_height_is_what_the_evaluated_mesh_measures(glue) -> None:
    obj = add_body_with_default_mapper()
    mapper = load_mapper(SHIPPED_BODY)
    bpy.ops.ed.undo_push(message="loaded")
    before = evaluated_vertices(obj)
    ask(obj, height=180.0)
    assert obj.semantify.sliders["height"].fit_use  # typing a value ticks its field
    assert bpy.ops.semantify.fit_measurements() == {"FINISHED"}
    state = obj.semantify
    assert state.sliders["height"].value == pytest.approx(1.80, abs=1e-5)
    for name in ("chest", "waist", "hips"):  # not asked: the mapper's defaults
        assert state.sliders[name].value == pytest.approx(state.sliders[name].default, abs=1e-5)
    count = mapper.coefficient_count
    assert weights_of(obj)[:count] == pytest.approx(mapper.coefficients(values_of(obj)), abs=1e-5)
    scorer = MetricScorer.for_model(load("anny-body"))
    measured = scorer.measure(evaluated_vertices(obj).astype(np.float64)[None])[0]
    assert measured[scorer.names.index("height")] == pytest.approx(1.80, abs=0.010)
    assert re.search(
        r"^height: the mesh measures 1(79|80)\.\d cm \(asked 180\.0 cm\)$", state.fit.notes, re.M
    )
    kept = ", ".join(name for name in mapper.descriptor_names if name != "height")
    assert f"not given, kept at the default: {kept}" in state.fit.notes
    name = obj.name
    bpy.ops.ed.undo_push(message="fitted")
    bpy.ops.ed.undo()  # the fit is one undo step
    obj = bpy.data.objects[name]
    assert np.abs(evaluated_vertices(obj) - before).max() < 1e-6 and obj.semantify.fit.notes == ""


def test_an_impossible_measurement_is_refused_and_the_scene_is_unchanged(glue) -> None:
    obj = add_body_with_default_mapper()
    assert bpy.ops.semantify.randomise_sliders(seed=4) == {"FINISHED"}
    ask(obj, height=500.0)
    before = scene_state(obj)
    with pytest.raises(RuntimeError, match=r"height 5 m \(500.0 cm\) is impossible for this mapper"):
        bpy.ops.semantify.fit_measurements()
    assert_unchanged(obj, before)
    obj.semantify.sliders["height"].fit_use = False
    with pytest.raises(RuntimeError, match="Give at least one measurement"):
        bpy.ops.semantify.fit_measurements()
    assert_unchanged(obj, before)


def test_a_slightly_out_of_range_measurement_is_clamped_with_a_warning(glue, capfd) -> None:
    obj = add_body_with_default_mapper()
    height = obj.semantify.sliders["height"]
    asked = round(height.high * 100 + 3.0, 1)  # 3 cm past the slider's top
    ask(obj, height=asked, waist=80.0)
    capfd.readouterr()
    assert bpy.ops.semantify.fit_measurements() == {"FINISHED"}
    printed = capfd.readouterr().out  # headless, Blender prints operator reports
    assert f"Warning: Fit measurements: 'height' {asked:.1f} cm is outside the slider's range" in printed
    assert height.position == pytest.approx(1.0) and height.value == pytest.approx(height.high, abs=1e-5)
    assert obj.semantify.sliders["waist"].value == pytest.approx(0.80, abs=1e-5)
    assert f"set to {height.high * 100:.1f} cm" in obj.semantify.fit.notes


def test_the_face_expression_model_fits_its_measurements_too(glue) -> None:
    assert bpy.ops.semantify.add_model(model="anny-face-expression") == {"FINISHED"}
    obj = bpy.context.active_object
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-face-expression-measurements") == {"FINISHED"}
    ask(obj, jaw_drop=1.5)  # centimetres
    assert bpy.ops.semantify.fit_measurements() == {"FINISHED"}
    assert obj.semantify.sliders["jaw_drop"].value == pytest.approx(0.015, abs=1e-6)
    assert re.search(
        r"^jaw_drop: the mesh measures \d\.\d cm \(asked 1\.5 cm\)$", obj.semantify.fit.notes, re.M
    )


def test_ticking_an_empty_field_starts_it_at_the_current_value(glue) -> None:
    obj = add_body_with_default_mapper()
    chest = obj.semantify.sliders["chest"]
    chest.position = 0.3
    chest.fit_use = True
    assert chest.fit_measurement == pytest.approx(chest.value * 100, abs=1e-3)  # centimetres
    chest.fit_use = False
    chest.position = 0.8
    chest.fit_use = True  # a typed value is kept
    assert chest.fit_measurement == pytest.approx(
        (chest.low + 0.3 * (chest.high - chest.low)) * 100, abs=1e-3
    )


# ------------------------------------------------------------------------------ photo and text fits
@pytest.fixture(scope="module")
def capsule_words(capsule, tiny_spec, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A capsule model file and a two-word mapper trained on a synthetic tiny-CLIP dataset (no renders)."""
    folder = tmp_path_factory.mktemp("fit-blender")
    dataset, _ = synthetic_dataset(folder / "data", capsule, tiny_spec, TEMPLATE, ("fat", "tall"))
    mapper = train(dataset, ["fat", "tall"], capsule, **SMALL)
    return save_model(capsule, folder / "capsule.npz"), save_mapper(mapper, folder / "words.npz")


@pytest.fixture
def words_object(glue, capsule_words, tmp_path: Path):
    """The capsule with its word mapper, the cache in ``tmp_path``, and sliders away from the defaults."""
    model_path, mapper_path = capsule_words
    bpy.context.preferences.addons[MODULE].preferences.cache_dir = str(tmp_path / "cache")
    assert bpy.ops.semantify.add_model_file(filepath=str(model_path)) == {"FINISHED"}
    obj = bpy.context.active_object
    assert bpy.ops.semantify.load_mapper(filepath=str(mapper_path)) == {"FINISHED"}
    obj.semantify.sliders["tall"].position = 0.9
    yield obj
    bpy.context.preferences.addons[MODULE].preferences.cache_dir = ""


def fit_json(tmp_path: Path, obj, method: str) -> dict:
    return json.loads((tmp_path / "cache" / "fits" / f"{obj.name}-{method}.json").read_text())


def assert_sliders_follow(obj, fitted: dict, mapper_path: Path) -> None:
    """The sliders hold the fit's values, and the shape keys what the mapper makes of them."""
    assert [slider.name for slider in obj.semantify.sliders] == list(fitted)
    assert values_of(obj) == pytest.approx(list(fitted.values()), abs=1e-5)
    mapper = load_mapper(mapper_path)
    assert weights_of(obj)[:3] == pytest.approx(mapper.coefficients(values_of(obj)), abs=1e-5)
    assert obj.semantify.status == ""


def test_a_photo_fit_runs_in_the_background_and_sets_the_sliders(
    words_object, capsule_words, tmp_path
) -> None:
    obj = words_object
    photo = write_png(tmp_path / "person.png", photo_pixels(height=96, width=64))
    obj.semantify.fit.photo, obj.semantify.fit.crop = str(photo), "centre"
    assert bpy.ops.semantify.fit_photo() == {"FINISHED"}  # headless: waits for the process
    result = fit_json(tmp_path, obj, "photo")
    assert result["method"] == "image" and result["details"]["crop"] == "centre"
    assert_sliders_follow(obj, result["sliders"], capsule_words[1])
    assert obj.semantify.fit.notes.startswith("centre crop")


def test_a_bad_photo_is_reported_and_the_scene_is_unchanged(words_object, tmp_path) -> None:
    obj = words_object
    good = write_png(tmp_path / "good.png", photo_pixels(height=200, width=200))
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(good.read_bytes()[:300])
    before = scene_state(obj)
    obj.semantify.fit.photo = str(corrupt)
    with pytest.raises(RuntimeError, match=r"Fit photo corrupt.png failed: Photo .* is damaged or truncated"):
        bpy.ops.semantify.fit_photo()  # a real background fit: the engine's own message comes back
    assert_unchanged(obj, before)
    (tmp_path / "empty.jpg").touch()
    for photo, message in (
        (tmp_path / "missing.jpg", "does not exist"),
        (tmp_path, "is a folder"),
        (tmp_path / "empty.jpg", "is an empty file"),
    ):  # refused at once, without a process
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.semantify.fit_photo(filepath=str(photo))
        assert_unchanged(obj, before)


def test_a_photo_cannot_drive_measurement_sliders(glue) -> None:
    obj = add_body_with_default_mapper()
    before = scene_state(obj)
    names = ", ".join(load_mapper(SHIPPED_BODY).descriptor_names)
    with pytest.raises(RuntimeError, match=rf"only measurement sliders \({names}\)"):
        bpy.ops.semantify.fit_photo(filepath=__file__)
    with pytest.raises(RuntimeError, match="records no dataset.*name it with the Fit panel's 'Dataset'"):
        bpy.ops.semantify.fit_text(prompt="a tall man")  # the engine's {dataset}, as this user knows it
    assert_unchanged(obj, before)


def tick(glue, operator: OperatorStandIn) -> set[str]:
    """One timer event for the running modal fit, as Blender's event loop would deliver it."""
    event = SimpleNamespace(type="TIMER", value="NOTHING")
    return glue.fitting_ops.SEMANTIFY_OT_fit_text.modal(operator, bpy.context, event)


def test_a_text_fit_runs_modally_and_sets_the_sliders(
    glue, words_object, capsule_words, tmp_path, monkeypatch
) -> None:
    obj = words_object
    obj.semantify.fit.prompt = "  a photo of a tall person "
    monkeypatch.setattr(glue.jobs, "has_event_loop", lambda context: True)
    assert bpy.ops.semantify.fit_text() == {"RUNNING_MODAL"}
    assert not bpy.ops.semantify.fit_photo.poll()  # one job at a time
    operator, deadline = OperatorStandIn(), time.monotonic() + 60
    while (outcome := tick(glue, operator)) == {"PASS_THROUGH"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert outcome == {"FINISHED"} and glue.jobs.active_job() is None
    result = fit_json(tmp_path, obj, "text")
    assert result["method"] == "text" and result["inputs"]["prompt"] == "a photo of a tall person"
    assert_sliders_follow(obj, result["sliders"], capsule_words[1])
    ((level, message),) = operator.reports
    assert message.startswith('Fit text "a photo of a tall person"') and level <= {"INFO", "WARNING"}


def test_empty_text_is_reported_and_starts_nothing(words_object, glue) -> None:
    obj = words_object
    before = scene_state(obj)
    obj.semantify.fit.prompt = "   "
    with pytest.raises(RuntimeError, match="The prompt is empty"):
        bpy.ops.semantify.fit_text()
    assert glue.jobs.active_job() is None
    assert_unchanged(obj, before)


# --------------------------------------------------------------------------------------- the panel
def test_the_fit_panel_draws_fields_for_measurement_sliders_and_registered_operators(
    glue, monkeypatch
) -> None:
    icons = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())
    obj = add_body_with_default_mapper()
    obj.semantify.fit.notes = "height: the mesh measures 180.1 cm (asked 180.0 cm)"
    panel = glue.fitting_panel.SEMANTIFY_PT_fit
    assert panel.bl_parent_id == "SEMANTIFY_PT_sliders" and panel.poll(bpy.context)
    calls: list[tuple[str, tuple, dict]] = []
    for running in (False, True):
        monkeypatch.setattr(glue.jobs, "active_job", lambda running=running: object() if running else None)
        panel.draw(SimpleNamespace(layout=RecordingLayout(calls)), bpy.context)
    fields = [
        keywords.get("text")
        for name, args, keywords in calls
        if name == "prop" and args[1] == "fit_measurement"
    ]
    assert fields[:4] == ["height (cm)", "chest (cm)", "waist (cm)", "hips (cm)"]
    operators = {args[0] for name, args, _ in calls if name == "operator"}
    assert {
        "semantify.fit_measurements",
        "semantify.fit_text",
        "semantify.fit_photo",
        "semantify.cancel_job",
    } <= operators
    for idname in operators:
        assert hasattr(bpy.ops.semantify, idname.split(".")[1]), idname
    assert {keywords["icon"] for _, _, keywords in calls if "icon" in keywords} <= icons
    for name, args, _ in calls:
        if name == "prop":
            assert args[1] in args[0].bl_rna.properties, args[1]
    for name in ("fit_measurements", "fit_text", "fit_photo"):
        options = getattr(bpy.types, f"SEMANTIFY_OT_{name}").bl_options
        assert "UNDO" in options and ("REGISTER" in options) == (name == "fit_measurements"), name
