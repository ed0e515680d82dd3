"""Measurements computed from the mesh: descriptors with a known truth, beside CLIP's words.

CLIP scores say how much a render *looks* "tall" or "smiling"; they cannot be checked against a truth. A
tape measure can: height, mass, chest / waist / hip girths, shoulder width and leg length of a body, and
mouth / eye opening, brow height and jaw drop of a face, head circumference, face height and head width
of a head are computed here from the vertices alone, so a
dataset can carry them next to (or instead of) CLIP scores, a mapper can be trained to hit a requested
height, and tests can check that it does.

Two properties drive every definition:

* **Continuity.** A slider trained on a measurement needs a measurement without jumps. Girths are the
  perimeter of the convex hull (a tape measure pulled tight) of the exact cross-section of the triangle
  mesh with a horizontal plane: intersection points are interpolated along the edges that cross the plane,
  so they move continuously when the plane or the vertices move, and the hull perimeter of a continuously
  moving point set is continuous. The perimeter is computed from the hull's support function (Cauchy's
  formula, perimeter = integral of the support function over all directions), evaluated on a fixed set of
  directions: a maximum and a sum, with no hull construction and no per-sample Python loop. Planes sit at
  the height of landmark *vertices* (which move with the body), never at fixed heights; levels, extents and
  maxima are built from ``min`` / ``max`` / means of continuous quantities only.
* **Cost.** numpy only (no scipy), vectorised over vertices, faces, crossing edges and planes, with no
  Python loop over points: all seven body measurements of a 13,718-vertex anny body take about 2.5 ms, so
  a dataset of 10,000 bodies is measured in under a minute.

Definitions are data, per mesh topology (:mod:`.landmarks`): ``anny-body``, ``anny-body-male`` and
``anny-body-female`` share one landmark file, and so do ``anny-head-shape`` and ``anny-face-expression``.
A body model without a definition still gets its height (and its mass when its mesh is closed).

The parts: :mod:`.geometry` (edges, hole caps, volume, section girths), :mod:`.measurements` (what each
measurement method computes), :mod:`.landmarks` (the definition files and the measurements they build),
and here :class:`MetricScorer`, which measures batches of meshes with them.

Units are SI: metres and kilograms. Mass is the enclosed volume times :data:`BODY_DENSITY_KG_M3`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import SemantifyError
from ..models.linear import LinearMorphableModel
from .geometry import cap_area_fraction, hole_caps
from .landmarks import LANDMARK_DIR, _Builder, _known_topologies, faces_hash, find_definition, load_definition
from .measurements import BODY_DENSITY_KG_M3, Extent, Mass, Measurement

# The scorer, and the few names its users read through this module (tools/compare_anny_anthropometry.py
# reads the landmark file, its topology hash and the density here).
__all__ = [
    "BODY_DENSITY_KG_M3",
    "CHUNK_COORDINATES",
    "FALLBACK_CAP_AREA_FRACTION",
    "LANDMARK_DIR",
    "MetricScorer",
    "faces_hash",
    "load_definition",
]

FALLBACK_CAP_AREA_FRACTION = 0.01
"""A body model without landmarks gets a mass only if closing its holes adds less than this fraction of
its surface area (a closed mesh, or one with small holes such as eye sockets)."""

CHUNK_COORDINATES = 200_000
"""Meshes are measured a few at a time, about this many vertex coordinates per chunk (four to five anny
bodies): the per-edge and per-face temporaries of a chunk stay a few megabytes, and larger chunks were
not faster per body on the project's 2-core machines."""


def _topology(model: LinearMorphableModel) -> dict[str, Any]:
    return {
        "vertex_count": model.vertex_count,
        "face_count": len(model.faces),
        "faces_sha256": faces_hash(model.faces),
    }


class MetricScorer:
    """Measures meshes of one model: ``measure(vertices)`` gives one row of :attr:`names` per mesh.

    Build it with :meth:`for_model`; ``to_json()`` records what is measured and how (dataset manifests,
    mapper metadata).
    """

    def __init__(
        self,
        model_name: str,
        vertex_count: int,
        measures: Sequence[Measurement],
        definition: str,
        topology: Mapping[str, Any],
        notes: str = "",
        definition_sha256: str | None = None,
    ) -> None:
        self.model_name = model_name
        self.vertex_count = vertex_count
        self.measures = tuple(measures)
        self.definition = definition
        self.topology = dict(topology)
        self.notes = notes
        self.definition_sha256 = definition_sha256
        self.names: tuple[str, ...] = tuple(m.name for m in self.measures)
        self.units: tuple[str, ...] = tuple(m.unit for m in self.measures)

    @classmethod
    def for_model(cls, model: LinearMorphableModel) -> MetricScorer:
        """The scorer for ``model``: its topology's landmark file, else height (and mass) for a body."""
        definition = find_definition(model)
        if definition is not None:
            return cls.from_definition(model, definition)
        if model.kind == "body":
            return cls._body_fallback(model)
        raise SemantifyError(
            f"Model '{model.name}' (kind '{model.kind}', {model.vertex_count} vertices) has no measurement "
            f"definition: measurements are defined for the topologies {_known_topologies()}. Score it with "
            f"CLIP instead, or add a landmark file for its topology under {LANDMARK_DIR}."
        )

    @classmethod
    def from_definition(cls, model: LinearMorphableModel, definition: Mapping[str, Any]) -> MetricScorer:
        """The scorer a landmark definition (the parsed JSON of a landmark file) gives for ``model``."""
        expected = definition.get("topology", {}).get("vertex_count")
        if expected is not None and int(expected) != model.vertex_count:
            raise SemantifyError(
                f"Landmark definition '{definition.get('name')}' is for meshes of {expected} vertices; model "
                f"'{model.name}' has {model.vertex_count}."
            )
        name = str(definition.get("name", "custom"))
        specs = definition.get("measurements")
        if not specs:
            raise SemantifyError(f"Landmark definition '{name}' defines no measurements.")
        builder = _Builder(model, definition)
        measures = []
        for spec in specs:
            try:
                measures.append(builder.build(spec))
            except KeyError as error:
                raise SemantifyError(
                    f"Landmark definition '{name}': measurement {spec.get('name', spec)!r} lacks the key "
                    f"{error}."
                ) from error
        digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]
        return cls(model.name, model.vertex_count, measures, name, _topology(model), definition_sha256=digest)

    @classmethod
    def _body_fallback(cls, model: LinearMorphableModel) -> MetricScorer:
        """Height for any body; mass too when the mesh is closed or nearly so; no landmark measures."""
        faces = model.faces.astype(np.int64)
        caps = hole_caps(faces, model.vertex_count)
        measures: list[Measurement] = [Extent(name="height")]
        fraction = cap_area_fraction(model.template.astype(np.float64), faces, caps)
        if fraction < FALLBACK_CAP_AREA_FRACTION:
            measures.append(Mass(name="mass", faces=faces, caps=caps))
            mass_note = f"mass from the enclosed volume ({caps.count} holes capped)"
        else:
            mass_note = f"no mass: its holes would need caps of {fraction:.1%} of its surface"
        notes = (
            f"Model '{model.name}' has no landmark definition for its topology "
            f"({model.vertex_count} vertices): only height, {mass_note}. Girths, shoulder width and leg "
            f"length need a landmark file under {LANDMARK_DIR}."
        )
        return cls(model.name, model.vertex_count, measures, "generic-body", _topology(model), notes)

    def subset(self, names: Sequence[str]) -> MetricScorer:
        """A scorer of only ``names``, in that order (training measures a few of them thousands of times)."""
        by_name = {measure.name: measure for measure in self.measures}
        missing = [name for name in names if name not in by_name]
        if missing:
            raise SemantifyError(
                f"Model '{self.model_name}' has no measurement {', '.join(repr(n) for n in missing)}; its "
                f"measurements: {', '.join(self.names)}."
            )
        return MetricScorer(
            self.model_name,
            self.vertex_count,
            [by_name[name] for name in names],
            self.definition,
            self.topology,
            self.notes,
            self.definition_sha256,
        )

    # -------------------------------------------------------------------------------- measuring
    def measure(self, vertices: np.ndarray) -> np.ndarray:
        """Measurements ``(N, M)`` float32 of meshes ``(N, V, 3)``; ``(M,)`` for one mesh ``(V, 3)``."""
        array = np.asarray(vertices)
        single = array.ndim == 2
        batch = self._check(array[None] if single else array)
        chunk = max(1, CHUNK_COORDINATES // (batch.shape[1] * 3))
        out = np.empty((len(batch), len(self.measures)), dtype=np.float32)
        for start in range(0, len(batch), chunk):
            part = batch[start : start + chunk].astype(np.float64)
            for column, measure in enumerate(self.measures):
                out[start : start + chunk, column] = measure(part)
        return out[0] if single else out

    def _check(self, batch: np.ndarray) -> np.ndarray:
        if batch.ndim != 3 or batch.shape[2] != 3:
            raise SemantifyError(
                f"Measuring model '{self.model_name}' needs vertices of shape (N, {self.vertex_count}, 3) or "
                f"({self.vertex_count}, 3); got an array of shape {batch.shape}."
            )
        if batch.shape[1] != self.vertex_count:
            raise SemantifyError(
                f"Measuring model '{self.model_name}' needs {self.vertex_count} vertices per mesh; got "
                f"{batch.shape[1]}. Were these vertices made by another model?"
            )
        if not np.issubdtype(batch.dtype, np.number) or not np.all(np.isfinite(batch)):
            raise SemantifyError(
                f"Vertices given to measure model '{self.model_name}' must be finite numbers."
            )
        return batch

    def to_json(self) -> dict[str, Any]:
        """What is measured and how: stored in dataset manifests and mapper metadata."""
        return {
            "scorer": "metric",
            "model": self.model_name,
            "definition": self.definition,
            "definition_sha256": self.definition_sha256,  # changes whenever a landmark or parameter does
            "topology": self.topology,
            "names": list(self.names),
            "units": list(self.units),
            "measurements": [{"name": m.name, "unit": m.unit, **m.describe()} for m in self.measures],
            "notes": self.notes,
        }
