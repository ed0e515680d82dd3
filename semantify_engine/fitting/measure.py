"""Measurements → shape (as SHAPY regresses): set a mapper's measurement sliders to a tape measure's numbers.

A mapper trained on measurement descriptors (height, chest, waist, hips, ... in metres, mass in kg) takes
them directly as slider values, so fitting is setting those sliders and running the mapper once. What
needs deciding is what to do with numbers the mapper has not seen:

- inside a slider's range (the training data's 2nd-98th percentile): used as given;
- outside it but plausible (less than :data:`REFUSE_BEYOND` range-widths past an end): clamped to that
  end, with a note naming the value and the range, since the mapper cannot extrapolate and the shape
  will fall short of what was asked;
- wildly outside (a 5 m person, a value typed in the wrong unit): refused, with the range, and a hint
  when the number would fit in centimetres or metres instead.

Measurements not given stay at their defaults (the data's median), and so do word sliders. When the
model is at hand the fitted mesh is measured again, so the result says how close it came.

numpy only: the Blender extension can run this fit inside Blender's own Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .result import Clamped, FitError, FitResult, mapper_summary, sliders_by_name

if TYPE_CHECKING:
    from ..mapper.mapper import Descriptor, Mapper
    from ..models.linear import LinearMorphableModel

REFUSE_BEYOND = 1.5
"""A value more than this many slider-range widths past the nearer end is refused rather than clamped.
For the bundled body's height slider (about 1.50-1.93 m) that refuses below 0.85 m and above 2.58 m:
people outside that exist, but the mapper would give them a body of the range's end, a wrong answer
that a clamp note does not make right."""


def fit_measurements(
    mapper: Mapper, requested: Mapping[str, float], model: LinearMorphableModel | None = None
) -> FitResult:
    """Slider values and coefficients for measurements ``requested`` (descriptor name → SI value).

    With ``model`` (the mapper's model), the fitted mesh is measured and the result's details hold the
    achieved value and the error of every requested measurement.
    """
    metric = {d.name: d for d in mapper.descriptors if d.kind == "metric"}
    _check_request(mapper, metric, requested)
    values = mapper.defaults.astype(np.float64)
    clamped: list[Clamped] = []
    for name, value in requested.items():
        descriptor = metric[name]
        used, clamp = _checked_value(descriptor, float(value))
        values[mapper.descriptor_names.index(name)] = used
        if clamp is not None:
            clamped.append(clamp)
    values32 = values.astype(np.float32)
    coefficients = mapper.coefficients(values32)
    kept = [name for name in mapper.descriptor_names if name not in requested]
    notes = [item.message() for item in clamped]
    if kept:
        notes.append(f"not given, kept at the default: {', '.join(kept)}")
    details: dict[str, Any] = {"requested": {name: float(value) for name, value in requested.items()}}
    if model is not None:
        details["achieved"] = _achieved(model, coefficients, requested)
    return FitResult(
        method="measure",
        sliders=sliders_by_name(mapper, values32),
        coefficients=coefficients,
        slider_coefficients=coefficients,
        mapper=mapper_summary(mapper),
        notes=notes,
        clamped=clamped,
        defaults_kept=kept,
        details=details,
        inputs={"measurements": {name: float(value) for name, value in requested.items()}},
    )


def measurement_descriptors(mapper: Mapper) -> list[Descriptor]:
    """The mapper's measurement sliders (what ``fit measure`` can set)."""
    return [d for d in mapper.descriptors if d.kind == "metric"]


def _check_request(mapper: Mapper, metric: dict[str, Descriptor], requested: Mapping[str, float]) -> None:
    if not metric:
        raise FitError(
            "This mapper has no measurement sliders (its descriptors: "
            f"{', '.join(mapper.descriptor_names)}), so measurements cannot drive it. Use a mapper trained "
            "on measurements ({descriptors} height,chest,waist,hips) from a dataset built with {scorer} "
            "metric.",
            parameters=("descriptors", "scorer"),
        )
    if not requested:
        raise FitError(f"Give at least one measurement; this mapper takes {_listing(metric.values())}.")
    for name, value in requested.items():
        if name not in metric:
            what = (
                f"'{name}' is a word slider of this mapper, not a measurement"
                if name in mapper.descriptor_names
                else f"This mapper has no '{name}' slider"
            )
            raise FitError(f"{what}; its measurements are {_listing(metric.values())}.")
        if not np.isfinite(float(value)):
            raise FitError(f"The {name} given is {value}; give a number.")


def _checked_value(descriptor: Descriptor, value: float) -> tuple[float, Clamped | None]:
    """The value to set, and the clamp record when it had to move; refuse values far outside the range."""
    low, high, name = descriptor.low, descriptor.high, descriptor.name
    if low <= value <= high:
        return value, None
    width = high - low
    if value < low - REFUSE_BEYOND * width or value > high + REFUSE_BEYOND * width:
        raise FitError(
            f"{name} {_show(value, descriptor.unit)} is impossible for this mapper: its slider spans "
            f"{_show(low, descriptor.unit)} to {_show(high, descriptor.unit)}, and values more than "
            f"{REFUSE_BEYOND:g}× that span beyond it are refused rather than clamped."
            + _unit_hint(descriptor, value)
        )
    clamp = Clamped(name, value, low, high, descriptor.unit)
    return clamp.set_to, clamp


def _unit_hint(descriptor: Descriptor, value: float) -> str:
    """A hint when the number would fit the range in another length unit (metres vs centimetres)."""
    if descriptor.unit != "m":
        return ""
    for factor in (0.01, 100.0):
        if descriptor.low <= value * factor <= descriptor.high:
            return f" If {value * factor * 100:.1f} cm was meant, check the unit it was given in."
    return ""


def _show(value: float, unit: str) -> str:
    if unit == "m":
        return f"{value:.4g} m ({value * 100:.1f} cm)"
    return f"{value:.4g} {unit}".strip()


def _listing(descriptors: Any) -> str:
    return ", ".join(f"{d.name} [{_show(d.low, d.unit)} – {_show(d.high, d.unit)}]" for d in descriptors)


def _achieved(
    model: LinearMorphableModel, coefficients: np.ndarray, requested: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """The fitted mesh measured again: achieved value and error per requested measurement."""
    from ..scoring.metrics import MetricScorer

    scorer = MetricScorer.for_model(model)
    measured = scorer.measure(model.vertices(coefficients[None]).astype(np.float64))[0]
    out = {}
    for name, value in requested.items():
        if name in scorer.names:
            achieved = float(measured[scorer.names.index(name)])
            out[name] = {"requested": float(value), "achieved": achieved, "error": achieved - float(value)}
    return out
