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


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ of two 1-d arrays (ties get their mean rank); 0 when either is constant."""

    def ranks(values: np.ndarray) -> np.ndarray:
        order = np.argsort(values, kind="stable")
        ranked = np.empty(len(values))
        ranked[order] = np.arange(len(values), dtype=np.float64)
        for value in np.unique(values):  # ties: the mean of their ranks
            tied = values == value
            ranked[tied] = ranked[tied].mean()
        return ranked

    a, b = ranks(np.asarray(x, np.float64)), ranks(np.asarray(y, np.float64))
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def word_attribute_agreement(
    model: LinearMorphableModel, mapper: SliderMapper, steps: int = 9
) -> dict[str, dict[str, dict[str, float]]]:
    """How each word slider moves the model's attributes (MakeHuman shape settings), a check with known truth.

    Sweep each word slider from low to high (the others at their defaults) and read the attributes of the
    bodies with the model's attribute regressor. Per word and attribute: Spearman's ρ between the slider and
    the attribute, and the attribute's change from the low to the high end as a fraction of its range in
    the source population (``muscular`` should raise muscle and leave weight near 0).
    """
    from ..models.bank import ATTRIBUTE_SETTINGS, attribute_specs

    regressor = model.attributes
    if regressor is None:
        return {}
    specs = attribute_specs(regressor)
    columns = [regressor.names.index(name) for name in ATTRIBUTE_SETTINGS]
    descriptors = list(mapper.descriptors)
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for index, descriptor in enumerate(descriptors):
        if getattr(descriptor, "kind", "word") != "word":
            continue
        values = sweep_values(mapper, index, steps)
        read = regressor.predict(mapper.coefficients(values))[:, columns]
        row = {}
        for column, spec in enumerate(specs):
            span = spec.high - spec.low
            row[spec.name] = {
                "rank_correlation": rank_correlation(values[:, index], read[:, column]),
                "change": float((read[-1, column] - read[0, column]) / span) if span > 0 else 0.0,
            }
        figures[descriptor.name] = row
    return figures
