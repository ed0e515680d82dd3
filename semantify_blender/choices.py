"""The choices operators offer in their menus: the models there are, and the mappers shipped for a model.

Blender asks for a dynamic enum's items on every redraw of a menu and keeps no reference to them, so both
lists are read once (a model folder's files, the shipped mappers' headers) and kept here: per model folder
and per model checksum. Disabling the add-on forgets them (:func:`clear_caches`).
"""

from __future__ import annotations

from typing import Any

from .engine import import_engine
from .model_objects import semantify_object
from .preferences import user_model_dir

_model_items_cache: dict[str, list[tuple[str, str, str]]] = {}  # Blender needs the items kept alive
_default_mapper_cache: dict[str, list[tuple[str, str, str]]] = {}  # model checksum -> shipped mappers


def model_items(_self: Any, context: Any) -> list[tuple[str, str, str]]:
    """Bundled models, then the user's SMPL-family / SMAL models whose files are in the model folder."""
    folder = user_model_dir(context) or ""
    if folder not in _model_items_cache:
        registry = import_engine("models.registry")
        items = []
        for entry in registry.list_models(folder or None):
            if not entry.available:
                continue
            counts = f"{entry.vertex_count} vertices, {entry.component_count} components"
            items.append((entry.name, entry.name, f"{counts}; {entry.licence}"))
        items.sort(key=lambda item: item[0] != registry.DEFAULT_MODEL)  # the default first (stable otherwise)
        _model_items_cache[folder] = items
    return _model_items_cache[folder]


def default_mapper_items(_self: Any, context: Any) -> list[tuple[str, str, str]]:
    """The shipped mappers made for the active object's model (matched by the model's checksum)."""
    obj = semantify_object(context)
    checksum = obj.semantify.model_checksum if obj is not None else ""
    if checksum not in _default_mapper_cache:
        defaults = import_engine("mapper.defaults")
        _default_mapper_cache[checksum] = [
            (entry.name, ", ".join(entry.descriptors), f"{entry.kind} sliders for {entry.model_name}")
            for entry in (defaults.default_mappers_for(checksum) if checksum else [])
        ]
    return _default_mapper_cache[checksum]


def clear_caches() -> None:
    _model_items_cache.clear()
    _default_mapper_cache.clear()
