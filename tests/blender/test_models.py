"""Adding models: one named shape key per component, undo, and a bad model file.

Headless, operators called from Python push no undo step (a user's click does): the tests check the UNDO
flag on every scene-changing operator and that Blender's undo restores the scene around them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.blender import MODULE, evaluated_vertices

from semantify_engine.models import load

bpy = pytest.importorskip("bpy")

SCENE_CHANGING = (
    "add_model",
    "add_model_file",
    "use_mesh",
    "load_mapper",
    "load_default_mapper",
    "reset_sliders",
    "randomise_sliders",
    "keyframe_sliders",
    "remove_mapper",
    "bake_shape_key",
    "apply_shape",
    "build_mapper",
    "add_word",
)


# -------------------------------------------------------------------------------------------- models
def test_added_body_has_one_named_shape_key_per_component_and_evaluates_like_the_model(glue) -> None:
    model = load("anny-body")
    engine_package = glue.engine.ENGINE_PACKAGE
    assert engine_package == MODULE + ".semantify_engine"  # the bundled engine, not the checkout's
    assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    obj = bpy.context.active_object
    blocks = obj.data.shape_keys.key_blocks
    assert [block.name for block in blocks] == ["Basis", *model.component_names]
    state = obj.semantify
    assert (state.model_name, state.model_checksum) == (model.name, model.checksum())
    assert (state.vertex_count, state.component_count) == (model.vertex_count, model.component_count)
    assert np.allclose(evaluated_vertices(obj), model.template, atol=1e-6)  # weights start at 0
    c = np.random.default_rng(1).normal(0.0, 1.5, size=model.component_count).astype(np.float32)
    blocks.foreach_set("value", np.concatenate([[1.0], c]).astype(np.float32))
    obj.data.shape_keys.update_tag()
    assert np.abs(evaluated_vertices(obj) - model.vertices(c)).max() < 1e-5


def test_scene_changing_operators_support_undo_and_undo_restores_the_scene(glue) -> None:
    for name in SCENE_CHANGING:
        operator_class = getattr(bpy.types, f"SEMANTIFY_OT_{name}")
        assert "UNDO" in operator_class.bl_options, name
        # Background jobs offer no redo panel: redoing would run the whole build again.
        assert ("REGISTER" in operator_class.bl_options) != (name in ("build_mapper", "add_word")), name
    assert "UNDO" not in bpy.types.SEMANTIFY_OT_export_model.bl_options  # writes a file, changes nothing
    bpy.ops.ed.undo_push(message="before")  # headless, undo starts only on an explicit push
    assert bpy.ops.semantify.add_model(model="anny-face-expression") == {"FINISHED"}
    bpy.ops.ed.undo_push(message="after add")
    assert [obj.name for obj in bpy.data.objects] == ["anny-face-expression"]
    bpy.ops.ed.undo()
    assert len(bpy.data.objects) == 0 and len(bpy.data.meshes) == 0 and len(bpy.data.shape_keys) == 0
    bpy.ops.ed.redo()
    obj = bpy.data.objects["anny-face-expression"]
    assert len(obj.data.shape_keys.key_blocks) == 53 and obj.semantify.model_name == "anny-face-expression"


def test_unknown_model_file_is_reported_and_nothing_is_added(glue, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.semantify.add_model_file(filepath=str(tmp_path / "missing.npz"))
    assert len(bpy.data.objects) == 0
