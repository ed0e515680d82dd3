"""Training the mapper (torch): descriptor values → coefficients with the paper's MLP.

Architecture, loss and optimiser follow the reference implementation: Linear(d→800)–ReLU–Linear(800→500)–
ReLU–Linear(500→n), MSE, Adam with lr 1e-4, 50 epochs, an 80/20 train/validation split and seed 42.
Two things differ, both for accuracy:

- **Normalisation.** Inputs are z-scored (CLIP cosines live in a band ~0.05 wide, heights around 1.7 m,
  masses around 70 kg: raw, the first layer would see inputs of wildly different scale) and targets are
  z-scored per coefficient (bounded blendshape weights in [0, 1] and unit-variance PCA coefficients then
  weigh the same in the loss). Both normalisations are stored in the mapper file.
- **Batch size** (:data:`DEFAULT_BATCH_SIZE`). The reference's batch of 1500 on 3K samples makes 2 Adam
  steps per epoch, 100 in all at lr 1e-4: far too few, the mapper underfits. Keeping lr and epochs, a
  smaller batch gives more steps for the same number of sample passes; see the constant for the measured
  figures that chose it.

torch is imported inside the functions only, so that importing this module (and the add-on) stays cheap.
Training is deterministic for a seed: weights are initialised under ``torch.manual_seed`` in a forked RNG
(the caller's global RNG is left as it was), batches are shuffled with a private ``torch.Generator``, the
split is drawn with numpy from the same seed, and deterministic algorithms are requested while training.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..dataset.sampling import BANK_SCHEMES
from ..dataset.store import DatasetFolder, content_checksum
from .consistency import REFRESH_EPOCHS, ConsistencyTerm, Measure
from .guard import fit_guard, merge
from .mapper import (
    DESCRIPTOR_KINDS,
    MEASURED_KINDS,
    WORD_UNIT,
    Descriptor,
    Mapper,
    MapperError,
    coefficient_bounds_from,
    model_identity,
)

if TYPE_CHECKING:
    import torch

    from ..models.linear import LinearMorphableModel
    from ..models.plausibility import Plausibility

DEFAULT_HIDDEN = (800, 500)
DEFAULT_EPOCHS = 50
DEFAULT_LR = 1e-4
DEFAULT_BATCH_SIZE = 32
"""Samples per Adam step. The reference's 1500 gives 3000 samples (2400 for training) 2 steps per epoch, 100
in all at lr 1e-4, and underfits; 32 gives 75 per epoch, 3750 in all. Measured with
``benchmarks/bench_mapper.py --batch-sizes ...`` on a 3000-sample metric dataset of the bundled body (2 shared
cores at load ~1, one torch thread). Validation MSE is in normalised units (always predicting the mean
scores 1); held-out: the validation bodies mapped from their own measurements and measured again.

=====  =====  ===========  =============  ==========================================
batch  steps  train s 4/6  val MSE 4/6    held-out MAE mm, height/chest/waist/hips (4)
=====  =====  ===========  =============  ==========================================
1500     100  3.9 / 3.8    0.638 / 0.544  2.7 / 3.6 / 6.6 / 4.3
 256     500  4.2 / 4.1    0.588 / 0.472  1.8 / 2.2 / 2.5 / 2.4
 128     950  4.4 / 4.5    0.588 / 0.453  1.9 / 2.0 / 2.3 / 2.0
  64    1900  5.0 / 5.3    0.588 / 0.428  2.1 / 2.5 / 3.0 / 2.6
  32    3750  7.1 / 8.2    0.590 / 0.415  2.1 / 1.8 / 2.2 / 1.9
  16    7500  9.9 / 9.2    0.592 / 0.409  1.8 / 1.6 / 2.1 / 1.7
=====  =====  ===========  =============  ==========================================

4 descriptors: height, chest, waist, hips; 6: also shoulder width and leg length. With 4, every batch up to
256 reaches the plateau; with 6 it takes thousands of steps (300 epochs at batch 32 go past it and overfit,
0.418). 32 is the largest batch within 2% of the best validation MSE for both, and keeps training (~7-8 s)
inside add-word's 15 s budget and far inside the 60 s training goal."""
DEFAULT_VALIDATION_FRACTION = 0.2
DEFAULT_SEED = 42
DEFAULT_CONSISTENCY = 1.0
"""Weight of the measurement-consistency term (:mod:`.consistency`) against the data term; 0 turns it off. It
acts only on metric descriptors, and only when the model is at hand to measure bodies. Measured with
``benchmarks/bench_mapper.py --dataset`` on a 6000-sample metric dataset of the bundled body, one run, both
ways (sweep MAE mm / max cross-talk on the other measurements):

======  =======  ============  ============  =============  =============  =======
weight  train s  height        chest         waist          hips           val MSE
======  =======  ============  ============  =============  =============  =======
0       13.9     1.9 / 1.0 %   4.6 / 2.6 %   12.7 / 11.2 %  13.6 / 4.0 %   0.8732
1       37.4     0.9 / 0.8 %   0.3 / 0.9 %   13.8 / 5.6 %   4.8 / 2.9 %    0.8727
======  =======  ============  ============  =============  =============  =======

Bodies set from held-out bodies' measurements measure within 1.8 / 2.0 / 3.2 / 2.6 mm of them with the term
(2.4 / 4.3 / 4.9 / 4.4 without). Over 4 runs (2 datasets × 2 training seeds) the waist→hips cross-talk was
3.9–5.6 %. Weights 2 and 3 were less stable (up to 21.8 % with uniform anchors): the network overshoots
between two real measurements."""
DEFAULT_THREADS = 1
"""torch threads while training. One, on purpose: the layers at this batch size are too small to gain much
from a second thread, and on a shared machine two OpenMP threads collapse when another process holds a
core (measured on 2 busy cores: 13-16 s for 50 epochs with one thread, 85-280 s with two)."""
PERCENTILES = (2.0, 98.0)
"""Slider range: the 2nd to 98th percentile of a descriptor's values in the data, so the ends of every
slider are values the mapper has seen often enough to have learned; the default is the median."""

Progress = Callable[[int, int, float, "float | None"], None]
"""``progress(epoch, epochs, train_mse, validation_mse)`` after each epoch (epoch counts from 1)."""


MAX_HIDDEN_WIDTH = 8192
"""Widest hidden layer: one of 8192 × 8192 is 1 GB with Adam's state; the paper's mapper is 800, 500."""


@dataclass(frozen=True)
class TrainingSettings:
    """Everything that decides a training run besides the data; recorded so add-word can redo it."""

    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    epochs: int = DEFAULT_EPOCHS
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH_SIZE
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION
    seed: int = DEFAULT_SEED
    threads: int = DEFAULT_THREADS
    consistency: float = DEFAULT_CONSISTENCY

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(width) for width in self.hidden))
        if not self.hidden or any(not 1 <= width <= MAX_HIDDEN_WIDTH for width in self.hidden):
            widths = ",".join(str(width) for width in self.hidden)
            raise MapperError(
                f"--hidden widths must be whole numbers from 1 to {MAX_HIDDEN_WIDTH} (the paper's are "
                f"800,500), got {widths or 'none'}."
            )
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise MapperError(f"--epochs must be a whole number ≥ 1, got {self.epochs!r}.")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise MapperError(f"--batch-size must be a whole number ≥ 1, got {self.batch_size!r}.")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise MapperError(f"--lr must be a number > 0, got {self.lr!r}.")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise MapperError(f"--validation must be in [0, 1), got {self.validation_fraction!r}.")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise MapperError(f"--seed must be a whole number ≥ 0, got {self.seed!r}.")
        if not (isinstance(self.threads, int) and self.threads >= 1):
            raise MapperError(f"--threads must be a whole number ≥ 1, got {self.threads!r}.")
        if not (np.isfinite(self.consistency) and self.consistency >= 0):
            raise MapperError(f"--consistency must be a number ≥ 0, got {self.consistency!r}.")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingSettings:
        keys = ("epochs", "lr", "batch_size", "validation_fraction", "seed", "threads", "consistency")
        known = {key: data[key] for key in keys if key in data}
        return cls(hidden=tuple(data.get("hidden", DEFAULT_HIDDEN)), **known)


# ------------------------------------------------------------------------------------------ descriptors
def descriptors_from_data(
    names: Sequence[str], kinds: Sequence[str], units: Sequence[str], values: np.ndarray
) -> tuple[Descriptor, ...]:
    """Descriptors with the 2nd–98th percentile of ``values`` (N, d) as range and the median as default."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(names) or not (len(names) == len(kinds) == len(units)):
        raise MapperError(
            f"{len(names)} descriptor names, {len(kinds)} kinds and {len(units)} units for values of shape "
            f"{values.shape}: they must agree."
        )
    if len(names) == 0:
        raise MapperError("Choose at least one descriptor to train a mapper on.")
    if len(values) < 2:
        raise MapperError(f"Descriptor ranges need at least 2 samples; got {len(values)}.")
    _refuse_non_finite(values, names)
    low, median, high = np.percentile(values, [PERCENTILES[0], 50.0, PERCENTILES[1]], axis=0)
    return tuple(
        Descriptor(name=str(n), kind=str(k), unit=str(u), low=lo, high=hi, default=md)
        for n, k, u, lo, md, hi in zip(names, kinds, units, low, median, high, strict=True)
    )


def _refuse_non_finite(values: np.ndarray, names: Sequence[str]) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise MapperError(
            f"Descriptor '{names[column]}' has a non-finite value ({values[row, column]}) in sample {row}; "
            "the dataset is damaged: rebuild it."
        )


# --------------------------------------------------------------------------------------------- training
def train_mapper(
    inputs: np.ndarray,
    targets: np.ndarray,
    descriptors: Sequence[Descriptor],
    *,
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    epochs: int = DEFAULT_EPOCHS,
    lr: float = DEFAULT_LR,
    batch_size: int = DEFAULT_BATCH_SIZE,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    seed: int = DEFAULT_SEED,
    threads: int = DEFAULT_THREADS,
    consistency: float = DEFAULT_CONSISTENCY,
    measure: Measure | None = None,
    progress: Progress | None = None,
    metadata: dict[str, Any] | None = None,
    plausibility: Plausibility | None = None,
    held_kinds: Sequence[str] = MEASURED_KINDS,
) -> tuple[Mapper, dict[str, Any]]:
    """Train the MLP on descriptor values ``inputs`` (N, d) → ``targets`` (N, n); return mapper and figures.

    ``metadata`` (model identity, scorers, dataset) is stored in the mapper together with the training
    settings and the figures: per-epoch train / validation MSE (in normalised target units), the final ones,
    the validation RMSE in coefficient units (overall, per coefficient, and for predicting the mean, as a
    yardstick) and the wall time. With measured descriptors (metrics, attributes), ``consistency`` > 0 and
    ``measure`` (coefficients → the measured descriptors' real values, in descriptor order), training also
    keeps those sliders true off the data (:mod:`.consistency`); the figures then say how well the
    measurement surrogate fits. ``held_kinds`` are the measured kinds the term holds (and ``measure``
    returns): :func:`trusted_kinds` of the dataset. With ``plausibility`` (a model with a source bank)
    and ``consistency`` > 0, every answer is also kept inside the model's plausible region.
    """
    settings = TrainingSettings(
        tuple(hidden), epochs, lr, batch_size, validation_fraction, seed, threads, consistency
    )
    x, y = _checked_arrays(inputs, targets, descriptors)
    train_rows, validation_rows = split_rows(len(x), settings.validation_fraction, settings.seed)
    normalisation = _normalisation(x[train_rows], y[train_rows], descriptors)
    started = time.perf_counter()
    bounds = coefficient_bounds_from(metadata or {}, y.shape[1])
    term, surrogate_figures = _consistency_term(
        x, y, train_rows, validation_rows, descriptors, normalisation, settings, measure, bounds, held_kinds
    )
    guard_figures = None
    with _deterministic_torch(settings.seed, settings.threads):
        network = _network(x.shape[1], settings.hidden, y.shape[1])
        history = _fit(network, x, y, train_rows, validation_rows, normalisation, settings, progress, term)
        layers = _layers(network)
        if not all(np.isfinite(weights).all() and np.isfinite(bias).all() for weights, bias in layers):
            raise MapperError(
                f"Training diverged at --lr {settings.lr:g}: the network's weights became NaN or infinite. "
                f"Train again with a smaller learning rate (the default is {DEFAULT_LR:g})."
            )
        if plausibility is not None and settings.consistency > 0:
            box = np.array([[d.low, d.high, d.default] for d in descriptors], np.float32)
            guard, guard_figures = fit_guard(
                network,
                (x[train_rows] - normalisation.input_mean) / normalisation.input_std,
                (box - normalisation.input_mean[:, None]) / normalisation.input_std[:, None],
                normalisation,
                plausibility,
                bounds,
                settings.seed,
            )
            layers = merge(layers, _layers(guard))
    wall = time.perf_counter() - started
    mapper = _export(layers, descriptors, normalisation, metadata or {}, settings, guard_figures)
    figures = _figures(mapper, x, y, train_rows, validation_rows, history, wall)
    if surrogate_figures is not None:
        surrogate_figures["answer_error_per_refresh"] = history.get("surrogate_error", [])
        figures["measurement_surrogate"] = surrogate_figures
    final = Mapper(
        descriptors=mapper.descriptors,
        input_mean=mapper.input_mean,
        input_std=mapper.input_std,
        output_mean=mapper.output_mean,
        output_std=mapper.output_std,
        weights=mapper.weights,
        metadata={**mapper.metadata, "figures": figures},
    )
    return final, figures


def _checked_arrays(
    inputs: np.ndarray, targets: np.ndarray, descriptors: Sequence[Descriptor]
) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(inputs, dtype=np.float32)
    y = np.asarray(targets, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if len(descriptors) == 0:
        raise MapperError("Choose at least one descriptor to train a mapper on.")
    if x.ndim != 2 or x.shape[1] != len(descriptors):
        raise MapperError(
            f"Inputs must be (N, {len(descriptors)}), one column per descriptor; got {x.shape}."
        )
    if y.ndim != 2 or len(y) != len(x) or y.shape[1] == 0:
        raise MapperError(f"Targets must be (N={len(x)}, n) coefficients; got {y.shape}.")
    if len(x) < 2:
        raise MapperError(f"Training needs at least 2 samples; got {len(x)}.")
    names = [d.name for d in descriptors]
    _refuse_non_finite(x, names)
    if not np.all(np.isfinite(y)):
        raise MapperError(
            "Target coefficients hold NaN or infinite values; the dataset is damaged: rebuild it."
        )
    return x, y


def split_rows(count: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic shuffled split of ``range(count)`` into train and validation rows."""
    order = np.random.default_rng(seed).permutation(count)
    validation = round(count * validation_fraction)
    if validation_fraction > 0:
        validation = min(max(validation, 1), count - 1)
    return np.sort(order[validation:]), np.sort(order[:validation])


@dataclass(frozen=True)
class _Normalisation:
    input_mean: np.ndarray
    input_std: np.ndarray
    output_mean: np.ndarray
    output_std: np.ndarray


def _normalisation(x: np.ndarray, y: np.ndarray, descriptors: Sequence[Descriptor]) -> _Normalisation:
    """z-score statistics of the training rows; a constant input cannot be a slider and is refused."""
    input_std = x.std(axis=0, dtype=np.float64)
    flat = np.flatnonzero(input_std <= 1e-12 * np.maximum(1.0, np.abs(x).max(axis=0)))
    if len(flat):
        raise MapperError(
            f"Descriptor '{descriptors[int(flat[0])].name}' has the same value in every training sample; it "
            "carries no information. Leave it out."
        )
    output_std = y.std(axis=0, dtype=np.float64)
    output_std[output_std <= 1e-12] = 1.0  # a constant coefficient: predicted as its mean, never divided by 0
    return _Normalisation(
        input_mean=x.mean(axis=0, dtype=np.float64).astype(np.float32),
        input_std=input_std.astype(np.float32),
        output_mean=y.mean(axis=0, dtype=np.float64).astype(np.float32),
        output_std=output_std.astype(np.float32),
    )


@contextlib.contextmanager
def _deterministic_torch(seed: int, threads: int) -> Iterator[None]:
    """Seeded, deterministic torch on ``threads`` threads for one block; the caller's RNG and settings are
    restored afterwards."""
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    previous_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous_threads)
            torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)


def _network(inputs: int, hidden: Sequence[int], outputs: int) -> torch.nn.Sequential:
    import torch

    layers: list[torch.nn.Module] = []
    width = inputs
    for size in hidden:
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
        width = size
    layers.append(torch.nn.Linear(width, outputs))
    return torch.nn.Sequential(*layers)


def _fit(
    network: torch.nn.Sequential,
    x: np.ndarray,
    y: np.ndarray,
    train_rows: np.ndarray,
    validation_rows: np.ndarray,
    normalisation: _Normalisation,
    settings: TrainingSettings,
    progress: Progress | None,
    term: ConsistencyTerm | None = None,
) -> dict[str, list[float]]:
    """Adam on the MSE of normalised targets, plus the consistency ``term`` when given (on as many of its
    anchors per step as data rows); returns the per-epoch train and validation MSE of the data term alone,
    so that runs with and without the term compare."""
    import torch

    def normalised(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        xs = (x[rows] - normalisation.input_mean) / normalisation.input_std
        ys = (y[rows] - normalisation.output_mean) / normalisation.output_std
        return torch.from_numpy(np.ascontiguousarray(xs)), torch.from_numpy(np.ascontiguousarray(ys))

    train_x, train_y = normalised(train_rows)
    validation_x, validation_y = normalised(validation_rows)
    optimiser = _adam(list(network.parameters()), settings.lr)
    loss_function = torch.nn.MSELoss()
    generator = torch.Generator().manual_seed(settings.seed)
    history: dict[str, list[float]] = {"train_mse": [], "validation_mse": []}
    count = len(train_x)
    for epoch in range(1, settings.epochs + 1):
        network.train()
        order = torch.randperm(count, generator=generator)
        total = 0.0
        for start in range(0, count, settings.batch_size):
            batch = order[start : start + settings.batch_size]
            optimiser.zero_grad(set_to_none=True)
            if term is None:
                loss = loss_function(network(train_x[batch]), train_y[batch])
                data_loss = float(loss.detach())
            else:  # one forward pass for the data rows and as many anchors
                anchors, sliders = term.batch(len(batch), generator)
                answers = network(torch.cat([train_x[batch], sliders]))
                loss = loss_function(answers[: len(batch)], train_y[batch])
                data_loss = float(loss.detach())
                loss = loss + term.loss(anchors, answers[len(batch) :])
            loss.backward()
            optimiser.step()
            total += data_loss * len(batch)
        history["train_mse"].append(total / count)
        if term is not None and epoch % REFRESH_EPOCHS == 0 and epoch < settings.epochs:
            history.setdefault("surrogate_error", []).append(term.refresh(network))
        validation = _mse(network, validation_x, validation_y)
        if validation is not None:
            history["validation_mse"].append(validation)
        if progress is not None:
            progress(epoch, settings.epochs, history["train_mse"][-1], validation)
    return history


def _consistency_term(
    x: np.ndarray,
    y: np.ndarray,
    train_rows: np.ndarray,
    validation_rows: np.ndarray,
    descriptors: Sequence[Descriptor],
    normalisation: _Normalisation,
    settings: TrainingSettings,
    measure: Measure | None,
    bounds: tuple[np.ndarray, np.ndarray] | None,
    held_kinds: Sequence[str],
) -> tuple[ConsistencyTerm | None, dict[str, Any] | None]:
    """The consistency term of this run and its surrogate's figures, or (None, None) when the weight is 0,
    no descriptor of ``held_kinds`` is among them or nothing can measure a body."""
    metric_columns = np.array([i for i, d in enumerate(descriptors) if d.kind in held_kinds], dtype=np.int64)
    if settings.consistency <= 0 or len(metric_columns) == 0 or measure is None:
        return None, None
    groups = np.array([DESCRIPTOR_KINDS.index(d.kind) for d in descriptors], np.int64)
    xs = (x - normalisation.input_mean) / normalisation.input_std
    ys = (y - normalisation.output_mean) / normalisation.output_std
    box = np.array([[d.low, d.high, d.default] for d in descriptors], np.float32)
    normalised_bounds = None
    if bounds is not None:
        normalised_bounds = (np.stack(bounds, axis=1) - normalisation.output_mean[:, None]) / (
            normalisation.output_std[:, None]
        )
    term = ConsistencyTerm(
        ys[train_rows],
        xs[train_rows][:, metric_columns],
        metric_columns,
        slider_low=(box[:, 0] - normalisation.input_mean) / normalisation.input_std,
        slider_high=(box[:, 1] - normalisation.input_mean) / normalisation.input_std,
        slider_default=(box[:, 2] - normalisation.input_mean) / normalisation.input_std,
        measure=measure,
        units=normalisation,
        weight=settings.consistency,
        seed=settings.seed,
        coefficient_bounds=normalised_bounds,
        column_groups=groups,
    )
    figures: dict[str, Any] = {"quadratic_components": term.surrogate.quadratic_components}
    if len(validation_rows):
        error = term.surrogate.predict(ys[validation_rows]) - xs[validation_rows][:, metric_columns]
        error_units = np.abs(error * normalisation.input_std[metric_columns]).mean(axis=0)
        names = [descriptors[column].name for column in metric_columns]
        figures["validation_mean_abs_error"] = dict(zip(names, map(float, error_units), strict=True))
    return term, figures


def _adam(parameters: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """Adam, fused where torch offers it on this device: the same update in one kernel per step, which
    more than halves the optimiser's share of a step at these layer sizes (measured 93 vs 374 ms per epoch
    at batch 64)."""
    import torch

    try:
        return torch.optim.Adam(parameters, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(parameters, lr=lr)


def _mse(network: torch.nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> float | None:
    import torch

    if len(x) == 0:
        return None
    network.eval()
    with torch.no_grad():
        return float(torch.mean((network(x) - y) ** 2))


def _layers(network: torch.nn.Sequential) -> list[tuple[np.ndarray, np.ndarray]]:
    """A torch MLP's ``(W, b)`` per linear layer, ``W`` as (in, out) (the transpose of torch's)."""
    import torch

    linear = [layer for layer in network if isinstance(layer, torch.nn.Linear)]
    return [(layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy().copy()) for layer in linear]


def _export(
    layers: list[tuple[np.ndarray, np.ndarray]],
    descriptors: Sequence[Descriptor],
    normalisation: _Normalisation,
    metadata: dict[str, Any],
    settings: TrainingSettings,
    guard_figures: dict[str, Any] | None = None,
) -> Mapper:
    """The trained network (with its plausibility guard merged in, if any) as a numpy :class:`Mapper`, its
    weights rounded to float16 precision (stored in half the bytes; see :mod:`.mapper`)."""
    weights = tuple(
        (w.astype(np.float16).astype(np.float32), b.astype(np.float16).astype(np.float32)) for w, b in layers
    )
    training = {
        **settings.to_json(),
        "architecture": "mlp",
        "activation": "relu",
        "loss": "mse" if settings.consistency == 0 else "mse + measurement consistency",
        "optimiser": "adam",
        "normalisation": "z-score inputs (training rows) and z-score targets per coefficient",
        "torch": _torch_version(),
        "semantify": __version__,
    }
    if guard_figures is not None:
        training["plausibility_guard"] = guard_figures
    return Mapper(
        descriptors=tuple(descriptors),
        input_mean=normalisation.input_mean,
        input_std=normalisation.input_std,
        output_mean=normalisation.output_mean,
        output_std=normalisation.output_std,
        weights=weights,
        metadata={**metadata, "training": training},
    )


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def _figures(
    mapper: Mapper,
    x: np.ndarray,
    y: np.ndarray,
    train_rows: np.ndarray,
    validation_rows: np.ndarray,
    history: dict[str, list[float]],
    wall: float,
) -> dict[str, Any]:
    """Training and evaluation figures, computed with the exported numpy mapper (what users will run)."""
    figures: dict[str, Any] = {
        "samples": len(x),
        "train_samples": len(train_rows),
        "validation_samples": len(validation_rows),
        "train_mse_per_epoch": [round(v, 6) for v in history["train_mse"]],
        "validation_mse_per_epoch": [round(v, 6) for v in history["validation_mse"]],
        "train_mse": _normalised_mse(mapper, x[train_rows], y[train_rows]),
        "validation_mse": None,
        "validation_coefficient_rmse": None,
        "validation_coefficient_rmse_per_component": None,
        "validation_baseline_rmse": None,
        "wall_s": round(wall, 3),
    }
    if len(validation_rows):
        predicted = mapper.evaluate(x[validation_rows])
        error = predicted - y[validation_rows]
        baseline = y[validation_rows] - mapper.output_mean
        figures.update(
            validation_mse=_normalised_mse(mapper, x[validation_rows], y[validation_rows]),
            validation_coefficient_rmse=float(np.sqrt(np.mean(error**2))),
            validation_coefficient_rmse_per_component=[float(v) for v in np.sqrt(np.mean(error**2, axis=0))],
            validation_baseline_rmse=float(np.sqrt(np.mean(baseline**2))),
        )
    return figures


def _normalised_mse(mapper: Mapper, x: np.ndarray, y: np.ndarray) -> float:
    """MSE in normalised target units (the training loss), with the model's bounds applied as in use."""
    predicted = mapper.evaluate(x)
    return float(np.mean(((predicted - y) / mapper.output_std) ** 2))


# ------------------------------------------------------------------------------------------- torch twin
def to_torch(mapper: Mapper) -> torch.nn.Module:
    """The mapper as a torch module (normalisation included, no clamping): for tests and fitting."""
    import torch

    class _TorchMapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("input_mean", torch.from_numpy(mapper.input_mean.copy()))
            self.register_buffer("input_std", torch.from_numpy(mapper.input_std.copy()))
            self.register_buffer("output_mean", torch.from_numpy(mapper.output_mean.copy()))
            self.register_buffer("output_std", torch.from_numpy(mapper.output_std.copy()))
            layers: list[torch.nn.Module] = []
            for weight, bias in mapper.weights:
                linear = torch.nn.Linear(*weight.shape)
                with torch.no_grad():
                    linear.weight.copy_(torch.from_numpy(weight.T.copy()))
                    linear.bias.copy_(torch.from_numpy(bias.copy()))
                layers += [linear, torch.nn.ReLU()]
            self.network = torch.nn.Sequential(*layers[:-1])

        def forward(self, values: torch.Tensor) -> torch.Tensor:
            hidden = (values - self.input_mean) / self.input_std
            return self.network(hidden) * self.output_std + self.output_mean

    return _TorchMapper().eval()


# ------------------------------------------------------------------------------------- from a dataset
@dataclass
class DatasetColumns:
    """Descriptor values read (or scored) from a dataset, with what produced them."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    units: tuple[str, ...]
    values: np.ndarray  # (N, d) float32
    coefficients: np.ndarray  # (N, n) float32
    settings: dict[str, Any]
    scorers: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)


def dataset_columns(
    folder: str | Path,
    names: Sequence[str],
    kinds: Sequence[str | None] | None = None,
    data: dict[str, np.ndarray] | None = None,
) -> DatasetColumns:
    """The values of descriptors ``names`` for every sample of a dataset folder.

    A name is a metric when the dataset measured it, an attribute when it is one of the dataset's shape
    settings (gender, age, ... of models with a source bank), a CLIP word when the dataset scored it; any
    other name is a new word, scored now from the dataset's cached image embeddings with the dataset's own
    CLIP model and prompt template (milliseconds per word; no rendering). ``kinds`` forces "word", "metric"
    or "attribute" per name (None: decide as above). ``data`` is the folder's loaded arrays when the caller
    has them.
    """
    store = DatasetFolder(folder)
    settings = store.read_manifest()["settings"]
    data = store.load() if data is None else data
    names = [_clean_name(name) for name in names]
    if not names:
        raise MapperError("Choose at least one descriptor to train a mapper on.")
    kinds = list(kinds) if kinds is not None else [None] * len(names)
    metric_settings = settings.get("metrics") or {}
    clip_settings = settings.get("clip") or {}
    attribute_settings = settings.get("attributes") or {}
    metric_names = list(metric_settings.get("names", []))
    attribute_names = list(attribute_settings.get("names", []))
    word_names = list(clip_settings.get("words", []))
    resolved = [
        _kind_of(name, kind, metric_names, attribute_names, store.folder)
        for name, kind in zip(names, kinds, strict=True)
    ]
    columns: list[np.ndarray | None] = []
    units: list[str] = []
    for name, kind in zip(names, resolved, strict=True):
        if kind == "metric":
            index = metric_names.index(name)
            columns.append(data["metrics"][:, index])
            units.append(str(metric_settings.get("units", ["?"] * len(metric_names))[index]))
        elif kind == "attribute":
            index = attribute_names.index(name)
            columns.append(data["attributes"][:, index])
            units.append(str(attribute_settings["units"][index]))
        else:
            columns.append(data["scores"][:, word_names.index(name)] if name in word_names else None)
            units.append(WORD_UNIT)
    new_words = [name for name, column in zip(names, columns, strict=True) if column is None]
    if new_words:
        scored = score_words(store.folder, settings, data, new_words)
        columns = [
            scored[name] if column is None else column for name, column in zip(names, columns, strict=True)
        ]
    return DatasetColumns(
        names=tuple(names),
        kinds=tuple(resolved),
        units=tuple(units),
        values=np.stack(columns, axis=1).astype(np.float32),
        coefficients=np.asarray(data["coefficients"], dtype=np.float32),
        settings=settings,
        scorers=_scorers(settings, resolved),
        dataset=dataset_identity(store.folder, data),
    )


def _clean_name(name: str) -> str:
    text = " ".join(str(name).split())
    if not text:
        raise MapperError(
            "A descriptor name is empty; give a word such as 'tall' or a metric such as 'height'."
        )
    return text


def _kind_of(
    name: str, kind: str | None, metric_names: list[str], attribute_names: list[str], folder: Path
) -> str:
    if kind is not None and kind not in DESCRIPTOR_KINDS:
        raise MapperError(
            f"Descriptor kind '{kind}' for '{name}': expected one of {', '.join(DESCRIPTOR_KINDS)}."
        )
    if kind == "metric" and name not in metric_names:
        known = ", ".join(metric_names) or "none (built without --scorer metric/both)"
        raise MapperError(f"Dataset {folder} has no measurement '{name}'; its measurements: {known}.")
    if kind == "attribute" and name not in attribute_names:
        known = ", ".join(attribute_names) or "none (its model has no source bank, or it has no measurements)"
        raise MapperError(f"Dataset {folder} has no attribute '{name}'; its attributes: {known}.")
    if kind is None:
        if name in metric_names:
            return "metric"
        return "attribute" if name in attribute_names else "word"
    return kind


def score_words(
    folder: Path, settings: dict[str, Any], data: dict[str, np.ndarray], words: Sequence[str]
) -> dict[str, np.ndarray]:
    """CLIP cosine scores (N,) per word from the dataset's cached embeddings, as the build would make them.

    The text goes through the dataset's CLIP model with its prompt template; the scores are averaged over the
    views exactly as :mod:`semantify_engine.dataset.builder` does, so a word scored now equals the same word
    scored during the build.
    """
    clip = settings.get("clip")
    if not clip or "embeddings" not in data:
        raise MapperError(
            f"Dataset {folder} has no CLIP image embeddings (built with --scorer metric), so the word(s) "
            f"{', '.join(repr(w) for w in words)} cannot be scored. Use one of its measurements "
            f"({', '.join((settings.get('metrics') or {}).get('names', [])) or 'none'}) or build a dataset "
            "with --scorer clip or both."
        )
    from ..scoring.clip import ClipSpec, average_view_scores, get_scorer, prompts

    device = ClipSpec.from_env().device  # the dataset fixes the model and weights; where to run is local
    scorer = get_scorer(ClipSpec(model=clip["model"], pretrained=clip["pretrained"], device=device))
    text = scorer.encode_texts(prompts(list(words), clip["template"]))
    embeddings = data["embeddings"]
    if embeddings.shape[-1] != text.shape[1]:
        raise MapperError(
            f"Dataset {folder} holds embeddings of size {embeddings.shape[-1]} but {scorer.spec.describe()} "
            f"gives {text.shape[1]}: the CLIP model is not the one the dataset was built with."
        )
    scores = average_view_scores(embeddings.astype(np.float32), text)
    return {word: scores[:, index].astype(np.float32) for index, word in enumerate(words)}


def _scorers(settings: dict[str, Any], kinds: Sequence[str]) -> dict[str, Any]:
    """What produced the descriptor values: CLIP (model, weights, template) and/or the metric definition."""
    scorers: dict[str, Any] = {}
    if "word" in kinds:
        clip = settings.get("clip") or {}
        scorers["clip"] = {
            "model": clip.get("model"),
            "pretrained": clip.get("pretrained"),
            "template": clip.get("template"),
            "score": "cosine, averaged over views",
            "views": [view.get("name") for view in settings.get("views", [])],
        }
    if "metric" in kinds:
        metrics = settings.get("metrics") or {}
        scorers["metric"] = {
            key: metrics.get(key) for key in ("scorer", "definition", "topology", "names", "units")
        }
    if "attribute" in kinds:
        scorers["attribute"] = dict(settings.get("attributes") or {})
    return scorers


def dataset_identity(folder: Path, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Where the mapper's data came from: the folder and a checksum of its samples (indices, coefficients)."""
    return {
        "folder": str(Path(folder).resolve()),
        "checksum": content_checksum([data["indices"], data["coefficients"]]),
        "samples": len(data["indices"]),
    }


def train_from_dataset(
    folder: str | Path,
    names: Sequence[str],
    *,
    kinds: Sequence[str | None] | None = None,
    model: LinearMorphableModel | None = None,
    model_info: dict[str, Any] | None = None,
    model_dir: str | None = None,
    settings: TrainingSettings | None = None,
    progress: Progress | None = None,
    data: dict[str, np.ndarray] | None = None,
    extra_metadata: dict[str, Any] | None = None,
) -> tuple[Mapper, dict[str, Any]]:
    """Train a mapper on descriptors ``names`` of a dataset folder, with full metadata.

    The model's identity (and coefficient bounds) comes from ``model``, else from ``model_info`` (a mapper's
    recorded identity, used by add-word), else from loading the model the dataset names; in every case it must
    be the dataset's model. With measurements or attributes among the descriptors, the model also measures
    bodies during training (the consistency term), and with a source bank it keeps every answer plausible;
    add-word loads it for that, and trains without the term, saying so in the figures' ``notes``, when it
    cannot. The figures say how well each measured slider hits its own value and what it reaches
    (:func:`metric_slider_errors`), and how plausible the mapper's bodies are (:func:`plausibility_figures`).
    """
    settings = settings or TrainingSettings()
    columns = dataset_columns(folder, names, kinds, data)
    extra_figures: dict[str, Any] = {}
    measured = any(kind in MEASURED_KINDS for kind in columns.kinds)
    from_bank = (columns.settings.get("sampling") or {}).get("scheme") in BANK_SCHEMES
    if model is None and model_info is None:
        model = _load_dataset_model(columns.settings["model"], model_dir)
    elif model is None and (measured or from_bank) and settings.consistency > 0:
        model, extra_figures = _model_to_measure(columns.settings["model"], model_dir)
    identity = _model_identity_for(columns, model, model_info, Path(folder))
    descriptors = descriptors_from_data(columns.names, columns.kinds, columns.units, columns.values)
    held = trusted_kinds(columns.settings)
    metadata = {
        **(extra_metadata or {}),
        "model": identity,
        "scorers": columns.scorers,
        "dataset": {**columns.dataset, "sampling": columns.settings.get("sampling")},
    }
    mapper, figures = train_mapper(
        columns.values,
        columns.coefficients,
        descriptors,
        **{**settings.to_json(), "hidden": settings.hidden},
        measure=None if model is None else metric_measure(model, columns, held),
        held_kinds=held,
        progress=progress,
        metadata=metadata,
        plausibility=kept_plausibility(model),
    )
    if model is not None and measured and kept_plausibility(model) is not None:
        mapper, narrowed = narrow_to_reach(mapper, model, held)
        if narrowed:
            extra_figures["narrowed_to_reach"] = narrowed
    if model is not None and measured:
        extra_figures["metric_slider_errors"] = metric_slider_errors(mapper, model)
    if model is not None and model.plausibility_measure is not None:
        from ..evaluation.plausibility import plausibility_figures

        extra_figures["plausibility"] = plausibility_figures(model, mapper, corners_limit=CORNERS_IN_FIGURES)
    if extra_figures:
        figures = {**figures, **extra_figures}
        mapper = replace(mapper, metadata={**mapper.metadata, "figures": figures})
    return mapper, figures


def _model_to_measure(recorded: dict[str, Any], model_dir: str | None) -> tuple[Any, dict[str, Any]]:
    """The dataset's model for measuring during training (add-word retrains a mapper with measurements),
    or None and a note saying why the measurement-consistency term is off for this run."""
    from ..errors import SemantifyError

    try:
        return _load_dataset_model(recorded, model_dir), {}
    except (SemantifyError, OSError) as error:
        note = f"measurement consistency off: model '{recorded.get('name')}' could not be loaded ({error})"
        return None, {"notes": [note]}


CORNERS_IN_FIGURES = 256
"""Box corners whose plausibility a trained mapper records (all of them up to 8 sliders, else a seeded
sample); ``semantify evaluate`` checks every corner up to its own limit."""


def kept_plausibility(model: LinearMorphableModel | None) -> Plausibility | None:
    """The plausibility training keeps: a model's with a source bank (whose population it knows); None for
    others, whose datasets are a coefficient box that a Gaussian prior would call implausible itself."""
    if model is None or model.bank is None:
        return None
    return model.plausibility_measure


def trusted_kinds(dataset_settings: dict[str, Any]) -> tuple[str, ...]:
    """The measured descriptor kinds whose reading of a body is better than the dataset's own labels: the
    ones the consistency term holds a slider to and the reach cut (:func:`narrow_to_reach`) judges by.

    Measurements always: the tape measures a body exactly. Attributes only when their labels are the
    regressor's own reading (samples not drawn from the bank); bank samples carry exact shape settings,
    and judging a slider by the regressor's reading imports its errors. On ``anny-body`` the regressor
    read anny's own bodies along the gender slider (height held at 1.71 m) as weight 0.54 → 0.60 where
    they were made at 0.567. Holding that reading flat, training bent the bodies until anny itself read
    the gender slider moving weight by 13.9 % of its range; judged by the tape alone, 4.6 % (anny's own
    bodies, the height held alike: 2.4 %). And the regressor's misses cut the proportions slider at 0.78,
    where anny read the uncut slider's bodies up to 0.97.
    """
    scheme = (dataset_settings.get("sampling") or {}).get("scheme")
    return ("metric",) if scheme in BANK_SCHEMES else MEASURED_KINDS


def metric_measure(
    model: LinearMorphableModel, columns: DatasetColumns, kinds: Sequence[str] = MEASURED_KINDS
) -> Measure | None:
    """The real values of the descriptors of ``kinds`` (metrics with the tape, attributes with the model's
    regressor) among ``columns``, in their order, or None when there are none."""
    from ..evaluation.fidelity import DescriptorReader
    from ..scoring.metrics import MetricScorer

    wanted = [(n, k) for n, k in zip(columns.names, columns.kinds, strict=True) if k in kinds]
    if not wanted:
        return None
    metric_names = [name for name, kind in wanted if kind == "metric"]
    scorer = MetricScorer.for_model(model).subset(metric_names) if metric_names else None
    reader = DescriptorReader(model, scorer)
    bounds = model.coefficient_bounds
    count = columns.coefficients.shape[1]

    def measure(coefficients: np.ndarray) -> np.ndarray:
        coefficients = np.asarray(coefficients, np.float32)
        if bounds is not None:  # as the mapper clamps its answers in use
            coefficients = np.clip(coefficients, bounds[:count, 0], bounds[:count, 1])
        return reader.read(coefficients, wanted)

    return measure


def _load_dataset_model(recorded: dict[str, Any], model_dir: str | None) -> LinearMorphableModel:
    """The model a dataset names, loaded the way the dataset build loaded it."""
    from ..models import load

    return load(recorded["spec"], model_dir)


def _model_identity_for(
    columns: DatasetColumns,
    model: LinearMorphableModel | None,
    model_info: dict[str, Any] | None,
    folder: Path,
) -> dict[str, Any]:
    recorded = columns.settings["model"]
    count = columns.coefficients.shape[1]
    identity = model_identity(model, count) if model is not None else dict(model_info or {})
    if identity.get("checksum") != recorded.get("checksum"):
        raise MapperError(
            f"Dataset {folder} was built for model '{recorded.get('name')}' ({recorded.get('vertex_count')} "
            f"vertices, checksum {recorded.get('checksum')}), not for '{identity.get('name')}' "
            f"({identity.get('vertex_count')} vertices, checksum {identity.get('checksum')}). Use a dataset "
            "of the mapper's model."
        )
    return identity


# ------------------------------------------------------------------------------------------- evaluation
REACH_STEPS = 41
"""Positions along a sweep at which :func:`narrow_to_reach` reads what a slider reaches."""
REACH_TOLERANCE = 0.04
"""A slider's end is cut while its body misses what it asks by more than this share of the slider's range
(22 mm on the bundled body's waist slider, 2.8 years on its age slider)."""


def narrow_to_reach(
    mapper: Mapper, model: LinearMorphableModel, kinds: Sequence[str] = MEASURED_KINDS
) -> tuple[Mapper, dict[str, Any]]:
    """Each measured slider of ``kinds`` (:func:`trusted_kinds`) cut to the positions whose bodies measure
    what they ask.

    Where a request has no plausible body the guard wins and the slider stops short: past its reach more
    slider adds nothing, or bends the body back and moves the other measurements (on the male body, a waist
    asked past 1.07 m shrank the chest by 5 cm). So each end of a slider whose body misses its request
    there (by more than :data:`REACH_TOLERANCE` of its range, the others at their defaults) moves in to
    the last position that does not: every position does what it says, and a typed value past the new end
    is clamped like any other. Returns the mapper and, per narrowed slider, its data range and its new range
    (for ``mapper info`` and the sidebar)."""
    from ..evaluation.fidelity import DescriptorReader, descriptor_fidelity
    from ..scoring.metrics import MetricScorer

    scorer = MetricScorer.for_model(model) if any(d.kind == "metric" for d in mapper.descriptors) else None
    fidelity = descriptor_fidelity(model, mapper, DescriptorReader(model, scorer), REACH_STEPS)
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


def metric_slider_errors(mapper: Mapper, model: LinearMorphableModel, steps: int = 21) -> dict[str, Any]:
    """How well each measured slider hits its own value, and what it reaches: the figures that say a height
    slider means metres and an age slider years.

    The sweep of :func:`semantify_engine.evaluation.fidelity.descriptor_fidelity` (each measurement or
    attribute slider over its range, the others at their defaults), kept to the headline numbers stored
    with the mapper.
    """
    from ..evaluation.fidelity import DescriptorReader, descriptor_fidelity
    from ..scoring.metrics import MetricScorer

    scorer = MetricScorer.for_model(model) if any(d.kind == "metric" for d in mapper.descriptors) else None
    fidelity = descriptor_fidelity(model, mapper, DescriptorReader(model, scorer), steps)
    keys = (
        "kind",
        "unit",
        "mean_abs_error",
        "max_abs_error",
        "mean_abs_error_achieved",
        "achieved_range",
        "max_cross_talk",
    )
    return {name: {key: row[key] for key in keys} | {"steps": steps} for name, row in fidelity.items()}
