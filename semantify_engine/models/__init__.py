"""Morphable models: one linear model type, its file format, and where models are found."""

from .entry import ModelEntry
from .linear import MODEL_KINDS, LinearMorphableModel, Skeleton
from .modelfile import load_model, read_header, save_model
from .registry import DEFAULT_MODEL, list_models, load
from .shape_keys import load_shape_key_objs, model_from_shape_keys

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_KINDS",
    "LinearMorphableModel",
    "ModelEntry",
    "Skeleton",
    "list_models",
    "load",
    "load_model",
    "load_shape_key_objs",
    "model_from_shape_keys",
    "read_header",
    "save_model",
]
