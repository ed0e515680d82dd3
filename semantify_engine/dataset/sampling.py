"""Coefficient sampling: every sample is a pure function of (seed, sample index) and the model.

A sample never depends on the samples before it, on the batch it is drawn in, or on the machine that
draws it. That is what lets a killed build resume, lets shards built on many machines merge into the
same dataset as a single build, and lets anyone recompute one sample alone.

Schemes (SEMANTIFY.md, "Sample"):

- ``uniform`` (the paper): uniform within ±k std, k = 2 for shapes and 4 for expressions, cut to the
  model's valid range where it has one (blendshape weights in [0, 1]).
- ``reference`` (the reference code): shapes ``randn · randint(-2, 2)`` per coefficient, i.e. a standard
  normal draw times one of {-2, -1, 0, 1} drawn for each coefficient (one per sample would make a quarter
  of the samples the mean shape and couple the sizes of a sample's coefficients); expressions plain
  ``randn``; both times std and clipped to the bounds.
- ``normal``: ``randn · std``, clipped to the bounds.
- ``sparse``: each component on with probability :data:`SPARSE_ACTIVE` (uniform within ±k std, cut to the
  valid range, as ``uniform``), off (0: the neutral face, the mean shape) otherwise. For expressions: faces
  pull a few blendshapes at a time, so a build can sample all 52 ARKit shapes (blinks and brows included)
  without the grimace of all of them at once; the default for ``face-expression`` models.
- ``bank``: one of the model's source bodies (:mod:`..models.bank`), drawn uniformly, as it is: every
  sample is a body the model was built from, with its exact shape settings (the dataset's attributes). The
  default for models with a bank (the bundled anny bodies): a box of ±2 std puts 36 % of a mapper's random
  slider settings beyond the largest realistic body and cannot reach anny's own extremes; bank bodies are
  real at every sample and include those extremes. ``sigmas`` does not apply.
- ``settings``: the same bank bodies' shape settings, made by anny without their local changes (the
  bank's ``smooth`` bodies): what each setting means on its own, for attribute sliders (see
  :class:`..models.bank.SourceBank`). :func:`scheme_for_build` picks it when a build makes attribute
  sliders only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import SemantifyError
from ..models.linear import LinearMorphableModel

SCHEMES = ("uniform", "reference", "normal", "sparse", "bank", "settings")
BANK_SCHEMES = ("bank", "settings")
"""Schemes whose samples are bank bodies, with the bank's exact shape settings as their attributes."""
DEFAULT_COMPONENTS = 10
SPARSE_ACTIVE = 0.1
"""Chance that a component is on in a ``sparse`` sample: about 5 of 52 blendshapes per face."""


def default_scheme(model: LinearMorphableModel) -> str:
    """``bank`` for models with a source bank, ``sparse`` for expressions (see the module docstring), the
    paper's ``uniform`` otherwise."""
    if model.bank is not None:
        return "bank"
    return "sparse" if model.kind == "face-expression" else "uniform"


def scheme_for_build(model: LinearMorphableModel, words: bool, forced: Iterable[str] = ()) -> str:
    """The scheme a build samples when none is asked for: ``settings`` when it makes attribute sliders only
    (no CLIP words; any sliders asked for are attributes or the height), for a model whose bank has smooth
    bodies; :func:`default_scheme` otherwise. Girths need the bank's individual detail: with smooth bodies
    alone, waist and hips move only together."""
    from ..models.bank import ATTRIBUTE_SETTINGS

    only_attributes = all(name in (*ATTRIBUTE_SETTINGS, "height") for name in forced)
    if not words and only_attributes and model.bank is not None and model.bank.smooth is not None:
        return "settings"
    return default_scheme(model)


def default_sigmas(model: LinearMorphableModel) -> float:
    """The paper's k: 4 standard deviations for expressions, 2 for everything else."""
    return 4.0 if model.kind == "face-expression" else 2.0


@dataclass(frozen=True)
class SamplingPlan:
    """How coefficients are drawn; stored in the dataset manifest so a build can be checked and resumed."""

    seed: int = 0
    scheme: str = "uniform"
    sigmas: float = 2.0
    components: int = DEFAULT_COMPONENTS

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise SemantifyError(
                f"Unknown sampling scheme '{self.scheme}'. Choose one of: {', '.join(SCHEMES)}."
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            raise SemantifyError(f"The seed must be a whole number ≥ 0, got {self.seed!r}.")
        if not self.sigmas > 0:
            raise SemantifyError(f"The sampling range must be > 0 standard deviations, got {self.sigmas!r}.")
        if not isinstance(self.components, int) or self.components < 1:
            raise SemantifyError(f"At least one component must be sampled, got {self.components!r}.")

    @classmethod
    def for_model(
        cls,
        model: LinearMorphableModel,
        seed: int = 0,
        scheme: str | None = None,
        sigmas: float | None = None,
        components: int | None = None,
    ) -> SamplingPlan:
        """The paper's defaults for this model, with anything given explicitly taking precedence."""
        count = min(DEFAULT_COMPONENTS if components is None else components, model.component_count)
        if components is not None and components > model.component_count:
            raise SemantifyError(
                f"Model '{model.name}' has {model.component_count} components; cannot sample {components}."
            )
        scheme = default_scheme(model) if scheme is None else scheme
        if scheme in BANK_SCHEMES and model.bank is None:
            raise SemantifyError(
                f"Model '{model.name}' has no source bank to sample from; use {{scheme}} uniform (or "
                "reference, normal, sparse).",
                parameters=("scheme",),
            )
        if scheme == "settings" and model.bank is not None and model.bank.smooth is None:
            raise SemantifyError(
                f"Model '{model.name}' has no smooth bank bodies for {{scheme}} settings; "
                "use {scheme} bank.",
                parameters=("scheme",),
            )
        return cls(
            seed=seed,
            scheme=scheme,
            sigmas=default_sigmas(model) if sigmas is None else sigmas,
            components=count,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def bank_rows(model: LinearMorphableModel, plan: SamplingPlan, indices: Iterable[int]) -> np.ndarray:
    """The bank body ``(len(indices),)`` each sample of a ``bank`` plan is, keyed by (seed, index) alone."""
    if model.bank is None:
        raise SemantifyError(f"Model '{model.name}' has no source bank to sample from.")
    size = model.bank.size
    return np.array(
        [np.random.default_rng([plan.seed, int(index)]).integers(size) for index in _checked(indices)],
        np.int64,
    )


def _checked(indices: Iterable[int]) -> list[int]:
    indices = [int(index) for index in indices]
    if any(index < 0 for index in indices):
        raise SemantifyError("Sample indices must be ≥ 0.")
    return indices


def sample_coefficients(
    model: LinearMorphableModel, plan: SamplingPlan, indices: Iterable[int]
) -> np.ndarray:
    """Coefficients ``(len(indices), plan.components)`` float32 for the given sample indices."""
    indices = _checked(indices)
    if plan.scheme in BANK_SCHEMES:
        assert model.bank is not None
        bodies = model.bank.smooth if plan.scheme == "settings" else model.bank.coefficients
        if bodies is None:
            raise SemantifyError(f"Model '{model.name}' has no smooth bank bodies to sample.")
        return bodies[bank_rows(model, plan, indices), : plan.components].copy()
    count = plan.components
    std = model.std[:count].astype(np.float64)
    bounds = None if model.coefficient_bounds is None else model.coefficient_bounds[:count].astype(np.float64)
    box = model.coefficient_box(plan.sigmas, count).astype(np.float64)
    out = np.empty((len(indices), count), np.float32)
    for row, index in enumerate(indices):
        # One generator per sample, keyed by (seed, index): independent of order and batching.
        rng = np.random.default_rng([plan.seed, index])
        if plan.scheme == "uniform":
            draw = rng.uniform(box[:, 0], box[:, 1])
        elif plan.scheme == "sparse":
            active = rng.random(count) < SPARSE_ACTIVE
            draw = np.where(active, rng.uniform(box[:, 0], box[:, 1]), 0.0)
        elif plan.scheme == "reference":
            normal = rng.standard_normal(count)
            if model.kind == "face-expression":
                draw = normal * std
            else:  # one multiplier per coefficient, as the reference code draws them
                draw = normal * rng.integers(-2, 2, size=count) * std
        else:
            draw = rng.standard_normal(count) * std
        if bounds is not None:
            draw = np.clip(draw, bounds[:, 0], bounds[:, 1])
        out[row] = draw
    return out
