"""What the model registry and the user-model loader both speak: a model's line in ``semantify models``,
and the variable naming the user's model folder.

A leaf module, so that :mod:`.registry` (which lists and loads every model) and :mod:`.user_models` (which
lists and loads the user's own files) can both use these without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_DIR_VARIABLE = "SEMANTIFY_MODEL_DIR"


@dataclass(frozen=True)
class ModelEntry:
    """One line of ``semantify models``: enough to choose a model without loading its basis."""

    name: str
    vertex_count: int | None
    component_count: int | None
    licence: str
    source: str
    location: str  # file path, or what is missing
    available: bool
