"""Every sidebar operator with random property values: when it refuses, the scene is as it was.

Hypothesis picks an operator and values for its properties (enums with names that exist and names that
do not, numbers from the absurd to the sensible, NaN and infinities, file paths that are missing,
folders, empty, damaged or of another model), runs it on a scene holding a body with its default
mapper and a rigged character, and checks that whenever the operator does not finish (it returns
CANCELLED, or Blender raises: a refusal, an invalid enum), nothing in the scene, its data or the files
beside it changed. Operators that only start background work are left out: their refusals are tested
where their jobs are (they start real processes).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

bpy = pytest.importorskip("bpy")

FUZZED = (
    "add_model",
    "add_model_file",
    "add_rigged_character",
    "add_word",
    "apply_shape",
    "bake_shape_key",
    "export_character",
    "export_model",
    "fit_measurements",
    "fit_photo",
    "fit_text",
    "follow_my_rig",
    "keyframe_sliders",
    "load_default_mapper",
    "load_mapper",
    "randomise_sliders",
    "remove_mapper",
    "reset_sliders",
    "update_joints",
    "use_local_weights",
    "use_mesh",
)
FILES = tempfile.mkdtemp(prefix="semantify-fuzz-files-")


def hostile_files() -> list[str]:
    """Paths a user might pick by mistake: missing, a folder, empty, damaged, another model's mapper."""
    root = Path(FILES)
    (root / "empty.npz").write_bytes(b"")
    (root / "damaged.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (root / "folder").mkdir(exist_ok=True)
    from semantify_engine.mapper.defaults import DEFAULT_MAPPER_DIR

    foreign = DEFAULT_MAPPER_DIR / "anny-head-shape-measurements.npz"  # a mapper for another model
    names = ("missing.npz", "folder", "empty.npz", "damaged.npz", "photo.png", "out.glb")
    return [*(str(root / name) for name in names), str(foreign), "", "//relative.npz"]


def values_for(prop) -> st.SearchStrategy:
    if prop.type == "ENUM":
        items = [item.identifier for item in prop.enum_items] or ["anny-body"]
        return st.sampled_from([*items, "no-such-item"])
    if prop.type == "INT":
        return st.integers(-(2**31), 2**31 - 1) | st.integers(-5, 70000)
    if prop.type == "FLOAT":
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if prop.type == "BOOLEAN":
        return st.booleans()
    if prop.identifier in ("filepath", "dataset"):
        return st.sampled_from(hostile_files())
    return st.text(max_size=40)


def calls() -> st.SearchStrategy:
    def for_operator(name: str) -> st.SearchStrategy:
        rna = getattr(bpy.ops.semantify, name).get_rna_type()
        props = {
            p.identifier: values_for(p)
            for p in rna.properties
            if p.identifier not in ("rna_type", "filter_glob")
        }
        return st.fixed_dictionaries({}, optional=props).map(lambda values: (name, values))

    return st.sampled_from(FUZZED).flatmap(for_operator)


def snapshot() -> tuple:
    """The scene, its data and the files a refused operator must leave alone."""
    objects = []
    for obj in sorted(bpy.data.objects, key=lambda o: o.name):
        entry: list = [obj.name, obj.type, obj.parent.name if obj.parent else ""]
        if obj.type == "MESH":
            keys = obj.data.shape_keys
            entry.append([round(block.value, 6) for block in keys.key_blocks] if keys else None)
            entry.append([round(slider.position, 6) for slider in obj.semantify.sliders])
            entry.append(obj.semantify.mapper_path)
            entry.append(len(obj.vertex_groups))
        if obj.type == "ARMATURE":
            entry.append([tuple(round(c, 6) for c in bone.head_local) for bone in obj.data.bones])
        objects.append(tuple(map(str, entry)))
    data = tuple(len(collection) for collection in (bpy.data.meshes, bpy.data.armatures, bpy.data.actions))
    files = sorted(path.name for path in Path(FILES).iterdir())
    return tuple(objects), data, tuple(files)


def scene(glue) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.ops.preferences.addon_enable(module=glue.__name__.rpartition(".")[0]) == {"FINISHED"}
    assert bpy.ops.semantify.add_rigged_character(model="anny-body") == {"FINISHED"}
    assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-body-measurements") == {"FINISHED"}


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(call=calls())
def test_an_operator_that_does_not_finish_changes_nothing(glue, call) -> None:
    name, values = call
    scene(glue)
    before = snapshot()
    working = os.getcwd()
    os.chdir(
        FILES
    )  # "//name" in an unsaved file is relative to the working folder: keep it out of the checkout
    try:
        result = getattr(bpy.ops.semantify, name)("EXEC_DEFAULT", **values)
    except (RuntimeError, TypeError, ValueError, OverflowError):
        result = {"CANCELLED"}  # refused by the operator (a report) or by Blender (an invalid value)
    finally:
        os.chdir(working)
    if result != {"FINISHED"}:
        assert snapshot() == before, (name, values)
    if name == "randomise_sliders" and result == {"FINISHED"}:
        obj = bpy.context.active_object
        positions = [slider.position for slider in obj.semantify.sliders]
        assert all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in positions), (values, positions)
        assert np.all(np.isfinite([block.value for block in obj.data.shape_keys.key_blocks]))
