"""Training a mapper from a dataset folder: its columns, its model, and everything the mapper file records.

:func:`train_from_dataset` is what ``semantify mapper train``, ``semantify build``, add-word and the
evaluation's coverage sweep run. It reads the descriptor values (:mod:`.columns`), makes sure the model at
hand is the dataset's (:mod:`.provenance`), trains (:mod:`.train`) with the model measuring bodies where it
can (the consistency term, :mod:`.consistency`) and keeping them plausible where it has a source bank
(:mod:`.guard`), cuts measured sliders to what they reach (:mod:`.reach`), and records the figures that say
what each slider does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dataset.sampling import BANK_SCHEMES
from .columns import DatasetColumns, dataset_columns
from .consistency import MeasuredReader
from .mapper import MEASURED_KINDS, Mapper, model_identity
from .provenance import check_dataset_model
from .reach import narrow_to_reach
from .settings import TrainingSettings
from .train import Progress, descriptors_from_data, train_mapper

if TYPE_CHECKING:
    from ..models.linear import LinearMorphableModel
    from ..models.plausibility import Plausibility

CORNERS_IN_FIGURES = 256
"""Box corners whose plausibility a trained mapper records (all of them up to 8 sliders, else a seeded
sample); ``semantify evaluate`` checks every corner up to its own limit."""


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
    (:func:`..evaluation.fidelity.metric_slider_errors`), and how plausible the mapper's bodies are
    (:func:`..evaluation.plausibility.plausibility_figures`).
    """
    from ..evaluation.fidelity import metric_slider_errors

    settings = settings or TrainingSettings()
    columns = dataset_columns(folder, names, kinds, data)
    extra_figures: dict[str, Any] = {}
    measured = any(kind in MEASURED_KINDS for kind in columns.kinds)
    if model is None and model_info is None:
        model = _load_dataset_model(columns.settings["model"], model_dir)
    elif model is None and (measured or drawn_from_bank(columns.settings)) and settings.consistency > 0:
        model, extra_figures = _model_to_measure(columns.settings["model"], model_dir)
    identity = (
        model_identity(model, columns.coefficients.shape[1]) if model is not None else dict(model_info or {})
    )
    check_dataset_model(Path(folder), columns.settings, identity)
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
        settings,
        read_measured=None if model is None else measured_reader(model, columns, held),
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


def _load_dataset_model(recorded: dict[str, Any], model_dir: str | None) -> LinearMorphableModel:
    """The model a dataset names, loaded the way the dataset build loaded it."""
    from ..models import load

    return load(recorded["spec"], model_dir)


def kept_plausibility(model: LinearMorphableModel | None) -> Plausibility | None:
    """The plausibility training keeps: a model's with a source bank (whose population it knows); None for
    others, whose datasets are a coefficient box that a Gaussian prior would call implausible itself."""
    if model is None or model.bank is None:
        return None
    return model.plausibility_measure


def drawn_from_bank(dataset_settings: dict[str, Any]) -> bool:
    """Whether a dataset's samples are its model's source bodies (or their shape settings): then their
    attributes are exact labels, and the model's bank is what keeps the mapper's bodies plausible."""
    return (dataset_settings.get("sampling") or {}).get("scheme") in BANK_SCHEMES


def trusted_kinds(dataset_settings: dict[str, Any]) -> tuple[str, ...]:
    """The measured descriptor kinds whose reading of a body is better than the dataset's own labels: the
    ones the consistency term holds a slider to and the reach cut (:func:`.reach.narrow_to_reach`) judges by.

    Measurements always: the tape measures a body exactly. Attributes only when their labels are the
    regressor's own reading (samples not drawn from the bank); bank samples carry exact shape settings,
    and judging a slider by the regressor's reading imports its errors. On ``anny-body`` the regressor
    read anny's own bodies along the gender slider (height held at 1.71 m) as weight 0.54 → 0.60 where
    they were made at 0.567. Holding that reading flat, training bent the bodies until anny itself read
    the gender slider moving weight by 13.9 % of its range; judged by the tape alone, 4.6 % (anny's own
    bodies, the height held alike: 2.4 %). And the regressor's misses cut the proportions slider at 0.78,
    where anny read the uncut slider's bodies up to 0.97.
    """
    return ("metric",) if drawn_from_bank(dataset_settings) else MEASURED_KINDS


def measured_reader(
    model: LinearMorphableModel, columns: DatasetColumns, kinds: Sequence[str] = MEASURED_KINDS
) -> MeasuredReader | None:
    """The real values of the descriptors of ``kinds`` (measurements with the tape, attributes with the
    model's regressor) among ``columns``, in their order, or None when there are none."""
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

    def read_measured(coefficients: np.ndarray) -> np.ndarray:
        coefficients = np.asarray(coefficients, np.float32)
        if bounds is not None:  # as the mapper clamps its answers in use
            coefficients = np.clip(coefficients, bounds[:count, 0], bounds[:count, 1])
        return reader.read(coefficients, wanted)

    return read_measured
