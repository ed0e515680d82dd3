"""Add-on preferences: the user's own models, CLIP weights, caches, and which process runs jobs.

Nothing here is read at registration; operators read the preferences when they run. Empty fields mean
"use the default": ``$SEMANTIFY_MODEL_DIR`` for models, open_clip's own download cache for weights,
Blender's per-extension user folder for built mappers and fits (the extension's own folder is replaced on
every update and may be read-only, so it is never written to), and for background work the engine's
choice (:func:`semantify_engine.cli.worker.choose_worker`): a headless child of this Blender.

The CLIP box shows what word sliders need (the CLIP engine, the weights) and the buttons that provide
them; its status comes from :mod:`.clip_status`, which asks a background process and never blocks a
redraw.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import bpy
from bpy.props import EnumProperty, StringProperty

from .engine import import_engine

if TYPE_CHECKING:
    from semantify_engine.cli.worker import Worker

# The add-on's module name, which is also the key of its preferences: "bl_ext.<repository>.semantify"
# inside Blender (this package is "<that>.semantify_blender"), the package itself when imported top-level.
ADDON_ID = (__package__ or "").rpartition(".")[0] or (__package__ or "semantify_blender")


# The engine's ENGINE_CHOICES, fastest first (semantify_engine.scoring.engines), spelled out so that
# registering imports no engine module; a test checks that the two lists agree.
CLIP_ENGINE_ITEMS = (
    (
        "auto",
        "Fastest That Passes",
        "The fastest engine whose image embeddings pass the fidelity check "
        "against torch fp32 on each build's first images",
    ),
    (
        "onnx-int8",
        "ONNX Runtime (int8)",
        "The ONNX export quantised to int8: about 3x torch on a CPU; "
        "used only where it passes the fidelity check",
    ),
    ("onnx", "ONNX Runtime (fp32)", "The image tower exported once to ONNX, run by ONNX Runtime"),
    ("torch", "Torch (fp32)", "open_clip itself, the reference"),
)


def _clip_settings_changed(preferences: SEMANTIFY_AddonPreferences, context: Any) -> None:
    """Another model, weights file, cache or worker: the shown status is stale."""
    from . import clip_status

    clip_status.forget()


class SEMANTIFY_AddonPreferences(bpy.types.AddonPreferences):
    """Folders, CLIP settings and the background worker, shared by every Semantify object."""

    bl_idname = ADDON_ID

    model_dir: StringProperty(
        name="User Model Folder",
        description=(
            "Folder holding your SMPL, SMPL-H, SMPL-X, MANO, FLAME or SMAL files in smplx's layout "
            "(smplx/SMPLX_NEUTRAL.npz, smpl/SMPL_MALE.pkl, ...). Empty: $SEMANTIFY_MODEL_DIR"
        ),
        subtype="DIR_PATH",
        default="",
    )
    clip_model: StringProperty(
        name="CLIP Model",
        description=(
            "open_clip architecture name (ViT-B-32 is the paper's; ViT-B-32-quickgelu for a local copy of "
            "OpenAI's weights), an hf-hub: id or local-dir:"
        ),
        default="ViT-B-32",
        update=_clip_settings_changed,
    )
    clip_pretrained: StringProperty(
        name="CLIP Weights",
        description=(
            "A weights tag open_clip knows for the model (openai), an hf-hub: id, or a local weights file "
            "(Use a Local File). Downloaded weights go to open_clip's cache, once"
        ),
        default="openai",
        update=_clip_settings_changed,
    )
    clip_engine: EnumProperty(
        name="CLIP Image Engine",
        description=(
            "What runs CLIP's image tower when a build scores its renders (text stays on torch). A dataset "
            "keeps the engine it was started with"
        ),
        items=CLIP_ENGINE_ITEMS,
        default="auto",
    )
    cache_dir: StringProperty(
        name="Cache Folder",
        description=(
            "Where built mappers, their datasets and fits go, and CLIP weights when set. Empty: the "
            "extension's user folder (and open_clip's own cache for weights, shared with other tools)"
        ),
        subtype="DIR_PATH",
        default="",
        update=_clip_settings_changed,
    )
    blender: StringProperty(
        name="Blender for Jobs",
        description=(
            "A Blender executable that runs builds, fits and downloads in background mode. "
            "Empty: $SEMANTIFY_BLENDER, else this Blender"
        ),
        subtype="FILE_PATH",
        default="",
        update=_clip_settings_changed,
    )
    python: StringProperty(
        name="Python with semantify installed",
        description=(
            "For your own torch (CUDA): a Python that has torch and open_clip (and bpy, to render CLIP "
            "training views), e.g. a checkout's .venv/bin/python after 'make env'. Jobs run there instead "
            "of in Blender. Empty: $SEMANTIFY_PYTHON, else a headless Blender with the platform extension's "
            "CLIP engine"
        ),
        subtype="FILE_PATH",
        default="",
        update=_clip_settings_changed,
    )

    def draw(self, context: bpy.types.Context) -> None:
        from . import clip_status

        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "model_dir")
        layout.prop(self, "cache_dir")
        column = layout.column(heading="CLIP")
        column.prop(self, "clip_model")
        column.prop(self, "clip_pretrained")
        column.prop(self, "clip_engine")
        box = layout.box()
        clip_status.draw_needs(box, context, show_present=True)
        row = box.row(align=True)
        row.operator("semantify.download_weights", icon="IMPORT")
        row.operator("semantify.use_local_weights", icon="FILE_FOLDER")
        row.operator("semantify.check_weights", icon="CHECKMARK")
        column = layout.column(heading="Background Jobs")
        column.prop(self, "blender")
        row = column.row(align=True)
        row.prop(self, "python")
        row.operator("semantify.check_python", text="", icon="CHECKMARK")
        column.label(text=f"Jobs run in {job_worker(context).describe()}", icon="CONSOLE")


PARAMETER_PREFERENCES = {
    "model_dir": "model_dir",
    "clip": "clip_model",
    "pretrained": "clip_pretrained",
    "clip_engine": "clip_engine",
}
"""The engine parameters every job takes from a preference (:func:`engine_environment`,
:func:`user_model_dir`), by the preference that sets them: an engine error that names one points here."""


def preference_label(parameter: str) -> str | None:
    """An engine parameter as a Blender user knows it, when a preference sets it (``the preference 'CLIP
    Weights'``, its label in this panel); None for any other."""
    identifier = PARAMETER_PREFERENCES.get(parameter)
    rna = getattr(SEMANTIFY_AddonPreferences, "bl_rna", None)  # only once registered
    if identifier is None or rna is None:
        return None
    return f"the preference '{rna.properties[identifier].name}'"


def get_preferences(context: Any = None) -> SEMANTIFY_AddonPreferences | None:
    """The add-on's preferences, or None where the add-on is not enabled (a bare import, a test)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return None if addon is None else addon.preferences


def user_model_dir(context: Any = None) -> str | None:
    """The user model folder from the preferences, else ``$SEMANTIFY_MODEL_DIR``, else None."""
    preferences = get_preferences(context)
    folder = bpy.path.abspath(preferences.model_dir) if preferences and preferences.model_dir else ""
    return folder or os.environ.get("SEMANTIFY_MODEL_DIR") or None


def cache_dir(context: Any = None) -> str:
    """The cache folder: the preference if set, else Blender's writable per-extension folder."""
    preferences = get_preferences(context)
    if preferences and preferences.cache_dir:
        return bpy.path.abspath(preferences.cache_dir)
    return bpy.utils.extension_path_user(ADDON_ID, path="cache", create=True)


def wheel_dir() -> str:
    """Where Blender installs extensions' wheels (the platform extension's CLIP engine) for this Python.

    The layout Blender's own add-on system uses (``addon_utils``): the user extensions folder's
    ``.local/lib/pythonX.Y/site-packages``.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return os.path.join(bpy.utils.user_resource("EXTENSIONS"), ".local", "lib", version, "site-packages")


def job_worker(context: Any = None) -> Worker:
    """The process background jobs run in (the engine decides; see its ``choose_worker``)."""
    preferences = get_preferences(context)
    worker = import_engine("cli.worker")
    return worker.choose_worker(
        python_preference=bpy.path.abspath(preferences.python) if preferences and preferences.python else "",
        blender_preference=bpy.path.abspath(preferences.blender)
        if preferences and preferences.blender
        else "",
        running_blender=bpy.app.binary_path,
        package_dirs=(wheel_dir(),),
    )


def engine_environment(context: Any = None) -> dict[str, str]:
    """The non-empty preferences as the engine's environment variables (``semantify`` reads them).

    The command-line hook applies them with ``setdefault``: a variable set in the shell wins.
    """
    preferences = get_preferences(context)
    if preferences is None:
        return {}
    values = {
        "SEMANTIFY_MODEL_DIR": bpy.path.abspath(preferences.model_dir) if preferences.model_dir else "",
        "SEMANTIFY_CLIP_MODEL": preferences.clip_model,
        "SEMANTIFY_CLIP_PRETRAINED": bpy.path.abspath(preferences.clip_pretrained)
        if preferences.clip_pretrained.startswith("//")
        else preferences.clip_pretrained,
        "SEMANTIFY_CLIP_CACHE_DIR": bpy.path.abspath(preferences.cache_dir) if preferences.cache_dir else "",
        "SEMANTIFY_CLIP_ENGINE": preferences.clip_engine,
    }
    return {name: value for name, value in values.items() if value}


CLASSES: tuple[type, ...] = (SEMANTIFY_AddonPreferences,)
