"""The "Semantify" tab of the 3D view's sidebar: add a model, then shape it with one slider per word.

Panels only draw: they read properties and call operators, and never load mappers or run them (``draw``
runs on every redraw). The one file access is the list of shipped mappers for the active model, read from
their headers once per model and cached.
"""

from __future__ import annotations

from typing import Any, ClassVar

import bpy

from . import clip_status, jobs, polls, rig_layout
from .choices import default_mapper_items
from .engine import import_engine
from .model_objects import semantify_object
from .sliders import mapper_label


def slider_ends(slider: Any) -> str:
    """'    ← male · female →' under a shape-setting slider whose direction its name does not say."""
    ends = import_engine("models.bank").setting_ends(slider.name) if slider.kind == "attribute" else None
    return f"    ← {ends[0]}  ·  {ends[1]} →" if ends else ""


def reach_text(slider: Any) -> str:
    """'plausible up to 107.0 cm (data to 121.7)' for a slider cut to its plausible reach, else ''."""
    scale, unit = (100.0, " cm") if slider.unit == "m" else (1.0, f" {slider.unit}" if slider.unit else "")
    parts = []
    if slider.data_low < slider.low - 1e-6:
        parts.append(f"from {slider.low * scale:.4g}{unit} (data from {slider.data_low * scale:.4g})")
    if slider.data_high > slider.high + 1e-6:
        parts.append(f"up to {slider.high * scale:.4g}{unit} (data to {slider.data_high * scale:.4g})")
    return f"    plausible {' and '.join(parts)}" if parts else ""


class SemantifyPanel:
    """Where every Semantify panel sits (the 3D view's sidebar, its Semantify tab) and when it shows: while
    its :attr:`shown_when` need holds (None: always)."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Semantify"
    shown_when: ClassVar[polls.Need | None] = None

    @classmethod
    def poll(cls, context: Any) -> bool:
        return cls.shown_when is None or cls.shown_when.holds(context)


class SEMANTIFY_PT_model(SemantifyPanel, bpy.types.Panel):
    """Add a model, or turn the active mesh's shape keys into one, and show which model is active."""

    bl_idname = "SEMANTIFY_PT_model"
    bl_label = "Model"

    def draw(self, context: Any) -> None:
        layout = self.layout
        column = layout.column(align=True)
        column.operator_menu_enum("semantify.add_model", "model", text="Add Model", icon="ADD")
        column.operator("semantify.add_model_file", text="Add Model From File", icon="FILE_FOLDER")
        row = layout.row(align=True)
        row.operator("semantify.use_mesh", icon="SHAPEKEY_DATA")
        row.operator("semantify.export_model", text="", icon="EXPORT")
        obj = semantify_object(context)
        if obj is None:
            return
        state = obj.semantify
        box = layout.box()
        box.label(text=state.model_name, icon="OUTLINER_OB_MESH")
        box.label(text=f"{state.vertex_count} vertices, {state.component_count} components")
        box.label(text=f"Checksum {state.model_checksum}")


class SEMANTIFY_PT_sliders(SemantifyPanel, bpy.types.Panel):
    """The active object's mapper and its sliders (one per descriptor), with reset / randomise / key."""

    bl_idname = "SEMANTIFY_PT_sliders"
    bl_label = "Sliders"

    shown_when = polls.MODEL

    def draw(self, context: Any) -> None:
        layout = self.layout
        state = context.active_object.semantify
        row = layout.row(align=True)
        shipped = default_mapper_items(None, context)
        if len(shipped) == 1:
            operator = row.operator("semantify.load_default_mapper", text="Load Default", icon="PRESET")
            operator.mapper = shipped[0][0]
        elif shipped:
            row.operator_menu_enum(
                "semantify.load_default_mapper", "mapper", text="Load Default", icon="PRESET"
            )
        row.operator("semantify.load_mapper", text="Load Mapper" if not shipped else "", icon="FILE_FOLDER")
        if not len(state.sliders):
            if not shipped:
                layout.label(text="No mapper ships for this model: load or build one")
            return
        layout.label(text=mapper_label(state.mapper_path), icon="MODIFIER")
        if state.status:
            layout.label(text=state.status, icon="ERROR")
        column = layout.column(align=True)
        for slider in state.sliders:
            row = column.row(align=True)
            row.prop(slider, "position", text=slider.name, slider=True)
            # The same slider as a number in the descriptor's own units (metres, kilograms, cosine),
            # typed or dragged; it writes the position, so undo and keyframes see one property.
            split = row.row(align=True)
            split.scale_x = 0.6
            split.prop(slider, "value", text="")
            if slider.unit not in ("cosine", ""):
                split.label(text=slider.unit)
            ends = slider_ends(slider)
            if ends:
                column.label(text=ends)
            reach = reach_text(slider)
            if reach:
                column.label(text=reach)
        if state.plausibility > import_engine("models.plausibility").REGION:
            layout.label(
                text=f"Outside the plausible region: rarer than {state.plausibility:.1f} % of source bodies",
                icon="INFO",
            )
        row = layout.row(align=True)
        row.operator("semantify.reset_sliders", text="Reset", icon="LOOP_BACK")
        row.operator("semantify.randomise_sliders", text="Random", icon="RNDCURVE")
        row.operator("semantify.keyframe_sliders", text="Key", icon="KEY_HLT")
        row.operator("semantify.remove_mapper", text="", icon="X")


class SEMANTIFY_PT_rig(SemantifyPanel, bpy.types.Panel):
    """Add a rigged character; for the active one, the Follow Shape switch and Update Joints."""

    bl_idname = "SEMANTIFY_PT_rig"
    bl_label = "Rig"

    def draw(self, context: Any) -> None:
        layout = self.layout
        layout.operator_menu_enum(
            "semantify.add_rigged_character", "model", text="Add Rigged Character", icon="ARMATURE_DATA"
        )
        obj = rig_layout.rigged_mesh_of(context.active_object)
        if obj is None:
            if rig_layout.can_follow_own_rig(context.active_object):
                layout.operator("semantify.follow_my_rig", icon="CON_ARMATURE")
            return
        state = obj.semantify
        row = layout.row(align=True)
        row.prop(state, "follow_shape", toggle=True, icon="BONE_DATA")
        row.operator("semantify.update_joints", text="", icon="FILE_REFRESH")
        armature = rig_layout.armature_of(obj)
        layout.label(text=f"{obj.name} on {armature.name}", icon="OUTLINER_OB_ARMATURE")
        if state.rig_status:
            layout.label(text=state.rig_status, icon="ERROR")


class SEMANTIFY_PT_build(SemantifyPanel, bpy.types.Panel):
    """Build a mapper or add a word in a background process; its progress and Cancel while it runs."""

    bl_idname = "SEMANTIFY_PT_build"
    bl_label = "Build"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return polls.MODEL.holds(context) or jobs.active_job() is not None

    def draw(self, context: Any) -> None:
        layout = self.layout
        if jobs.active_job() is not None:
            shown = context.window_manager.semantify_job
            box = layout.box()
            box.label(text=shown.label, icon="SORTTIME")
            if shown.known:
                box.progress(factor=shown.fraction, type="BAR", text=f"{shown.fraction * 100:.0f}%")
            box.label(text=shown.message)
            box.operator("semantify.cancel_job", icon="CANCEL")
            return
        row = layout.row(align=True)
        row.operator("semantify.build_mapper", text="Build Mapper", icon="MOD_NORMALEDIT")
        row.operator("semantify.add_word", text="Add Word", icon="ADD")
        # Measurement sliders need nothing more; words, photo and text fits need CLIP: say what is missing.
        clip_status.draw_needs(layout.column(), context)


class SEMANTIFY_PT_shape(SemantifyPanel, bpy.types.Panel):
    """Keep the shape: bake it to a shape key, apply it to the mesh, export with Blender's exporters."""

    bl_idname = "SEMANTIFY_PT_shape"
    bl_label = "Keep the Shape"

    shown_when = polls.MODEL

    def draw(self, context: Any) -> None:
        layout = self.layout
        row = layout.row(align=True)
        row.operator("semantify.bake_shape_key", text="Bake Key", icon="SHAPEKEY_DATA")
        row.operator("semantify.apply_shape", text="Apply", icon="CHECKMARK")
        row = layout.row(align=True)
        row.operator_menu_enum("semantify.export_character", "preset", text="Export Character", icon="EXPORT")
        row.menu("TOPBAR_MT_file_export", text="", icon="DOWNARROW_HLT")


CLASSES: tuple[type, ...] = (
    SEMANTIFY_PT_model,
    SEMANTIFY_PT_sliders,
    SEMANTIFY_PT_rig,
    SEMANTIFY_PT_shape,
    SEMANTIFY_PT_build,
)
