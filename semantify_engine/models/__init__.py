"""Morphable models: one linear model type, its file format, and where models are found."""

from .linear import MODEL_KINDS, LinearMorphableModel, Skeleton
from .modelfile import load_model, read_header, save_model
from .registry import DEFAULT_MODEL, ModelEntry, list_models, load

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_KINDS",
    "LinearMorphableModel",
    "ModelEntry",
    "Skeleton",
    "list_models",
    "load",
    "load_model",
    "read_header",
    "save_model",
]
