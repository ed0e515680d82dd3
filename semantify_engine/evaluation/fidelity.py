"""Metric fidelity: does the "height" slider give the height it says, and leave the rest alone?

For each metric descriptor, sweep its slider across its range with every other slider at its default,
build the mesh through the mapper and measure it. Two figures per descriptor:

- error: achieved − requested measurement along the sweep (mean and max absolute);
- cross-talk: for every *other* metric descriptor, how far its measurement moves during the sweep, as a
  fraction of that descriptor's own slider range (the issue's goal: < 10 %).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..models.linear import LinearMorphableModel
from .coverage import SliderMapper


def sweep_values(mapper: SliderMapper, index: int, steps: int) -> np.ndarray:
    """``(steps, d)`` slider vectors with descriptor ``index`` from low to high, the rest at default."""
    descriptors = list(mapper.descriptors)
    values = np.tile(np.array([d.default for d in descriptors], np.float32), (steps, 1))
    values[:, index] = np.linspace(descriptors[index].low, descriptors[index].high, steps, dtype=np.float32)
    return values


def metric_fidelity(
    model: LinearMorphableModel, mapper: SliderMapper, scorer: Any, steps: int = 21
) -> dict[str, dict[str, Any]]:
    """Per metric descriptor: requested vs achieved error and cross-talk on the other metric descriptors.

    ``scorer`` is the :class:`~semantify_engine.scoring.metrics.MetricScorer` the dataset was measured
    with; descriptors whose name it does not measure (words) are skipped.
    """
    descriptors = list(mapper.descriptors)
    measured = {name: column for column, name in enumerate(scorer.names)}
    metric_indices = [i for i, d in enumerate(descriptors) if d.name in measured]
    figures: dict[str, dict[str, Any]] = {}
    for index in metric_indices:
        values = sweep_values(mapper, index, steps)
        measurements = scorer.measure(model.vertices(mapper.coefficients(values)))
        name = descriptors[index].name
        error = measurements[:, measured[name]] - values[:, index]
        cross_talk = {}
        for other in metric_indices:
            if other == index:
                continue
            other_name = descriptors[other].name
            column = measurements[:, measured[other_name]]
            span = descriptors[other].high - descriptors[other].low
            cross_talk[other_name] = float((column.max() - column.min()) / span) if span > 0 else 0.0
        figures[name] = {
            "unit": getattr(descriptors[index], "unit", ""),
            "requested": values[:, index].tolist(),
            "achieved": measurements[:, measured[name]].tolist(),
            "mean_abs_error": float(np.abs(error).mean()),
            "max_abs_error": float(np.abs(error).max()),
            "cross_talk": cross_talk,
            "max_cross_talk": max(cross_talk.values(), default=0.0),
        }
    return figures
