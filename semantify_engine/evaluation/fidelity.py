"""Fidelity: does the "height" slider give the height it says, and leave the rest alone?

For each measured descriptor (a measurement, or an attribute: a MakeHuman shape setting), sweep its slider
across its range with every other slider at its default, build the mesh through the mapper and read it
again: measurements with the tape (:mod:`..scoring.metrics`), attributes with the model's attribute
regressor (:mod:`..models.bank`). Per descriptor:

- error: achieved − requested along the sweep (mean and max absolute), over the whole slider range and over
  the **achieved range** (the requests between the lowest and highest value the sweep reached): where a
  request has no plausible body, plausibility wins and the slider stops short, and the achieved range says
  where it stops;
- cross-talk: for every *other* descriptor of the same kind, how far its value moves during the sweep, as
  a fraction of that descriptor's own slider range (the goal: < 10 %). Measurements and attributes are not
  held against each other: more weight is a larger waist.
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


class DescriptorReader:
    """Reads measured descriptors off coefficients: a metric scorer for measurements (through the mesh),
    the model's attribute regressor for attributes."""

    def __init__(self, model: LinearMorphableModel, metric_scorer: Any | None = None) -> None:
        self.model = model
        self.metric_scorer = metric_scorer
        self.attributes = model.attributes

    def names(self, kind: str) -> tuple[str, ...]:
        if kind == "metric":
            return tuple(self.metric_scorer.names) if self.metric_scorer is not None else ()
        if kind == "attribute" and self.attributes is not None:
            from ..models.bank import ATTRIBUTE_SETTINGS

            return ATTRIBUTE_SETTINGS
        return ()

    def read(self, coefficients: np.ndarray, wanted: list[tuple[str, str]]) -> np.ndarray:
        """``(N, len(wanted))`` values of ``wanted`` (name, kind) pairs for coefficients ``(N, n)``."""
        out = np.empty((len(coefficients), len(wanted)), np.float64)
        metrics = [i for i, (_, kind) in enumerate(wanted) if kind == "metric"]
        attributes = [i for i, (_, kind) in enumerate(wanted) if kind == "attribute"]
        if metrics:
            assert self.metric_scorer is not None
            measured = self.metric_scorer.measure(self.model.vertices(coefficients))
            columns = [list(self.metric_scorer.names).index(wanted[i][0]) for i in metrics]
            out[:, metrics] = measured[:, columns]
        if attributes:
            assert self.attributes is not None
            predicted = self.attributes.predict(coefficients)
            out[:, attributes] = predicted[:, [self.attributes.names.index(wanted[i][0]) for i in attributes]]
        return out


def descriptor_fidelity(
    model: LinearMorphableModel,
    mapper: SliderMapper,
    reader: DescriptorReader,
    steps: int = 21,
    kinds: tuple[str, ...] = ("metric", "attribute"),
) -> dict[str, dict[str, Any]]:
    """Per measured descriptor of ``kinds``: requested vs achieved, achieved range, error, cross-talk."""
    descriptors = list(mapper.descriptors)
    readable = {kind: set(reader.names(kind)) for kind in kinds}
    measured = [
        i
        for i, d in enumerate(descriptors)
        if getattr(d, "kind", "metric") in kinds and d.name in readable[getattr(d, "kind", "metric")]
    ]
    wanted = [(descriptors[i].name, getattr(descriptors[i], "kind", "metric")) for i in measured]
    figures: dict[str, dict[str, Any]] = {}
    for position, index in enumerate(measured):
        values = sweep_values(mapper, index, steps)
        read = reader.read(mapper.coefficients(values), wanted)
        descriptor = descriptors[index]
        requested, achieved = values[:, index].astype(np.float64), read[:, position]
        error = np.abs(achieved - requested)
        low, high = float(achieved.min()), float(achieved.max())
        reachable = (requested >= low) & (requested <= high)
        cross_talk = {}
        for other_position, other in enumerate(measured):
            if other == index or wanted[other_position][1] != wanted[position][1]:
                continue
            span = descriptors[other].high - descriptors[other].low
            moved = float(np.ptp(read[:, other_position]))
            cross_talk[descriptors[other].name] = moved / span if span > 0 else 0.0
        figures[descriptor.name] = {
            "kind": wanted[position][1],
            "unit": getattr(descriptor, "unit", ""),
            "requested": requested.tolist(),
            "achieved": achieved.tolist(),
            "mean_abs_error": float(error.mean()),
            "max_abs_error": float(error.max()),
            "achieved_range": [low, high],
            "achieved_fraction": (high - low) / (descriptor.high - descriptor.low),
            "mean_abs_error_achieved": float(error[reachable].mean()) if reachable.any() else None,
            "cross_talk": cross_talk,
            "max_cross_talk": max(cross_talk.values(), default=0.0),
        }
    return figures


def metric_fidelity(
    model: LinearMorphableModel, mapper: SliderMapper, scorer: Any, steps: int = 21
) -> dict[str, dict[str, Any]]:
    """:func:`descriptor_fidelity` of the measurement sliders alone, read with ``scorer`` (the
    :class:`~semantify_engine.scoring.metrics.MetricScorer` the dataset was measured with); descriptors whose
    name it does not measure are skipped."""
    return descriptor_fidelity(model, mapper, DescriptorReader(model, scorer), steps, kinds=("metric",))


def slider_fidelity(
    model: LinearMorphableModel, mapper: SliderMapper, steps: int = 21
) -> dict[str, dict[str, Any]]:
    """:func:`descriptor_fidelity` of every measured slider, read as training reads them: measurements with
    the model's own tape (built only when the mapper has measurement sliders), attributes with its
    regressor."""
    from ..scoring.metrics import MetricScorer

    metric = any(getattr(d, "kind", "metric") == "metric" for d in mapper.descriptors)
    scorer = MetricScorer.for_model(model) if metric else None
    return descriptor_fidelity(model, mapper, DescriptorReader(model, scorer), steps)


def metric_slider_errors(
    mapper: SliderMapper, model: LinearMorphableModel, steps: int = 21
) -> dict[str, Any]:
    """How well each measured slider hits its own value, and what it reaches: the figures that say a height
    slider means metres and an age slider years.

    The sweep of :func:`slider_fidelity` (each measurement or attribute slider over its range, the others
    at their defaults), kept to the headline numbers a trained mapper stores (its figures'
    ``metric_slider_errors``, read by ``semantify mapper info`` and the sidebar).
    """
    keys = (
        "kind",
        "unit",
        "mean_abs_error",
        "max_abs_error",
        "mean_abs_error_achieved",
        "achieved_range",
        "max_cross_talk",
    )
    fidelity = slider_fidelity(model, mapper, steps)
    return {name: {key: row[key] for key in keys} | {"steps": steps} for name, row in fidelity.items()}
