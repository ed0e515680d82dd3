"""What a Semantify object remembers: its model's identity and its slider values, saved in the .blend.

Everything lives on the Object (``object.semantify``), so several Semantify objects in one scene are
independent and a saved file reopens with its sliders where they were. The shape itself lives in the
mesh's shape keys (one per model component, created once when the object is made): slider values are
turned into shape-key weights by the mapper, and nothing else has to be stored.

A slider is stored as a *position* in [0, 1] along its descriptor's range rather than as the descriptor
value itself: Blender property ranges belong to the property class, not to each item of a collection,
so a position is the only way to give every descriptor a bounded slider with its own range. Positions
are keyframable, and since the range maps linearly, animating a position animates the descriptor value.
``value`` reads and writes the same slider in descriptor units (for scripts and the sidebar's number field).
"""

from __future__ import annotations

import math
from typing import Any

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from . import rig, sliders
from .rig_layout import is_rigged


def _follow_changed(state: SEMANTIFY_PG_object, context: Any) -> None:
    """Turning Follow Shape on moves the joints to the shape at once (off leaves them where they are)."""
    obj = state.id_data
    if state.follow_shape and is_rigged(obj):
        rig.follow(context, obj)


def _position_changed(slider: SEMANTIFY_PG_slider, context: Any) -> None:
    """Update callback: run mapper → shape-key weights for the object owning this slider."""
    sliders.apply_from_update(slider.id_data)


def _get_position(slider: SEMANTIFY_PG_slider) -> float:
    return float(slider.get("position", 0.5))


def _set_position(slider: SEMANTIFY_PG_slider, position: float) -> None:
    """Positions are checked where they are stored: a NaN would be saved, keyed and drawn as a broken
    slider (it is refused and the slider keeps its place), anything else is held to [0, 1]."""
    if not math.isfinite(position):
        raise ValueError(f"Slider '{slider.name}': position must be a number in [0, 1], got {position}")
    slider["position"] = min(1.0, max(0.0, float(position)))


def _get_value(slider: SEMANTIFY_PG_slider) -> float:
    return slider.low + slider.position * (slider.high - slider.low)


def _set_value(slider: SEMANTIFY_PG_slider, value: float) -> None:
    if not math.isfinite(value):  # NaN used to send the slider to its low end
        raise ValueError(f"Slider '{slider.name}': value must be a number, got {value}")
    span = slider.high - slider.low
    slider.position = 0.0 if span <= 0 else min(1.0, max(0.0, (value - slider.low) / span))


def _stored(name: str) -> Any:
    """A getter for a range figure the mapper sets (``set_range``): read-only in the UI and for scripts,
    because a slider's range is the mapper's, and a range typed by hand (``low = inf``) broke it."""
    return lambda slider: float(slider.get(name, 0.0))


RANGE_FIGURES = ("low", "high", "default", "data_low", "data_high")


def set_range(slider: SEMANTIFY_PG_slider, **figures: float) -> None:
    """Write the read-only range figures of a slider (only when a mapper is loaded)."""
    for name, value in figures.items():
        if name not in RANGE_FIGURES or not math.isfinite(value):
            raise ValueError(f"Slider '{slider.name}': {name} must be a finite number, got {value}")
        slider[name] = float(value)


class SEMANTIFY_PG_slider(bpy.types.PropertyGroup):
    """One descriptor slider (``name`` is the descriptor's name, as in the mapper file)."""

    position: FloatProperty(
        name="Position",
        description="Where the slider stands along the descriptor's range (0 = low end, 1 = high end)",
        min=0.0,
        max=1.0,
        default=0.5,
        subtype="FACTOR",
        get=_get_position,
        set=_set_position,
        update=_position_changed,
    )
    value: FloatProperty(
        name="Value",
        description="Descriptor value at this position (CLIP cosine score for words, SI units for metrics)",
        get=_get_value,
        set=_set_value,
        options=set(),  # derived from the position: not stored, not animatable (key the position)
    )
    kind: StringProperty(name="Kind", description="word, metric or attribute")
    unit: StringProperty(name="Unit")
    low: FloatProperty(name="Low", description="Descriptor value at position 0", get=_stored("low"))
    high: FloatProperty(name="High", description="Descriptor value at position 1", get=_stored("high"))
    default: FloatProperty(name="Default", description="The mapper's default value", get=_stored("default"))
    data_low: FloatProperty(
        name="Data From",
        description="Lowest value of the training data (below Low when cut to its reach)",
        get=_stored("data_low"),
    )
    data_high: FloatProperty(
        name="Data To",
        description="Highest value of the training data (above High when cut to its reach)",
        get=_stored("data_high"),
    )


class SEMANTIFY_PG_object(bpy.types.PropertyGroup):
    """A Semantify object's model identity, its mapper and its sliders.

    The identity (name, vertex count, checksum) is what a mapper file records about the model it was
    trained for, so a mapper can be checked against the object without loading the model again.
    """

    model_name: StringProperty(name="Model", description="Name of the morphable model")
    model_kind: StringProperty(name="Kind")
    model_checksum: StringProperty(
        name="Checksum", description="Content hash of the model's template, faces and basis"
    )
    model_source: StringProperty(
        name="Source", description="Bundled or user model name, model file, or 'shape keys' for your own mesh"
    )
    vertex_count: IntProperty(name="Vertices", min=0)
    component_count: IntProperty(
        name="Components", description="Shape keys after the basis that hold the model's components", min=0
    )
    mapper_path: StringProperty(
        name="Mapper", description="Mapper file driving the sliders", subtype="FILE_PATH"
    )
    mapper_checksum: StringProperty(name="Mapper Checksum")
    sliders: CollectionProperty(type=SEMANTIFY_PG_slider)
    status: StringProperty(
        name="Status", description="Why the sliders last failed to update the shape (empty when fine)"
    )
    plausibility: FloatProperty(
        name="Plausibility",
        description="Percentile of the model's source bodies more typical than the current shape (99: the "
        "edge of the plausible region; -1: the model has no source population)",
        default=-1.0,
    )
    follow_shape: BoolProperty(
        name="Follow Shape",
        description="Move the armature's joints to every new shape (the pose is kept); "
        "off: they stay until Update Joints",
        default=True,
        update=_follow_changed,
    )
    rig_status: StringProperty(
        name="Rig Status", description="Why the joints last failed to follow the shape (empty when fine)"
    )

    @property
    def is_model(self) -> bool:
        """True for objects made by Semantify (a bundled/user model, or 'Use My Mesh')."""
        return bool(self.model_checksum)


class SEMANTIFY_PG_job(bpy.types.PropertyGroup):
    """The background job's progress, for drawing (``window_manager.semantify_job``).

    The job itself (a process) lives in :mod:`.jobs`; this is only what the panel and status bar show,
    written by the job's timer.
    """

    running: BoolProperty(name="Running")
    label: StringProperty(name="Job")
    message: StringProperty(name="Message")
    fraction: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")
    known: BoolProperty(name="Fraction Known")


CLASSES: tuple[type, ...] = (SEMANTIFY_PG_slider, SEMANTIFY_PG_object, SEMANTIFY_PG_job)


def register_properties() -> None:
    bpy.types.Object.semantify = PointerProperty(type=SEMANTIFY_PG_object)
    bpy.types.WindowManager.semantify_job = PointerProperty(type=SEMANTIFY_PG_job)


def unregister_properties() -> None:
    del bpy.types.WindowManager.semantify_job
    del bpy.types.Object.semantify
