"""Keeping the shape: bake it into a shape key, or apply it and remove Semantify."""

from __future__ import annotations

import numpy as np
import pytest
from support.blender import add_body_with_default_mapper, evaluated_vertices

bpy = pytest.importorskip("bpy")


# ----------------------------------------------------------------------------------- keep the shape
def test_bake_shape_key_holds_the_evaluated_shape(glue) -> None:
    obj = add_body_with_default_mapper()
    obj.semantify.sliders["height"].position = 0.9
    shown = evaluated_vertices(obj)
    assert bpy.ops.semantify.bake_shape_key() == {"FINISHED"}
    blocks = obj.data.shape_keys.key_blocks
    baked = blocks[-1]
    assert len(blocks) == 1 + obj.semantify.component_count + 1  # after the components: key k+1 is still k
    height = obj.semantify.sliders["height"]
    assert baked.name.startswith(f"height={height.low + 0.9 * (height.high - height.low):.3g} ")
    assert "hips=" in baked.name and baked.value == 0.0
    coordinates = np.empty(len(baked.data) * 3, dtype=np.float32)
    baked.data.foreach_get("co", coordinates)
    assert np.abs(coordinates.reshape(-1, 3) - shown).max() < 1e-5
    assert np.abs(evaluated_vertices(obj) - shown).max() < 1e-6  # baking changes nothing on screen


def test_apply_shape_keeps_the_shape_and_removes_semantify_and_undo_restores(glue) -> None:
    obj = add_body_with_default_mapper()
    name = obj.name
    obj.semantify.sliders["waist"].position = 0.8
    bpy.ops.semantify.keyframe_sliders()
    shown = evaluated_vertices(obj)
    bpy.ops.ed.undo_push(message="before apply")
    assert bpy.ops.semantify.apply_shape() == {"FINISHED"}
    bpy.ops.ed.undo_push(message="after apply")
    assert obj.data.shape_keys is None
    assert not obj.semantify.is_model and not len(obj.semantify.sliders) and obj.semantify.mapper_path == ""
    assert np.abs(evaluated_vertices(obj) - shown).max() < 1e-5
    coordinates = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
    obj.data.vertices.foreach_get("co", coordinates)
    assert np.abs(coordinates.reshape(-1, 3) - shown).max() < 1e-5  # the mesh itself holds the shape
    from bpy_extras import anim_utils

    curves = anim_utils.animdata_get_channelbag_for_assigned_slot(obj.animation_data).fcurves
    assert not [curve for curve in curves if curve.data_path.startswith("semantify.")]
    bpy.ops.ed.undo()
    obj = bpy.data.objects[name]
    assert len(obj.data.shape_keys.key_blocks) == 1 + obj.semantify.component_count == 51
    assert len(obj.semantify.sliders) == 4
    assert np.abs(evaluated_vertices(obj) - shown).max() < 1e-6


def test_apply_shape_keeps_other_keys_as_offsets_on_the_applied_shape(glue) -> None:
    obj = add_body_with_default_mapper()
    obj.semantify.sliders["height"].position = 0.1
    bpy.ops.semantify.bake_shape_key()
    extra = obj.shape_key_add(name="nose", from_mix=False)
    offset = np.zeros((len(obj.data.vertices), 3), dtype=np.float32)
    offset[:50, 1] = -0.01
    basis = np.empty(offset.size, dtype=np.float32)
    obj.data.shape_keys.key_blocks[0].data.foreach_get("co", basis)
    extra.data.foreach_set("co", (basis.reshape(-1, 3) + offset).ravel())
    extra.value = 0.0
    obj.data.shape_keys.update_tag()
    shown = evaluated_vertices(obj)
    bpy.ops.semantify.apply_shape()
    assert [block.name for block in obj.data.shape_keys.key_blocks][1:] == [
        obj.data.shape_keys.key_blocks[1].name,
        "nose",
    ]
    assert np.abs(evaluated_vertices(obj) - shown).max() < 1e-5
    obj.data.shape_keys.key_blocks["nose"].value = 1.0
    obj.data.shape_keys.update_tag()
    assert np.abs(evaluated_vertices(obj) - (shown + offset)).max() < 1e-5
