"""The "Semantify" tab of the 3D view's sidebar: add a model, then shape it with one slider per word.

Panels only draw: they read properties and call operators, and never load files or run the mapper
(``draw`` runs on every redraw).
"""

from __future__ import annotations

from typing import Any

import bpy

from .operators import semantify_object


class _SemantifyPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Semantify"


class SEMANTIFY_PT_model(_SemantifyPanel, bpy.types.Panel):
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


class SEMANTIFY_PT_sliders(_SemantifyPanel, bpy.types.Panel):
    """The active object's mapper and its sliders (one per descriptor), with reset / randomise / key."""

    bl_idname = "SEMANTIFY_PT_sliders"
    bl_label = "Sliders"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return semantify_object(context) is not None

    def draw(self, context: Any) -> None:
        layout = self.layout
        state = context.active_object.semantify
        layout.operator("semantify.load_mapper", icon="FILE_FOLDER")
        if not len(state.sliders):
            layout.label(text="Load a mapper trained for this model")
            return
        layout.label(text=bpy.path.basename(state.mapper_path), icon="MODIFIER")
        if state.status:
            layout.label(text=state.status, icon="ERROR")
        column = layout.column(align=True)
        for slider in state.sliders:
            row = column.row(align=True)
            row.prop(slider, "position", text=slider.name, slider=True)
            unit = "" if slider.unit == "cosine" else f" {slider.unit}"
            row.label(text=f"{slider.value:.3g}{unit}")
        row = layout.row(align=True)
        row.operator("semantify.reset_sliders", text="Reset", icon="LOOP_BACK")
        row.operator("semantify.randomise_sliders", text="Random", icon="RNDCURVE")
        row.operator("semantify.keyframe_sliders", text="Key", icon="KEY_HLT")
        row.operator("semantify.remove_mapper", text="", icon="X")


CLASSES: tuple[type, ...] = (SEMANTIFY_PT_model, SEMANTIFY_PT_sliders)
