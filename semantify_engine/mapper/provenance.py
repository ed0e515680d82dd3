"""Where a mapper's data came from, and whether a dataset can still answer for it.

A mapper records the dataset it was trained from (its folder and a checksum of its samples), the model it
belongs to and the CLIP model and prompt template that scored its words. Training, add-word, the text fit
and the Blender sidebar (which checks before it starts a fit in the background) all ask the same three
questions of a dataset: which one is the mapper's, is it of the mapper's model, was it scored with the
mapper's CLIP. They ask here, so that each answer has one wording and one rule.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset.store import DatasetFolder, content_checksum
from .mapper import Mapper, MapperError

CLIP_KEYS = ("model", "pretrained", "template")
"""What must agree between a mapper's word scores and a dataset's for a score from one to mean the same in
the other: the CLIP architecture, its weights and the prompt template."""


def dataset_identity(folder: Path, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Where the mapper's data came from: the folder and a checksum of its samples (indices, coefficients)."""
    return {
        "folder": str(Path(folder).resolve()),
        "checksum": content_checksum([data["indices"], data["coefficients"]]),
        "samples": len(data["indices"]),
    }


def trained_dataset(
    mapper: Mapper,
    given: str | os.PathLike[str] | None = None,
    *,
    mapper_name: str = "The mapper",
) -> Path:
    """The dataset to use for ``mapper``: ``given`` when there is one, else the one it was trained from.

    Refused: a mapper that records no dataset (a shipped one says how to make its samples again) and one
    whose dataset is no longer where it was. ``mapper_name`` names the mapper in the message (its file,
    where the caller has one); the message names the ``dataset`` parameter, each front end spells it.
    """
    if given is not None:
        return Path(given)
    record = mapper.metadata.get("dataset", {})
    recorded, rebuild = record.get("folder"), record.get("rebuild")
    if not recorded and rebuild:  # a mapper shipped with semantify: its dataset does not ship
        raise MapperError(
            f"{mapper_name} ships with semantify without its dataset, so it records no dataset to use. Make "
            f"a dataset of the same samples with CLIP scores ({rebuild}), then name it with {{dataset}}.",
            parameters=("dataset",),
        )
    if not recorded:
        raise MapperError(
            f"{mapper_name} records no dataset it was trained from; name one with {{dataset}}.",
            parameters=("dataset",),
        )
    folder = Path(recorded)
    if not DatasetFolder(folder).exists():
        raise MapperError(
            f"{mapper_name} was trained from the dataset {folder}, which is no longer there; name the "
            "dataset's current folder with {dataset}.",
            parameters=("dataset",),
        )
    return folder


def check_dataset_model(folder: Path, settings: dict[str, Any], identity: dict[str, Any]) -> None:
    """Refuse a dataset built for another model than ``identity`` (a mapper's, or the model training is
    for): the same coefficients would make other bodies, or mean other things. Models are the same when
    their name and their content (the checksum of template, faces and basis) are: two models may share a
    mesh and a basis and still be two models."""
    built = settings.get("model", {})
    if (built.get("name"), built.get("checksum")) != (identity.get("name"), identity.get("checksum")):
        raise MapperError(
            f"Dataset {folder} was built for model '{built.get('name')}' ({built.get('vertex_count')} "
            f"vertices, checksum {built.get('checksum')}), but the mapper is for '{identity.get('name')}' "
            f"({identity.get('vertex_count')} vertices, checksum {identity.get('checksum')}). Use a dataset "
            "of the mapper's model."
        )


def require_clip_embeddings(
    folder: Path,
    settings: Mapping[str, Any],
    data: Mapping[str, np.ndarray] | None,
    use: str,
    other_way: str = "",
) -> None:
    """Refuse a dataset without CLIP image embeddings: a new word is scored, and a prompt ranked, against
    its renders' embeddings. ``use`` says what they would be for ("to score a new word with");
    ``other_way`` adds what else the user can do. ``data`` None: the manifest's settings alone decide."""
    if settings.get("clip") and (data is None or "embeddings" in data):
        return
    raise MapperError(
        f"Dataset {folder} was built without CLIP ({{scorer}} metric), so it has no image embeddings {use}. "
        f"Use a dataset built with {{scorer}} clip or both{other_way}.",
        parameters=("scorer",),
    )


def checked_dataset_settings(mapper: Mapper, store: DatasetFolder, use: str) -> dict[str, Any]:
    """The settings of a dataset that can stand for ``mapper``'s own: built for its model and scored with
    CLIP, with the CLIP model, weights and template of its words (when it has words). ``use`` says what the
    embeddings are for ("to score a new word with"), for the message of a dataset built without CLIP."""
    settings = store.read_manifest()["settings"]
    check_dataset_model(store.folder, settings, mapper.model_info)
    require_clip_embeddings(store.folder, settings, None, use)
    clip = settings["clip"]
    used = mapper.metadata.get("scorers", {}).get("clip")
    for key in CLIP_KEYS if used is not None else ():
        if used.get(key) != clip.get(key):
            raise MapperError(
                f"The mapper's words were scored with CLIP {key} {used.get(key)!r}, dataset {store.folder} "
                f"with {clip.get(key)!r}; its scores would mean something else than the mapper's. Use the "
                "mapper's own dataset."
            )
    return settings
