"""``semantify mapper add-word``: a new descriptor word for an existing mapper, without rendering anything.

A dataset keeps the CLIP embedding of every render, so a word the dataset was never scored against is
scored in milliseconds: its text goes through the same CLIP model with the same prompt template, and the
cosine with the cached image embeddings is averaged over the views exactly as the build does. The mapper
is then retrained on its old descriptors plus the new word with the training settings it recorded, and
saved atomically (the old file stays intact until the new one is complete).

The dataset is the one the mapper records (its folder and a checksum of its samples), or one given
explicitly; it must be of the mapper's model and scored with the CLIP model and template of the mapper's
other words, or the new slider would mean something else than its neighbours.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset.store import DatasetFolder
from .from_dataset import train_from_dataset
from .mapper import Mapper, MapperError, load_mapper, save_mapper
from .provenance import checked_dataset_settings, dataset_identity, require_clip_embeddings, trained_dataset
from .settings import TrainingSettings
from .train import Progress

MAX_WORD_LENGTH = 60
"""Longer text is a sentence, not a descriptor, and with the prompt template it would approach CLIP's
77-token context, past which open_clip silently truncates."""


def add_word(
    mapper_path: str | os.PathLike[str],
    dataset_folder: str | os.PathLike[str] | None,
    word: str,
    out_path: str | os.PathLike[str] | None = None,
    *,
    progress: Progress | None = None,
) -> tuple[Path, Mapper, dict[str, Any]]:
    """Add ``word`` to the mapper at ``mapper_path``, retrain, and save to ``out_path`` (default: in place).

    ``dataset_folder`` None uses the dataset the mapper was trained from; that dataset must not have changed
    since (same samples), else pass it explicitly to retrain on it as it is now. Returns the written path,
    the new mapper and its figures.
    """
    mapper_path = Path(mapper_path)
    mapper = load_mapper(mapper_path)
    word = clean_word(word, mapper)
    explicit = dataset_folder is not None
    store = DatasetFolder(trained_dataset(mapper, dataset_folder, mapper_name=str(mapper_path)))
    settings = checked_dataset_settings(mapper, store, "to score a new word with")
    data = store.load()
    if not explicit:
        _check_unchanged(mapper, store.folder, data)
    require_clip_embeddings(store.folder, settings, data, f"to score '{word}' with")
    added = [*mapper.metadata.get("added_words", []), word]
    new_mapper, figures = train_from_dataset(
        store.folder,
        [*mapper.descriptor_names, word],
        kinds=[*(d.kind for d in mapper.descriptors), "word"],
        model_info=mapper.model_info,
        settings=TrainingSettings.from_json(mapper.metadata.get("training", {})),
        progress=progress,
        data=data,
        extra_metadata={"added_words": added},
    )
    target = Path(out_path) if out_path is not None else mapper_path
    save_mapper(new_mapper, target)
    return target, new_mapper, figures


def clean_word(word: str, mapper: Mapper | None = None) -> str:
    """``word`` with its whitespace normalised, or a clear refusal (empty, no letters, too long, present)."""
    text = " ".join(str(word).split())
    if not text:
        raise MapperError("The word to add is empty; give a descriptor such as 'broad shoulders'.")
    if not any(character.isalnum() for character in text):
        raise MapperError(
            f"'{text}' holds no letters or digits; give a descriptor such as 'broad shoulders'."
        )
    if len(text) > MAX_WORD_LENGTH:
        raise MapperError(
            f"'{text[:40]}…' is {len(text)} characters long; a descriptor is a word or a short phrase "
            f"(at most {MAX_WORD_LENGTH} characters)."
        )
    if "{}" in text:
        raise MapperError(f"'{text}' contains '{{}}', which is the prompt template's placeholder.")
    if mapper is not None and text in mapper.descriptor_names:
        raise MapperError(
            f"The mapper already has the descriptor '{text}' ({', '.join(mapper.descriptor_names)})."
        )
    return text


def _check_unchanged(mapper: Mapper, folder: Path, data: dict[str, np.ndarray]) -> None:
    recorded = mapper.metadata.get("dataset", {}).get("checksum")
    current = dataset_identity(folder, data)["checksum"]
    if recorded is not None and recorded != current:
        raise MapperError(
            f"Dataset {folder} has changed since the mapper was trained (samples checksum {recorded} then, "
            f"{current} now). To retrain on it as it is now, name it explicitly with {{dataset}} {folder}.",
            parameters=("dataset",),
        )
