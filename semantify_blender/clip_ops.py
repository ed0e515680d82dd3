"""Get CLIP weights from the preferences: Download, Use a Local File, Check; each a background job.

- *Download* runs ``semantify clip download`` (all or nothing: the engine stages the files inside the
  cache and moves only complete ones into place) with progress and Esc / Cancel, and only when Blender's
  *Allow Online Access* is on; when it is off the report says where to turn it on, and that a local
  file works without it.
- *Use a Local File* takes a weights file and its architecture and runs ``semantify clip check`` on them
  (open_clip loads the file and encodes an image and a word); the preferences change only when that
  worked, so a truncated file or one for another architecture is reported and changes nothing.
- *Check* does the same for the weights already set.

They share :mod:`.jobs`'s machinery (one job at a time, the worker it names, waiting in background mode)
and are not undo steps: they change preferences and caches, not the scene.
"""

from __future__ import annotations

import importlib.machinery
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import bpy
from bpy.props import StringProperty

from . import clip_status, jobs, polls
from .engine import import_engine
from .job_process import command, require_modules
from .job_state import ActiveJob, ResultHandler
from .preferences import engine_environment, get_preferences, job_worker, wheel_dir

if TYPE_CHECKING:
    from semantify_engine.cli.background import BackgroundJob

WEIGHT_FILTER = "*.bin;*.pt;*.pth;*.safetensors;*.ckpt;*.npz"
CLIP_MODULES = ("torch", "torchvision", "open_clip")


def weights_error(message: str) -> Exception:
    return import_engine("errors").ClipWeightsError(message)


def architectures() -> list[str]:
    """open_clip's architecture names, read from its config folder on disk (open_clip is not imported)."""
    spec = importlib.machinery.PathFinder.find_spec("open_clip", [wheel_dir()])
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(next(iter(spec.submodule_search_locations))) / "model_configs"
    return sorted(path.stem for path in folder.glob("*.json"))


def _search_architectures(self: Any, context: Any, edit_text: str) -> Iterator[str]:
    text = edit_text.lower()
    yield from (name for name in architectures() if text in name.lower())


def clip_job(context: Any, action: str, label: str, **options: object) -> BackgroundJob:
    """``semantify clip ACTION --json`` in the worker, after checking it has the CLIP engine."""
    worker = job_worker(context)
    require_modules(worker, CLIP_MODULES, label)
    return import_engine("cli.background").BackgroundJob(
        worker,
        command(f"clip {action}", json=True, **options),
        None,
        environment=engine_environment(context),
        label=label,
    )


class _ClipJobOperator(jobs._BackgroundOperator):
    """A CLIP job: needs no Semantify object, starts at once, is not an undo step."""

    bl_options: ClassVar[set[str]] = set()
    needs = (polls.NO_JOB,)
    needs_object = False

    def invoke(self, context: Any, event: Any) -> set[str]:
        return self.execute(context)


class SEMANTIFY_OT_download_weights(_ClipJobOperator):
    """Download the CLIP weights set above into the cache, once (needs Allow Online Access)"""

    bl_idname = "semantify.download_weights"
    bl_label = "Download"

    def make_job(self, context: Any, obj: Any) -> BackgroundJob:
        if not bpy.app.online_access:
            raise weights_error(
                "Downloading CLIP weights needs Blender's 'Allow Online Access' (Edit > Preferences > "
                "System > Network). Turn it on and press Download again, or press 'Use a Local File' for "
                "weights you already have."
            )
        return clip_job(context, "download", "Download CLIP weights")

    def result_handler(self) -> ResultHandler:
        def downloaded(state: ActiveJob, _path: Path | None) -> tuple[str, str, bool]:
            clip_status.forget()
            summary = state.job.summary() or {}
            return "INFO", f"CLIP weights are in {summary.get('location', 'the cache')}", True

        return downloaded


class SEMANTIFY_OT_use_local_weights(_ClipJobOperator):
    """Use a CLIP weights file you have; it is loaded once to check that it fits its architecture"""

    bl_idname = "semantify.use_local_weights"
    bl_label = "Use a Local File"
    parameter_properties: ClassVar[Mapping[str, str]] = {"clip": "architecture", "pretrained": "filepath"}

    filepath: StringProperty(name="Weights File", subtype="FILE_PATH", options={"SKIP_SAVE"})
    filter_glob: StringProperty(default=WEIGHT_FILTER, options={"HIDDEN", "SKIP_SAVE"})
    architecture: StringProperty(
        name="Architecture",
        description=(
            "The open_clip architecture the file holds weights for (ViT-B-32-quickgelu for OpenAI's "
            "ViT-B/32 weights); a '<name>.json' config beside the file works too"
        ),
        search=_search_architectures,
        options={"SKIP_SAVE"},
    )

    def invoke(self, context: Any, event: Any) -> set[str]:
        preferences = get_preferences(context)
        if not self.architecture and preferences is not None:
            self.architecture = preferences.clip_model
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def make_job(self, context: Any, obj: Any) -> BackgroundJob:
        path = Path(bpy.path.abspath(self.filepath)) if self.filepath.strip() else None
        if path is None or not path.is_file():
            raise weights_error(
                f"Choose a CLIP weights file ({WEIGHT_FILTER}); {path or 'none'} is not a file."
            )
        if path.stat().st_size == 0:
            raise weights_error(f"{path} is empty; choose a CLIP weights file.")
        if not self.architecture.strip():
            raise weights_error("Name the file's open_clip architecture (for example ViT-B-32).")
        return clip_job(
            context,
            "check",
            f"Check CLIP weights {path.name}",
            clip=self.architecture.strip(),
            pretrained=str(path),
        )

    def result_handler(self) -> ResultHandler:
        path, architecture = str(Path(bpy.path.abspath(self.filepath))), self.architecture.strip()

        def use(state: ActiveJob, _path: Path | None) -> tuple[str, str, bool]:
            preferences = get_preferences()
            if preferences is None:
                return "WARNING", "The preferences are gone (the add-on was disabled)", False
            preferences.clip_model, preferences.clip_pretrained = architecture, path  # forgets the status
            width = (state.job.summary() or {}).get("embedding_width", "?")
            return "INFO", f"CLIP weights {path} ({architecture}) load and encode ({width} numbers)", True

        return use


class SEMANTIFY_OT_check_weights(_ClipJobOperator):
    """Load the CLIP weights set above and encode an image and a word: proof they fit"""

    bl_idname = "semantify.check_weights"
    bl_label = "Check"

    def make_job(self, context: Any, obj: Any) -> BackgroundJob:
        return clip_job(context, "check", "Check CLIP weights")

    def result_handler(self) -> ResultHandler:
        def checked(state: ActiveJob, _path: Path | None) -> tuple[str, str, bool]:
            clip_status.forget()
            summary = state.job.summary() or {}
            where = summary.get("location") or summary.get("pretrained")
            return "INFO", f"CLIP '{summary.get('model')}' loads and encodes ({where})", True

        return checked


CLASSES: tuple[type, ...] = (
    SEMANTIFY_OT_download_weights,
    SEMANTIFY_OT_use_local_weights,
    SEMANTIFY_OT_check_weights,
)
