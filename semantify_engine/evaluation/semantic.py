"""Semantic faithfulness of word sliders: does moving "muscular" make CLIP see more muscle?

Sweep one word slider from its low to its high value (the others at their defaults), render each mesh
with Blender from the dataset's views, score the images with the same CLIP model and template that
produced the training scores, and report:

- the Spearman rank correlation between the slider value and the word's own score (1 = monotone);
- the drift of every other word: how far its score moves over the sweep, as a fraction of that word's
  own slider range (0 = untouched).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..models.linear import LinearMorphableModel
from ..render.settings import RenderSettings
from ..render.views import View
from .coverage import SliderMapper
from .fidelity import sweep_values


def semantic_faithfulness(
    model: LinearMorphableModel,
    mapper: SliderMapper,
    scorer: Any,
    template: str,
    views: Sequence[View],
    render: RenderSettings,
    steps: int = 9,
    framing_components: int = 10,
) -> dict[str, dict[str, Any]]:
    """Per word descriptor: rank correlation of its score along its own sweep, and the others' drift."""
    from scipy.stats import spearmanr

    from ..render.blender import BlenderRenderer
    from ..scoring.clip import average_view_scores, prompts

    descriptors = list(mapper.descriptors)
    words = [i for i, d in enumerate(descriptors) if getattr(d, "kind", "word") == "word"]
    if not words:
        return {}
    names = [descriptors[i].name for i in words]
    text = scorer.encode_texts(prompts(names, template))
    sweeps = np.concatenate([sweep_values(mapper, index, steps) for index in words])
    coefficients = mapper.coefficients(sweeps)
    with BlenderRenderer(model, views, render, framing_components=framing_components) as renderer:
        images = renderer.render(coefficients)
    count = len(sweeps)
    embeddings = scorer.encode_images(images.reshape(count * len(views), *images.shape[2:]))
    scores = average_view_scores(embeddings.reshape(count, len(views), -1), text).reshape(
        len(words), steps, -1
    )
    figures: dict[str, dict[str, Any]] = {}
    for row, index in enumerate(words):
        own = scores[row, :, row]
        correlation = spearmanr(sweeps[row * steps : (row + 1) * steps, index], own).statistic
        drift = {}
        for column, other in enumerate(words):
            if other == index:
                continue
            span = descriptors[other].high - descriptors[other].low
            moved = float(np.ptp(scores[row, :, column]))
            drift[descriptors[other].name] = moved / span if span > 0 else 0.0
        figures[descriptors[index].name] = {
            "rank_correlation": float(np.nan_to_num(correlation)),
            "score_low": float(own[0]),
            "score_high": float(own[-1]),
            "drift": drift,
            "max_drift": max(drift.values(), default=0.0),
        }
    return figures
