"""Evaluation figures on shapes whose answer is known analytically."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from semantify_engine.evaluation.coverage import coverage_and_overlap, slider_extremes
from semantify_engine.evaluation.expressiveness import best_slider_values, expressiveness


@dataclass(frozen=True)
class Slider:
    name: str
    low: float
    high: float
    default: float


class LinearSliders:
    """A mapper whose sliders are the model's coefficients times ``gain``: the simplest exact mapper."""

    def __init__(self, names: list[str], gain: float = 1.0) -> None:
        self.descriptors = [Slider(name, -2.0, 2.0, 0.0) for name in names]
        self.gain = gain

    def coefficients(self, values: np.ndarray) -> np.ndarray:
        return np.atleast_2d(np.asarray(values, np.float32)) * self.gain


def test_coverage_of_height_and_width_matches_the_geometry(capsule) -> None:
    result = coverage_and_overlap(capsule, LinearSliders(["height", "width", "depth"]), theta=0.3)
    z, x, y = capsule.template[:, 2], np.abs(capsule.template[:, 0]), np.abs(capsule.template[:, 1])
    # height scales z: displacement ∝ z; width scales x: ∝ |x|; depth scales y: ∝ |y|.
    expected = {"height": z / z.max() > 0.3, "width": x / x.max() > 0.3, "depth": y / y.max() > 0.3}
    for name, covered in expected.items():
        assert result.per_descriptor_coverage[name] == pytest.approx(covered.mean(), abs=1e-6)
    union = expected["height"] | expected["width"] | expected["depth"]
    assert result.coverage == pytest.approx(union.mean(), abs=1e-6)
    total = sum(c.sum() for c in expected.values())
    assert result.overlap == pytest.approx(1 - union.sum() / total, abs=1e-6)
    assert result.displacement.shape == (3, capsule.vertex_count) and result.displacement.max() == 1.0


def test_identical_descriptors_overlap_completely(capsule) -> None:
    result = coverage_and_overlap(capsule, LinearSliders(["a"]), theta=0.3)

    class Twice(LinearSliders):
        def coefficients(self, values: np.ndarray) -> np.ndarray:
            values = np.atleast_2d(values)
            return np.stack([values[:, 0] + values[:, 1], 0 * values[:, 0]], axis=1)

    twice = coverage_and_overlap(capsule, Twice(["a", "b"]), theta=0.3)
    assert twice.mean_pairwise_iou == pytest.approx(1.0)
    assert twice.overlap == pytest.approx(0.5)  # 1 − 1/d with d = 2 identical sets
    assert twice.coverage == pytest.approx(result.coverage)


def test_slider_extremes_move_one_descriptor_at_a_time() -> None:
    rows = slider_extremes(LinearSliders(["a", "b"]))
    np.testing.assert_array_equal(rows, [[-2, 0], [2, 0], [0, -2], [0, 2]])


def test_expressiveness_finds_reachable_shapes_and_beats_fewer_raw_sliders(capsule) -> None:
    mapper = LinearSliders(["height", "width", "depth"], gain=0.5)  # sliders reach ±1 in coefficients
    target = np.array([0.5, -0.25, 0.75], np.float32)
    np.testing.assert_allclose(best_slider_values(mapper, target), target / 0.5, atol=1e-3)
    targets = np.random.default_rng(0).uniform(-1, 1, size=(8, 3)).astype(np.float32)
    figures = expressiveness(capsule, mapper, targets)
    assert figures["semantic_sliders_mm_mean"] < 0.05
    assert figures["raw_pca_sliders_mm_mean"] == pytest.approx(0.0, abs=1e-3)  # d = all 3 components

    class NoDepth(LinearSliders):
        def coefficients(self, values: np.ndarray) -> np.ndarray:
            values = np.atleast_2d(values) * self.gain
            return np.concatenate([values, np.zeros((len(values), 1), np.float32)], axis=1)

    two = NoDepth(["height", "width"], gain=0.5)
    fewer = expressiveness(capsule, two, targets)
    assert fewer["semantic_sliders_mm_mean"] > 1.0, "without a depth slider the depth cannot be reached"


def test_coverage_counts_only_vertices_strictly_past_theta(capsule) -> None:
    """δ is normalised to a peak of 1: θ = 1 covers nothing, θ just below it the peak vertices only."""
    sliders = LinearSliders(["height"])
    assert coverage_and_overlap(capsule, sliders, theta=1.0).per_descriptor_coverage["height"] == 0.0
    top = capsule.template[:, 2] == capsule.template[:, 2].max()
    just_below = coverage_and_overlap(capsule, sliders, theta=1.0 - 1e-6).per_descriptor_coverage["height"]
    assert just_below == pytest.approx(top.mean())
