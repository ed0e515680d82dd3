"""Rig operators: add a rigged character, move its joints now, make a user's own rig follow its shape.

They only check their needs and call the glue: :mod:`.rig_build` builds rigs, :mod:`.rig` moves joints
(and keeps what that needs: the objects waiting for a move, the handlers), :mod:`.rig_layout` reads them.
"""

from __future__ import annotations

from typing import Any

from bpy.props import EnumProperty, IntProperty

from . import polls, rig, rig_build
from .choices import model_items
from .engine import import_engine
from .operator_base import UNDOABLE, SemantifyOperator
from .preferences import user_model_dir
from .rig_layout import armature_of, rigged_mesh_of


class SEMANTIFY_OT_add_rigged_character(SemantifyOperator):
    """Add a model as a skinned mesh on an armature with its skeleton; the joints follow the shape"""

    bl_idname = "semantify.add_rigged_character"
    bl_label = "Add Rigged Character"
    bl_options = UNDOABLE
    needs = (polls.OBJECT_MODE,)

    model: EnumProperty(
        name="Model",
        description="A model with a skeleton: a bundled body, or one of your SMPL-family models",
        items=model_items,
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

    def run(self, context: Any) -> set[str]:
        registry = import_engine("models.registry")
        # loading and checking the skeleton both happen before the scene is touched
        model = registry.load(self.model, model_dir=user_model_dir(context))
        rig_build.check_riggable(model)
        obj, armature = rig_build.create_rigged_character(context, model, self.model, self.influences)
        bones = len(armature.data.bones)
        self.report({"INFO"}, f"Added '{obj.name}' on '{armature.name}': {bones} bones following the shape")
        return {"FINISHED"}


class SEMANTIFY_OT_update_joints(SemantifyOperator):
    """Move the armature's joints to the current shape (the pose is kept); for when Follow Shape is off"""

    bl_idname = "semantify.update_joints"
    bl_label = "Update Joints"
    bl_options = UNDOABLE
    needs = (polls.RIGGED, polls.OBJECT_OR_POSE_MODE)

    def run(self, context: Any) -> set[str]:
        obj = rigged_mesh_of(context.active_object)
        moved = rig.update_joints(context, obj)  # a busy mode raises ModeBusy, a SemantifyError: reported
        obj.semantify.rig_status = ""
        self.report(
            {"INFO"}, f"Moved {moved} joints of '{armature_of(obj).name}' to the shape of '{obj.name}'"
        )
        return {"FINISHED"}


class SEMANTIFY_OT_follow_my_rig(SemantifyOperator):
    """Make the bones of this mesh's armature follow its shape keys: each bone end moves with the vertices
    around it (weights computed now, on the current shape and bones)"""

    bl_idname = "semantify.follow_my_rig"
    bl_label = "Follow My Rig"
    bl_options = UNDOABLE
    needs = (polls.OWN_RIG, polls.OBJECT_MODE)

    def run(self, context: Any) -> set[str]:
        obj = context.active_object
        layout, misfit = rig_build.follow_own_rig(obj)
        if misfit > 0:
            self.report(
                {"WARNING"},
                f"Some bone ends lie {misfit:.3g} off what their vertices can reproduce (too flat around); "
                "they follow the shape with that offset kept",
            )
        self.report({"INFO"}, f"{layout.bone_count} bones of '{armature_of(obj).name}' follow '{obj.name}'")
        return {"FINISHED"}


CLASSES: tuple[type, ...] = (
    SEMANTIFY_OT_add_rigged_character,
    SEMANTIFY_OT_update_joints,
    SEMANTIFY_OT_follow_my_rig,
)
