"""Rig operators: add a rigged character, move its joints now, make a user's own rig follow its shape.

Kept apart from :mod:`.rig` (the glue they call) because :mod:`.sliders` imports :mod:`.rig` for its
shape-change hook, and these operators reuse :mod:`.operators` (which imports :mod:`.sliders`).
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import EnumProperty, IntProperty

from . import rig
from .engine import import_engine
from .operators import UNDOABLE, _failed, _model_items
from .preferences import user_model_dir


def _object_mode(cls: type, context: Any) -> bool:
    if context.mode != "OBJECT":
        cls.poll_message_set("Switch to Object Mode first")
        return False
    return True


class SEMANTIFY_OT_add_rigged_character(bpy.types.Operator):
    """Add a model as a skinned mesh on an armature with its skeleton; the joints follow the shape"""

    bl_idname = "semantify.add_rigged_character"
    bl_label = "Add Rigged Character"
    bl_options = UNDOABLE

    model: EnumProperty(
        name="Model",
        description="A model with a skeleton: a bundled body, or one of your SMPL-family models",
        items=_model_items,
    )
    influences: IntProperty(
        name="Influences per Vertex",
        description=(
            "At most this many bones move each vertex (4: game-ready, what Unity and three.js read); "
            "0 keeps the model's own skin (up to 9 bones on the bundled bodies)"
        ),
        default=0,
        min=0,
        max=16,
    )

    @classmethod
    def poll(cls, context: Any) -> bool:
        return _object_mode(cls, context)

    def execute(self, context: Any) -> set[str]:
        errors = import_engine("errors")
        registry = import_engine("models.registry")
        try:  # loading and checking the skeleton both happen before the scene is touched
            model = registry.load(self.model, model_dir=user_model_dir(context))
            rig.check_riggable(model)
        except errors.SemantifyError as error:
            return _failed(self, error)
        obj, armature = rig.create_rigged_character(context, model, self.model, self.influences)
        bones = len(armature.data.bones)
        self.report({"INFO"}, f"Added '{obj.name}' on '{armature.name}': {bones} bones following the shape")
        return {"FINISHED"}


class SEMANTIFY_OT_update_joints(bpy.types.Operator):
    """Move the armature's joints to the current shape (the pose is kept); for when Follow Shape is off"""

    bl_idname = "semantify.update_joints"
    bl_label = "Update Joints"
    bl_options = UNDOABLE

    @classmethod
    def poll(cls, context: Any) -> bool:
        if rig.rigged_mesh_of(context.active_object) is None:
            cls.poll_message_set("Select a rigged character (Add Rigged Character, or Follow My Rig)")
            return False
        if context.mode not in ("OBJECT", "POSE"):
            cls.poll_message_set("Switch to Object or Pose Mode first")
            return False
        return True

    def execute(self, context: Any) -> set[str]:
        errors = import_engine("errors")
        obj = rig.rigged_mesh_of(context.active_object)
        try:
            moved = rig.update_joints(context, obj)
        except (errors.SemantifyError, rig.ModeBusy) as error:
            return _failed(self, error)
        obj.semantify.rig_status = ""
        self.report(
            {"INFO"}, f"Moved {moved} joints of '{rig.armature_of(obj).name}' to the shape of '{obj.name}'"
        )
        return {"FINISHED"}


class SEMANTIFY_OT_follow_my_rig(bpy.types.Operator):
    """Make the bones of this mesh's armature follow its shape keys: each bone end moves with the vertices
    around it (weights computed now, on the current shape and bones)"""

    bl_idname = "semantify.follow_my_rig"
    bl_label = "Follow My Rig"
    bl_options = UNDOABLE

    @classmethod
    def poll(cls, context: Any) -> bool:
        if not rig.can_follow_own_rig(context.active_object):
            cls.poll_message_set("Select a mesh with shape keys and an Armature modifier")
            return False
        return _object_mode(cls, context)

    def execute(self, context: Any) -> set[str]:
        errors = import_engine("errors")
        obj = context.active_object
        try:
            layout, misfit = rig.follow_own_rig(obj)
        except errors.SemantifyError as error:
            return _failed(self, error)
        if misfit > 0:
            self.report(
                {"WARNING"},
                f"Some bone ends lie {misfit:.3g} off what their vertices can reproduce (too flat around); "
                "they follow the shape with that offset kept",
            )
        self.report(
            {"INFO"}, f"{layout.bone_count} bones of '{rig.armature_of(obj).name}' follow '{obj.name}'"
        )
        return {"FINISHED"}


CLASSES: tuple[type, ...] = (
    SEMANTIFY_OT_add_rigged_character,
    SEMANTIFY_OT_update_joints,
    SEMANTIFY_OT_follow_my_rig,
)
