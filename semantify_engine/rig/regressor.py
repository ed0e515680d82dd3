"""Bone ends as fixed vertex combinations, for a user's own rigged mesh (no joint regressor of its own).

SMPL's joints are a fixed weighted sum of vertices (its ``J_regressor``), so they follow any shape. A
user's rig has only bones placed by hand on one shape. :func:`joint_regressor_from_vertices` gives it the
same property, computed once at rest: each point (a bone head, say) becomes a weighted combination of the
vertices around it that reproduces the point *exactly* on the rest mesh. When the mesh changes shape
(shape keys), the combination of the new vertices is where the point goes.

The weights of a point are found like this:

- its neighbourhood: the ``neighbours`` vertices nearest to it among those its bones deform (skin weight
  > 0), or among all vertices when its bones deform fewer than four;
- start from weights that favour near and strongly bound vertices (skin weight / distance, sum 1);
- move them as little as possible (least norm) so that they sum to 1 and reproduce the point.

Summing to 1 makes the combination *affine*: moving, rotating or scaling the neighbourhood as a whole
moves the point with it exactly, and a smooth local change (a limb growing thicker) moves it smoothly.
Four vertices not in one plane are enough for an exact fit; a neighbourhood too flat for that keeps the
small remainder as a constant offset (``offsets``), reported so the caller can say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SemantifyError

DEFAULT_NEIGHBOURS = 8  # nearest vertices, beside the nearest one in each of 26 directions
SECTOR_COSINE = 0.8  # a vertex lies in a direction's sector when within about 37 degrees of it
MERGE_FRACTION = 1e-6  # bone ends closer than this fraction of the mesh's size are one point
_DIRECTIONS = np.array(
    [(x, y, z) for x in (-1, 0, 1) for y in (-1, 0, 1) for z in (-1, 0, 1) if (x, y, z) != (0, 0, 0)], float
)
_DIRECTIONS /= np.linalg.norm(_DIRECTIONS, axis=1, keepdims=True)


@dataclass(frozen=True)
class VertexRegressor:
    """``point_p = sum_i weights[p, i] * vertices[indices[p, i]] + offsets[p]``, for P points."""

    indices: np.ndarray  # (P, n) int64
    weights: np.ndarray  # (P, n) float64, each row sums to 1
    offsets: np.ndarray  # (P, 3) float64, zero where the neighbourhood reproduces the point exactly

    def __call__(self, vertices: np.ndarray) -> np.ndarray:
        """The points ``(P, 3)`` on a mesh ``(V, 3)``."""
        vertices = np.asarray(vertices, dtype=np.float64)
        return np.einsum("pn,pnc->pc", self.weights, vertices[self.indices]) + self.offsets

    def apply_to_offsets(self, offsets: np.ndarray) -> np.ndarray:
        """How the points move ``(K, P, 3)`` for per-vertex offsets ``(K, V, 3)`` (a linear basis)."""
        offsets = np.asarray(offsets, dtype=np.float64)
        return np.einsum("pn,kpnc->kpc", self.weights, offsets[:, self.indices])

    @property
    def max_offset(self) -> float:
        """The largest distance a point could not be reproduced from its vertices (0 when exact)."""
        return float(np.linalg.norm(self.offsets, axis=1).max()) if len(self.offsets) else 0.0


def joint_regressor_from_vertices(
    rest_vertices: np.ndarray,
    weights: np.ndarray,
    heads: np.ndarray,
    neighbours: int = DEFAULT_NEIGHBOURS,
) -> VertexRegressor:
    """Each of ``heads`` ``(P, 3)`` as a fixed affine combination of nearby ``rest_vertices`` ``(V, 3)``.

    ``weights`` ``(V, P)`` says which vertices belong to each point (skin weights of the bones meeting
    there); see the module docstring for how the neighbourhood and the weights are chosen.
    """
    vertices = np.asarray(rest_vertices, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    points = np.asarray(heads, dtype=np.float64).reshape(-1, 3)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 4:
        raise SemantifyError(f"A joint regressor needs at least 4 vertices (V, 3), got {vertices.shape}.")
    if weights.shape != (len(vertices), len(points)):
        raise SemantifyError(
            f"Weights must be (vertices, points) = ({len(vertices)}, {len(points)}), got {weights.shape}."
        )
    scale = float(np.ptp(vertices, axis=0).max()) or 1.0
    picks = [
        _neighbourhood(vertices, weights[:, point], points[point], neighbours) for point in range(len(points))
    ]
    width = max(len(chosen) for chosen in picks)
    indices = np.zeros((len(points), width), dtype=np.int64)
    result = np.zeros((len(points), width))
    offsets = np.zeros((len(points), 3))
    for point, chosen in enumerate(picks):
        bound = weights[chosen, point] > 0
        strength = np.where(bound, weights[chosen, point], 1e-3) if bound.sum() >= 4 else np.ones(len(chosen))
        distance = np.linalg.norm(vertices[chosen] - points[point], axis=1)
        found = _affine_weights(vertices[chosen], points[point], strength / (distance + 1e-3 * scale))
        indices[point, : len(chosen)], result[point, : len(chosen)] = chosen, found
        indices[point, len(chosen) :] = chosen[0]  # padding: weight 0
        offsets[point] = points[point] - found @ vertices[chosen]
    offsets[np.linalg.norm(offsets, axis=1) < 1e-9 * scale] = 0.0
    return VertexRegressor(indices=indices, weights=result, offsets=offsets)


def _neighbourhood(vertices: np.ndarray, bound: np.ndarray, point: np.ndarray, neighbours: int) -> np.ndarray:
    """Vertices around ``point``: the nearest in each of 26 directions, plus the ``neighbours`` nearest.

    Picking one vertex per direction surrounds the point (a joint deep inside a torso is enclosed by
    its front and its back, not fitted from the back alone), so its weights stay small and mostly
    positive: an interpolation of the surface around it, not an extrapolation from one side.
    """
    candidates = np.flatnonzero(bound > 0)
    if len(candidates) < 4:
        candidates = np.arange(len(vertices))
    relative = vertices[candidates] - point
    distance = np.linalg.norm(relative, axis=1)
    order = np.argsort(distance, kind="stable")
    chosen = list(candidates[order[: max(neighbours, 4)]])
    cosines = (relative / np.maximum(distance, 1e-300)[:, None]) @ _DIRECTIONS.T  # (n, 26)
    for direction in range(len(_DIRECTIONS)):
        inside = np.flatnonzero(cosines[:, direction] >= SECTOR_COSINE)
        if len(inside):
            chosen.append(candidates[inside[np.argmin(distance[inside])]])
    unique = np.array(sorted(set(int(index) for index in chosen)), dtype=np.int64)
    if len(unique) < 4:  # fewer than four candidates: complete from all vertices
        rest = np.argsort(np.linalg.norm(vertices - point, axis=1), kind="stable")
        unique = np.array(sorted(set(unique.tolist()) | set(rest[:4].tolist())), dtype=np.int64)
    return unique


def _affine_weights(neighbourhood: np.ndarray, point: np.ndarray, preference: np.ndarray) -> np.ndarray:
    """Weights summing to 1 that reproduce ``point``, the least-norm change from ``preference``."""
    base = preference / preference.sum()
    relative = neighbourhood - point
    radius = max(float(np.linalg.norm(relative, axis=1).max()), 1e-300)
    system = np.vstack([(relative / radius).T, np.ones(len(base))])  # (4, n): position and sum rows
    target = np.array([0.0, 0.0, 0.0, 1.0])
    correction = np.linalg.lstsq(system, target - system @ base, rcond=1e-10)[0]
    return base + correction


def bone_end_regressors(
    rest_vertices: np.ndarray,
    skin_weights: np.ndarray,
    heads: np.ndarray,
    tails: np.ndarray,
    neighbours: int = DEFAULT_NEIGHBOURS,
) -> tuple[VertexRegressor, VertexRegressor]:
    """Regressors for the heads and the tails of B bones deforming ``rest_vertices`` with ``skin_weights``.

    Bone ends that coincide at rest (a connected child's head on its parent's tail) are one point,
    regressed once from the vertices of every bone meeting there, so they stay together in any shape.
    """
    vertices = np.asarray(rest_vertices, dtype=np.float64)
    skin = np.asarray(skin_weights, dtype=np.float64)
    ends = np.concatenate([np.asarray(heads, np.float64), np.asarray(tails, np.float64)])
    bone_count = len(ends) // 2
    if skin.shape != (len(vertices), bone_count):
        raise SemantifyError(f"Skin weights must be ({len(vertices)}, {bone_count}), got {skin.shape}.")
    tolerance = MERGE_FRACTION * (float(np.ptp(vertices, axis=0).max()) or 1.0)
    close = np.linalg.norm(ends[:, None, :] - ends[None, :, :], axis=2) <= tolerance
    point_of = np.empty(len(ends), dtype=np.int64)
    points: list[np.ndarray] = []
    for end in range(len(ends)):
        first = int(np.argmax(close[end, : end + 1]))  # the earliest end at this place (itself if none)
        if first == end:
            points.append(ends[end])
            point_of[end] = len(points) - 1
        else:
            point_of[end] = point_of[first]
    influence = np.zeros((len(vertices), len(points)))
    for end, point in enumerate(point_of):
        influence[:, point] += skin[:, end % bone_count]
    regressor = joint_regressor_from_vertices(vertices, influence, np.array(points), neighbours)

    def rows(selection: np.ndarray) -> VertexRegressor:
        return VertexRegressor(
            regressor.indices[selection], regressor.weights[selection], regressor.offsets[selection]
        )

    return rows(point_of[:bone_count]), rows(point_of[bone_count:])
