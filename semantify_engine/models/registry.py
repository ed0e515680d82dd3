"""Find a model by name: bundled defaults, model files, and the user's own SMPL-family / SMAL files.

A *model spec* is what users type after ``--model``:

- a bundled name (``anny-body``), shipped inside the package under ``data/models``;
- a path to a model file (``my_character.npz``) written by semantify;
- a user-owned model name (``smplx-female``, ``flame-expression``, ...) looked up in the user's model
  folder (``--model-dir`` or ``$SEMANTIFY_MODEL_DIR``).

Like ``smplx.create``, one entry point serves the whole family.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelFileError
from .entry import MODEL_DIR_VARIABLE, ModelEntry
from .linear import LinearMorphableModel
from .modelfile import load_model, read_header
from .user_models import USER_MODEL_NAMES, list_user_models, load_user_model

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
DEFAULT_MODEL = "anny-body"


def user_model_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder holding the user's SMPL-family / SMAL files, if one is configured."""
    value = explicit if explicit is not None else os.environ.get(MODEL_DIR_VARIABLE)
    return Path(value).expanduser() if value else None


def bundled_model_paths() -> dict[str, Path]:
    """Bundled model name -> file, for every model file shipped with the package."""
    return {path.stem: path for path in sorted(BUNDLED_DIR.glob("*.npz"))}


def list_models(model_dir: str | os.PathLike[str] | None = None) -> list[ModelEntry]:
    """Every model the user can name: bundled ones, then user-owned ones (present or not)."""
    entries = []
    for name, path in bundled_model_paths().items():
        header = read_header(path)
        info = header.get("info", {})
        entries.append(
            ModelEntry(
                name=name,
                vertex_count=int(header["vertex_count"]),
                component_count=int(header["component_count"]),
                licence=str(info.get("licence", "unknown")),
                source=str(info.get("source", "bundled")),
                location=str(path),
                available=True,
            )
        )
    entries.extend(list_user_models(user_model_dir(model_dir)))
    return entries


def load(
    spec: str | os.PathLike[str], model_dir: str | os.PathLike[str] | None = None
) -> LinearMorphableModel:
    """Resolve a model spec (see module docstring) to a loaded model, or explain what is missing."""
    text = os.fspath(spec)
    bundled = bundled_model_paths()
    if text in bundled:
        return load_model(bundled[text])
    candidate = Path(text).expanduser()
    if candidate.suffix == ".npz" or candidate.exists():
        return load_model(candidate)
    if text in USER_MODEL_NAMES:
        return load_user_model(text, user_model_dir(model_dir))
    known = ", ".join([*bundled, *USER_MODEL_NAMES])
    raise ModelFileError(
        f"Unknown model '{text}'. Use a bundled or user model name ({known}) or the path to a "
        "model file (.npz). 'semantify models' lists them."
    )
