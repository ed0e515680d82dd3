"""The measurements a landmark file can ask for: extent, mass, girth, distance, height above the floor.

Each is a small frozen dataclass that holds what it needs (landmark vertex indices, region edges, faces)
and measures a batch of meshes ``(n, V, 3)`` in one call; :mod:`.landmarks` builds them from a landmark
file, :class:`.metrics.MetricScorer` runs them. The maths they share is :mod:`.geometry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .geometry import SUPPORT_DIRECTIONS, HoleCaps, closed_volume, section_girths

BODY_DENSITY_KG_M3 = 985.0
"""Whole-body density used for mass. Adult body tissue is about 1000-1100 kg/m³ (lower with more fat); the air
in the lungs lowers the density of a living person by a few percent. 985 kg/m³ is a middle value for a person
breathing normally; anny's own Anthropometry uses 980 kg/m³ (0.5 % lighter)."""


class Measurement(Protocol):
    """One measurement: a name, a unit, a description for manifests, and a batched evaluation."""

    name: str
    unit: str

    def __call__(self, vertices: np.ndarray) -> np.ndarray: ...  # (n, V, 3) float64 -> (n,)

    def describe(self) -> dict[str, Any]: ...


def _landmark_points(vertices: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Mean position ``(n, 3)`` of a landmark's vertices (one vertex, or several averaged for stability)."""
    return vertices[:, indices].mean(axis=1)


@dataclass(frozen=True)
class Extent:
    """Extent along an axis over all vertices: the body's height (highest minus lowest point)."""

    name: str
    unit: str = "m"
    axis: int = 2
    description: str = "highest minus lowest vertex (z)"

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        coordinate = vertices[..., self.axis]
        return coordinate.max(axis=1) - coordinate.min(axis=1)

    def describe(self) -> dict[str, Any]:
        return {"method": "extent", "axis": "xyz"[self.axis], "description": self.description}


@dataclass(frozen=True)
class Mass:
    """Enclosed volume times a density; holes (if any) are closed by fans around their boundary's mean."""

    name: str
    faces: np.ndarray
    caps: HoleCaps
    density: float = BODY_DENSITY_KG_M3
    unit: str = "kg"
    description: str = "enclosed volume (signed tetrahedra) times the density"

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        return closed_volume(vertices, self.faces, self.caps) * self.density

    def describe(self) -> dict[str, Any]:
        return {
            "method": "volume_mass",
            "density_kg_m3": self.density,
            "holes_capped": self.caps.count,
            "description": self.description,
        }


@dataclass(frozen=True)
class Level:
    """A plane height that moves with the body: the mean height of landmark vertices, optionally kept a
    clearance below a *ceiling* (the lowest vertex of a set, e.g. where the arms join the trunk)."""

    landmark: str
    indices: np.ndarray
    ceiling: str | None = None
    ceiling_indices: np.ndarray | None = None
    clearance: float = 0.0

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        level = vertices[:, self.indices, 2].mean(axis=1)
        if self.ceiling_indices is not None:
            level = np.minimum(level, vertices[:, self.ceiling_indices, 2].min(axis=1) - self.clearance)
        return level

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"landmark": self.landmark}
        if self.ceiling is not None:
            out.update(ceiling=self.ceiling, clearance_m=self.clearance)
        return out


@dataclass(frozen=True)
class Girth:
    """Horizontal tape-measure girth of a region; with several levels, the largest girth among planes
    spaced between two landmark heights (a hip girth: the tape at the buttocks' widest level)."""

    name: str
    region: str
    edges: np.ndarray  # (E, 2) mesh edges inside the region
    low: Level
    high: Level | None = None
    fractions: np.ndarray = field(default_factory=lambda: np.zeros(1))
    unit: str = "m"
    description: str = ""

    def levels(self, vertices: np.ndarray) -> np.ndarray:
        """Plane heights ``(n, L)``."""
        low = self.low(vertices)
        if self.high is None:
            return low[:, None]
        return low[:, None] + self.fractions[None, :] * (self.high(vertices) - low)[:, None]

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        return section_girths(vertices, self.edges, self.levels(vertices)).max(axis=1)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": "girth" if self.high is None else "max_girth",
            "region": self.region,
            "region_edges": len(self.edges),
            "level": self.low.describe(),
            "support_directions": SUPPORT_DIRECTIONS,
            "description": self.description,
        }
        if self.high is not None:
            out.update(
                level_high=self.high.describe(), fractions=[round(float(f), 6) for f in self.fractions]
            )
        return out


DISTANCE_METHODS = ("distance", "distance_change", "vertical_gap", "vertical_gap_change")


@dataclass(frozen=True)
class Distance:
    """Mean over pairs of landmarks (both eyes) of their distance, straight or vertical.

    ``vertical`` gaps are signed (``z(a) - z(b)``): an eye or mouth opening stays a smooth, monotonic
    function of the expression even where the lids or lips press past each other, where a straight
    distance would fold back up from zero. ``relative`` subtracts the model template's own value, so jaw
    drop reads 0 for the neutral face.
    """

    name: str
    pairs: tuple[tuple[str, str], ...]
    indices: tuple[tuple[np.ndarray, np.ndarray], ...]
    vertical: bool = False
    baseline: float | None = None
    unit: str = "m"
    description: str = ""

    def raw(self, vertices: np.ndarray) -> np.ndarray:
        values = []
        for a, b in self.indices:
            offset = _landmark_points(vertices, a) - _landmark_points(vertices, b)
            values.append(offset[:, 2] if self.vertical else np.linalg.norm(offset, axis=1))
        return np.mean(values, axis=0)

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        return self.raw(vertices) if self.baseline is None else self.raw(vertices) - self.baseline

    def describe(self) -> dict[str, Any]:
        method = "vertical_gap" if self.vertical else "distance"
        out: dict[str, Any] = {
            "method": method if self.baseline is None else f"{method}_change",
            "pairs": [list(pair) for pair in self.pairs],
            "description": self.description,
        }
        if self.baseline is not None:
            out["template_value_m"] = round(self.baseline, 7)
        return out


@dataclass(frozen=True)
class HeightAboveFloor:
    """Height of a landmark above the lowest vertex (leg length as the crotch height, i.e. the inseam)."""

    name: str
    landmark: str
    indices: np.ndarray
    unit: str = "m"
    description: str = ""

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        return vertices[:, self.indices, 2].mean(axis=1) - vertices[..., 2].min(axis=1)

    def describe(self) -> dict[str, Any]:
        return {"method": "height_above_floor", "landmark": self.landmark, "description": self.description}
