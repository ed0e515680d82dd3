"""The shipped default mapper: measurement and attribute sliders on the bundled body with zero setup."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from support import ROOT
from support.blender import (
    MODULE,
    add_body_with_default_mapper,
    evaluated_vertices,
    make_mesh_with_shape_keys,
    positions_of,
    weights_of,
)
from support.recording_layout import RecordingLayout

from semantify_engine.mapper import Descriptor, Mapper, load_mapper, model_identity, save_mapper
from semantify_engine.models import load
from semantify_engine.pipeline import DEFAULT_ATTRIBUTE_SLIDERS

bpy = pytest.importorskip("bpy")

SHIPPED = ROOT / "semantify_engine" / "data" / "mappers"


# ---------------------------------------------------------------------------- shipped default mapper
def test_default_mapper_gives_the_bundled_body_measurement_sliders_with_zero_setup(glue) -> None:
    """Add the bundled body, load its shipped mapper, set sliders: the evaluated mesh is the engine's."""
    model = load("anny-body")
    mapper = load_mapper(SHIPPED / "anny-body-measurements.npz")
    make_mesh_with_shape_keys()
    assert bpy.ops.semantify.use_mesh() == {"FINISHED"}
    assert not bpy.ops.semantify.load_default_mapper.poll()  # nothing ships for a user's mesh: not offered
    assert bpy.ops.semantify.add_model(model="anny-head-shape") == {"FINISHED"}
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-head-shape-measurements") == {"FINISHED"}
    head = [slider.name for slider in bpy.context.active_object.semantify.sliders]
    assert head == ["head_circumference", "face_height", "head_width"]
    obj = add_body_with_default_mapper()
    state = obj.semantify
    assert state.mapper_path == "default:anny-body-measurements"  # found in any installed extension
    assert [slider.name for slider in state.sliders] == ["height", "chest", "waist", "hips"]
    assert [slider.unit for slider in state.sliders] == ["m"] * 4
    state.sliders["height"].value = 1.85  # metres
    state.sliders["waist"].position = 0.2
    values = np.array([slider.value for slider in state.sliders], dtype=np.float32)
    assert values[0] == pytest.approx(1.85, abs=1e-5)
    expected = model.vertices(mapper.coefficients(values))
    assert np.abs(evaluated_vertices(obj) - expected).max() < 1e-5
    assert state.status == ""
    assert 0.0 <= state.plausibility <= 99.0, "the shipped sliders stay inside the plausible region"
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-body-attributes") == {"FINISHED"}
    assert tuple(slider.name for slider in state.sliders) == DEFAULT_ATTRIBUTE_SLIDERS
    units = {slider.name: slider.unit for slider in state.sliders}
    assert units["height"] == "m" and units["age"] == "years" and units["muscle"] == ""
    state.sliders["age"].value = 30.0  # years
    attributes = load_mapper(SHIPPED / "anny-body-attributes.npz")
    values = np.array([slider.value for slider in state.sliders], dtype=np.float32)
    assert np.abs(evaluated_vertices(obj) - model.vertices(attributes.coefficients(values))).max() < 1e-5


def test_the_sidebar_says_when_a_shape_leaves_the_plausible_region(glue, tmp_path: Path) -> None:
    """A mapper that pushes one component 12 std out: the object's plausibility follows the slider."""
    model = load("anny-body")
    weight = np.zeros((1, model.component_count), np.float32)
    weight[0, 30] = 12.0  # a detail component (the first ones, height and build, reach far in the bank)
    push = Mapper(
        descriptors=(Descriptor("push", "metric", "m", 0.0, 1.0, 0.0),),
        input_mean=np.zeros(1),
        input_std=np.ones(1),
        output_mean=np.zeros(model.component_count),
        output_std=np.ones(model.component_count),
        weights=((weight, np.zeros(model.component_count, np.float32)),),
        metadata={"model": model_identity(model, model.component_count)},
    )
    path = save_mapper(push, tmp_path / "push.npz")
    assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    assert bpy.ops.semantify.load_mapper(filepath=str(path)) == {"FINISHED"}
    state = bpy.context.active_object.semantify
    assert 0.0 <= state.plausibility <= 99.0, "the mean body is typical"
    state.sliders["push"].position = 1.0
    assert state.plausibility > 99.0, "12 std along one component: outside"
    assert state.plausibility == pytest.approx(float(model.plausibility(push.coefficients([1.0])[None])[0]))
    assert sidebar_notes(glue) == [
        f"Outside the plausible region: rarer than {state.plausibility:.1f} % of source bodies"
    ]
    state.sliders["push"].position = 0.0
    assert state.plausibility <= 99.0
    assert sidebar_notes(glue) == [], "a typical body draws no line"
    shipped = add_body_with_default_mapper().semantify.sliders["waist"]
    reach = glue.panels.reach_text(shipped)  # the waist is cut to its plausible reach: the sidebar says so
    assert shipped.data_low == pytest.approx(shipped.low) and shipped.high < shipped.data_high - 0.05
    assert reach == f"    plausible up to {shipped.high * 100:.4g} cm (data to {shipped.data_high * 100:.4g})"
    assert glue.panels.reach_text(add_body_with_default_mapper().semantify.sliders["chest"]) == ""


def test_the_gender_slider_says_which_end_is_which(glue) -> None:
    """anny's gender 0 is male: the bundled male body's source bodies all lie below 1/3, the female's above
    2/3, so the words under the slider follow the data, not a guess."""
    for name, inside in (
        ("anny-body-male", lambda g: g <= 1 / 3 + 1e-6),
        ("anny-body-female", lambda g: g >= 2 / 3 - 1e-6),
    ):
        bank = load(name).bank
        assert np.all(inside(bank.settings[:, bank.setting_names.index("gender")])), name
    assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-body-attributes") == {"FINISHED"}
    calls: list[tuple[str, tuple, dict]] = []
    glue.panels.SEMANTIFY_PT_sliders.draw(SimpleNamespace(layout=RecordingLayout(calls)), bpy.context)
    labels = [keywords.get("text", "") for name, _, keywords in calls if name == "label"]
    assert [text for text in labels if "→" in text] == ["    ← male  ·  female →"], labels


def sidebar_notes(glue) -> list[str]:
    """The plausibility lines the Sliders panel draws for the active object."""
    calls: list[tuple[str, tuple, dict]] = []
    glue.panels.SEMANTIFY_PT_sliders.draw(SimpleNamespace(layout=RecordingLayout(calls)), bpy.context)
    texts = [keywords.get("text", "") for name, _, keywords in calls if name == "label"]
    return [text for text in texts if "plausible region" in text]


def test_slider_undo_restores_positions_and_shape(glue) -> None:
    obj = add_body_with_default_mapper()
    name = obj.name
    bpy.ops.ed.undo_push(message="loaded")
    before = (positions_of(obj), weights_of(obj).copy(), evaluated_vertices(obj))
    obj.semantify.sliders["hips"].position = 0.95
    bpy.ops.ed.undo_push(message="slider")
    assert not np.allclose(evaluated_vertices(obj), before[2], atol=1e-4)
    bpy.ops.ed.undo()
    obj = bpy.data.objects[name]  # undo rebuilt the data: old references are gone
    assert np.array_equal(positions_of(obj), before[0]) and np.array_equal(weights_of(obj), before[1])
    assert np.abs(evaluated_vertices(obj) - before[2]).max() < 1e-6


def test_save_and_reload_with_a_default_mapper(glue, tmp_path: Path) -> None:
    obj = add_body_with_default_mapper()
    obj.semantify.sliders["chest"].position = 0.7
    saved = (positions_of(obj), evaluated_vertices(obj), obj.name)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "body.blend"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module=MODULE)
    glue.sliders.clear_cache()
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "body.blend"))
    obj = bpy.data.objects[saved[2]]
    assert np.allclose(positions_of(obj), saved[0])
    assert np.abs(evaluated_vertices(obj) - saved[1]).max() < 1e-6
    obj.semantify.sliders["chest"].position = 0.3  # the shipped mapper is found again by reference
    assert obj.semantify.status == "" and not np.allclose(evaluated_vertices(obj), saved[1], atol=1e-4)


def test_positions_and_ranges_are_checked_where_they_are_stored(glue, tmp_path: Path) -> None:
    """A NaN position used to be stored, saved and keyed; a NaN value sent the slider to its low end; a
    range typed by hand (low = inf) showed 2.4e38 m. Now the slider keeps its place and ranges are the
    mapper's alone, before and after a save."""
    obj = add_body_with_default_mapper()
    waist = obj.semantify.sliders["waist"]
    waist.position = 0.25
    shown = evaluated_vertices(obj)
    ranges = (waist.low, waist.high, waist.default, waist.data_low, waist.data_high)
    for attribute in ("position", "value"):
        setattr(waist, attribute, float("nan"))  # Blender prints the setter's ValueError and keeps the old
        assert waist.position == pytest.approx(0.25), attribute
    waist.value = 1e9  # past the end: held at the end, as a typed value is
    assert waist.position == 1.0
    waist.position = 0.25
    for name in ("low", "high", "default", "data_low", "data_high"):
        with pytest.raises(AttributeError, match="read-only"):
            setattr(waist, name, float("inf"))
    assert (waist.low, waist.high, waist.default, waist.data_low, waist.data_high) == ranges
    assert np.abs(evaluated_vertices(obj) - shown).max() < 1e-6
    name = obj.name
    obj.keyframe_insert(data_path='semantify.sliders["waist"].position', frame=1)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "checked.blend"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "checked.blend"))
    reopened = bpy.data.objects[name].semantify.sliders["waist"]
    assert reopened.position == pytest.approx(0.25)
    assert (reopened.low, reopened.high, reopened.default, reopened.data_low, reopened.data_high) == ranges
