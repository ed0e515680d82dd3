"""Keep a shape the sliders made: bake it to a shape key, or apply it to the mesh.

- **Bake Shape Key** adds one shape key holding the current mix (Blender's own "New Shape from Mix"), named
  after the slider values, after the component keys (key ``k + 1`` stays component ``k``). Its weight is
  0, so nothing changes on screen; set it to 1 on a copy whose sliders are reset, drive it, or export it as
  a morph target.
- **Apply Shape** makes the current shape the mesh itself: Semantify's keys (the basis and the component
  keys) go, the vertices keep the shape, and the object stops being a Semantify model (its sliders and
  their keyframes go too). Shape keys that are not Semantify's (baked ones, the artist's own) stay and keep
  their meaning: each keeps its offset, now on top of the applied shape.

Both are undoable. Exporting for another tool is *Export Character* (:mod:`.export`): Blender's exporters
at their defaults lose the pose (glTF), skin influences past 4, and the shape itself (USD), so its presets
prepare a copy of the character for each target.
"""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np

from . import polls, sliders
from .model_objects import key_coordinates
from .operator_base import UNDOABLE, SemantifyOperator

MAX_KEY_NAME = 63  # Blender names hold 63 bytes


def baked_key_name(obj: bpy.types.Object) -> str:
    """``height=1.71 chest=0.958 ...``: the slider values the key was baked at (shortened to fit)."""
    parts = [f"{slider.name}={slider.value:.3g}" for slider in obj.semantify.sliders]
    name = " ".join(parts) or "Semantify shape"
    encoded = name.encode("utf-8")[:MAX_KEY_NAME]
    return encoded.decode("utf-8", errors="ignore")


def bake_shape_key(obj: bpy.types.Object) -> bpy.types.ShapeKey:
    """A new shape key holding the current mix, weight 0, after every existing key."""
    block = obj.shape_key_add(name=baked_key_name(obj), from_mix=True)
    block.value = 0.0
    block.slider_min, block.slider_max = 0.0, 1.0
    return block


def current_shape(obj: bpy.types.Object) -> np.ndarray:
    """The shape-key mix as Blender evaluates it ``(V, 3)`` (vertex groups, relative keys, mutes)."""
    temporary = obj.shape_key_add(name="semantify-temporary-mix", from_mix=True)
    try:
        return key_coordinates(temporary)
    finally:
        obj.shape_key_remove(temporary)


def apply_shape(obj: bpy.types.Object) -> int:
    """Make the current shape the mesh; remove Semantify's keys and state. Returns the keys kept."""
    mix = current_shape(obj)
    blocks = obj.data.shape_keys.key_blocks
    component_count = obj.semantify.component_count
    basis = key_coordinates(blocks[0])
    ours = {blocks[index].name for index in range(1, min(len(blocks), component_count + 1))}
    shift = mix - basis  # every kept key moves by this: its offset to any other key is unchanged
    kept = [block for block in blocks[1:] if block.name not in ours]
    for block in kept:
        block.data.foreach_set("co", (key_coordinates(block) + shift).astype(np.float32).ravel())
    for name in ours:
        obj.shape_key_remove(obj.data.shape_keys.key_blocks[name])
    if kept:
        obj.data.shape_keys.key_blocks[0].data.foreach_set("co", mix.astype(np.float32).ravel())
        obj.data.shape_keys.update_tag()  # foreach_set sends no update
    else:
        obj.shape_key_clear()
    obj.data.vertices.foreach_set("co", mix.astype(np.float32).ravel())
    obj.data.update()
    forget_semantify(obj)
    return len(kept)


def forget_semantify(obj: bpy.types.Object) -> None:
    """The object is a plain mesh again: no identity, mapper, sliders, or slider keyframes."""
    remove_slider_keyframes(obj)
    state = obj.semantify
    with sliders.suspended():
        state.sliders.clear()
        for name in ("mapper_path", "mapper_checksum", "status", "model_name", "model_kind", "model_source"):
            setattr(state, name, "")
        state.model_checksum = ""
        state.vertex_count = 0
        state.component_count = 0


def remove_slider_keyframes(obj: bpy.types.Object) -> None:
    """Delete the F-curves that animate the sliders (other animation of the object stays)."""
    animation = obj.animation_data
    if animation is None or animation.action is None:
        return
    from bpy_extras import anim_utils

    channelbag = anim_utils.animdata_get_channelbag_for_assigned_slot(animation)
    if channelbag is None:
        return
    for curve in [curve for curve in channelbag.fcurves if curve.data_path.startswith("semantify.")]:
        channelbag.fcurves.remove(curve)


class SEMANTIFY_OT_bake_shape_key(SemantifyOperator):
    """Add a shape key holding the current shape, named after the slider values (weight 0)"""

    bl_idname = "semantify.bake_shape_key"
    bl_label = "Bake Shape Key"
    bl_options = UNDOABLE
    needs = (polls.MODEL_WITH_SHAPE_KEYS,)  # a Semantify model whose shape keys carry its shape

    def run(self, context: Any) -> set[str]:
        block = bake_shape_key(context.active_object)
        self.report({"INFO"}, f"Baked the current shape to shape key '{block.name}'")
        return {"FINISHED"}


class SEMANTIFY_OT_apply_shape(SemantifyOperator):
    """Make the current shape the mesh itself: remove Semantify's shape keys, sliders and mapper"""

    bl_idname = "semantify.apply_shape"
    bl_label = "Apply Shape"
    bl_options = UNDOABLE
    needs = (polls.MODEL_WITH_SHAPE_KEYS,)

    def invoke(self, context: Any, event: Any) -> set[str]:
        return context.window_manager.invoke_confirm(
            self, event, message="Apply the shape? The sliders go; the shape stays (undo brings them back)"
        )

    def run(self, context: Any) -> set[str]:
        obj = context.active_object
        kept = apply_shape(obj)
        note = f"; kept {kept} other shape key(s)" if kept else ""
        self.report({"INFO"}, f"Applied the shape to '{obj.name}'{note}")
        return {"FINISHED"}


CLASSES: tuple[type, ...] = (SEMANTIFY_OT_bake_shape_key, SEMANTIFY_OT_apply_shape)
