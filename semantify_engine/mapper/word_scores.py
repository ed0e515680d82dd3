"""New words scored from a dataset's cached CLIP image embeddings: no rendering, milliseconds a word.

A dataset keeps the CLIP embedding of every render, so a word it was never scored against is scored as the
build would have scored it: its text through the dataset's own CLIP model with its prompt template, the
cosine with every view's embedding averaged over the views (:func:`..scoring.clip.average_view_scores`, what
:mod:`semantify_engine.dataset.builder` uses). Where CLIP runs (the device) is this machine's choice; which
CLIP is the dataset's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .mapper import MapperError


def score_words(
    folder: Path, settings: dict[str, Any], data: dict[str, np.ndarray], words: Sequence[str]
) -> dict[str, np.ndarray]:
    """CLIP cosine scores (N,) per word from the dataset's cached embeddings, as the build would make them.

    The text goes through the dataset's CLIP model with its prompt template; the scores are averaged over the
    views exactly as :mod:`semantify_engine.dataset.builder` does, so a word scored now equals the same word
    scored during the build.
    """
    from ..scoring.clip import average_view_scores, prompts, recorded_clip
    from .provenance import require_clip_embeddings

    measurements = ", ".join((settings.get("metrics") or {}).get("names", [])) or "none"
    require_clip_embeddings(
        folder,
        settings,
        data,
        f"to score {', '.join(repr(word) for word in words)} with",
        other_way=f", or one of its measurements ({measurements})",
    )
    clip = settings["clip"]

    scorer = recorded_clip(clip)  # the dataset fixes the model and weights; where to run is local
    text = scorer.encode_texts(prompts(list(words), clip["template"]))
    embeddings = data["embeddings"]
    if embeddings.shape[-1] != text.shape[1]:
        raise MapperError(
            f"Dataset {folder} holds embeddings of size {embeddings.shape[-1]} but {scorer.spec.describe()} "
            f"gives {text.shape[1]}: the CLIP model is not the one the dataset was built with."
        )
    scores = average_view_scores(embeddings.astype(np.float32), text)
    return {word: scores[:, index].astype(np.float32) for index, word in enumerate(words)}
