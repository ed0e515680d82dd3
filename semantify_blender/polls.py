"""Poll strategies: what an operator needs before it can run, each with the message Blender shows when not.

An operator lists its needs in order (``needs = (polls.NO_JOB, polls.MODEL)``) and
:class:`.operator_base.SemantifyOperator`'s poll checks them: the first that does not hold refuses, and its
message becomes the poll message (the greyed button's tooltip, and the error a script's ``bpy.ops`` call
raises). One condition can be worded for the place it is asked in (:meth:`Need.saying`), so "the active
object is a Semantify model" is written once however many messages say it. Polls run on every redraw:
these are reads of the context and the object, never a file or a mapper.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .choices import default_mapper_items
from .job_state import active_job
from .model_objects import SHAPE_KEY_SOURCE, semantify_object
from .rig_layout import can_follow_own_rig, rigged_mesh_of


@dataclass(frozen=True)
class Need:
    """A condition on the context (``holds``) and what to tell the user when it does not hold."""

    holds: Callable[[Any], bool]
    message: str | Callable[[Any], str]  # a callable words it from the context (naming the object, say)

    def saying(self, message: str) -> Need:
        """The same condition, worded for another place."""
        return replace(self, message=message)

    def refusal(self, context: Any) -> str:
        """The poll message for ``context`` (only asked once ``holds`` said no)."""
        return self.message(context) if callable(self.message) else self.message


def _has_sliders(context: Any) -> bool:
    obj = semantify_object(context)
    return obj is not None and len(obj.semantify.sliders) > 0


def _mesh_with_shape_keys(context: Any) -> bool:
    obj = context.active_object
    return obj is not None and obj.type == "MESH" and obj.data.shape_keys is not None


def _only_basis(context: Any) -> str:
    return (
        f"'{context.active_object.name}' has only its Basis shape key: add one shape key per way it should "
        "change (each becomes a component)"
    )


# ----------------------------------------------------------------------------------- the object
MODEL = Need(lambda context: semantify_object(context) is not None, "Select a Semantify model")
MODEL_WITH_SHAPE_KEYS = Need(
    lambda context: (obj := semantify_object(context)) is not None and obj.data.shape_keys is not None,
    "Select a Semantify model",
)
OWN_MESH_MODEL = Need(
    lambda context: (
        (obj := semantify_object(context)) is not None and obj.semantify.model_source == SHAPE_KEY_SOURCE
    ),
    "Run 'Use My Mesh' on a mesh with shape keys first",
)
CHARACTER = Need(
    lambda context: (
        semantify_object(context) is not None or rigged_mesh_of(context.active_object) is not None
    ),
    "Select a Semantify character (or its armature)",
)
MESH_WITH_SHAPE_KEYS = Need(_mesh_with_shape_keys, "The active object must be a mesh with shape keys")
COMPONENT_KEYS = Need(  # after MESH_WITH_SHAPE_KEYS: a basis and at least one key to be a component
    lambda context: len(context.active_object.data.shape_keys.key_blocks) >= 2, _only_basis
)

# ---------------------------------------------------------------------------------- its mapper
SLIDERS = Need(_has_sliders, "Load a mapper onto a Semantify model first")
MEASUREMENT_SLIDERS = Need(  # after SLIDERS
    lambda context: any(slider.kind == "metric" for slider in context.active_object.semantify.sliders),
    "This mapper has no measurement sliders",
)
SHIPPED_MAPPER = Need(
    lambda context: bool(default_mapper_items(None, context)),
    "No mapper ships for this model: load or build one",
)

# ------------------------------------------------------------------------------------- its rig
RIGGED = Need(
    lambda context: rigged_mesh_of(context.active_object) is not None,
    "Select a rigged character (Add Rigged Character, or Follow My Rig)",
)
OWN_RIG = Need(
    lambda context: can_follow_own_rig(context.active_object),
    "Select a mesh with shape keys and an Armature modifier",
)

# ------------------------------------------------------------------------------ mode and jobs
OBJECT_MODE = Need(lambda context: context.mode == "OBJECT", "Switch to Object Mode first")
OBJECT_OR_POSE_MODE = Need(
    lambda context: context.mode in ("OBJECT", "POSE"), "Switch to Object or Pose Mode first"
)
NO_JOB = Need(lambda context: active_job() is None, "A Semantify job is running: wait for it or cancel it")
