"""Model, mapper and slider operators (all ids start with ``semantify.``). Each calls the engine; none
holds an algorithm.

Operators that change the scene are registered with ``{'REGISTER', 'UNDO'}``. Every user-fixable failure
(an engine :class:`SemantifyError`: a missing file, a damaged or foreign mapper, a mesh without shape keys)
is reported in one line and cancels the operator *before* anything in the scene is changed
(:class:`.operator_base.SemantifyOperator`).
"""

from __future__ import annotations

import random
from typing import Any

import bpy
import numpy as np
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from . import model_objects, polls, sliders
from .choices import default_mapper_items, model_items
from .engine import import_engine
from .operator_base import REDOABLE, UNDOABLE, SemantifyOperator
from .preferences import user_model_dir


class SEMANTIFY_OT_add_model(SemantifyOperator):
    """Add a morphable model as a mesh whose shape keys are its components"""

    bl_idname = "semantify.add_model"
    bl_label = "Add Semantify Model"
    bl_options = UNDOABLE

    model: EnumProperty(
        name="Model",
        description="A bundled model, or one of your SMPL-family models found in the user model folder",
        items=model_items,
    )

    def run(self, context: Any) -> set[str]:
        registry = import_engine("models.registry")
        model = registry.load(self.model, model_dir=user_model_dir(context))
        obj = model_objects.create_model_object(context, model, source=self.model)
        self.report({"INFO"}, f"Added '{obj.name}': {model.component_count} shape keys, one per component")
        return {"FINISHED"}


class SEMANTIFY_OT_add_model_file(SemantifyOperator, ImportHelper):
    """Add a model from a semantify model file (.npz), e.g. one exported with 'Export Model'"""

    bl_idname = "semantify.add_model_file"
    bl_label = "Add Model From File"
    bl_options = UNDOABLE

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    def run(self, context: Any) -> set[str]:
        models = import_engine("models")
        path = bpy.path.abspath(self.filepath)
        model = models.load_model(path)
        obj = model_objects.create_model_object(context, model, source=path)
        self.report({"INFO"}, f"Added '{obj.name}' from {path}")
        return {"FINISHED"}


class SEMANTIFY_OT_use_mesh(SemantifyOperator):
    """Use the active mesh's own shape keys as the model's components (each key after the basis is one)"""

    bl_idname = "semantify.use_mesh"
    bl_label = "Use My Mesh"
    bl_options = UNDOABLE
    needs = (polls.MESH_WITH_SHAPE_KEYS, polls.COMPONENT_KEYS)

    def run(self, context: Any) -> set[str]:
        obj = context.active_object
        model = model_objects.model_from_object(obj)
        state = obj.semantify
        with sliders.suspended():
            state.sliders.clear()  # a new identity: a mapper for the old one no longer applies
            state.mapper_path = ""
            state.mapper_checksum = ""
            state.status = ""
        model_objects.write_identity(obj, model, model_objects.SHAPE_KEY_SOURCE)
        muted = [block.name for block in obj.data.shape_keys.key_blocks[1:] if block.mute]
        if muted:
            self.report({"WARNING"}, f"Muted shape keys are components too: {', '.join(muted)}")
        self.report({"INFO"}, f"'{obj.name}' is model '{model.name}' with {model.component_count} components")
        return {"FINISHED"}


class SEMANTIFY_OT_export_model(SemantifyOperator, ExportHelper):
    """Save this mesh's shape-key model as a model file, for 'semantify dataset build --model FILE'"""

    bl_idname = "semantify.export_model"
    bl_label = "Export Model"
    bl_options = REDOABLE
    needs = (polls.OWN_MESH_MODEL,)

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    def run(self, context: Any) -> set[str]:
        models = import_engine("models")
        model = model_objects.own_mesh_model(context.active_object)
        path = models.save_model(model, bpy.path.abspath(self.filepath))
        self.report({"INFO"}, f"Saved model '{model.name}' to {path}")
        return {"FINISHED"}


class SEMANTIFY_OT_load_mapper(SemantifyOperator, ImportHelper):
    """Load a mapper file: one slider per descriptor, driving this object's shape keys"""

    bl_idname = "semantify.load_mapper"
    bl_label = "Load Mapper"
    bl_options = UNDOABLE
    needs = (polls.MODEL.saying("Select a Semantify model (Add Model, or Use My Mesh)"),)

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    def run(self, context: Any) -> set[str]:
        # everything that can fail happens before the scene is touched
        mapper = sliders.load_onto(context.active_object, bpy.path.abspath(self.filepath))
        self.report({"INFO"}, f"{mapper.input_count} sliders: {', '.join(mapper.descriptor_names)}")
        return {"FINISHED"}


class SEMANTIFY_OT_load_default_mapper(SemantifyOperator):
    """Load a mapper shipped with Semantify for this model: sliders with zero setup"""

    bl_idname = "semantify.load_default_mapper"
    bl_label = "Load Default Mapper"
    bl_options = UNDOABLE
    bl_property = "mapper"
    needs = (polls.MODEL.saying("Select a Semantify model (Add Model)"), polls.SHIPPED_MAPPER)

    mapper: EnumProperty(
        name="Mapper", description="A shipped mapper for this model", items=default_mapper_items
    )

    def run(self, context: Any) -> set[str]:
        if not self.mapper:
            raise import_engine("errors").SemantifyError("No mapper ships for this model: load or build one.")
        reference = sliders.DEFAULT_MAPPER_PREFIX + self.mapper
        mapper = sliders.load_onto(context.active_object, reference)
        self.report({"INFO"}, f"{mapper.input_count} sliders: {', '.join(mapper.descriptor_names)}")
        return {"FINISHED"}


class _SliderOperator(SemantifyOperator):
    """Shared need: the active object is a Semantify model with a mapper loaded."""

    needs = (polls.SLIDERS,)

    def set_positions(self, obj: bpy.types.Object, positions: np.ndarray) -> set[str]:
        """Write all positions at once, then run the mapper once (not once per slider).

        The mapper is checked first (its file, its model, the shape keys), and should running it still
        fail, :func:`.sliders.write_positions` puts the old positions back: a failed Reset or Random
        changes nothing.
        """
        sliders.mapper_of(obj)
        sliders.write_positions(obj, np.clip(positions, 0.0, 1.0).astype(np.float32))
        obj.semantify.status = ""
        return {"FINISHED"}


def _default_positions(obj: bpy.types.Object) -> np.ndarray:
    return np.array([(s.default - s.low) / (s.high - s.low) for s in obj.semantify.sliders], dtype=np.float64)


class SEMANTIFY_OT_reset_sliders(_SliderOperator):
    """Put every slider back at its mapper default"""

    bl_idname = "semantify.reset_sliders"
    bl_label = "Reset Sliders"
    bl_options = UNDOABLE

    def run(self, context: Any) -> set[str]:
        obj = context.active_object
        return self.set_positions(obj, _default_positions(obj))


class SEMANTIFY_OT_randomise_sliders(_SliderOperator):
    """Move every slider to a random position (repeatable: the seed is in the redo panel)"""

    bl_idname = "semantify.randomise_sliders"
    bl_label = "Randomise Sliders"
    bl_options = UNDOABLE

    seed: IntProperty(name="Seed", description="Same seed, same shape", default=0, min=0)
    spread: FloatProperty(
        name="Spread",
        description="0 keeps the defaults, 1 draws uniformly over each slider's whole range",
        default=1.0,
        min=0.0,
        max=1.0,
        subtype="FACTOR",
    )

    def invoke(self, context: Any, event: Any) -> set[str]:
        self.seed = random.randrange(1 << 30)  # a new shape per click; the redo panel can replay it
        return self.execute(context)

    def run(self, context: Any) -> set[str]:
        obj = context.active_object
        defaults = _default_positions(obj)
        draws = np.random.default_rng(self.seed).uniform(0.0, 1.0, size=len(defaults))
        return self.set_positions(obj, defaults + self.spread * (draws - defaults))


class SEMANTIFY_OT_keyframe_sliders(_SliderOperator):
    """Insert a keyframe on every slider at the current frame (animate between descriptor values)"""

    bl_idname = "semantify.keyframe_sliders"
    bl_label = "Keyframe Sliders"
    bl_options = UNDOABLE

    def run(self, context: Any) -> set[str]:
        obj = context.active_object
        frame = context.scene.frame_current
        for index in range(len(obj.semantify.sliders)):
            obj.keyframe_insert(data_path=f"semantify.sliders[{index}].position", frame=frame)
        self.report({"INFO"}, f"Keyed {len(obj.semantify.sliders)} sliders at frame {frame}")
        return {"FINISHED"}


class SEMANTIFY_OT_remove_mapper(_SliderOperator):
    """Remove the sliders and forget the mapper; the shape stays as it is"""

    bl_idname = "semantify.remove_mapper"
    bl_label = "Remove Mapper"
    bl_options = UNDOABLE

    def run(self, context: Any) -> set[str]:
        state = context.active_object.semantify
        with sliders.suspended():
            state.sliders.clear()
            state.mapper_path = ""
            state.mapper_checksum = ""
            state.status = ""
        return {"FINISHED"}


CLASSES: tuple[type, ...] = (
    SEMANTIFY_OT_add_model,
    SEMANTIFY_OT_add_model_file,
    SEMANTIFY_OT_use_mesh,
    SEMANTIFY_OT_export_model,
    SEMANTIFY_OT_load_mapper,
    SEMANTIFY_OT_load_default_mapper,
    SEMANTIFY_OT_reset_sliders,
    SEMANTIFY_OT_randomise_sliders,
    SEMANTIFY_OT_keyframe_sliders,
    SEMANTIFY_OT_remove_mapper,
)
