"""What the Fit panel edits: a measurement field on every slider, and the text, photo and notes of a fit.

The measurement fields live on the sliders themselves (``slider.fit_measurement``, ``slider.fit_use``),
added to the slider class at registration: the slider collection is rebuilt whenever a mapper is loaded,
so there is always exactly one field per descriptor of the loaded mapper and never a stale one, without
any code that keeps two collections in step (a panel's ``draw`` may not write data, so it could not).
Fields hold what a person types: centimetres for lengths, kilograms for mass (:func:`display_unit`).

The text, photo and last fit's notes are one group per object (``object.semantify.fit``), so they are saved
with the object, like its sliders.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, PointerProperty, StringProperty

from . import properties
from .engine import import_engine

CROPS = (
    ("auto", "Auto", "The person (or face) a detector finds when one is installed, else the centre square"),
    ("person", "Person", "The person or face a detector finds; refuse the photo when none is found"),
    ("centre", "Centre", "The photo's centre square"),
)


def display_unit(unit: str) -> tuple[str, float]:
    """The unit a measurement is typed in, and how many of it make one of the descriptor's SI unit.

    Lengths are typed in centimetres with the engine's own factor (what ``semantify fit measure`` takes);
    mass in kilograms, and anything else in the unit its descriptor records.
    """
    if unit == "m":
        return "cm", float(import_engine("cli.fit_cmd").CM_PER_M)
    return unit, 1.0


def _measurement_typed(slider: Any, context: Any) -> None:
    """A typed measurement is one to fit: tick it (unticking stays the user's choice)."""
    if not slider.fit_use:
        slider.fit_use = True


def _use_toggled(slider: Any, context: Any) -> None:
    """Ticking an empty field starts it at the slider's current value, the number most likely edited."""
    if slider.fit_use and slider.fit_measurement == 0.0:
        slider.fit_measurement = slider.value * display_unit(slider.unit)[1]


def slider_properties() -> dict[str, Any]:
    """The fields added to every slider (made afresh for each registration)."""
    return {
        "fit_measurement": FloatProperty(
            name="Measurement",
            description="The measurement to fit (centimetres for lengths, kilograms for mass)",
            default=0.0,
            precision=1,
            step=50,
            update=_measurement_typed,
        ),
        "fit_use": BoolProperty(
            name="Fit",
            description="Fit this measurement (unticked measurements go to the mapper's default)",
            default=False,
            update=_use_toggled,
        ),
    }


class SEMANTIFY_PG_fit(bpy.types.PropertyGroup):
    """A Semantify object's fit inputs (``object.semantify.fit``) and what its last fit said."""

    prompt: StringProperty(
        name="Text",
        description='What the shape should look like, e.g. "a tall muscular man" or "a surprised face"',
    )
    dataset: StringProperty(
        name="Dataset",
        description="Dataset folder with CLIP render embeddings to rank (empty: the mapper's own)",
        subtype="DIR_PATH",
    )
    photo: StringProperty(
        name="Photo", description="A photo of a person or a face (JPEG, PNG, WebP, ...)", subtype="FILE_PATH"
    )
    crop: EnumProperty(name="Crop", description="Which square of the photo CLIP sees", items=CROPS)
    notes: StringProperty(
        name="Notes", description="What the last fit reported (clamped values, defaults kept), one per line"
    )


CLASSES: tuple[type, ...] = (SEMANTIFY_PG_fit,)


def register_properties() -> None:
    """Attach the fields to the slider and object groups (registered by :mod:`.properties` before)."""
    for name, prop in slider_properties().items():
        setattr(properties.SEMANTIFY_PG_slider, name, prop)
    properties.SEMANTIFY_PG_object.fit = PointerProperty(type=SEMANTIFY_PG_fit)


def unregister_properties() -> None:
    del properties.SEMANTIFY_PG_object.fit
    for name in slider_properties():
        delattr(properties.SEMANTIFY_PG_slider, name)
