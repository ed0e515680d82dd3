"""Background jobs from the sidebar: build a mapper, add a word, fit, fetch CLIP weights; Blender stays live.

The work runs as a ``semantify`` command in a background process (:mod:`.job_process` writes its command
line and turns its result into a report; :mod:`.job_state` holds the one running job and shows its
progress). A modal operator polls the job on a timer: the sidebar and the status bar show its progress,
Esc or the sidebar's Cancel ends it, and on success the new mapper is loaded onto the object it was
started for (an undo step). Photo and text fits (:mod:`.fitting_ops`) and downloads (:mod:`.clip_ops`) run
the same way; their operators hand a result handler instead.

In background mode (``blender -b``, scripts, tests) there is no event loop for a modal operator, so the
operators wait for the process instead and then finish the same way.

Scripts and tests reach the job through this module: :func:`active_job`, :func:`last_job`, and the job
builders :func:`build_job` and :func:`model_options`, are the state's and the process's, named here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from . import polls
from .engine import import_engine
from .job_process import add_word_job, build_job, finish, require_modules
from .job_process import model_options as model_options
from .job_state import ActiveJob, ResultHandler, active_job, begin, end, ended, show
from .job_state import last_job as last_job
from .operator_base import SemantifyOperator
from .preferences import job_worker

if TYPE_CHECKING:
    from semantify_engine.cli.background import BackgroundJob

TIMER_S = 0.25
UNDO_ONLY = {"UNDO"}  # the new sliders are one undo step; no redo panel (it would run the whole job again)
INTERNAL = {"INTERNAL"}
ON_MODEL = (polls.NO_JOB, polls.MODEL)  # one job at a time, for the active Semantify model
ON_SLIDERS = (*ON_MODEL, polls.SLIDERS.saying("Load a mapper first"))  # ... and its loaded sliders
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
"""The sidebar's words for the engine's scorers (:mod:`semantify_engine.dataset.scorers`, which also says
what each means), by the engine's names: registration imports no engine module, so a test holds the two
lists together."""


def has_event_loop(context: Any) -> bool:
    """Whether timer events will reach a modal operator (not in background mode, not without a window)."""
    return not bpy.app.background and context.window is not None


def done(operator: bpy.types.Operator, state: ActiveJob) -> set[str]:
    """Report the job's outcome through ``operator``; FINISHED (an undo step) only if sliders changed."""
    ended(state)
    level, message, changed = finish(state)
    operator.report({level}, message)
    return {"FINISHED"} if changed else {"CANCELLED"}


# --------------------------------------------------------------------------------------- operators
class _BackgroundOperator(SemantifyOperator):
    """Start a job, follow it on a timer (or wait, in background mode), load its mapper."""

    bl_options = UNDO_ONLY
    needs = ON_MODEL

    keep_values = False
    needs_object = True  # False: a job for no object (fetching CLIP weights); its needs say so too

    def make_job(self, context: Any, obj: bpy.types.Object | None) -> BackgroundJob:
        raise NotImplementedError

    def result_handler(self) -> ResultHandler | None:
        """What to do with the job's result file; None loads it as the object's new mapper."""
        return None

    def invoke(self, context: Any, event: Any) -> set[str]:
        return context.window_manager.invoke_props_dialog(self, width=420)

    def run(self, context: Any) -> set[str]:
        obj = context.active_object if self.needs_object else None
        job = self.make_job(context, obj)
        job.start()
        state = ActiveJob(
            job=job,
            object_name=obj.name if obj is not None else None,
            keep_values=self.keep_values,
            use_result=self.result_handler(),
            label_of=self.label_of,  # its error blames this operator's fields
        )
        if not has_event_loop(context):  # blender -b, scripts: no timer events would come; wait here
            job.wait()
            return done(self, state)
        begin(state)
        state.timer = context.window_manager.event_timer_add(TIMER_S, window=context.window)
        context.window_manager.modal_handler_add(self)
        show(context, state)
        self.report({"INFO"}, f"{job.label}: started in {job.worker.describe()} (Esc to cancel)")
        return {"RUNNING_MODAL"}

    def modal(self, context: Any, event: Any) -> set[str]:
        state = active_job()
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
        state = active_job()
        if state is not None:
            state.job.cancel()
            end(context, state)


class SEMANTIFY_OT_build_mapper(_BackgroundOperator):
    """Build a mapper for this model in the background (dataset, descriptors, training), then load it"""

    bl_idname = "semantify.build_mapper"
    bl_label = "Build Mapper"
    parameter_properties: ClassVar[Mapping[str, str]] = {"engine": "render_engine"}  # as build_job passes it

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
    needs = ON_SLIDERS

    word: StringProperty(name="Word", description="The new descriptor, e.g. 'broad shoulders'")
    dataset: StringProperty(
        name="Dataset",
        description="Dataset folder with CLIP embeddings (empty: the one the mapper was trained from)",
        subtype="DIR_PATH",
    )

    def make_job(self, context: Any, obj: bpy.types.Object) -> BackgroundJob:
        return add_word_job(context, obj, self.word, self.dataset)


class SEMANTIFY_OT_cancel_job(bpy.types.Operator):
    """Cancel the running background job (its process ends; a build resumes where it stopped next time)"""

    bl_idname = "semantify.cancel_job"
    bl_label = "Cancel"
    bl_options = INTERNAL

    @classmethod
    def poll(cls, context: Any) -> bool:
        return active_job() is not None

    def execute(self, context: Any) -> set[str]:
        state = active_job()
        if state is not None:
            state.cancel_requested = True  # the job's timer ends the process and cleans up
        return {"FINISHED"}


class SEMANTIFY_OT_check_python(SemantifyOperator):
    """Check that the process for background work has what building mappers and adding words need"""

    bl_idname = "semantify.check_python"
    bl_label = "Check Worker"

    def run(self, context: Any) -> set[str]:
        worker = job_worker(context)
        require_modules(worker, ("numpy", *import_engine("cli.worker").CLIP_ENGINE_MODULES), "Word sliders")
        extra = "" if not worker.missing_modules(("bpy",)) else " (no bpy: measurement builds only)"
        self.report({"INFO"}, f"{worker.describe()} has the CLIP engine{extra}")
        return {"FINISHED"}


CLASSES: tuple[type, ...] = (
    SEMANTIFY_OT_build_mapper,
    SEMANTIFY_OT_add_word,
    SEMANTIFY_OT_cancel_job,
    SEMANTIFY_OT_check_python,
)
