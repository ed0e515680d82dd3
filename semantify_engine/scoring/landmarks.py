"""Landmark files: the measurement definitions of one mesh topology, and the measurements they build.

``semantify_engine/data/landmarks/<topology>.json`` names landmark vertices, vertex regions (e.g. the trunk
without arms, head and lower legs, so the chest tape never goes around an arm) and, per measurement, a
method and its parameters. A model uses the file whose topology (vertex count and a hash of the faces)
matches its own; :class:`_Builder` turns the file's measurement list into :mod:`.measurements` objects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SemantifyError
from ..models.linear import LinearMorphableModel
from .geometry import hole_caps, unique_edges
from .measurements import (
    BODY_DENSITY_KG_M3,
    DISTANCE_METHODS,
    Distance,
    Extent,
    Girth,
    HeightAboveFloor,
    Level,
    Mass,
    Measurement,
)

LANDMARK_DIR = Path(__file__).resolve().parent.parent / "data" / "landmarks"
LANDMARK_FORMAT = "semantify-landmarks"
LANDMARK_FORMAT_VERSION = 1


def faces_hash(faces: np.ndarray) -> str:
    """The topology's fingerprint: a hash of the int32 face array (vertex positions do not enter)."""
    return hashlib.sha256(np.ascontiguousarray(faces, dtype=np.int32).tobytes()).hexdigest()[:16]


def ranges_to_indices(ranges: Sequence[Sequence[int]]) -> np.ndarray:
    """``[[start, stop], ...]`` (stop exclusive) as a sorted index array: regions are stored this way
    because vertex groups of a mesh are mostly contiguous runs, which keeps the JSON files small."""
    parts = [np.arange(int(start), int(stop)) for start, stop in ranges]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def indices_to_ranges(indices: np.ndarray) -> list[list[int]]:
    """The inverse of :func:`ranges_to_indices`."""
    indices = np.unique(np.asarray(indices, dtype=np.int64))
    if len(indices) == 0:
        return []
    breaks = np.flatnonzero(np.diff(indices) != 1)
    starts = np.r_[indices[0], indices[breaks + 1]]
    stops = np.r_[indices[breaks], indices[-1]] + 1
    return [[int(a), int(b)] for a, b in zip(starts, stops, strict=True)]


@cache
def _definition_files() -> tuple[tuple[Path, str, int], ...]:
    """(path, faces hash, vertex count) of every bundled landmark file."""
    found = []
    for path in sorted(LANDMARK_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        topology = data.get("topology", {})
        found.append((path, str(topology.get("faces_sha256", "")), int(topology.get("vertex_count", -1))))
    return tuple(found)


def load_definition(path: str | Path) -> dict[str, Any]:
    """Read and check one landmark file (format and version)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SemantifyError(f"Landmark file {path} is not readable JSON ({error}).") from error
    if data.get("format") != LANDMARK_FORMAT or int(data.get("format_version", 0)) > LANDMARK_FORMAT_VERSION:
        raise SemantifyError(
            f"{path} is not a semantify landmark file of format version <= {LANDMARK_FORMAT_VERSION}."
        )
    return data


def find_definition(model: LinearMorphableModel) -> dict[str, Any] | None:
    """The bundled definition whose topology is the model's (same vertex count and faces), if any."""
    digest = faces_hash(model.faces)
    for path, file_hash, vertex_count in _definition_files():
        if file_hash == digest and vertex_count == model.vertex_count:
            return load_definition(path)
    return None


def _known_topologies() -> str:
    names = [f"{path.stem} ({count} vertices)" for path, _, count in _definition_files()]
    return ", ".join(names) if names else "none"


class _Builder:
    """Turns one landmark file's measurement list into :class:`Measurement` objects for one model."""

    def __init__(self, model: LinearMorphableModel, definition: Mapping[str, Any]) -> None:
        self.model = model
        self.definition = definition
        self.landmarks = {
            name: np.asarray(indices, dtype=np.int64).reshape(-1)
            for name, indices in definition.get("landmarks", {}).items()
        }
        self.regions = {
            name: ranges_to_indices(ranges) for name, ranges in definition.get("regions", {}).items()
        }
        self._edges = unique_edges(model.faces)
        for name, indices in [*self.landmarks.items(), *self.regions.items()]:
            if len(indices) == 0 or indices.min() < 0 or indices.max() >= model.vertex_count:
                raise SemantifyError(f"Landmark file for '{model.name}': '{name}' names no valid vertex.")

    def landmark(self, name: str) -> np.ndarray:
        if name not in self.landmarks:
            raise SemantifyError(
                f"Landmark file for '{self.model.name}' uses an undefined landmark '{name}'."
            )
        return self.landmarks[name]

    def level(self, spec: Mapping[str, Any]) -> Level:
        ceiling = spec.get("ceiling")
        return Level(
            landmark=str(spec["landmark"]),
            indices=self.landmark(str(spec["landmark"])),
            ceiling=ceiling,
            ceiling_indices=None if ceiling is None else self.landmark(str(ceiling)),
            clearance=float(spec.get("clearance_m", 0.0)),
        )

    def region_edges(self, region: str) -> np.ndarray:
        if region not in self.regions:
            raise SemantifyError(
                f"Landmark file for '{self.model.name}' uses an undefined region '{region}'."
            )
        inside = np.zeros(self.model.vertex_count, dtype=bool)
        inside[self.regions[region]] = True
        return self._edges[inside[self._edges[:, 0]] & inside[self._edges[:, 1]]]

    def build(self, spec: Mapping[str, Any]) -> Measurement:
        method, name = spec["method"], str(spec["name"])
        description = str(spec.get("description", ""))
        if method == "extent":
            return Extent(name=name, axis="xyz".index(spec.get("axis", "z")), description=description)
        if method == "volume_mass":
            faces = self.model.faces.astype(np.int64)
            density = float(spec.get("density_kg_m3", BODY_DENSITY_KG_M3))
            caps = hole_caps(faces, self.model.vertex_count)
            return Mass(name=name, faces=faces, caps=caps, density=density, description=description)
        if method in ("girth", "max_girth"):
            high = self.level(spec["level_high"]) if method == "max_girth" else None
            fractions = np.asarray(spec.get("fractions", [0.0]), dtype=np.float64)
            return Girth(
                name=name,
                region=str(spec["region"]),
                edges=self.region_edges(str(spec["region"])),
                low=self.level(spec["level"]),
                high=high,
                fractions=fractions,
                description=description,
            )
        if method in DISTANCE_METHODS:
            pairs = tuple((str(a), str(b)) for a, b in spec["pairs"])
            measure = Distance(
                name=name,
                pairs=pairs,
                indices=tuple((self.landmark(a), self.landmark(b)) for a, b in pairs),
                vertical=method.startswith("vertical"),
                description=description,
            )
            if method.endswith("_change"):  # relative to the model's own template (its neutral face)
                template = self.model.template[None].astype(np.float64)
                measure = replace(measure, baseline=float(measure.raw(template)[0]))
            return measure
        if method == "height_above_floor":
            landmark = str(spec["landmark"])
            return HeightAboveFloor(
                name=name, landmark=landmark, indices=self.landmark(landmark), description=description
            )
        raise SemantifyError(f"Landmark file for '{self.model.name}': unknown measurement method '{method}'.")
