"""Writing an armature's rest bones: entering Edit Mode and leaving it as it was, in one block.

Blender offers no way to move a rest bone outside Edit Mode (``Bone.head_local`` is read only), so moving
joints (:mod:`.rig`) and building an armature (:mod:`.rig_build`) both go through :func:`editing_bones`,
which enters Edit Mode on the armature, hands over its edit bones and puts back the active object, the
armature's mode (Object or Pose), its visibility and the selection. :func:`_set_mode` skips ``bpy.ops``'
own depsgraph updates, which would evaluate the skinned mesh twice more on every joint update.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import bpy
import numpy as np

from .engine import import_engine


@contextlib.contextmanager
def editing_bones(context: Any, armature: bpy.types.Object) -> Iterator[bpy.types.ArmatureEditBones]:
    """The armature's edit bones, entering and leaving Edit Mode around the block if it is not in it.

    ``mode_set`` acts on the view layer's active object (a context override alone is not enough), and
    entering Edit Mode takes every *selected* armature along (multi-object editing). So the armature is
    made active, other selected armatures are deselected, and all of it is put back afterwards, together
    with the armature's own mode (Object or Pose) and its viewport visibility. Raises ``ModeBusy`` when
    the current mode forbids leaving it (another object in Edit, Sculpt or Paint Mode).
    """
    if armature.mode == "EDIT":
        yield armature.data.edit_bones
        return
    view_layer = context.view_layer
    active = view_layer.objects.active
    if context.mode not in ("OBJECT", "POSE") or (context.mode == "POSE" and active != armature):
        raise import_engine("errors").ModeBusy(
            f"joints move in Object or Pose Mode; '{active.name}' is in {context.mode}"
        )
    if view_layer.objects.get(armature.name) is None:
        raise import_engine("errors").SemantifyError(
            f"The armature '{armature.name}' is not in the view layer '{view_layer.name}' (its collection is "
            "excluded or unlinked), so its joints cannot be moved. Include it, then press Update Joints."
        )
    previous_mode = armature.mode
    others = [obj for obj in view_layer.objects.selected if obj.type == "ARMATURE" and obj != armature]
    hidden = armature.hide_viewport
    for other in others:
        other.select_set(False)
    if hidden:  # only when needed: changing it rebuilds the depsgraph's relations
        armature.hide_viewport = False
    view_layer.objects.active = armature
    try:
        _set_mode("EDIT")
        try:
            yield armature.data.edit_bones
        finally:
            _set_mode(previous_mode)
    finally:
        view_layer.objects.active = active
        if hidden:
            armature.hide_viewport = True
        for other in others:
            other.select_set(True)


def _set_mode(mode: str) -> None:
    """``bpy.ops.object.mode_set`` on the active object, without ``bpy.ops``' two depsgraph updates.

    ``bpy.ops`` evaluates the view layer before and after every operator. Around a joint update that
    means evaluating the skinned mesh twice more (once with the new shape and the old bones, once with
    both), about 6 ms of the bundled body's 9; calling the operator directly leaves one evaluation, of
    the final state, to Blender's next redraw. Falls back to ``bpy.ops`` if the direct call is gone.
    """
    call = getattr(getattr(_bpy_module(), "ops", None), "call", None)
    try:
        result = call("object.mode_set", {"mode": mode}) if call else bpy.ops.object.mode_set(mode=mode)
    except RuntimeError as error:  # the operator's poll refused (a linked or hidden armature, say)
        result = {"CANCELLED"}
        reason = str(error).strip()
    else:
        reason = ""
    if "FINISHED" not in result:
        raise import_engine("errors").SemantifyError(
            f"Blender refused to switch the armature to {mode.title()} Mode{': ' + reason if reason else ''}."
        )


def _bpy_module() -> Any:
    try:
        import _bpy
    except ImportError:  # not inside Blender's Python
        return None
    return _bpy


def write_bone_ends(edit_bones: Any, names: tuple[str, ...], heads: np.ndarray, tails: np.ndarray) -> int:
    """Set the ends of the bones named ``names`` (others keep theirs); returns how many were found."""
    order = {bone.name: index for index, bone in enumerate(edit_bones)}
    rows = np.array([order.get(name, -1) for name in names], dtype=np.int64)
    found = rows >= 0
    for attribute, values in (("head", heads), ("tail", tails)):
        current = np.empty(len(order) * 3, dtype=np.float32)
        edit_bones.foreach_get(attribute, current)
        current = current.reshape(-1, 3)
        current[rows[found]] = values[found]
        edit_bones.foreach_set(attribute, current.ravel())
    return int(found.sum())
