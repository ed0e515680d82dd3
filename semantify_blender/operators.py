"""Operators (all ids start with ``semantify.``). Each one calls the engine; none holds an algorithm.

Operators that change the scene are registered with ``{'REGISTER', 'UNDO'}``. Every user-fixable failure
(an engine :class:`SemantifyError`: a missing file, a damaged or foreign mapper, a mesh without shape keys)
is reported in one line and cancels the operator *before* anything in the scene is changed.
"""

from __future__ import annotations

import random
from typing import Any

import bpy
import numpy as np
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from . import model_objects, sliders
from .engine import import_engine
from .preferences import user_model_dir

# Operators that change the scene take part in undo; the others only register (redo panel, reports).
UNDOABLE = {"REGISTER", "UNDO"}
REDOABLE = {"REGISTER"}

_model_items_cache: dict[str, list[tuple[str, str, str]]] = {}  # Blender needs the items kept alive
_default_mapper_cache: dict[str, list[tuple[str, str, str]]] = {}  # model checksum -> shipped mappers


def semantify_object(context: Any) -> bpy.types.Object | None:
    """The active object if Semantify made it (or took it over with 'Use My Mesh'), else None."""
    obj = getattr(context, "active_object", None)
    if obj is None or obj.type != "MESH" or not obj.semantify.is_model:
        return None
    return obj


def _model_items(_self: Any, context: Any) -> list[tuple[str, str, str]]:
    """Bundled models, then the user's SMPL-family / SMAL models whose files are in the model folder."""
    folder = user_model_dir(context) or ""
    if folder not in _model_items_cache:
        registry = import_engine("models.registry")
        items = []
        for entry in registry.list_models(folder or None):
            if not entry.available:
                continue
            counts = f"{entry.vertex_count} vertices, {entry.component_count} components"
            items.append((entry.name, entry.name, f"{counts}; {entry.licence}"))
        items.sort(key=lambda item: item[0] != registry.DEFAULT_MODEL)  # the default first (stable otherwise)
        _model_items_cache[folder] = items
    return _model_items_cache[folder]


def _failed(operator: bpy.types.Operator, error: Exception) -> set[str]:
    operator.report({"ERROR"}, str(error))
    return {"CANCELLED"}


class SEMANTIFY_OT_add_model(bpy.types.Operator):
    """Add a morphable model as a mesh whose shape keys are its components"""

    bl_idname = "semantify.add_model"
    bl_label = "Add Semantify Model"
    bl_options = UNDOABLE

    model: EnumProperty(
        name="Model",
        description="A bundled model, or one of your SMPL-family models found in the user model folder",
        items=_model_items,
    )

    def execute(self, context: Any) -> set[str]:
        errors = import_engine("errors")
        registry = import_engine("models.registry")
        try:
            model = registry.load(self.model, model_dir=user_model_dir(context))
        except errors.SemantifyError as error:
            return _failed(self, error)
        obj = model_objects.create_model_object(context, model, source=self.model)
        self.report({"INFO"}, f"Added '{obj.name}': {model.component_count} shape keys, one per component")
        return {"FINISHED"}


class SEMANTIFY_OT_add_model_file(bpy.types.Operator, ImportHelper):
    """Add a model from a semantify model file (.npz), e.g. one exported with 'Export Model'"""

    bl_idname = "semantify.add_model_file"
    bl_label = "Add Model From File"
    bl_options = UNDOABLE

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    def execute(self, context: Any) -> set[str]:
        errors = import_engine("errors")
        models = import_engine("models")
        path = bpy.path.abspath(self.filepath)
        try:
            model = models.load_model(path)
        except errors.SemantifyError as error:
            return _failed(self, error)
        obj = model_objects.create_model_object(context, model, source=path)
        self.report({"INFO"}, f"Added '{obj.name}' from {path}")
        return {"FINISHED"}


class SEMANTIFY_OT_use_mesh(bpy.types.Operator):
    """Use the active mesh's own shape keys as the model's components (each key after the basis is one)"""

    bl_idname = "semantify.use_mesh"
    bl_label = "Use My Mesh"
    bl_options = UNDOABLE

    @classmethod
    def poll(cls, context: Any) -> bool:
        obj = context.active_object
        if obj is None or obj.type != "MESH" or obj.data.shape_keys is None:
            cls.poll_message_set("The active object must be a mesh with shape keys")
            return False
        if len(obj.data.shape_keys.key_blocks) < 2:
            cls.poll_message_set(
                f"'{obj.name}' has only its Basis shape key: add one shape key per way it should change "
                "(each becomes a component)"
            )
            return False
        return True

    def execute(self, context: Any) -> set[str]:
        errors = import_engine("errors")
        obj = context.active_object
        try:
            model = model_objects.model_from_object(obj)
        except errors.SemantifyError as error:
            return _failed(self, error)
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


class SEMANTIFY_OT_export_model(bpy.types.Operator, ExportHelper):
    """Save this mesh's shape-key model as a model file, for 'semantify dataset build --model FILE'"""

    bl_idname = "semantify.export_model"
    bl_label = "Export Model"
    bl_options = REDOABLE

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    @classmethod
    def poll(cls, context: Any) -> bool:
        obj = semantify_object(context)
        if obj is None or obj.semantify.model_source != model_objects.SHAPE_KEY_SOURCE:
            cls.poll_message_set("Run 'Use My Mesh' on a mesh with shape keys first")
            return False
        return True

    def execute(self, context: Any) -> set[str]:
        errors = import_engine("errors")
        models = import_engine("models")
        obj = context.active_object
        state = obj.semantify
        try:
            model = model_objects.model_from_object(obj, name=state.model_name)
            if model.checksum() != state.model_checksum:
                raise errors.ModelFileError(
                    f"The shape keys of '{obj.name}' changed since 'Use My Mesh' (model checksum "
                    f"{model.checksum()}, recorded {state.model_checksum}). "
                    "Run 'Use My Mesh' again, then export."
                )
            path = models.save_model(model, bpy.path.abspath(self.filepath))
        except errors.SemantifyError as error:
            return _failed(self, error)
        self.report({"INFO"}, f"Saved model '{model.name}' to {path}")
        return {"FINISHED"}


class SEMANTIFY_OT_load_mapper(bpy.types.Operator, ImportHelper):
    """Load a mapper file: one slider per descriptor, driving this object's shape keys"""

    bl_idname = "semantify.load_mapper"
    bl_label = "Load Mapper"
    bl_options = UNDOABLE

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    @classmethod
    def poll(cls, context: Any) -> bool:
        if semantify_object(context) is None:
            cls.poll_message_set("Select a Semantify model (Add Model, or Use My Mesh)")
            return False
        return True

    def execute(self, context: Any) -> set[str]:
        errors = import_engine("errors")
        try:  # everything that can fail happens before the scene is touched
            mapper = sliders.load_onto(context.active_object, bpy.path.abspath(self.filepath))
        except errors.SemantifyError as error:
            return _failed(self, error)
        self.report({"INFO"}, f"{mapper.input_count} sliders: {', '.join(mapper.descriptor_names)}")
        return {"FINISHED"}


def default_mapper_items(_self: Any, context: Any) -> list[tuple[str, str, str]]:
    """The shipped mappers made for the active object's model (matched by the model's checksum)."""
    obj = semantify_object(context)
    checksum = obj.semantify.model_checksum if obj is not None else ""
    if checksum not in _default_mapper_cache:
        defaults = import_engine("mapper.defaults")
        _default_mapper_cache[checksum] = [
            (entry.name, ", ".join(entry.descriptors), f"{entry.kind} sliders for {entry.model_name}")
            for entry in (defaults.default_mappers_for(checksum) if checksum else [])
        ]
    return _default_mapper_cache[checksum]


class SEMANTIFY_OT_load_default_mapper(bpy.types.Operator):
    """Load a mapper shipped with Semantify for this model: sliders with zero setup"""

    bl_idname = "semantify.load_default_mapper"
    bl_label = "Load Default Mapper"
    bl_options = UNDOABLE
    bl_property = "mapper"

    mapper: EnumProperty(
        name="Mapper", description="A shipped mapper for this model", items=default_mapper_items
    )

    @classmethod
    def poll(cls, context: Any) -> bool:
        if semantify_object(context) is None:
            cls.poll_message_set("Select a Semantify model (Add Model)")
            return False
        if not default_mapper_items(None, context):
            cls.poll_message_set("No mapper ships for this model: load or build one")
            return False
        return True

    def execute(self, context: Any) -> set[str]:
        errors = import_engine("errors")
        if not self.mapper:
            return _failed(self, RuntimeError("No mapper ships for this model: load or build one."))
        reference = sliders.DEFAULT_MAPPER_PREFIX + self.mapper
        try:
            mapper = sliders.load_onto(context.active_object, reference)
        except errors.SemantifyError as error:
            return _failed(self, error)
        self.report({"INFO"}, f"{mapper.input_count} sliders: {', '.join(mapper.descriptor_names)}")
        return {"FINISHED"}


class _SliderOperator(bpy.types.Operator):
    """Shared poll: the active object is a Semantify model with a mapper loaded."""

    @classmethod
    def poll(cls, context: Any) -> bool:
        obj = semantify_object(context)
        if obj is None or not len(obj.semantify.sliders):
            cls.poll_message_set("Load a mapper onto a Semantify model first")
            return False
        return True

    def set_positions(self, obj: bpy.types.Object, positions: np.ndarray) -> set[str]:
        """Write all positions at once, then run the mapper once (not once per slider).

        The mapper is checked first (its file, its model, the shape keys), and should running it still
        fail, the old positions come back: a failed Reset or Random changes nothing.
        """
        errors = import_engine("errors")
        before = sliders.positions_of(obj)
        try:
            sliders.mapper_of(obj)
            with sliders.suspended():
                obj.semantify.sliders.foreach_set("position", np.clip(positions, 0.0, 1.0).astype(np.float32))
            sliders.apply(obj)
        except errors.SemantifyError as error:
            with sliders.suspended():
                obj.semantify.sliders.foreach_set("position", before)
            return _failed(self, error)
        obj.semantify.status = ""
        return {"FINISHED"}


def _default_positions(obj: bpy.types.Object) -> np.ndarray:
    return np.array([(s.default - s.low) / (s.high - s.low) for s in obj.semantify.sliders], dtype=np.float64)


class SEMANTIFY_OT_reset_sliders(_SliderOperator):
    """Put every slider back at its mapper default"""

    bl_idname = "semantify.reset_sliders"
    bl_label = "Reset Sliders"
    bl_options = UNDOABLE

    def execute(self, context: Any) -> set[str]:
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

    def execute(self, context: Any) -> set[str]:
        obj = context.active_object
        defaults = _default_positions(obj)
        draws = np.random.default_rng(self.seed).uniform(0.0, 1.0, size=len(defaults))
        return self.set_positions(obj, defaults + self.spread * (draws - defaults))


class SEMANTIFY_OT_keyframe_sliders(_SliderOperator):
    """Insert a keyframe on every slider at the current frame (animate between descriptor values)"""

    bl_idname = "semantify.keyframe_sliders"
    bl_label = "Keyframe Sliders"
    bl_options = UNDOABLE

    def execute(self, context: Any) -> set[str]:
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

    def execute(self, context: Any) -> set[str]:
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


def clear_caches() -> None:
    _model_items_cache.clear()
    _default_mapper_cache.clear()
