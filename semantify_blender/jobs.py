"""Background jobs from the sidebar: build a mapper, add a word, fit, fetch CLIP weights; Blender stays live.

The work needs torch and open_clip and takes seconds to hours, so it runs as a ``semantify`` command
(``build``, ``mapper add-word``, ``fit text|image``, ``clip download``) in a background process: a
headless child of this Blender with the platform extension's CLIP engine, or the Python set in the
preferences (the engine's :mod:`semantify_engine.cli.worker` decides which, and every report names it).
Argument lists are written from the command-line parser's own definitions
(:func:`semantify_engine.cli.arguments.command_arguments`), never by hand. A modal operator polls the
job on a timer: the sidebar and the status bar show its progress, Esc or the sidebar's Cancel ends it,
and on success the new mapper is loaded onto the object it was started for (an undo step). Photo and
text fits (:mod:`.fitting_ops`) and downloads (:mod:`.clip_ops`) run the same way; their operators hand
a result handler instead.

Before anything starts, the worker is asked (without importing anything) whether it has the modules the
job needs; when it does not, the report says which are missing and how to get them (the platform
extension's CLIP engine, or a Python that has them).

In background mode (``blender -b``, scripts, tests) there is no event loop for a modal operator, so the
operators wait for the process instead and then finish the same way.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from . import model_objects, sliders
from .engine import import_engine
from .operators import semantify_object
from .preferences import cache_dir, engine_environment, job_worker, user_model_dir

if TYPE_CHECKING:
    from semantify_engine.cli.background import BackgroundJob
    from semantify_engine.cli.worker import Worker

TIMER_S = 0.25
UNDO_ONLY = {"UNDO"}  # the new sliders are one undo step; no redo panel (it would run the whole job again)
INTERNAL = {"INTERNAL"}
WORD_MODULES = ("numpy", "torch", "torchvision", "open_clip", "sklearn", "bpy")
"""What building word sliders imports: CLIP, the descriptor selection, Blender to render the views."""
RENDER_ENGINES = (
    ("workbench", "Workbench", "Fastest: milliseconds per view on any CPU (the default)"),
    ("eevee", "EEVEE", "Realtime materials and light: about a second per view with a GPU, slow without"),
    ("cycles", "Cycles", "Path tracing: the slowest, for textured characters"),
)
"""The engines the training views can be rendered with, by the engine's names (render.settings.ENGINES)."""
SCORERS = (
    ("auto", "Auto", "Words and measurements when CLIP weights are available, else measurements only"),
    ("both", "Words and Measurements", "CLIP word scores and body measurements"),
    ("clip", "Words", "CLIP word scores only (needs CLIP weights)"),
    ("metric", "Measurements", "Measurements only (height, chest, waist, hips, ...): no CLIP needed"),
)


@dataclass
class ActiveJob:
    """The one background job of this Blender session, and what to do with its result."""

    job: BackgroundJob
    object_name: str | None  # None: a job for no object (fetching CLIP weights)
    keep_values: bool  # add-word keeps the artist's slider values; a new build starts at the defaults
    timer: Any = None
    cancel_requested: bool = False
    use_result: ResultHandler | None = None  # None: the result file is a mapper to load onto the object


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


# ------------------------------------------------------------------------------------ preparation
def require_modules(worker: Worker, modules: tuple[str, ...], purpose: str) -> None:
    """Refuse to start when ``worker`` lacks any of ``modules``, saying how to make them available."""
    background = import_engine("cli.background")
    describe = import_engine("cli.worker").missing_engine_message
    try:
        missing = worker.missing_modules(modules)
    except background.JobError as error:
        raise background.JobError(
            f"{error} Set Edit > Preferences > Add-ons > Semantify > 'Python with semantify installed' to a "
            "Python that runs, or clear it to use this Blender."
        ) from error
    if missing:
        raise background.JobError(describe(worker, missing, purpose))


def command(name: str, *positionals: object, **options: object) -> list[str]:
    """``semantify NAME ...`` as an argument list, written from the parser's own definitions."""
    return import_engine("cli.arguments").command_arguments(tuple(name.split()), *positionals, **options)


def model_options(context: Any, obj: bpy.types.Object) -> dict[str, str]:
    """``model`` (and ``model_dir``) naming the object's model for the engine (a file for 'Use My Mesh')."""
    registry = import_engine("models.registry")
    user_models = import_engine("models.user_models")
    state = obj.semantify
    source = state.model_source
    if source in registry.bundled_model_paths():
        return {"model": source}
    if source in user_models.USER_MODEL_NAMES:
        folder = user_model_dir(context)
        return {"model": source, **({"model_dir": folder} if folder else {})}
    if source == model_objects.SHAPE_KEY_SOURCE:
        models = import_engine("models")
        errors = import_engine("errors")
        model = model_objects.model_from_object(obj, name=state.model_name)
        if model.checksum() != state.model_checksum:
            raise errors.ModelFileError(
                f"The shape keys of '{obj.name}' changed since 'Use My Mesh'. Run 'Use My Mesh' again."
            )
        path = Path(cache_dir(context)) / "models" / f"{_slug(state.model_name)}-{state.model_checksum}.npz"
        models.save_model(model, path)
        return {"model": str(path)}
    return {"model": bpy.path.abspath(source)}


def build_job(
    context: Any,
    obj: bpy.types.Object,
    samples: int,
    scorer: str,
    words: str,
    descriptors: int,
    render_engine: str = "workbench",
) -> BackgroundJob:
    """``semantify build`` for the object's model into a cache folder named after the request.

    The same request goes to the same folder, so building again after a cancel resumes the dataset.
    """
    background = import_engine("cli.background")
    worker = job_worker(context)
    require_modules(worker, ("numpy", "torch"), "Building a mapper")  # training is torch's, any sliders
    if scorer == "auto" and worker.missing_modules(WORD_MODULES):
        scorer = "metric"  # what 'auto' means without CLIP, decided here rather than by a traceback there
    if scorer != "metric":
        require_modules(worker, WORD_MODULES, "Building word sliders")
    options: dict[str, object] = {
        **model_options(context, obj),
        "samples": samples,
        "scorer": scorer,
        "no_evaluate": True,
        "words": words.strip() or None,
        "descriptors": descriptors if descriptors > 0 else None,
        "engine": render_engine if scorer != "metric" else None,  # measurements render nothing
    }
    environment = engine_environment(context)
    request = json.dumps([sorted(options.items()), sorted(environment.items())]).encode()
    name = f"{_slug(obj.semantify.model_name)}-{hashlib.sha256(request).hexdigest()[:10]}"
    out = Path(cache_dir(context)) / "builds" / name
    return background.BackgroundJob(
        worker,
        command("build", **options, out=str(out)),
        out / "mapper.npz",
        environment=environment,
        label=f"Build mapper for {obj.semantify.model_name}",
    )


def add_word_job(context: Any, obj: bpy.types.Object, word: str, dataset: str) -> BackgroundJob:
    """``semantify mapper add-word`` on the object's mapper, written to a new file in the cache."""
    background = import_engine("cli.background")
    add_word = import_engine("mapper.add_word")
    worker = job_worker(context)
    word = add_word.clean_word(word)
    require_modules(worker, ("numpy", "torch", "torchvision", "open_clip"), "Adding a word")
    state = obj.semantify
    mapper_path = sliders.mapper_file(state.mapper_path)
    out = Path(cache_dir(context)) / "mappers" / f"{Path(mapper_path).stem}+{_slug(word)}.npz"
    arguments = command(
        "mapper add-word",
        mapper_path,
        word,
        out=str(out),
        dataset=bpy.path.abspath(dataset) if dataset.strip() else None,
    )
    return background.BackgroundJob(
        worker, arguments, out, environment=engine_environment(context), label=f"Add word '{word}'"
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:40] or "model"


# ------------------------------------------------------------------------------------------ finish
def finish(state: ActiveJob) -> tuple[str, str, bool]:
    """Use the finished job's result (by default: load its mapper onto its object).

    Returns a report level, a message and whether the scene changed.
    """
    errors = import_engine("errors")
    background = import_engine("cli.background")
    try:
        path = state.job.result()
    except background.JobCancelled:
        return "WARNING", f"{state.job.label}: cancelled", False
    except errors.SemantifyError as error:
        return "ERROR", f"{state.job.label} failed: {error}", False
    if state.use_result is not None:
        return state.use_result(state, path)
    obj = bpy.data.objects.get(state.object_name or "")
    if obj is None or not obj.semantify.is_model:
        return (
            "WARNING",
            f"New mapper saved to {path}; '{state.object_name}' is gone: load it with Load Mapper",
            False,
        )
    try:
        mapper = sliders.load_onto(obj, str(path), keep_values=state.keep_values)
    except errors.SemantifyError as error:
        return "ERROR", f"New mapper saved to {path} but not loaded onto '{obj.name}': {error}", False
    names = ", ".join(mapper.descriptor_names)
    where = f"built in {state.job.worker.describe()}"
    return "INFO", f"'{obj.name}' has {mapper.input_count} sliders: {names} ({where})", True


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


def shutdown() -> None:
    """End a running job (the add-on is being disabled): no process or timer is left behind."""
    global _active
    state, _active = _active, None
    if state is None:
        return
    state.job.cancel()
    if state.timer is not None:
        bpy.context.window_manager.event_timer_remove(state.timer)


def has_event_loop(context: Any) -> bool:
    """Whether timer events will reach a modal operator (not in background mode, not without a window)."""
    return not bpy.app.background and context.window is not None


def end(context: Any, state: ActiveJob) -> None:
    """The job is over (finished or cancelled): remove its timer, clear the progress display."""
    global _active
    if state.timer is not None:
        context.window_manager.event_timer_remove(state.timer)
        state.timer = None
    _active = None
    show(context, None)


def done(operator: bpy.types.Operator, state: ActiveJob) -> set[str]:
    """Report the job's outcome through ``operator``; FINISHED (an undo step) only if sliders changed."""
    global _last
    _last = state
    level, message, changed = finish(state)
    operator.report({level}, message)
    return {"FINISHED"} if changed else {"CANCELLED"}


# --------------------------------------------------------------------------------------- operators
class _BackgroundOperator(bpy.types.Operator):
    """Start a job, follow it on a timer (or wait, in background mode), load its mapper."""

    bl_options = UNDO_ONLY

    keep_values = False
    needs_object = True  # False: a job for no object (fetching CLIP weights)

    @classmethod
    def poll(cls, context: Any) -> bool:
        if _active is not None:
            cls.poll_message_set("A Semantify job is running: wait for it or cancel it")
            return False
        if cls.needs_object and semantify_object(context) is None:
            cls.poll_message_set("Select a Semantify model")
            return False
        return True

    def make_job(self, context: Any, obj: bpy.types.Object | None) -> BackgroundJob:
        raise NotImplementedError

    def result_handler(self) -> ResultHandler | None:
        """What to do with the job's result file; None loads it as the object's new mapper."""
        return None

    def invoke(self, context: Any, event: Any) -> set[str]:
        return context.window_manager.invoke_props_dialog(self, width=420)

    def execute(self, context: Any) -> set[str]:
        global _active
        errors = import_engine("errors")
        obj = context.active_object if self.needs_object else None
        try:
            job = self.make_job(context, obj)
            job.start()
        except errors.SemantifyError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        state = ActiveJob(
            job=job,
            object_name=obj.name if obj is not None else None,
            keep_values=self.keep_values,
            use_result=self.result_handler(),
        )
        if not has_event_loop(context):  # blender -b, scripts: no timer events would come; wait here
            job.wait()
            return done(self, state)
        _active = state
        state.timer = context.window_manager.event_timer_add(TIMER_S, window=context.window)
        context.window_manager.modal_handler_add(self)
        show(context, state)
        self.report({"INFO"}, f"{job.label}: started in {job.worker.describe()} (Esc to cancel)")
        return {"RUNNING_MODAL"}

    def modal(self, context: Any, event: Any) -> set[str]:
        state = _active
        if state is None:  # ended elsewhere (the add-on was disabled)
            return {"CANCELLED"}
        if (event.type == "ESC" and event.value == "PRESS") or state.cancel_requested:
            state.job.cancel()
            end(context, state)
            self.report({"WARNING"}, f"{state.job.label}: cancelled")
            return {"CANCELLED"}
        if event.type != "TIMER":  # any timer's tick polls: Blender does not say which timer fired
            return {"PASS_THROUGH"}
        show(context, state)
        if state.job.running:
            return {"PASS_THROUGH"}
        end(context, state)
        return done(self, state)

    def cancel(self, context: Any) -> None:
        """Blender ends the modal operator itself (a file is opened, the window closes): end the job too."""
        state = _active
        if state is not None:
            state.job.cancel()
            end(context, state)


class SEMANTIFY_OT_build_mapper(_BackgroundOperator):
    """Build a mapper for this model in the background (dataset, descriptors, training), then load it"""

    bl_idname = "semantify.build_mapper"
    bl_label = "Build Mapper"

    samples: IntProperty(
        name="Samples", description="Shapes sampled for training (the paper uses 3000)", default=3000, min=64
    )
    scorer: EnumProperty(name="Sliders", items=SCORERS, default="auto")
    words: StringProperty(
        name="Words", description="Comma-separated candidate words (empty: the model kind's list)"
    )
    descriptors: IntProperty(
        name="Sliders Kept", description="How many sliders (0: as the selection decides)", default=0, min=0
    )
    render_engine: EnumProperty(
        name="Render With",
        description="The Blender engine that renders the training views CLIP scores (word sliders only)",
        items=RENDER_ENGINES,
        default="workbench",
    )

    def make_job(self, context: Any, obj: bpy.types.Object) -> BackgroundJob:
        return build_job(
            context, obj, self.samples, self.scorer, self.words, self.descriptors, self.render_engine
        )


class SEMANTIFY_OT_add_word(_BackgroundOperator):
    """Add a word slider to this mapper and retrain it in the background (no rendering: cached images)"""

    bl_idname = "semantify.add_word"
    bl_label = "Add Word"

    keep_values = True

    word: StringProperty(name="Word", description="The new descriptor, e.g. 'broad shoulders'")
    dataset: StringProperty(
        name="Dataset",
        description="Dataset folder with CLIP embeddings (empty: the one the mapper was trained from)",
        subtype="DIR_PATH",
    )

    @classmethod
    def poll(cls, context: Any) -> bool:
        if not super().poll(context):
            return False
        if not len(context.active_object.semantify.sliders):
            cls.poll_message_set("Load a mapper first")
            return False
        return True

    def make_job(self, context: Any, obj: bpy.types.Object) -> BackgroundJob:
        return add_word_job(context, obj, self.word, self.dataset)


class SEMANTIFY_OT_cancel_job(bpy.types.Operator):
    """Cancel the running background job (its process ends; a build resumes where it stopped next time)"""

    bl_idname = "semantify.cancel_job"
    bl_label = "Cancel"
    bl_options = INTERNAL

    @classmethod
    def poll(cls, context: Any) -> bool:
        return _active is not None

    def execute(self, context: Any) -> set[str]:
        if _active is not None:
            _active.cancel_requested = True  # the job's timer ends the process and cleans up
        return {"FINISHED"}


class SEMANTIFY_OT_check_python(bpy.types.Operator):
    """Check that the process for background work has what building mappers and adding words need"""

    bl_idname = "semantify.check_python"
    bl_label = "Check Worker"

    def execute(self, context: Any) -> set[str]:
        errors = import_engine("errors")
        worker = job_worker(context)
        try:
            require_modules(
                worker, ("numpy", *import_engine("cli.worker").CLIP_ENGINE_MODULES), "Word sliders"
            )
        except errors.SemantifyError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        extra = "" if not worker.missing_modules(("bpy",)) else " (no bpy: measurement builds only)"
        self.report({"INFO"}, f"{worker.describe()} has the CLIP engine{extra}")
        return {"FINISHED"}


CLASSES: tuple[type, ...] = (
    SEMANTIFY_OT_build_mapper,
    SEMANTIFY_OT_add_word,
    SEMANTIFY_OT_cancel_job,
    SEMANTIFY_OT_check_python,
)
