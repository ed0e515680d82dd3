"""Training the mapper (torch): descriptor values → coefficients with the paper's MLP.

Architecture, loss and optimiser follow the reference implementation: Linear(d→800)–ReLU–Linear(800→500)–
ReLU–Linear(500→n), MSE, Adam with lr 1e-4, 50 epochs, an 80/20 train/validation split and seed 42
(:mod:`.settings` holds them all). Two things differ, both for accuracy:

- **Normalisation.** Inputs are z-scored (CLIP cosines live in a band ~0.05 wide, heights around 1.7 m,
  masses around 70 kg: raw, the first layer would see inputs of wildly different scale) and targets are
  z-scored per coefficient (bounded blendshape weights in [0, 1] and unit-variance PCA coefficients then
  weigh the same in the loss). Both normalisations are stored in the mapper file.
- **Batch size** (:data:`.settings.DEFAULT_BATCH_SIZE`). The reference's batch of 1500 on 3K samples makes
  2 Adam steps per epoch, 100 in all at lr 1e-4: far too few, the mapper underfits. Keeping lr and epochs, a
  smaller batch gives more steps for the same number of sample passes (the runs that chose it: see
  ``benchmarks/bench_mapper.py``).

This module is the training loop on arrays; reading them from a dataset folder is :mod:`.columns`, and the
whole run from a folder, with the model measuring bodies, is :mod:`.from_dataset`.

torch is imported inside the functions only, so that importing this module (and the add-on) stays cheap.
Training is deterministic for a seed: weights are initialised under ``torch.manual_seed`` in a forked RNG
(the caller's global RNG is left as it was), batches are shuffled with a private ``torch.Generator``, the
split is drawn with numpy from the same seed, and deterministic algorithms are requested while training.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from .consistency import REFRESH_EPOCHS, ConsistencyTerm, MeasuredReader
from .guard import fit_guard, merge
from .mapper import (
    DESCRIPTOR_KINDS,
    MEASURED_KINDS,
    Descriptor,
    Mapper,
    MapperError,
    coefficient_bounds_from,
)
from .settings import DEFAULT_LR, TrainingSettings

if TYPE_CHECKING:
    import torch

    from ..models.plausibility import Plausibility

PERCENTILES = (2.0, 98.0)
"""Slider range: the 2nd to 98th percentile of a descriptor's values in the data, so the ends of every
slider are values the mapper has seen often enough to have learned; the default is the median."""

Progress = Callable[[int, int, float, "float | None"], None]
"""``progress(epoch, epochs, train_mse, validation_mse)`` after each epoch (epoch counts from 1)."""


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
    settings: TrainingSettings | None = None,
    *,
    read_measured: MeasuredReader | None = None,
    progress: Progress | None = None,
    metadata: dict[str, Any] | None = None,
    plausibility: Plausibility | None = None,
    held_kinds: Sequence[str] = MEASURED_KINDS,
) -> tuple[Mapper, dict[str, Any]]:
    """Train the MLP on descriptor values ``inputs`` (N, d) → ``targets`` (N, n); return mapper and figures.

    ``settings`` (default: :class:`.settings.TrainingSettings`'s defaults) decide the run and are recorded
    with it. ``metadata`` (model identity, scorers, dataset) is stored in the mapper together with the
    training settings and the figures: per-epoch train / validation MSE (in normalised target units), the
    final ones, the validation RMSE in coefficient units (overall, per coefficient, and for predicting the
    mean, as a yardstick) and the wall time. With measured descriptors (measurements, attributes), a
    consistency weight > 0 and ``read_measured`` (coefficients → the measured descriptors' real values, in
    descriptor order), training also keeps those sliders true off the data (:mod:`.consistency`); the
    figures then say how well the measurement surrogate fits. ``held_kinds`` are the measured kinds the term
    holds (and ``read_measured`` returns): :func:`.from_dataset.trusted_kinds` of the dataset. With
    ``plausibility`` (a model with a source bank) and a consistency weight > 0, every answer is also kept
    inside the model's plausible region.
    """
    settings = settings or TrainingSettings()
    x, y = _checked_arrays(inputs, targets, descriptors)
    train_rows, validation_rows = split_rows(len(x), settings.validation_fraction, settings.seed)
    normalisation = _normalisation(x[train_rows], y[train_rows], descriptors)
    started = time.perf_counter()
    bounds = coefficient_bounds_from(metadata or {}, y.shape[1])
    term, surrogate_figures = _consistency_term(
        x,
        y,
        train_rows,
        validation_rows,
        descriptors,
        normalisation,
        settings,
        read_measured,
        bounds,
        held_kinds,
    )
    guard_figures = None
    with _deterministic_torch(settings.seed, settings.threads):
        network = _network(x.shape[1], settings.hidden, y.shape[1])
        history = _fit(network, x, y, train_rows, validation_rows, normalisation, settings, progress, term)
        layers = _layers(network)
        if not all(np.isfinite(weights).all() and np.isfinite(bias).all() for weights, bias in layers):
            raise MapperError(
                f"Training diverged at {{lr}} {settings.lr:g}: the network's weights became NaN or infinite. "
                f"Train again with a smaller learning rate (the default is {DEFAULT_LR:g}).",
                parameters=("lr",),
            )
        if plausibility is not None and settings.consistency > 0:
            guard, guard_figures = fit_guard(
                network,
                (x[train_rows] - normalisation.input_mean) / normalisation.input_std,
                _normalised_box(descriptors, normalisation),
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
    return replace(mapper, metadata={**mapper.metadata, "figures": figures}), figures


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


def _normalised_box(descriptors: Sequence[Descriptor], normalisation: _Normalisation) -> np.ndarray:
    """The slider box (d, 3): each descriptor's low, high and default, in normalised input units."""
    box = np.array([[d.low, d.high, d.default] for d in descriptors], np.float32)
    return (box - normalisation.input_mean[:, None]) / normalisation.input_std[:, None]


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
    read_measured: MeasuredReader | None,
    bounds: tuple[np.ndarray, np.ndarray] | None,
    held_kinds: Sequence[str],
) -> tuple[ConsistencyTerm | None, dict[str, Any] | None]:
    """The consistency term of this run and its surrogate's figures, or (None, None) when the weight is 0,
    no descriptor of ``held_kinds`` is among them or nothing can measure a body."""
    measured_columns = np.array(
        [i for i, d in enumerate(descriptors) if d.kind in held_kinds], dtype=np.int64
    )
    if settings.consistency <= 0 or len(measured_columns) == 0 or read_measured is None:
        return None, None
    groups = np.array([DESCRIPTOR_KINDS.index(d.kind) for d in descriptors], np.int64)
    xs = (x - normalisation.input_mean) / normalisation.input_std
    ys = (y - normalisation.output_mean) / normalisation.output_std
    box = _normalised_box(descriptors, normalisation)
    normalised_bounds = None
    if bounds is not None:
        normalised_bounds = (np.stack(bounds, axis=1) - normalisation.output_mean[:, None]) / (
            normalisation.output_std[:, None]
        )
    term = ConsistencyTerm(
        ys[train_rows],
        xs[train_rows][:, measured_columns],
        measured_columns,
        slider_low=box[:, 0],
        slider_high=box[:, 1],
        slider_default=box[:, 2],
        read_measured=read_measured,
        units=normalisation,
        weight=settings.consistency,
        seed=settings.seed,
        coefficient_bounds=normalised_bounds,
        column_groups=groups,
    )
    figures: dict[str, Any] = {"quadratic_components": term.surrogate.quadratic_components}
    if len(validation_rows):
        error = term.surrogate.predict(ys[validation_rows]) - xs[validation_rows][:, measured_columns]
        error_units = np.abs(error * normalisation.input_std[measured_columns]).mean(axis=0)
        names = [descriptors[column].name for column in measured_columns]
        figures["validation_mean_abs_error"] = dict(zip(names, map(float, error_units), strict=True))
    return term, figures


def _adam(parameters: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """Adam, fused where torch offers it on this device: the same update in one kernel per step, which
    more than halves the optimiser's share of a step at these layer sizes (see
    ``benchmarks/bench_mapper.py``)."""
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
