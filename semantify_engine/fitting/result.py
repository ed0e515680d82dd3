"""What every fit returns: slider values by descriptor name, the coefficients, and what was done to get them.

A fit (photo, text or measurements → shape) never just hands back a mesh: the point of Semantify is that
the user refines the result with the sliders. So a :class:`FitResult` carries the slider values (one per
descriptor of the mapper, in its order and units), the coefficients of the fitted shape, and notes on
everything a user should know to trust or correct it (values clamped to a slider's range, how a photo was
cropped, which sliders stayed at their defaults because the input said nothing about them).

This module is numpy-only (no torch, no Pillow) so the Blender extension can read and apply a result
inside Blender's own Python.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import atomic_output
from ..errors import FitError
from ..models.shape_keys import Y_UP_TO_CANONICAL

if TYPE_CHECKING:
    from ..mapper.mapper import Mapper
    from ..models.linear import LinearMorphableModel

FORMAT = "semantify-fit"
FORMAT_VERSION = 1
METHODS = ("image", "text", "measure")


@dataclass(frozen=True)
class Clamped:
    """A slider value the fit asked for outside the slider's range, and the end it was set to instead.

    The mapper has only seen values inside the range (the data's 2nd-98th percentile), so a value past an
    end is set to that end; the user is told, because the shape then falls short of what was asked.
    """

    descriptor: str
    value: float
    low: float
    high: float
    unit: str

    @property
    def set_to(self) -> float:
        return min(max(self.value, self.low), self.high)

    def message(self) -> str:
        return (
            f"'{self.descriptor}' {_quantity(self.value, self.unit)} is outside the slider's range "
            f"[{_quantity(self.low, self.unit)}, {_quantity(self.high, self.unit)}]; set to "
            f"{_quantity(self.set_to, self.unit)}"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "descriptor": self.descriptor,
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "unit": self.unit,
            "set_to": self.set_to,
        }


@dataclass
class FitResult:
    """Slider values (descriptor name → value, in the mapper's order and units) and the fitted shape.

    ``coefficients`` is the fitted shape. ``slider_coefficients`` is what the sliders give through the
    mapper: the same for photo and measurement fits (the shape *is* mapper(sliders)); for a text fit the
    shape is a blend of dataset samples and the sliders reproduce it only approximately, so both are kept.
    ``details`` holds what is particular to the method (scores of a photo, crop box, ranked matches of a
    text, requested and achieved measurements).
    """

    method: str
    sliders: dict[str, float]
    coefficients: np.ndarray
    slider_coefficients: np.ndarray
    mapper: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    clamped: list[Clamped] = field(default_factory=list)
    defaults_kept: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown fit method {self.method!r}")
        self.coefficients = np.asarray(self.coefficients, dtype=np.float32).reshape(-1)
        self.slider_coefficients = np.asarray(self.slider_coefficients, dtype=np.float32).reshape(-1)
        self.sliders = {str(name): float(value) for name, value in self.sliders.items()}

    @property
    def slider_vector(self) -> np.ndarray:
        """The slider values in the mapper's descriptor order, ready for ``mapper(values)``."""
        return np.array(list(self.sliders.values()), dtype=np.float32)

    # ----------------------------------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        """Everything as plain JSON types (what ``--out shape.json`` holds and the add-on reads)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "method": self.method,
            "inputs": _plain(self.inputs),
            "mapper": _plain(self.mapper),
            "sliders": dict(self.sliders),
            "coefficients": [float(value) for value in self.coefficients],
            "slider_coefficients": [float(value) for value in self.slider_coefficients],
            "clamped": [item.to_json() for item in self.clamped],
            "defaults_kept": list(self.defaults_kept),
            "notes": list(self.notes),
            "details": _plain(self.details),
        }

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_json` atomically (a reader never sees half a file)."""
        path = Path(path)
        text = json.dumps(self.to_json(), indent=2, allow_nan=False)
        with atomic_output(path, "w") as stream:
            stream.write(text + "\n")
        return path

    # ------------------------------------------------------------------------------------------ OBJ
    def vertices(self, model: LinearMorphableModel) -> np.ndarray:
        """The fitted mesh's vertices ``(V, 3)`` in the canonical frame (metres, Z up)."""
        self.check_model(model)
        return model.vertices(self.coefficients)

    def write_obj(self, path: str | os.PathLike[str], model: LinearMorphableModel) -> Path:
        """Write the fitted mesh as Wavefront OBJ, atomically.

        OBJ files are conventionally Y up: Blender's exporter writes a point (X, Y, Z) as (X, Z, -Y) and its
        importer undoes exactly that, so the mesh imported with Blender's defaults stands upright and faces
        the front view, and :func:`semantify_engine.models.shape_keys.read_obj` reads it back unchanged.
        """
        path = Path(path)
        # canonical = obj @ R.T (how shape-key OBJs are read), so obj = canonical @ R for the rotation R
        points = self.vertices(model).astype(np.float64) @ Y_UP_TO_CANONICAL
        buffer = io.StringIO()
        buffer.write(
            f"# semantify fit ({self.method}) of model '{model.name}'\n"
            "# metres, Y up, facing +Z (Blender's OBJ import defaults turn it upright, facing -Y)\n"
            f"o {_obj_name(model.name)}\n"
        )
        np.savetxt(buffer, points, fmt="v %.6f %.6f %.6f")
        np.savetxt(buffer, np.asarray(model.faces, dtype=np.int64) + 1, fmt="f %d %d %d")
        with atomic_output(path, "w") as stream:
            stream.write(buffer.getvalue())
        return path

    def check_model(self, model: LinearMorphableModel) -> None:
        """Refuse a model other than the mapper's: the coefficients would mean something else."""
        recorded = self.mapper.get("model", {})
        if recorded.get("checksum") not in (None, model.checksum()):
            raise FitError(
                f"This fit was made with a mapper for model '{recorded.get('name')}' (checksum "
                f"{recorded.get('checksum')}), not for '{model.name}' (checksum {model.checksum()})."
            )

    # ------------------------------------------------------------------------------------ summary
    def summary_lines(self, units: dict[str, str] | None = None) -> list[str]:
        """Human-readable lines: one per slider (with its range), then the notes."""
        units = units or {}
        ranges = {d["name"]: d for d in self.mapper.get("descriptors", [])}
        width = max((len(name) for name in self.sliders), default=0)
        lines = ["sliders:"]
        for name, value in self.sliders.items():
            info = ranges.get(name, {})
            unit = units.get(name, info.get("unit", ""))
            span = ""
            if info:
                span = f"  [{_quantity(info['low'], unit)}, {_quantity(info['high'], unit)}]"
            kept = "  (default)" if name in self.defaults_kept else ""
            lines.append(f"  {name:<{width}}  {_quantity(value, unit)}{span}{kept}")
        lines += [f"note: {note}" for note in self.notes]
        return lines


# ------------------------------------------------------------------------------------------- helpers
def mapper_summary(mapper: Mapper) -> dict[str, Any]:
    """What a result records about its mapper: enough to apply the sliders to the right model later."""
    model = mapper.model_info
    return {
        "checksum": mapper.checksum(),
        "model": {key: model.get(key) for key in ("name", "kind", "vertex_count", "checksum")},
        "descriptors": [d.to_json() for d in mapper.descriptors],
    }


def clamp_to_ranges(mapper: Mapper, values: Sequence[float]) -> tuple[np.ndarray, list[Clamped]]:
    """Slider values set inside each descriptor's range, and a record of every one that had to move.

    Non-finite values are refused here rather than clamped: a NaN score means a bug or a broken input,
    never a slider position.
    """
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.shape != (mapper.input_count,):
        raise FitError(f"Expected {mapper.input_count} slider values, got {array.shape}.")
    clamped: list[Clamped] = []
    for index, descriptor in enumerate(mapper.descriptors):
        value = float(array[index])
        if not np.isfinite(value):
            raise FitError(f"The fit gave '{descriptor.name}' the value {value}; expected a number.")
        if value < descriptor.low or value > descriptor.high:
            item = Clamped(descriptor.name, value, descriptor.low, descriptor.high, descriptor.unit)
            clamped.append(item)
            array[index] = item.set_to
    return array.astype(np.float32), clamped


def sliders_by_name(mapper: Mapper, values: np.ndarray) -> dict[str, float]:
    return {name: float(value) for name, value in zip(mapper.descriptor_names, values, strict=True)}


def _quantity(value: float, unit: str) -> str:
    """A value with its unit as a person reads it: lengths in centimetres, cosines bare."""
    if unit == "m":
        return f"{value * 100:.1f} cm"
    if unit in ("", "cosine"):
        return f"{value:.4f}"
    return f"{value:.4g} {unit}"


def _obj_name(name: str) -> str:
    return "_".join(str(name).split()) or "semantify_fit"


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into JSON types (recursively)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
