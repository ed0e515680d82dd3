"""Measurement consistency: teach the mapper what a measured slider means where the data is thin.

A mapper trained on data alone learns the average body *of the data* for each slider vector. Where
measurements move together in the model's shape space (on the bundled body, waist and hip girths correlate
at r = 0.94), sweeping the waist slider with the hips slider held still asks for bodies the data barely
holds, and the network answers with its habit: a wider waist *and* wider hips. That is cross-talk (11–12 %
of the hips range on the bundled body, against a goal of < 10 %).

So training gets a second term, built here. Slider vectors ("anchors") are drawn over the whole slider box,
corners the data never visits included, half of them as one-slider sweeps from the defaults; the loss at an
anchor is what a **surrogate** measures on the network's answer minus what the sliders ask for (at a sweep,
the moved slider's own miss weighs less than the others' movement: disentangled sliders first). The
surrogate is a quadratic map from coefficients to measurements fitted by ridge regression (measurements are
smooth in the coefficients: on the bundled body's data it is off by 0.2 mm for height and 1.3–2.5 mm for
girths), so the loss is differentiable.

A surrogate fitted on the data alone is right where the data is and wrong where it is not, and a network
trained against it learns to exploit exactly those errors: on the bundled body, a waist slider at its low
end whose surrogate said hips 103.8 cm while the real mesh measured 99.1. Hence the loop in
:class:`ConsistencyTerm`: every few epochs the network's answers at fresh anchors are measured for real (no
rendering; milliseconds a body), join the surrogate's rows, and the surrogate is refitted; and each anchor
carries an offset (real − surrogate at the answer it was measured at), so the loss is exact at the anchors
and only the surrogate's *slope* steers the next steps, Gauss–Newton style.

Answers may leave the data's coefficient range by :data:`COEFFICIENT_MARGIN`, no further: some requests (a
waist at its 98th percentile with hips at their median) have no body inside the sampled range at all, and
far outside it the model makes creases and folds that game the tape measure instead of looking like people.
That range is not enough to keep bodies human (the old bundled body's waist slider reached, inside it,
bodies anny itself cannot make: a belly in a pouch, folded thighs), so models with a source bank get a
plausibility guard after this training (:mod:`.guard`).

Measured descriptors are measurements and attributes (MakeHuman shape settings, read by the model's
attribute regressor). A sweep holds the other descriptors *of its own kind*: a weight sweep holds gender,
age, muscle and proportions and lets the girths grow; a waist sweep holds height, chest and hips and lets
the weight setting follow. Holding both would leave a weight slider nothing to move.

Everything works in the mapper's normalised units (z-scored descriptors and coefficients), so the term
weighs like the data term. torch is imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..models.bank import quadratic_features

if TYPE_CHECKING:
    import torch

MeasuredReader = Callable[[np.ndarray], np.ndarray]
"""``read_measured(coefficients (N, n)) → (N, m)``: the measured descriptors' real values (measurements by
the tape, attributes by the model's regressor), in their own units."""

RIDGE = 1e-3
"""Ridge penalty per row on the quadratic features: keeps the solve well conditioned when the data hardly
excites a cross term, far too small to bias a fit of thousands of rows."""
ROWS_PER_FEATURE = 4
"""The quadratic terms use the leading K coefficients, with K(K + 1)/2 ≤ rows / this: a model with hundreds
of components (SMPL-X: 300 shape + 100 expression) keeps the cross terms its data can fit."""
REFRESH_EPOCHS = 2
"""Epochs between two real measurements of the network's answers."""
ANCHORS = 256
"""Anchors drawn, answered and measured at each refresh (4 body measurements: ~1.7 ms a body)."""
SWEEP_FRACTION = 0.5
"""Share of anchors that are *sweeps*: one slider anywhere in its range, every other at its default, the way
an artist moves one slider at a time. The rest are drawn uniformly over the whole box."""
OWN_WEIGHT = 0.25
"""At a sweep anchor, the weight of the moved slider's own residual (the others' weigh 1). Where a request
cannot be met (the bundled body's waist at its 98th percentile with the hips at their median) this says:
hold the other measurements, come as close as you can on your own. Measured on the bundled body and the
face (``benchmarks/bench_mapper.py`` has the full run): with uniform anchors only,
waist→hips cross-talk was 6.4–10.1 % over 8 runs and mouth→jaw 15.5 % (a face dataset of the first 10
blendshapes); with sweeps at weight 0.5, 7.0–7.7 % and 10.9 %; at 0.25, 3.9–5.6 % over 4 runs and 7.8 %,
for a waist slider that stops ~9 cm short of its top (mean error 11–15 mm over its range, goal ≤ 20)."""
REFRESH_WEIGHT = 1.0
"""Total weight of all measured answers in the surrogate's fit, relative to the data rows' total."""
COEFFICIENT_MARGIN = 1.5
"""How far answers may go past the data's coefficient range, per coefficient around its centre, before the
range penalty acts: 1.5 lets bodies sampled within ±2 std reach ±3 std. Chosen on the bundled body (seed 42,
four training seeds on two datasets): 1.0 leaves waist→hips cross-talk at 11.0–13.7 %, 1.25 at 8.9–11.1 %,
1.5 at 7.5–9.8 %; 2.0 lets the network find folded bodies that fool the tape (up to 19 %). (Measured with
uniform anchors only, before sweeps and OWN_WEIGHT.)"""


# ------------------------------------------------------------------------------------------ surrogate
@dataclass(frozen=True)
class MeasurementSurrogate:
    """A quadratic map from normalised coefficients to normalised measurements.

    ``features(c) = [1, c, c_i c_j for i ≤ j < quadratic_components]``; ``weights`` is (features, m).
    """

    quadratic_components: int
    weights: np.ndarray

    def predict(self, coefficients: np.ndarray) -> np.ndarray:
        """(N, n) normalised coefficients → (N, m) normalised measurements (numpy)."""
        features = quadratic_features(np.asarray(coefficients, np.float64), self.quadratic_components)
        return features @ self.weights

    def torch_module(self) -> torch.nn.Module:
        """The same function in torch, so that gradients reach the coefficients."""
        import torch

        rows, columns = np.triu_indices(self.quadratic_components)
        weights = self.weights.astype(np.float32)

        class _Surrogate(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.register_buffer("rows", torch.from_numpy(rows.astype(np.int64)))
                self.register_buffer("columns", torch.from_numpy(columns.astype(np.int64)))
                self.register_buffer("weights", torch.from_numpy(weights))

            def forward(self, coefficients: torch.Tensor) -> torch.Tensor:
                ones = torch.ones_like(coefficients[:, :1])
                cross = coefficients[:, self.rows] * coefficients[:, self.columns]
                return torch.cat([ones, coefficients, cross], dim=1) @ self.weights

        return _Surrogate()


def fit_surrogate(
    coefficients: np.ndarray, measurements: np.ndarray, row_weights: np.ndarray | None = None
) -> MeasurementSurrogate:
    """Weighted ridge regression of ``measurements`` (N, m) on the quadratic features of ``coefficients``.

    Closed form (one solve of a features² system): deterministic, and milliseconds next to the seconds of
    training. The intercept is not shrunk; weights are rescaled to sum to N.
    """
    coefficients = np.asarray(coefficients, np.float64)
    quadratic = quadratic_components_for(*coefficients.shape)
    features = quadratic_features(coefficients, quadratic)
    weighted = features
    if row_weights is not None:
        weights = np.asarray(row_weights, np.float64)
        weighted = features * (weights * (len(features) / np.sum(weights)))[:, None]
    moment = weighted.T @ np.asarray(measurements, np.float64)
    return _ridge_solution(quadratic, weighted.T @ features, moment, len(features))


def quadratic_components_for(rows: int, components: int) -> int:
    """K, the leading coefficients that get cross terms: K(K + 1)/2 ≤ rows / ROWS_PER_FEATURE."""
    return min(components, int((np.sqrt(8 * rows / ROWS_PER_FEATURE + 1) - 1) / 2))


def _ridge_solution(quadratic: int, gram: np.ndarray, moment: np.ndarray, rows: int) -> MeasurementSurrogate:
    gram = gram.copy()
    gram[np.diag_indices_from(gram)] += RIDGE * rows
    gram[0, 0] -= RIDGE * rows
    return MeasurementSurrogate(quadratic_components=quadratic, weights=np.linalg.solve(gram, moment))


class SurrogateFit:
    """The surrogate's fit during training, kept as normal equations: the data rows once, the measured
    answers added as they come, together weighing :data:`REFRESH_WEIGHT` of the data. Each refit is one
    solve whatever the number of rows (what :func:`fit_surrogate` on all rows stacked would give)."""

    def __init__(self, coefficients: np.ndarray, measurements: np.ndarray) -> None:
        coefficients = np.asarray(coefficients, np.float64)
        self.quadratic = quadratic_components_for(*coefficients.shape)
        features = quadratic_features(coefficients, self.quadratic)
        self.data_rows = len(features)
        self.data_gram = features.T @ features
        self.data_moment = features.T @ np.asarray(measurements, np.float64)
        self.measured_rows = 0
        self.measured_gram = np.zeros_like(self.data_gram)
        self.measured_moment = np.zeros_like(self.data_moment)

    def add(self, coefficients: np.ndarray, measurements: np.ndarray) -> None:
        features = quadratic_features(np.asarray(coefficients, np.float64), self.quadratic)
        self.measured_rows += len(features)
        self.measured_gram += features.T @ features
        self.measured_moment += features.T @ np.asarray(measurements, np.float64)

    def solve(self) -> MeasurementSurrogate:
        rows = self.data_rows + self.measured_rows
        share = REFRESH_WEIGHT * self.data_rows / self.measured_rows if self.measured_rows else 0.0
        scale = rows / (self.data_rows + share * self.measured_rows)
        gram = scale * (self.data_gram + share * self.measured_gram)
        moment = scale * (self.data_moment + share * self.measured_moment)
        return _ridge_solution(self.quadratic, gram, moment, rows)


# --------------------------------------------------------------------------------------- training term
class Normalisation(Protocol):
    """The mapper's z-scoring, to speak to ``read_measured`` (real units) from the normalised training
    space."""

    input_mean: np.ndarray
    input_std: np.ndarray
    output_mean: np.ndarray
    output_std: np.ndarray


class ConsistencyTerm:
    """The consistency loss of one training run (see the module docstring for why it looks like this).

    ``coefficients`` / ``measurements`` are the training rows (normalised coefficients and the measured
    descriptors' normalised values), ``measured_columns`` which descriptors are measured,
    ``column_groups`` (d,) each descriptor's kind (a sweep holds the measured descriptors of its own kind),
    ``slider_low`` / ``slider_high`` (d,) the normalised slider box, ``coefficient_bounds`` (n, 2) the
    model's hard bounds in normalised units when it has them (blendshape weights in [0, 1]).
    """

    def __init__(
        self,
        coefficients: np.ndarray,
        measurements: np.ndarray,
        measured_columns: np.ndarray,
        slider_low: np.ndarray,
        slider_high: np.ndarray,
        slider_default: np.ndarray,
        read_measured: MeasuredReader,
        units: Normalisation,
        weight: float,
        seed: int,
        coefficient_bounds: np.ndarray | None = None,
        column_groups: np.ndarray | None = None,
    ) -> None:
        import torch

        self.fit = SurrogateFit(coefficients, measurements)
        self.measured_columns = np.asarray(measured_columns, np.int64)
        groups = np.zeros(len(slider_low), np.int64) if column_groups is None else column_groups
        self.column_groups = np.asarray(groups, np.int64)
        self.slider_low = np.asarray(slider_low, np.float32)
        self.slider_high = np.asarray(slider_high, np.float32)
        self.slider_default = np.asarray(slider_default, np.float32)
        self.read_measured = read_measured
        self.units = units
        self.weight = float(weight)
        self.rng = np.random.default_rng(seed + 1)
        low, high = _allowed_range(np.asarray(coefficients, np.float64), coefficient_bounds)
        self.coefficient_low = torch.from_numpy(low)
        self.coefficient_high = torch.from_numpy(high)
        self.hard_bounds = None
        if coefficient_bounds is not None:
            bounds = np.asarray(coefficient_bounds, np.float32)
            self.hard_bounds = (torch.from_numpy(bounds[:, 0].copy()), torch.from_numpy(bounds[:, 1].copy()))
        self._refit()
        anchors, weights = self._draw_anchors()
        self.anchors, self.residual_weights = torch.from_numpy(anchors), torch.from_numpy(weights)
        self.offsets = torch.zeros((ANCHORS, len(self.measured_columns)))

    def batch(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` anchor rows drawn at random, and their normalised slider vectors."""
        import torch

        rows = torch.randint(len(self.anchors), (count,), generator=generator)
        return rows, self.anchors[rows]

    def loss(self, rows: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
        """Weighted mismatch + range penalty of the network's answers ``coefficients`` at anchors ``rows``."""
        import torch

        requested = self.anchors[rows][:, self.measured_columns]
        measured = self.surrogate_module(self._clamped(coefficients)) + self.offsets[rows]
        mismatch = torch.mean(self.residual_weights[rows] * (measured - requested) ** 2)
        below = torch.relu(self.coefficient_low - coefficients)
        above = torch.relu(coefficients - self.coefficient_high)
        return self.weight * (mismatch + torch.mean((below + above) ** 2))

    def refresh(self, network: torch.nn.Module) -> float:
        """New anchors: measure the network's answers for real, refit the surrogate, set the offsets.

        Returns the previous surrogate's mean absolute error (normalised) on those answers: how wrong it was
        where the network went (recorded in the training figures).
        """
        import torch

        anchors, weights = self._draw_anchors()
        with torch.no_grad():
            network.eval()
            answers = self._clamped(network(torch.from_numpy(anchors))).numpy().astype(np.float64)
            network.train()
        units, columns = self.units, self.measured_columns
        real = self.read_measured(answers * units.output_std + units.output_mean)
        measured = (real - units.input_mean[columns]) / units.input_std[columns]
        error = float(np.abs(self.surrogate.predict(answers) - measured).mean())
        self.fit.add(answers, measured)
        self._refit()
        self.anchors, self.residual_weights = torch.from_numpy(anchors), torch.from_numpy(weights)
        self.offsets = torch.from_numpy((measured - self.surrogate.predict(answers)).astype(np.float32))
        return error

    def _clamped(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Answers as the mapper gives them in use, clamped to the model's hard bounds: the surrogate is
        fitted only inside them, and measuring a clamped body is what a user sees."""
        import torch

        if self.hard_bounds is None:
            return coefficients
        return torch.clamp(coefficients, *self.hard_bounds)

    def _draw_anchors(self) -> tuple[np.ndarray, np.ndarray]:
        """Anchors (ANCHORS, d) and the weight of each measured residual at them (ANCHORS, m)."""
        count, width = ANCHORS, len(self.slider_low)
        anchors = self.slider_low + self.rng.random((count, width), dtype=np.float32) * (
            self.slider_high - self.slider_low
        )
        weights = np.ones((count, len(self.measured_columns)), np.float32)
        sweeps = np.flatnonzero(self.rng.random(count) < SWEEP_FRACTION)
        moved = self.rng.integers(0, width, len(sweeps))
        kept = np.ones((len(sweeps), width), bool)
        kept[np.arange(len(sweeps)), moved] = False
        anchors[sweeps] = np.where(kept, self.slider_default, anchors[sweeps])
        own = self.measured_columns[None, :] == moved[:, None]
        other_kind = self.column_groups[self.measured_columns][None, :] != self.column_groups[moved][:, None]
        moved_is_measured = np.isin(moved, self.measured_columns)[:, None]
        weights[sweeps] = np.where(own, OWN_WEIGHT, np.where(other_kind & moved_is_measured, 0.0, 1.0))
        return anchors.astype(np.float32), weights

    def _refit(self) -> None:
        self.surrogate = self.fit.solve()
        self.surrogate_module = self.surrogate.torch_module()


def _allowed_range(coefficients: np.ndarray, bounds: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The data's coefficient range widened by COEFFICIENT_MARGIN, within the model's hard bounds."""
    low, high = coefficients.min(axis=0), coefficients.max(axis=0)
    centre, half = (low + high) / 2, (high - low) / 2 * COEFFICIENT_MARGIN
    low, high = centre - half, centre + half
    if bounds is not None:
        low, high = np.maximum(low, bounds[:, 0]), np.minimum(high, bounds[:, 1])
    return low.astype(np.float32), high.astype(np.float32)
