"""The base of Semantify's operators: its poll checks their needs, its execute reports user-fixable failures.

Every operator writes :meth:`SemantifyOperator.run` and lists its :attr:`~SemantifyOperator.needs` (the
poll strategies of :mod:`.polls`). A user-fixable failure is an engine :class:`SemantifyError` (a missing
file, a damaged or foreign mapper, a mesh without shape keys, a busy mode): raised anywhere in ``run``, it
becomes one ERROR report and CANCELLED, so no operator writes that try/except itself. Operators do what
can fail before they change the scene, so a cancelled one leaves the scene as it was; where a step can
fail only after a change (running a mapper on new slider positions), that step puts the change back and
raises again (:func:`.sliders.write_positions`).

An engine error names the parameters it blames (``{samples}``, see :mod:`semantify_engine.errors`); the
report names each as the user knows it, by the label of the property that fed it (:meth:`label_of`):
the operator's own, else the add-on preference that sets it. The labels are the properties' ``name``, so
renaming a field in the UI renames it in every message.

The engine's errors are imported when an operator runs, not here: registering must import no engine
module (:mod:`.engine`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import bpy

from .engine import import_engine
from .polls import Need
from .preferences import preference_label

if TYPE_CHECKING:
    from semantify_engine.errors import SemantifyError

# Operators that change the scene take part in undo; the others only register (redo panel, reports).
UNDOABLE = {"REGISTER", "UNDO"}
REDOABLE = {"REGISTER"}


class SemantifyOperator(bpy.types.Operator):
    """An operator that runs when its needs hold and reports a SemantifyError instead of raising it."""

    needs: ClassVar[tuple[Need, ...]] = ()
    """Checked in order by :meth:`poll`; the first that does not hold sets the poll message."""

    parameter_properties: ClassVar[Mapping[str, str]] = {}
    """Engine parameters this operator passes from a property of another name (``engine`` from
    ``render_engine``); a parameter of the same name as a property needs no entry."""

    panel_fields: ClassVar[Mapping[str, tuple[type, str]]] = {}
    """Engine parameters this operator takes from a panel's settings rather than its own properties:
    parameter -> (the settings' PropertyGroup, the panel's name), the field named as the parameter."""

    @classmethod
    def poll(cls, context: Any) -> bool:
        for need in cls.needs:
            if not need.holds(context):
                cls.poll_message_set(need.refusal(context))
                return False
        return True

    def execute(self, context: Any) -> set[str]:
        errors = import_engine("errors")
        try:
            return self.run(context)
        except errors.SemantifyError as error:
            self.report({"ERROR"}, self.message(error))
            return {"CANCELLED"}

    @classmethod
    def label_of(cls, parameter: str) -> str | None:
        """An engine parameter as this operator's user knows it: the label of the operator's property that
        feeds it (``'Samples'``), else of the panel field it reads (``the Fit panel's 'Dataset'``), else of
        the preference that sets it, else None (the engine's name)."""
        group, name = cls.bl_idname.split(".")
        fields = getattr(getattr(bpy.ops, group), name).get_rna_type().properties  # the operator's own
        own = fields.get(cls.parameter_properties.get(parameter, parameter))
        if own is not None and own.identifier != "rna_type":
            return f"'{own.name}'"
        if parameter in cls.panel_fields:
            settings, panel = cls.panel_fields[parameter]
            return f"the {panel} panel's '{settings.bl_rna.properties[parameter].name}'"
        return preference_label(parameter)

    def message(self, error: SemantifyError) -> str:
        """``error``'s message with the parameters it names as this operator's fields."""
        return error.render(self.label_of)

    def run(self, context: Any) -> set[str]:
        """The operator's work; a SemantifyError it raises is reported and cancels the operator."""
        raise NotImplementedError
