"""Building rigs: a rigged character from a model's skeleton, or a user's own rig made to follow its shape.

A rigged character is the model's mesh (shape keys = components, :mod:`.model_objects`) parented to an
armature with one bone per skeleton joint, one vertex group per bone holding the model's non-zero skin
weights, and an Armature modifier using vertex groups only with *linear* blending (not Preserve Volume),
which is exactly the engine's linear blend skinning (:mod:`semantify_engine.rig.skinning`). Either way the
mesh ends with a stored bone layout and Follow Shape on (:func:`.rig.start_following`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bpy
import numpy as np

from . import model_objects, rig
from .engine import import_engine
from .rig_edit import editing_bones, write_bone_ends
from .rig_layout import armature_of, mesh_to_armature, shape_weights

if TYPE_CHECKING:
    from semantify_engine.models.linear import LinearMorphableModel
    from semantify_engine.rig.bones import BoneLayout

SKELETON_SOURCE = "skeleton"  # bones from the model's own skeleton (bundled, SMPL family)
VERTICES_SOURCE = "vertices"  # a user's rig whose bone ends follow the vertices around them
MAX_NAME_BYTES = 63


# ------------------------------------------------------------------------------ building the rig
def check_riggable(model: LinearMorphableModel) -> BoneLayout:
    """The model's bone layout, or a clear error before anything in the scene is touched."""
    errors = import_engine("errors")
    if model.skeleton is None:
        raise errors.ModelFileError(
            f"Model '{model.name}' has no skeleton, so it cannot be rigged. Rigged characters need a model "
            "with joints and skin weights: the bundled bodies (anny-body, anny-body-male, anny-body-female) "
            "or an SMPL-family model. Use Add Model for this one."
        )
    long = [name for name in model.skeleton.names if len(name.encode("utf-8")) > MAX_NAME_BYTES]
    if long or len(set(model.skeleton.names)) != len(model.skeleton.names):
        raise errors.ModelFileError(
            f"Model '{model.name}' has joint names Blender cannot use as bone names (duplicated, or longer "
            f"than {MAX_NAME_BYTES} bytes: {', '.join(long[:3])})."
        )
    return import_engine("rig.bones").layout_from_skeleton(model.skeleton)


def create_rigged_character(
    context: Any, model: LinearMorphableModel, source: str, influences: int = 0
) -> tuple[bpy.types.Object, bpy.types.Object]:
    """The model's mesh (shape keys) skinned to a new armature with its skeleton; the mesh is made active.

    ``influences`` > 0 keeps at most that many bones per vertex (game-ready: 4), renormalised.
    """
    layout = check_riggable(model)
    weights = model.skeleton.skin_weights
    if influences > 0:
        weights = import_engine("rig.skinning").limit_influences(weights, influences)
    obj = model_objects.create_model_object(context, model, source)
    armature = build_armature(context, f"{model.name} rig", layout, obj.users_collection[0])
    armature.location = obj.location
    obj.parent = armature
    obj.matrix_parent_inverse.identity()
    obj.location = (0.0, 0.0, 0.0)
    add_skin(obj, armature, layout.names, weights)
    rig.start_following(obj, layout, SKELETON_SOURCE)
    context.view_layer.objects.active = obj
    return obj, armature


def build_armature(
    context: Any, name: str, layout: BoneLayout, collection: bpy.types.Collection
) -> bpy.types.Object:
    """An armature object with one bone per layout bone at the template's ends (roll 0, not connected)."""
    data = bpy.data.armatures.new(name)
    data.display_type = "STICK"  # thin enough to see the body through, shown in front of it
    armature = bpy.data.objects.new(name, data)
    armature.show_in_front = True
    collection.objects.link(armature)
    with editing_bones(context, armature) as edit_bones:
        created = [edit_bones.new(bone_name) for bone_name in layout.names]
        for bone, parent in zip(created, layout.parents.tolist(), strict=True):
            bone.use_connect = False
            bone.parent = created[parent] if parent >= 0 else None
        heads = layout.head_template
        write_bone_ends(edit_bones, layout.names, heads, layout.tails(np.zeros(layout.component_count)))
    return armature


def add_skin(
    obj: bpy.types.Object, armature: bpy.types.Object, names: tuple[str, ...], weights: np.ndarray
) -> None:
    """One vertex group per bone with its non-zero skin weights, and a linear-blending Armature modifier."""
    for column, name in enumerate(names):
        group = obj.vertex_groups.new(name=name)
        rows = np.flatnonzero(weights[:, column] > 0)
        values, which = np.unique(weights[rows, column], return_inverse=True)
        for value_index, value in enumerate(values.tolist()):  # one call per distinct weight
            group.add(rows[which == value_index].tolist(), value, "REPLACE")
    modifier = obj.modifiers.new(name="Armature", type="ARMATURE")
    modifier.object = armature
    modifier.use_vertex_groups = True
    modifier.use_bone_envelopes = False
    modifier.use_deform_preserve_volume = False  # linear blending: the engine's skinning
    modifier.use_multi_modifier = False
    if len(obj.modifiers) > 1:  # first in the stack, right after the shape keys
        obj.modifiers.move(len(obj.modifiers) - 1, 0)


# --------------------------------------------------------------------------------- a user's own rig
def follow_own_rig(obj: bpy.types.Object) -> tuple[BoneLayout, float]:
    """Make the bones of ``obj``'s armature follow its shape keys; returns the layout and its largest misfit.

    Each bone end becomes a fixed combination of the vertices around it, computed at rest: the current
    shape (what the bones were placed on) and the current bone ends, both in the mesh's space.
    """
    regressor = import_engine("rig.regressor")
    bones = import_engine("rig.bones")
    armature = armature_of(obj)
    model = model_objects.model_from_object(obj)
    rest = model.vertices(shape_weights(obj, model.component_count).astype(np.float32)).astype(np.float64)
    to_mesh = np.linalg.inv(mesh_to_armature(obj, armature))
    armature_bones = list(armature.data.bones)
    names = tuple(bone.name for bone in armature_bones)
    index = {name: position for position, name in enumerate(names)}
    parents = np.array([index[b.parent.name] if b.parent else -1 for b in armature_bones], dtype=np.int64)
    ends = np.array([[b.head_local, b.tail_local] for b in armature_bones], dtype=np.float64).reshape(-1, 3)
    ends = (ends @ to_mesh[:3, :3].T + to_mesh[:3, 3]).reshape(-1, 2, 3)
    skin = bone_weights(obj, names)
    heads, tails = regressor.bone_end_regressors(rest, skin, ends[:, 0], ends[:, 1])
    layout = bones.layout_from_regressors(names, parents, model, heads, tails)
    rig.start_following(obj, layout, VERTICES_SOURCE)
    return layout, max(heads.max_offset, tails.max_offset)


def bone_weights(obj: bpy.types.Object, names: tuple[str, ...]) -> np.ndarray:
    """``(V, B)`` weights of the vertex groups named after the bones (0 for a bone without a group)."""
    column_of_group = {
        group.index: names.index(group.name) for group in obj.vertex_groups if group.name in names
    }
    weights = np.zeros((len(obj.data.vertices), len(names)))
    for vertex in obj.data.vertices:
        for element in vertex.groups:
            column = column_of_group.get(element.group)
            if column is not None:
                weights[vertex.index, column] = element.weight
    return weights
