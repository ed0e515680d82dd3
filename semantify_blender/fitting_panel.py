"""The Fit section under the sliders: measurements, a text or a photo set the sliders, which the user refines.

It is a sub-panel of *Sliders* because a fit only ever moves those sliders. It only draws: one field per
measurement slider of the loaded mapper (ticked fields are fitted), the text and photo with their buttons,
a running fit's progress with Cancel (the job is :mod:`.jobs`'s, so it shows in *Build* too), and the last
fit's notes (clamped values, sliders left at their defaults, how the mesh measures), which stay while the
user refines.
"""

from __future__ import annotations

from typing import Any

import bpy

from . import clip_status, jobs, polls
from .fitting_props import display_unit
from .panels import SemantifyPanel


class SEMANTIFY_PT_fit(SemantifyPanel, bpy.types.Panel):
    """Fit the sliders to measurements, a text or a photo."""

    bl_idname = "SEMANTIFY_PT_fit"
    bl_parent_id = "SEMANTIFY_PT_sliders"
    bl_label = "Fit"

    shown_when = polls.SLIDERS

    def draw(self, context: Any) -> None:
        layout = self.layout
        state = context.active_object.semantify
        fit = state.fit
        metric = [slider for slider in state.sliders if slider.kind == "metric"]
        if metric:
            column = layout.column(align=True)
            for slider in metric:
                row = column.row(align=True)
                row.prop(slider, "fit_use", text="")
                field = row.row(align=True)
                field.active = slider.fit_use
                field.prop(slider, "fit_measurement", text=f"{slider.name} ({display_unit(slider.unit)[0]})")
            column.operator("semantify.fit_measurements", icon="DRIVER_DISTANCE")
        running = jobs.active_job()
        column = layout.column(align=True)
        column.prop(fit, "prompt", text="", icon="FONT_DATA")
        row = column.row(align=True)
        row.prop(fit, "dataset", text="")
        row.operator("semantify.fit_text", text="Fit Text", icon="VIEWZOOM")
        column = layout.column(align=True)
        column.prop(fit, "photo", text="")
        row = column.row(align=True)
        row.prop(fit, "crop", text="")
        row.operator("semantify.fit_photo", text="Fit Photo", icon="IMAGE_DATA")
        if any(slider.kind == "word" for slider in state.sliders):  # text and photo fits need CLIP
            clip_status.draw_needs(layout.column(), context)
        if running is not None:
            shown = context.window_manager.semantify_job
            box = layout.box()
            box.label(text=shown.label, icon="SORTTIME")
            if shown.known:
                box.progress(factor=shown.fraction, type="BAR", text=f"{shown.fraction * 100:.0f}%")
            box.label(text=shown.message)
            box.operator("semantify.cancel_job", icon="CANCEL")
        if fit.notes:
            box = layout.box()
            for line in fit.notes.splitlines():
                box.label(text=line, icon="ERROR" if "outside the slider's range" in line else "INFO")


CLASSES: tuple[type, ...] = (SEMANTIFY_PT_fit,)
