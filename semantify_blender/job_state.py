"""The one background job of this Blender session: which job runs, which ended last, and how it shows.

One job runs at a time (the operators' polls refuse a second). While it runs it is :func:`active_job`;
its progress is copied to the window manager's properties and the status bar (:func:`show`) on every
tick of its timer. When it ends its timer goes and the display is cleared (:func:`end`); the job that
ended last stays readable (:func:`last_job`: its worker, its output) for reports and scripts. Disabling
the add-on ends a running job (:func:`shutdown`), so no process or timer is left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy

if TYPE_CHECKING:
    from semantify_engine.cli.background import BackgroundJob
    from semantify_engine.errors import Spelling


@dataclass
class ActiveJob:
    """The one background job of this Blender session, and what to do with its result."""

    job: BackgroundJob
    object_name: str | None  # None: a job for no object (fetching CLIP weights)
    keep_values: bool  # add-word keeps the artist's slider values; a new build starts at the defaults
    timer: Any = None
    cancel_requested: bool = False
    use_result: ResultHandler | None = None  # None: the result file is a mapper to load onto the object
    label_of: Spelling = lambda parameter: None
    """How the operator that started the job names the parameters its error may blame (its fields)."""


ResultHandler = Callable[[ActiveJob, Path], tuple[str, str, bool]]
"""Applies a finished job's result file (a fit's JSON, ...): returns a report level, a message, and
whether the scene changed (which makes the operator finish as one undo step)."""


_active: ActiveJob | None = None
_last: ActiveJob | None = None


def active_job() -> ActiveJob | None:
    return _active


def last_job() -> ActiveJob | None:
    """The job that ended last (its worker, its output), for reports and scripts."""
    return _last


def begin(state: ActiveJob) -> None:
    """``state`` is the running job now (the operator then adds its timer and shows it)."""
    global _active
    _active = state


def ended(state: ActiveJob) -> None:
    """``state`` is the job that ended last."""
    global _last
    _last = state


def show(context: Any, state: ActiveJob | None) -> None:
    """Copy the job's progress to the window manager's properties and the status bar; redraw the sidebar."""
    shown = context.window_manager.semantify_job
    if state is None:
        shown.running, shown.message, shown.known = False, "", False
        if context.workspace is not None:
            context.workspace.status_text_set(None)
    else:
        progress = state.job.poll()
        shown.running, shown.label, shown.message = True, state.job.label, progress.message
        shown.known = progress.fraction is not None
        shown.fraction = progress.fraction or 0.0
        percent = f"{shown.fraction * 100:.0f}% " if shown.known else ""
        if context.workspace is not None:
            context.workspace.status_text_set(
                f"Semantify: {state.job.label}: {percent}{progress.message} (Esc to cancel)"
            )
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def end(context: Any, state: ActiveJob) -> None:
    """The job is over (finished or cancelled): remove its timer, clear the progress display."""
    global _active
    if state.timer is not None:
        context.window_manager.event_timer_remove(state.timer)
        state.timer = None
    _active = None
    show(context, None)


def shutdown() -> None:
    """End a running job (the add-on is being disabled): no process or timer is left behind."""
    global _active
    state, _active = _active, None
    if state is None:
        return
    state.job.cancel()
    if state.timer is not None:
        bpy.context.window_manager.event_timer_remove(state.timer)
