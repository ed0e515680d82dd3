"""Coverage and overlap of a mapper's descriptors (paper §5.1).

For descriptor ``i``: run the mapper twice, ``i`` at its low and at its high slider value and every other
descriptor at its default; per-vertex displacement ``δ'(v) = ‖v_low − v_high‖``, normalised by its maximum
to ``δ(v) ∈ [0, 1]``; the descriptor *covers* the vertices with ``δ(v) > θ`` (paper θ = 0.3).

- coverage = |union of covered vertices| / |all vertices|;
- overlap = 1 − |union| / Σ|per-descriptor sets| — the reference code's formula, which is what the
  paper's Table 1 reports (it grows towards 1 − 1/d as sets coincide); the mean pairwise
  intersection-over-union is reported beside it because it reads more directly.

Low and high values default to each slider's range taken from the data (2nd and 98th percentiles).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, Protocol

import numpy as np

from ..models.linear import LinearMorphableModel

DEFAULT_THETA = 0.3


class SliderDescriptor(Protocol):
    name: str
    low: float
    high: float
    default: float


class SliderMapper(Protocol):
    """What evaluation needs of a mapper: its descriptors and a slider → coefficient function."""

    descriptors: Any

    def coefficients(self, values: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class CoverageResult:
    coverage: float
    overlap: float
    mean_pairwise_iou: float
    per_descriptor_coverage: dict[str, float]
    displacement: np.ndarray  # (d, V) normalised δ(v) per descriptor, for heatmaps
    theta: float

    def to_json(self) -> dict[str, Any]:
        return {
            "theta": self.theta,
            "coverage": self.coverage,
            "overlap": self.overlap,
            "mean_pairwise_iou": self.mean_pairwise_iou,
            "per_descriptor_coverage": self.per_descriptor_coverage,
        }


def slider_extremes(mapper: SliderMapper) -> np.ndarray:
    """``(2d, d)`` slider vectors: descriptor i at its low then its high value, the others at default."""
    defaults = np.array([d.default for d in mapper.descriptors], np.float32)
    rows = []
    for index, descriptor in enumerate(mapper.descriptors):
        for value in (descriptor.low, descriptor.high):
            row = defaults.copy()
            row[index] = value
            rows.append(row)
    return np.asarray(rows, np.float32)


def normalised_displacement(model: LinearMorphableModel, mapper: SliderMapper) -> np.ndarray:
    """``(d, V)`` per-vertex displacement between each descriptor's extremes, each divided by its max."""
    vertices = model.vertices(mapper.coefficients(slider_extremes(mapper)))
    low, high = vertices[0::2], vertices[1::2]
    displacement = np.linalg.norm(high - low, axis=-1)
    peak = displacement.max(axis=1, keepdims=True)
    return np.divide(displacement, peak, out=np.zeros_like(displacement), where=peak > 0)


def coverage_and_overlap(
    model: LinearMorphableModel, mapper: SliderMapper, theta: float = DEFAULT_THETA
) -> CoverageResult:
    """The paper's coverage and overlap for every descriptor of ``mapper`` on ``model``."""
    displacement = normalised_displacement(model, mapper)
    covered = displacement > theta
    union = covered.any(axis=0)
    total = covered.sum()
    overlap = float(1.0 - union.sum() / total) if total else 0.0
    ious = [
        float((covered[a] & covered[b]).sum() / max(1, (covered[a] | covered[b]).sum()))
        for a, b in combinations(range(len(covered)), 2)
    ]
    names = [d.name for d in mapper.descriptors]
    return CoverageResult(
        coverage=float(union.mean()),
        overlap=overlap,
        mean_pairwise_iou=float(np.mean(ious)) if ious else 0.0,
        per_descriptor_coverage={name: float(row.mean()) for name, row in zip(names, covered, strict=True)},
        displacement=displacement,
        theta=theta,
    )
