"""What word sliders need and whether this Blender has it: the CLIP engine, then the CLIP weights.

Word sliders, photo fits and text fits need two things the plain extension does not carry: the CLIP
engine (torch, open_clip, scikit-learn: the platform extension's wheels, or a Python the user chose) and
CLIP weights (downloaded once, or a local file). The sidebar and the preferences say which is missing,
with the button that provides it; measurement sliders need neither.

Whether the engine is there is known in microseconds for a Blender worker (its wheel folder is looked
at on disk) and remembered for a Python worker (asking one costs a process start). The weights' status
needs open_clip, so a background process answers (``semantify clip status --json``): started the first
time a panel asks, followed by a timer that redraws when the answer comes; panels show "checking" until
then and never wait. Any change to the CLIP preferences, and every download, forgets the answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import bpy

from .engine import import_engine
from .preferences import ADDON_ID, engine_environment, job_worker, preference_label

if TYPE_CHECKING:
    from semantify_engine.cli.background import BackgroundJob
    from semantify_engine.cli.worker import Worker

POLL_S = 0.25

_engine_missing: dict[tuple[str, str], tuple[str, ...]] = {}
_weights: dict[tuple[str, ...], dict[str, Any]] = {}
_probe: tuple[tuple[str, ...], BackgroundJob] | None = None


@dataclass(frozen=True)
class Needs:
    """What word features lack: engine modules (empty: present) and the weights' status (None: checking)."""

    worker: Worker
    engine_missing: tuple[str, ...]
    weights: dict[str, Any] | None

    @property
    def ready(self) -> bool:
        return not self.engine_missing and self.weights is not None and bool(self.weights.get("present"))


def forget() -> None:
    """The preferences changed, or weights were fetched: ask again next time."""
    global _probe
    _engine_missing.clear()
    _weights.clear()
    if _probe is not None:
        _probe[1].cancel(timeout=1.0)
        _probe = None


def engine_missing(worker: Worker) -> tuple[str, ...]:
    """The CLIP engine's modules ``worker`` lacks (remembered per worker)."""
    key = (worker.kind, worker.executable)
    if key not in _engine_missing:
        modules = import_engine("cli.worker").CLIP_ENGINE_MODULES
        try:
            _engine_missing[key] = tuple(worker.missing_modules(modules))
        except import_engine("errors").JobError:
            _engine_missing[key] = tuple(modules)
    return _engine_missing[key]


def _weights_key(worker: Worker, environment: dict[str, str]) -> tuple[str, ...]:
    names = ("SEMANTIFY_CLIP_MODEL", "SEMANTIFY_CLIP_PRETRAINED", "SEMANTIFY_CLIP_CACHE_DIR")
    return (worker.executable, *(environment.get(name, "") for name in names))


def weights_status(context: Any, worker: Worker, wait: bool = False) -> dict[str, Any] | None:
    """``semantify clip status --json`` of the configured weights, or None while it is being asked.

    ``wait`` blocks until the answer is there (background mode, operators that need it now).
    """
    global _probe
    environment = engine_environment(context)
    key = _weights_key(worker, environment)
    _collect()  # a probe that ended since (background mode has no timer to collect it)
    if key in _weights:
        return _weights[key]
    if _probe is None or _probe[0] != key:
        if _probe is not None:
            _probe[1].cancel(timeout=1.0)
        background = import_engine("cli.background")
        arguments = import_engine("cli.arguments").command_arguments(("clip", "status"), json=True)
        job = background.BackgroundJob(worker, arguments, None, environment=environment, label="CLIP status")
        try:
            job.start()
        except import_engine("errors").JobError as error:
            _weights[key] = {"present": False, "problem": str(error), "downloadable": False}
            return _weights[key]
        _probe = (key, job)
        if not wait and not bpy.app.background:
            bpy.app.timers.register(_follow_probe, first_interval=POLL_S)
    if wait:
        _probe[1].wait()
        _collect()
    return _weights.get(key)


def _collect() -> bool:
    """Store the probe's answer once it ended; True when it did."""
    global _probe
    if _probe is None or _probe[1].running:
        return False
    key, job = _probe
    _probe = None
    summary = job.summary() if job.returncode == 0 else None
    if summary is None:
        try:
            job.result()
            problem = "the status check printed nothing"
        except import_engine("errors").JobError as error:
            problem = error.render(preference_label)  # the CLIP settings it blames are preferences here
        summary = {"present": False, "problem": problem.splitlines()[0], "downloadable": False}
    _weights[key] = summary
    return True


def _follow_probe() -> float | None:
    """Timer: collect the probe's answer and redraw; None stops the timer."""
    if not _collect():
        return POLL_S if _probe is not None else None
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PREFERENCES"}:
                area.tag_redraw()
    return None


def needs(context: Any, wait: bool = False) -> Needs:
    """What word features lack for the worker jobs would run in."""
    worker = job_worker(context)
    missing = engine_missing(worker)
    weights = None if missing else weights_status(context, worker, wait=wait)
    return Needs(worker=worker, engine_missing=missing, weights=weights)


def draw_needs(layout: Any, context: Any, show_present: bool = False) -> bool:
    """Draw what word features lack, with the buttons that provide it; True when nothing is missing."""
    state = needs(context)
    if state.engine_missing:
        zip_name = import_engine("cli.worker").platform_extension_name()
        column = layout.column(align=True)
        column.label(text="Word sliders need the CLIP engine", icon="ERROR")
        column.label(text=f"Install {zip_name} over this extension,")
        column.label(text="or set a Python with torch in the preferences")
        row = column.row(align=True)
        row.operator("extensions.package_install_files", text="Install CLIP Engine…", icon="PACKAGE")
        row.operator("preferences.addon_show", text="", icon="PREFERENCES").module = ADDON_ID
        return False
    weights = state.weights
    if weights is None:
        layout.label(text="Checking the CLIP weights…", icon="SORTTIME")
        return False
    if weights.get("problem"):
        layout.label(text=f"CLIP weights: {weights['problem']}"[:180], icon="ERROR")
        layout.operator("semantify.use_local_weights", icon="FILE_FOLDER")
        return False
    if not weights.get("present"):
        column = layout.column(align=True)
        column.label(text="Word sliders need CLIP weights (downloaded once)", icon="ERROR")
        if not bpy.app.online_access:
            column.label(text="Allow Online Access is off (Preferences > System)")
        row = column.row(align=True)
        row.operator("semantify.download_weights", icon="IMPORT")
        row.operator("semantify.use_local_weights", icon="FILE_FOLDER")
        return False
    if show_present:
        layout.label(text=f"CLIP weights present: {weights.get('location', '')}"[:180], icon="CHECKMARK")
    return True
