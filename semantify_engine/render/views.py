"""Views and framing: where the camera looks, decided from the model alone (no Blender needed).

A :class:`View` turns the character, never the camera: azimuth spins it about the vertical axis (0 =
front, 90 = its left side towards the camera, like the reference code's "mesh turned 90°") and
elevation tips its top towards the camera, which is what a camera raised by that angle sees under an
orthographic projection. Because every view is an object rotation in front of one fixed orthographic
camera, many samples and views can share one frame as tiles (see :mod:`.blender`) and the picture of
each tile is exactly the picture a camera of its own would take.

The :class:`Framing` is fixed for a whole dataset: a body that is taller must look taller to CLIP, so
the frame never follows the sample. It is derived from the model's exact vertex bounds over the
coefficient box ±k·std, so no sample inside that box can leave the frame.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import RenderError
from ..models.linear import LinearMorphableModel


@dataclass(frozen=True)
class View:
    """One way of looking at the character: azimuth and elevation in degrees."""

    azimuth: float = 0.0
    elevation: float = 0.0
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"az{self.azimuth:g}el{self.elevation:g}"

    def rotation(self) -> np.ndarray:
        """The 3×3 rotation applied to the character: tip by elevation after spinning by azimuth."""
        a, e = math.radians(self.azimuth), math.radians(self.elevation)
        spin = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
        tip = np.array([[1, 0, 0], [0, math.cos(e), -math.sin(e)], [0, math.sin(e), math.cos(e)]])
        return (tip @ spin).astype(np.float32)

    def project(self, points: np.ndarray) -> np.ndarray:
        """Screen coordinates ``(..., 2)`` (right, up) of points ``(..., 3)`` seen from this view."""
        rotated = np.asarray(points, dtype=np.float32) @ self.rotation().T
        return rotated[..., [0, 2]]


NAMED_VIEWS = {
    "front": View(0.0, 0.0, "front"),
    "side": View(90.0, 0.0, "side"),
    "back": View(180.0, 0.0, "back"),
    "three-quarter": View(45.0, 0.0, "three-quarter"),
}
_VIEW_PATTERN = re.compile(r"^az(-?\d+(?:\.\d+)?)(?:el(-?\d+(?:\.\d+)?))?$")


def parse_views(text: str) -> tuple[View, ...]:
    """Parse ``"front,side,az45el10"`` into views, with a clear error for anything else."""
    views = []
    for token in (part.strip() for part in text.split(",")):
        if token in NAMED_VIEWS:
            views.append(NAMED_VIEWS[token])
            continue
        match = _VIEW_PATTERN.match(token)
        if not match:
            raise RenderError(
                f"Unknown view '{token}'. Use {', '.join(NAMED_VIEWS)} or 'az<degrees>[el<degrees>]' "
                "such as az45el10, separated by commas."
            )
        elevation = float(match.group(2) or 0.0)
        if not -89.0 <= elevation <= 89.0:
            raise RenderError(f"View '{token}': elevation must lie between -89 and 89 degrees.")
        views.append(View(float(match.group(1)), elevation, token))
    if not views:
        raise RenderError("No views given: name at least one, e.g. 'front,side'.")
    return tuple(views)


@dataclass(frozen=True)
class Framing:
    """A square orthographic frame shared by all views: its side and each view's centre (metres)."""

    side: float
    centres: np.ndarray  # (views, 2) screen-space centre of each view's bounds


def compute_framing(
    model: LinearMorphableModel,
    views: tuple[View, ...],
    sigmas: float = 3.0,
    components: int | None = None,
    margin: float = 0.04,
) -> Framing:
    """The tightest frame that holds every shape with coefficients inside ±``sigmas``·std.

    Only the first ``components`` components are assumed to move (the ones a dataset samples);
    ``margin`` is the fraction of the frame left empty on each side so silhouettes never touch the edge.
    """
    count = model.component_count if components is None else min(components, model.component_count)
    box = model.coefficient_box(sigmas, count)
    centres, extents = [], []
    for view in views:
        projected_template = view.project(model.template)  # (V, 2)
        projected_basis = view.project(model.basis[:count])  # (k, V, 2)
        low_end = box[:, 0][:, None, None] * projected_basis
        high_end = box[:, 1][:, None, None] * projected_basis
        lowest = (projected_template + np.minimum(low_end, high_end).sum(axis=0)).min(axis=0)
        highest = (projected_template + np.maximum(low_end, high_end).sum(axis=0)).max(axis=0)
        centres.append((lowest + highest) / 2)
        extents.append(highest - lowest)
    side = float(np.max(extents)) / (1.0 - 2.0 * margin)
    return Framing(side=side, centres=np.asarray(centres, dtype=np.float32))


FRAMING_CHUNK = 256


def framing_of_shapes(
    model: LinearMorphableModel,
    views: tuple[View, ...],
    coefficients: np.ndarray,
    margin: float = 0.04,
) -> Framing:
    """The tightest frame that holds every one of the given shapes ``(N, k)`` in every view.

    For pictures meant to be looked at (a slider gallery: the bodies it shows, all at one scale), where the
    frame of a dataset (every shape inside ±3 std) would leave them smaller than they need to be.
    """
    lowest = np.full((len(views), 2), np.inf)
    highest = np.full((len(views), 2), -np.inf)
    coefficients = np.atleast_2d(np.asarray(coefficients, np.float32))
    for start in range(0, len(coefficients), FRAMING_CHUNK):
        vertices = model.vertices(coefficients[start : start + FRAMING_CHUNK])
        for index, view in enumerate(views):
            projected = view.project(vertices.reshape(-1, 3))
            lowest[index] = np.minimum(lowest[index], projected.min(axis=0))
            highest[index] = np.maximum(highest[index], projected.max(axis=0))
    side = float(np.max(highest - lowest)) / (1.0 - 2.0 * margin)
    return Framing(side=side, centres=((lowest + highest) / 2).astype(np.float32))
