"""A dataset's columns as descriptor values: what a mapper is trained on, read by descriptor name.

A name is a measurement when the dataset measured it, an attribute when it is one of the dataset's shape
settings (gender, age, ... of models with a source bank), a CLIP word when the dataset scored it; any other
name is a new word, scored now from the dataset's cached image embeddings (:mod:`.word_scores`). Training,
add-word, the text fit and the evaluation read their descriptor values here, so a slider means the same
column everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset.store import DatasetFolder
from .mapper import DESCRIPTOR_KINDS, WORD_UNIT, MapperError
from .provenance import CLIP_KEYS, dataset_identity
from .word_scores import score_words


@dataclass
class DatasetColumns:
    """Descriptor values read (or scored) from a dataset, with what produced them."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    units: tuple[str, ...]
    values: np.ndarray  # (N, d) float32
    coefficients: np.ndarray  # (N, n) float32
    settings: dict[str, Any]
    scorers: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)


def dataset_columns(
    folder: str | Path,
    names: Sequence[str],
    kinds: Sequence[str | None] | None = None,
    data: dict[str, np.ndarray] | None = None,
) -> DatasetColumns:
    """The values of descriptors ``names`` for every sample of a dataset folder.

    A name is a metric when the dataset measured it, an attribute when it is one of the dataset's shape
    settings (gender, age, ... of models with a source bank), a CLIP word when the dataset scored it; any
    other name is a new word, scored now from the dataset's cached image embeddings with the dataset's own
    CLIP model and prompt template (milliseconds per word; no rendering). ``kinds`` forces "word", "metric"
    or "attribute" per name (None: decide as above). ``data`` is the folder's loaded arrays when the caller
    has them.
    """
    store = DatasetFolder(folder)
    settings = store.read_manifest()["settings"]
    data = store.load() if data is None else data
    names = [_clean_name(name) for name in names]
    if not names:
        raise MapperError("Choose at least one descriptor to train a mapper on.")
    kinds = list(kinds) if kinds is not None else [None] * len(names)
    metric_settings = settings.get("metrics") or {}
    clip_settings = settings.get("clip") or {}
    attribute_settings = settings.get("attributes") or {}
    metric_names = list(metric_settings.get("names", []))
    attribute_names = list(attribute_settings.get("names", []))
    word_names = list(clip_settings.get("words", []))
    resolved = [
        _kind_of(name, kind, metric_names, attribute_names, store.folder)
        for name, kind in zip(names, kinds, strict=True)
    ]
    columns: list[np.ndarray | None] = []
    units: list[str] = []
    for name, kind in zip(names, resolved, strict=True):
        if kind == "metric":
            index = metric_names.index(name)
            columns.append(data["metrics"][:, index])
            units.append(str(metric_settings.get("units", ["?"] * len(metric_names))[index]))
        elif kind == "attribute":
            index = attribute_names.index(name)
            columns.append(data["attributes"][:, index])
            units.append(str(attribute_settings["units"][index]))
        else:
            columns.append(data["scores"][:, word_names.index(name)] if name in word_names else None)
            units.append(WORD_UNIT)
    new_words = [name for name, column in zip(names, columns, strict=True) if column is None]
    if new_words:
        scored = score_words(store.folder, settings, data, new_words)
        columns = [
            scored[name] if column is None else column for name, column in zip(names, columns, strict=True)
        ]
    return DatasetColumns(
        names=tuple(names),
        kinds=tuple(resolved),
        units=tuple(units),
        values=np.stack(columns, axis=1).astype(np.float32),
        coefficients=np.asarray(data["coefficients"], dtype=np.float32),
        settings=settings,
        scorers=_scorers(settings, resolved),
        dataset=dataset_identity(store.folder, data),
    )


def _clean_name(name: str) -> str:
    text = " ".join(str(name).split())
    if not text:
        raise MapperError(
            "A descriptor name is empty; give a word such as 'tall' or a metric such as 'height'."
        )
    return text


def _kind_of(
    name: str, kind: str | None, metric_names: list[str], attribute_names: list[str], folder: Path
) -> str:
    if kind is not None and kind not in DESCRIPTOR_KINDS:
        raise MapperError(
            f"Descriptor kind '{kind}' for '{name}': expected one of {', '.join(DESCRIPTOR_KINDS)}."
        )
    if kind == "metric" and name not in metric_names:
        known = ", ".join(metric_names) or "none (built without {scorer} metric or both)"
        raise MapperError(
            f"Dataset {folder} has no measurement '{name}'; its measurements: {known}.",
            parameters=("scorer",) if not metric_names else (),
        )
    if kind == "attribute" and name not in attribute_names:
        known = ", ".join(attribute_names) or "none (its model has no source bank, or it has no measurements)"
        raise MapperError(f"Dataset {folder} has no attribute '{name}'; its attributes: {known}.")
    if kind is None:
        if name in metric_names:
            return "metric"
        return "attribute" if name in attribute_names else "word"
    return kind


def _scorers(settings: dict[str, Any], kinds: Sequence[str]) -> dict[str, Any]:
    """What produced the descriptor values: CLIP (model, weights, template) and/or the metric definition."""
    scorers: dict[str, Any] = {}
    if "word" in kinds:
        clip = settings.get("clip") or {}
        scorers["clip"] = {
            **{key: clip.get(key) for key in CLIP_KEYS},
            "score": "cosine, averaged over views",
            "views": [view.get("name") for view in settings.get("views", [])],
        }
    if "metric" in kinds:
        metrics = settings.get("metrics") or {}
        scorers["metric"] = {
            key: metrics.get(key) for key in ("scorer", "definition", "topology", "names", "units")
        }
    if "attribute" in kinds:
        scorers["attribute"] = dict(settings.get("attributes") or {})
    return scorers
