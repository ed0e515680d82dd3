"""Plausibility of a mapper's bodies: every slider position should make a body of the source population.

The model's :mod:`plausibility <..models.plausibility>` turns coefficients into a percentile of its source
population (99: the edge of the region holding 99 % of it). A mapper is checked where implausible bodies
hide: at each slider's low and high end (the others at their defaults), at the corners of the slider box
(every one up to ``corners_limit``, a seeded sample beyond) and at random slider settings (seeded, uniform
over the box).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ..models.linear import LinearMorphableModel
from ..models.plausibility import REGION
from .coverage import SliderMapper
from .fidelity import sweep_values

RANDOM_SETTINGS = 200
CORNERS_LIMIT = 1024


def box_corners(mapper: SliderMapper, limit: int, seed: int = 0) -> np.ndarray:
    """``(M, d)`` corners of the slider box: all ``2^d`` when that is at most ``limit``, else ``limit``
    distinct ones drawn with ``seed``."""
    low = np.array([d.low for d in mapper.descriptors], np.float32)
    high = np.array([d.high for d in mapper.descriptors], np.float32)
    count = len(low)
    if 2**count <= limit:
        bits = np.array(list(itertools.product((False, True), repeat=count)), bool)
    else:
        rng = np.random.default_rng(seed)
        codes = rng.choice(2**count, size=limit, replace=False)  # sliders number tens at most
        bits = ((codes[:, None] >> np.arange(count)) & 1).astype(bool)
    return np.where(bits, high, low).astype(np.float32)


def random_settings(mapper: SliderMapper, count: int, seed: int = 0) -> np.ndarray:
    """``(count, d)`` slider vectors uniform over the box (seeded)."""
    low = np.array([d.low for d in mapper.descriptors], np.float32)
    high = np.array([d.high for d in mapper.descriptors], np.float32)
    return (low + np.random.default_rng(seed).random((count, len(low))) * (high - low)).astype(np.float32)


def _summary(percentiles: np.ndarray) -> dict[str, Any]:
    return {
        "count": len(percentiles),
        "p50": float(np.median(percentiles)),
        "max": float(percentiles.max()),
        "outside_fraction": float(np.mean(percentiles > REGION)),
    }


def plausibility_figures(
    model: LinearMorphableModel,
    mapper: SliderMapper,
    random: int = RANDOM_SETTINGS,
    corners_limit: int = CORNERS_LIMIT,
    seed: int = 0,
) -> dict[str, Any]:
    """Population percentiles of the mapper's bodies at slider ends, box corners and random settings.

    ``worst`` is the largest percentile of all; ``inside`` says whether every one is within the region."""
    measure = model.plausibility_measure
    if measure is None:
        return {"skipped": f"model '{model.name}' has no source population (bounded blendshape weights)"}

    def percentiles(values: np.ndarray) -> np.ndarray:
        return measure.percentile(mapper.coefficients(values))

    ends: dict[str, dict[str, float]] = {}
    for index, descriptor in enumerate(mapper.descriptors):
        low_high = percentiles(sweep_values(mapper, index, 2))
        ends[descriptor.name] = {"low": float(low_high[0]), "high": float(low_high[1])}
    defaults = np.array([[d.default for d in mapper.descriptors]], np.float32)
    corners = percentiles(box_corners(mapper, corners_limit, seed))
    randoms = percentiles(random_settings(mapper, random, seed))
    end_values = np.array([value for row in ends.values() for value in row.values()])
    worst = float(max(end_values.max(), corners.max(), randoms.max()))
    return {
        "region": REGION,
        "method": measure.describe(),
        "default": float(percentiles(defaults)[0]),
        "slider_ends": ends,
        "slider_ends_max": float(end_values.max()),
        "corners": _summary(corners),
        "random": _summary(randoms),
        "worst": worst,
        "inside": worst <= REGION,
    }
