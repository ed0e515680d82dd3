"""Expressiveness (paper's ablation): how close can the sliders get to shapes they were not trained on?

For each held-out shape with known coefficients ξ, search the slider values ``s`` (inside their ranges)
that minimise ``‖mapper(s) − ξ‖₂``, then report the vertex error of the best reachable mesh. Beside it:
the same number of *raw PCA sliders* (the first d coefficients of ξ, the rest zero), the baseline a
user would have without words. Smaller is more expressive.

The search is L-BFGS-B over at most a few tens of slider values with numerical gradients: the mapper
is a small numpy MLP, so no torch is needed and any mapper-like object works.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..models.linear import LinearMorphableModel
from .coverage import SliderMapper


def best_slider_values(mapper: SliderMapper, target: np.ndarray) -> np.ndarray:
    """Slider values within the sliders' ranges whose coefficients come closest to ``target``."""
    from scipy.optimize import minimize

    descriptors = list(mapper.descriptors)
    low = np.array([d.low for d in descriptors], np.float64)
    span = np.array([d.high - d.low for d in descriptors], np.float64)
    count = target.shape[0]

    # Search in [0, 1] per slider: ranges differ by orders of magnitude (cosine scores span ~0.02,
    # heights ~0.3 m, masses ~50 kg), and float32 mappers need finite-difference steps they can resolve.
    def distance(unit: np.ndarray) -> float:
        produced = mapper.coefficients((low + unit * span).astype(np.float32)[None])[0, :count]
        return float(np.sum((produced - target) ** 2))

    start = (np.array([d.default for d in descriptors], np.float64) - low) / np.where(span > 0, span, 1.0)
    result = minimize(
        distance,
        np.clip(start, 0.0, 1.0),
        method="L-BFGS-B",
        bounds=[(0.0, 1.0)] * len(descriptors),
        options={"maxiter": 200, "eps": 1e-4},
    )
    return (low + result.x * span).astype(np.float32)


def expressiveness(
    model: LinearMorphableModel, mapper: SliderMapper, targets: np.ndarray, limit: int = 50
) -> dict[str, Any]:
    """Vertex errors (mm) of the best slider fit vs raw PCA sliders, over up to ``limit`` targets."""
    targets = np.asarray(targets, np.float32)[:limit]
    d = len(list(mapper.descriptors))
    fitted = np.stack([mapper.coefficients(best_slider_values(mapper, t)[None])[0] for t in targets])
    truth = model.vertices(targets)
    ours = _vertex_error_mm(model.vertices(fitted[:, : targets.shape[1]]), truth)
    raw = targets.copy()
    raw[:, d:] = 0.0
    baseline = _vertex_error_mm(model.vertices(raw), truth)
    return {
        "shapes": len(targets),
        "sliders": d,
        "semantic_sliders_mm_mean": float(ours.mean()),
        "semantic_sliders_mm_p90": float(np.percentile(ours, 90)),
        "raw_pca_sliders_mm_mean": float(baseline.mean()),
        "raw_pca_sliders_mm_p90": float(np.percentile(baseline, 90)),
    }


def _vertex_error_mm(vertices: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Mean per-vertex distance of each shape, in millimetres (models are in metres)."""
    return np.linalg.norm(vertices - truth, axis=-1).mean(axis=1) * 1000.0
