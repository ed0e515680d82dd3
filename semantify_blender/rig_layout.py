"""What a rig is, read from the scene: the armature deforming a mesh, and the bone layout stored on it.

A Semantify rig is a mesh with an Armature modifier and a :class:`semantify_engine.rig.bones.BoneLayout`
kept as ID properties under ``object.semantify["rig"]`` (so a saved .blend needs no model file to keep
following). These are reads only: the sidebar's polls and draws call them on every redraw, and moving
joints (:mod:`.rig`), building rigs (:mod:`.rig_build`) and exporting (:mod:`.export`) share them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import bpy
import numpy as np

from .engine import import_engine

if TYPE_CHECKING:
    from semantify_engine.rig.bones import BoneLayout

RIG_KEY = "rig"  # object.semantify[RIG_KEY]: the stored bone layout


# ------------------------------------------------------------------------------------------ queries
def armature_of(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The armature deforming ``obj``: the object of its first Armature modifier that has one."""
    if obj is None or obj.type != "MESH":
        return None
    for modifier in obj.modifiers:
        if modifier.type == "ARMATURE" and modifier.object is not None:
            return modifier.object
    return None


def is_rigged(obj: bpy.types.Object | None) -> bool:
    """True for a mesh whose joints Semantify can move: a stored layout and an armature to move."""
    return (
        obj is not None and obj.type == "MESH" and RIG_KEY in obj.semantify and armature_of(obj) is not None
    )


def rigged_mesh_of(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The rigged mesh for the sidebar: ``obj`` itself, or for an armature a mesh that it deforms."""
    if obj is None:
        return None
    if obj.type == "MESH":
        return obj if is_rigged(obj) else None
    if obj.type == "ARMATURE":
        for child in obj.children:
            if is_rigged(child) and armature_of(child) == obj:
                return child
    return None


def can_follow_own_rig(obj: bpy.types.Object | None) -> bool:
    """A user's rigged mesh: shape keys (a basis and one more) and an Armature modifier with an armature."""
    if obj is None or obj.type != "MESH" or armature_of(obj) is None:
        return False
    key = obj.data.shape_keys
    return key is not None and len(key.key_blocks) >= 2


# ---------------------------------------------------------------------------------- stored layout
def store_layout(obj: bpy.types.Object, layout: BoneLayout, source: str) -> None:
    """Keep the layout on the object (saved in the .blend, restored by undo)."""
    obj.semantify[RIG_KEY] = {
        "source": source,
        "names": list(layout.names),
        "parents": layout.parents.astype(np.int32),
        "head_template": np.ascontiguousarray(layout.head_template).ravel(),
        "head_basis": np.ascontiguousarray(layout.head_basis).ravel(),
        "tail_template": np.ascontiguousarray(layout.tail_template).ravel(),
        "tail_basis": np.ascontiguousarray(layout.tail_basis).ravel(),
    }


def stored_layout(obj: bpy.types.Object) -> BoneLayout | None:
    """The layout stored on ``obj`` (None if it has none)."""
    group = obj.semantify.get(RIG_KEY)
    if group is None:
        return None
    bones = import_engine("rig.bones")
    return bones.BoneLayout(
        names=tuple(group["names"]),
        parents=np.asarray(group["parents"]),
        head_template=np.asarray(group["head_template"]),
        head_basis=np.asarray(group["head_basis"]),
        tail_template=np.asarray(group["tail_template"]),
        tail_basis=np.asarray(group["tail_basis"]),
    )


# ------------------------------------------------------------------------------ shape and placement
def shape_weights(obj: bpy.types.Object, count: int) -> np.ndarray:
    """The weights of component keys 1..count as Blender uses them (a muted key counts as 0)."""
    key = obj.data.shape_keys
    weights = np.zeros(count, dtype=np.float64)
    if key is None:
        return weights
    blocks = key.key_blocks
    values = np.empty(len(blocks), dtype=np.float32)
    muted = np.empty(len(blocks), dtype=bool)
    blocks.foreach_get("value", values)
    blocks.foreach_get("mute", muted)
    values[muted] = 0.0
    used = min(count, len(blocks) - 1)
    weights[:used] = values[1 : 1 + used]
    return weights


def mesh_to_armature(obj: bpy.types.Object, armature: bpy.types.Object) -> np.ndarray:
    """The 4×4 map from the mesh's object space to the armature's (where edit bones live).

    For a mesh parented to its armature this is read from the parenting alone, so it is right even
    before the depsgraph has updated ``matrix_world`` (a script that parents and shapes in one go).
    """
    if obj.parent == armature and obj.parent_type == "OBJECT":
        matrix = obj.matrix_parent_inverse @ obj.matrix_basis
    else:
        matrix = armature.matrix_world.inverted() @ obj.matrix_world
    return np.array(matrix, dtype=np.float64)
