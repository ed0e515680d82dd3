"""Measured sliders cut to what they reach (:func:`narrow_to_reach`): the last step of training a mapper on
a model with a source bank (:func:`.from_dataset.train_from_dataset`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .mapper import MEASURED_KINDS, Mapper

if TYPE_CHECKING:
    from ..models.linear import LinearMorphableModel

REACH_STEPS = 41
"""Positions along a sweep at which :func:`narrow_to_reach` reads what a slider reaches."""
REACH_TOLERANCE = 0.04
"""A slider's end is cut while its body misses what it asks by more than this share of the slider's range
(22 mm on the bundled body's waist slider, 2.8 years on its age slider)."""


def narrow_to_reach(
    mapper: Mapper, model: LinearMorphableModel, kinds: Sequence[str] = MEASURED_KINDS
) -> tuple[Mapper, dict[str, Any]]:
    """Each measured slider of ``kinds`` (:func:`.from_dataset.trusted_kinds`) cut to the positions whose
    bodies measure what they ask.

    Where a request has no plausible body the guard wins and the slider stops short: past its reach more
    slider adds nothing, or bends the body back and moves the other measurements (on the male body, a waist
    asked past 1.07 m shrank the chest by 5 cm). So each end of a slider whose body misses its request
    there (by more than :data:`REACH_TOLERANCE` of its range, the others at their defaults) moves in to
    the last position that does not: every position does what it says, and a typed value past the new end
    is clamped like any other. Returns the mapper and, per narrowed slider, its data range and its new range
    (for ``mapper info`` and the sidebar)."""
    from ..evaluation.fidelity import slider_fidelity

    fidelity = slider_fidelity(model, mapper, REACH_STEPS)
    descriptors, narrowed = list(mapper.descriptors), {}
    for index, descriptor in enumerate(descriptors):
        row = fidelity.get(descriptor.name)
        if row is None or descriptor.kind not in kinds:
            continue
        requested, achieved = np.asarray(row["requested"]), np.asarray(row["achieved"])
        good = np.abs(achieved - requested) <= REACH_TOLERANCE * (descriptor.high - descriptor.low)
        if not good.any():
            continue  # a slider that misses everywhere is not one to cut: leave it as it is
        first, last = int(np.argmax(good)), len(good) - 1 - int(np.argmax(good[::-1]))
        low = descriptor.low if first == 0 else float(requested[first])
        high = descriptor.high if last == len(good) - 1 else float(requested[last])
        if (low, high) == (descriptor.low, descriptor.high) or not low <= descriptor.default <= high:
            continue
        narrowed[descriptor.name] = {"data_range": [descriptor.low, descriptor.high], "range": [low, high]}
        descriptors[index] = replace(descriptor, low=low, high=high)
    if not narrowed:
        return mapper, {}
    return replace(mapper, descriptors=tuple(descriptors)), narrowed
