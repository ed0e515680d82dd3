"""Plausibility: is a shape still one of the bodies the model was made from?

A linear model makes any shape its coefficients ask for, people or not: on the previous bundled body, the
measurement sliders' ends reached ‖c‖ = 11.4 std where realistic bodies stop at 8.4, and anny itself,
fitted to those meshes, was left 6–8× further off than on real bodies (a belly in a pouch, folded thighs).
So every model answers one question with one number: how unusual is this shape, as a **percentile of its
source population** (50: a typical body; 99: the edge of the region that holds 99 % of the population;
above 99: outside it).

- **Models with a source bank** (the bundled anny bodies, :mod:`.bank`): the score is the mean distance,
  in standard deviations, from the shape to its :data:`NEIGHBOURS` nearest bank bodies. The population is
  a mixture (realistic adults and shape settings uniform over the adult range), which a single Gaussian
  describes badly: on ``anny-body``, ‖c‖ puts anny's own extremes (its 64 corners) at a median of 8.8 std,
  past the realistic adults' 99th percentile (9.4) for many of them, while by the neighbour distance they
  are typical (median percentile 49). The score's distribution over held-out population bodies (not in
  the bank: a bank body's distance to the bank is zero) is stored with the bank as a quantile table, and
  turns a score into a percentile. How well it ranks bodies by "could anny make this?" was checked against
  anny fitted to them (``tools/validate_plausibility.py``; figures in the README).
- **Other models with a standard deviation per component** (SMPL-family betas, a PCA of heads): their
  prior is the Gaussian with that std, so the score is ‖c / std‖ and the percentile is its chi distribution.
- **Bounded blendshape weights** (expressions) and **custom models** (a mesh's own shape keys, whose
  std is a placeholder) have no known population: no plausibility.

numpy only (the sidebar calls it on every slider move); training uses :meth:`Plausibility.torch_score`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelFileError

if TYPE_CHECKING:
    import torch

    from .bank import SourceBank
    from .linear import LinearMorphableModel

REGION = 99.0
"""The plausible region holds this percentage of the source population."""
NEIGHBOURS = 5
"""Bank bodies averaged in the neighbour distance. Chosen on 156 bodies fitted with anny (realistic and
uniform held-out bodies, anny's corners, bodies pushed off the population, the previous shipped sliders'
ends and random settings). On the previous sliders, 1, 5 and 20 neighbours and ‖c‖ ranked the fit residual
alike (Spearman's ρ 0.89, 0.87, 0.90, 0.89); over all 156 bodies 1 and 5 did best (0.48, 0.48; 20: 0.44;
‖c‖: 0.33, which called 56 % of anny's corners implausible, the neighbour distances none). 5 is steadier
against the bank's sampling than 1."""
BANK_METHOD = "bank-neighbours"
GAUSSIAN_METHOD = "gaussian-prior"
QUANTILE_PERCENTILES = np.concatenate([np.arange(0.0, 99.0, 1.0), np.arange(99.0, 100.01, 0.1)])
"""Percentiles of the calibration table: every 1 %, then every 0.1 % above 99 where the region's edge is."""


@dataclass(frozen=True, eq=False)
class Plausibility:
    """Score and percentile of shapes under a model's source population (see the module docstring)."""

    method: str
    std: np.ndarray  # (K,) the model's standard deviations: scores are in std units
    bank: np.ndarray | None = None  # (N, K) bank coefficients / std, for the neighbour distance
    percentiles: np.ndarray | None = None  # (Q,) with quantiles: the calibration table
    quantiles: np.ndarray | None = None  # (Q,) score at each percentile

    # ------------------------------------------------------------------------------------- numpy
    def score(self, coefficients: Any) -> np.ndarray:
        """``(N,)`` scores of ``(N, k)`` coefficients (a single ``(k,)`` gives ``(1,)``); larger = rarer."""
        batch = self._units(coefficients)
        if self.method == GAUSSIAN_METHOD:
            return np.linalg.norm(batch, axis=1)
        assert self.bank is not None
        squared = (batch**2).sum(axis=1)[:, None] + self._bank_squared[None, :] - 2.0 * batch @ self.bank.T
        nearest = np.partition(np.maximum(squared, 0.0), NEIGHBOURS - 1, axis=1)[:, :NEIGHBOURS]
        return np.sqrt(nearest).mean(axis=1)

    def percentile(self, coefficients: Any) -> np.ndarray:
        """``(N,)`` percentiles in [0, 100] of the source population that are more typical than each shape."""
        return self.percentile_of_score(self.score(coefficients), np.atleast_2d(coefficients).shape[1])

    def percentile_of_score(self, scores: np.ndarray, components: int) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == GAUSSIAN_METHOD:
            return 100.0 * chi_cdf(scores, components)
        assert self.quantiles is not None and self.percentiles is not None
        return np.interp(scores, self.quantiles, self.percentiles)

    def limit(self, region: float = REGION, components: int | None = None) -> float:
        """The score at the edge of the region holding ``region`` % of the population."""
        if self.method == GAUSSIAN_METHOD:
            return chi_quantile(region / 100.0, len(self.std) if components is None else components)
        assert self.quantiles is not None and self.percentiles is not None
        return float(np.interp(region, self.percentiles, self.quantiles))

    # ------------------------------------------------------------------------------------- torch
    def torch_score(self, coefficients: torch.Tensor) -> torch.Tensor:
        """:meth:`score` for a ``(N, k)`` tensor, differentiable (training keeps answers plausible)."""
        import torch

        count = coefficients.shape[1]
        std = torch.as_tensor(self.std[:count], dtype=coefficients.dtype)
        scaled = coefficients / std
        if self.method == GAUSSIAN_METHOD:
            return torch.linalg.vector_norm(scaled, dim=1)
        assert self.bank is not None
        bank = self._torch_bank(coefficients.dtype)
        if count < bank.shape[1]:
            scaled = torch.cat([scaled, scaled.new_zeros(len(scaled), bank.shape[1] - count)], dim=1)
        with torch.no_grad():  # which neighbours: one matrix product, no gradient through all N distances
            squared = (scaled**2).sum(dim=1, keepdim=True) - 2.0 * scaled @ bank.T + (bank**2).sum(dim=1)
            nearest = torch.topk(squared, NEIGHBOURS, dim=1, largest=False).indices
        # the distances to those neighbours, with their gradient (the same almost everywhere)
        return torch.linalg.vector_norm(scaled[:, None, :] - bank[nearest], dim=2).mean(dim=1)

    def _torch_bank(self, dtype: torch.dtype) -> torch.Tensor:
        import torch

        cached = self.__dict__.get("_torch")
        if cached is None or cached.dtype != dtype:
            assert self.bank is not None
            cached = torch.as_tensor(self.bank, dtype=dtype)
            object.__setattr__(self, "_torch", cached)
        return cached

    # ----------------------------------------------------------------------------------- details
    def _units(self, coefficients: Any) -> np.ndarray:
        batch = np.atleast_2d(np.asarray(coefficients, dtype=np.float64))
        count = len(self.std) if self.bank is None else self.bank.shape[1]
        if batch.ndim != 2 or batch.shape[1] > count:
            raise ModelFileError(f"Plausibility takes (N, k ≤ {count}) coefficients; got {batch.shape}.")
        scaled = batch / self.std[: batch.shape[1]]
        if self.bank is not None and batch.shape[1] < count:  # missing components are zero, as in the model
            scaled = np.hstack([scaled, np.zeros((len(scaled), count - batch.shape[1]))])
        return scaled

    @property
    def _bank_squared(self) -> np.ndarray:
        cached = self.__dict__.get("_squared")
        if cached is None:
            assert self.bank is not None
            cached = (self.bank**2).sum(axis=1)
            object.__setattr__(self, "_squared", cached)
        return cached

    def describe(self) -> str:
        if self.method == GAUSSIAN_METHOD:
            return "Gaussian prior: ‖c / std‖ against its chi distribution"
        assert self.bank is not None
        return (
            f"mean distance to the {NEIGHBOURS} nearest of {len(self.bank)} source bodies (std units), "
            "as a percentile of held-out source bodies"
        )


def plausibility_of(model: LinearMorphableModel) -> Plausibility | None:
    """The model's plausibility, or None for bounded blendshape models (expressions) and custom models,
    whose population is unknown."""
    std = model.std.astype(np.float64)
    bank = model.bank
    if bank is not None and bank.plausibility.get("method") == BANK_METHOD:
        return bank_plausibility(bank, std)
    if model.coefficient_bounds is not None or model.kind == "custom":
        return None
    return Plausibility(method=GAUSSIAN_METHOD, std=std)


def unit_prior(component_count: int) -> Plausibility:
    """The Gaussian prior of ``component_count`` unit-variance coefficients: what a user's SMPL-family model
    has (its betas are unit-variance; :mod:`.user_models` gives them std 1), known without loading the model
    (which goes through smplx and torch)."""
    return Plausibility(method=GAUSSIAN_METHOD, std=np.ones(component_count))


def bank_plausibility(bank: SourceBank, std: np.ndarray) -> Plausibility:
    """The neighbour-distance plausibility of a bank, with the calibration stored beside it."""
    calibration = bank.plausibility
    percentiles = np.asarray(calibration.get("percentiles", []), dtype=np.float64)
    quantiles = np.asarray(calibration.get("quantiles", []), dtype=np.float64)
    if len(percentiles) < 2 or percentiles.shape != quantiles.shape or np.any(np.diff(quantiles) < 0):
        raise ModelFileError("The model's source bank has no usable plausibility calibration; regenerate it.")
    return Plausibility(
        method=BANK_METHOD,
        std=std,
        bank=bank.coefficients.astype(np.float64) / std,
        percentiles=percentiles,
        quantiles=quantiles,
    )


def calibration(plausibility: Plausibility, heldout: np.ndarray) -> dict[str, Any]:
    """The quantile table of ``plausibility``'s scores over held-out population shapes ``(N, k)``.

    Written into the bank by the tool that generates a model (held-out shapes are not in the bank)."""
    scores = plausibility.score(heldout)
    quantiles = np.percentile(scores, QUANTILE_PERCENTILES)
    return {
        "method": BANK_METHOD,
        "neighbours": NEIGHBOURS,
        "heldout_bodies": len(heldout),
        "percentiles": [round(float(p), 3) for p in QUANTILE_PERCENTILES],
        "quantiles": [float(q) for q in np.maximum.accumulate(quantiles)],
    }


# ------------------------------------------------------------------------------ chi distribution
def chi_cdf(x: np.ndarray, k: int) -> np.ndarray:
    """P(‖z‖ ≤ x) for z standard normal in k dimensions: the regularised lower gamma P(k/2, x²/2)."""
    x = np.asarray(x, dtype=np.float64)
    return np.vectorize(lambda value: _lower_gamma_regularised(k / 2.0, value * value / 2.0), otypes=[float])(
        x
    )


def chi_quantile(p: float, k: int) -> float:
    """The x with chi_cdf(x, k) = p, by bisection (p in (0, 1))."""
    low, high = 0.0, math.sqrt(k) + 10.0
    for _ in range(80):
        middle = (low + high) / 2.0
        if _lower_gamma_regularised(k / 2.0, middle * middle / 2.0) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def _lower_gamma_regularised(a: float, x: float) -> float:
    """P(a, x) by its series (x < a + 1) or continued fraction (Numerical Recipes §6.2), no scipy."""
    if x <= 0.0:
        return 0.0
    log_prefactor = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        for _ in range(500):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return min(1.0, total * math.exp(log_prefactor))
    tiny = 1e-300
    b = x + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return max(0.0, 1.0 - math.exp(log_prefactor) * h)
