"""Add-on preferences: where the user's own models, CLIP weights, caches and the worker Python are.

Nothing here is read at registration; operators read the preferences when they run. Empty fields mean
"use the default": ``$SEMANTIFY_MODEL_DIR`` for models, open_clip's own download cache for weights,
Blender's per-extension user folder for the cache (the extension's own folder is replaced on every update
and may be read-only, so it is never written to), and ``$SEMANTIFY_PYTHON`` else Blender's own Python for
background work (which has no torch unless the user installed it there).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import bpy
from bpy.props import StringProperty

# The add-on's module name, which is also the key of its preferences: "bl_ext.<repository>.semantify"
# inside Blender (this package is "<that>.semantify_blender"), the package itself when imported top-level.
ADDON_ID = (__package__ or "").rpartition(".")[0] or (__package__ or "semantify_blender")


class SEMANTIFY_AddonPreferences(bpy.types.AddonPreferences):
    """Folders and CLIP settings shared by every Semantify object."""

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
        description="open_clip architecture name (ViT-B-32 is the paper's), an hf-hub: id or local-dir:",
        default="ViT-B-32",
    )
    clip_pretrained: StringProperty(
        name="CLIP Weights",
        description=(
            "A weights tag open_clip knows for the model (openai), or a local weights file. "
            "Downloaded weights go to open_clip's cache, once"
        ),
        default="openai",
    )
    cache_dir: StringProperty(
        name="Cache Folder",
        description=(
            "Where CLIP weights, text embeddings, built mappers and their datasets go. "
            "Empty: the extension's user folder"
        ),
        subtype="DIR_PATH",
        default="",
    )
    python: StringProperty(
        name="Python with semantify installed",
        description=(
            "A Python that has torch and open_clip (and bpy, to render CLIP training views), e.g. a "
            "checkout's .venv/bin/python after 'make env'. Building mappers and adding words run there, in "
            "the background. Empty: $SEMANTIFY_PYTHON, else Blender's own Python"
        ),
        subtype="FILE_PATH",
        default="",
    )

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "model_dir")
        column = layout.column(heading="CLIP")
        column.prop(self, "clip_model")
        column.prop(self, "clip_pretrained")
        layout.prop(self, "cache_dir")
        row = layout.row(align=True)
        row.prop(self, "python")
        row.operator("semantify.check_python", text="", icon="CHECKMARK")


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


def job_python(context: Any = None) -> tuple[str, str]:
    """The Python that runs background work, and where that choice came from (for reports)."""
    preferences = get_preferences(context)
    if preferences and preferences.python:
        return bpy.path.abspath(preferences.python), "the add-on preference 'Python with semantify installed'"
    if os.environ.get("SEMANTIFY_PYTHON"):
        return os.environ["SEMANTIFY_PYTHON"], "$SEMANTIFY_PYTHON"
    return sys.executable, "Blender's own Python (no preference set)"


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
        "SEMANTIFY_CLIP_PRETRAINED": preferences.clip_pretrained,
        "SEMANTIFY_CLIP_CACHE_DIR": bpy.path.abspath(preferences.cache_dir) if preferences.cache_dir else "",
    }
    return {name: value for name, value in values.items() if value}


CLASSES: tuple[type, ...] = (SEMANTIFY_AddonPreferences,)
