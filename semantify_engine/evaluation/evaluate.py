"""``semantify evaluate``: every figure of a mapper, from its dataset, into a report folder.

Figures (see the sibling modules for definitions):

- coverage and overlap at θ (paper §5.1), and a Table-1 style sweep over d = 2, 5, 10, 15 and the chosen
  d: for each d, the best d descriptors in the selection's ranking get a mapper of their own;
- held-out error on the mapper's own validation rows: coefficients (RMSE) and vertices (mm);
- expressiveness: best slider fit of held-out shapes vs the same number of raw PCA sliders (mm);
- fidelity, achieved range and cross-talk of measurement and attribute sliders;
- plausibility: population percentiles at every slider's ends, the slider box's corners and random settings;
- semantic faithfulness for word sliders (re-render and re-score with the same CLIP), when CLIP can load,
  and how each word slider agrees with the model's attributes (does *muscular* raise muscle and leave
  weight alone?): a semantic check with known truth.

Without a dataset (a shipped mapper records none), the figures that need one (the sweep, held-out errors,
expressiveness) are skipped with a note; every other figure comes from the mapper and the model alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset.store import DatasetFolder
from ..errors import ClipWeightsError, SemantifyError
from ..mapper import Mapper, check_model, load_mapper
from ..models import load
from ..models.linear import LinearMorphableModel
from ..render.settings import RenderSettings
from ..render.views import View, parse_views
from .coverage import DEFAULT_THETA, coverage_and_overlap
from .expressiveness import expressiveness
from .fidelity import DescriptorReader, descriptor_fidelity, metric_fidelity
from .plausibility import plausibility_figures
from .report import render_corner_gallery, render_coverage_heatmaps, render_gallery, write_report

SWEEP_SIZES = (2, 5, 10, 15)
Say = Callable[[str], None]
log = logging.getLogger(__name__)


def evaluate_mapper(
    mapper_path: str | Path,
    out: str | Path,
    *,
    dataset: str | Path | None = None,
    theta: float = DEFAULT_THETA,
    sweep: bool = True,
    pictures: bool = True,
    semantic: bool = True,
    model_dir: str | None = None,
    say: Say | None = None,
) -> dict[str, Any]:
    """Evaluate the mapper at ``mapper_path``; write figures, pictures and ``report.md`` into ``out``.

    ``say`` hears what is being computed, step by step (the command line prints it); without it, it is
    logged.
    """
    say = say or log.info
    from ..atomic import ensure_writable_folder

    mapper = load_mapper(mapper_path)
    ensure_writable_folder(out)  # before minutes of sweeps, not after
    folder = Path(dataset) if dataset is not None else _recorded_dataset(mapper, Path(mapper_path))
    data: dict[str, np.ndarray] | None = None
    settings: dict[str, Any] = {}
    if folder is not None:
        store = DatasetFolder(folder)
        settings = store.read_manifest()["settings"]
        model = load(settings["model"]["spec"], model_dir)
        check_model(mapper, model)
        data = store.load()
    else:
        model = load(str(mapper.model_info.get("name")), model_dir)
        check_model(mapper, model)
    figures: dict[str, Any] = {
        "model": model.name,
        "descriptors": list(mapper.descriptor_names),
        "dataset": None if folder is None else str(folder),
        "training": mapper.metadata.get("figures", {}),
    }
    say("coverage and overlap ...")
    coverage = coverage_and_overlap(model, mapper, theta)
    figures["coverage"] = coverage.to_json()
    if data is not None and folder is not None:
        if sweep:
            say("Table-1 sweep: one mapper per descriptor count ...")
            figures["sweep"] = coverage_sweep(model, mapper, folder, data, theta)
        validation = _validation_rows(mapper, len(data["coefficients"]))
        figures["held_out"] = held_out_errors(model, mapper, folder, data, validation)
        say("expressiveness ...")
        figures["expressiveness"] = expressiveness(model, mapper, data["coefficients"][validation], limit=30)
    else:
        rebuild = mapper.metadata.get("dataset", {}).get("rebuild")
        how = f" (remake its samples with '{rebuild}')" if rebuild else ""
        figures["notes"] = [
            "no dataset: the Table-1 sweep, held-out errors and expressiveness need one; "
            f"pass the dataset DIR{how}"  # a report's note: no front end's spelling of the option
        ]
    kinds = {d.kind for d in mapper.descriptors}
    if "metric" in kinds:
        from ..scoring.metrics import MetricScorer

        figures["metric_fidelity"] = metric_fidelity(model, mapper, MetricScorer.for_model(model))
    if "attribute" in kinds and model.attributes is not None:
        reader = DescriptorReader(model)
        figures["attribute_fidelity"] = descriptor_fidelity(model, mapper, reader, kinds=("attribute",))
    say("plausibility at slider ends, box corners and random settings ...")
    figures["plausibility"] = plausibility_figures(model, mapper)
    if "word" in kinds and model.attributes is not None:
        from .semantic import word_attribute_agreement

        figures["word_attributes"] = word_attribute_agreement(model, mapper)
    views = _views_of(settings)
    render = RenderSettings(**settings["render"]) if settings.get("render") else RenderSettings()
    if semantic and settings.get("clip") and "word" in kinds:
        figures["semantic"] = _semantic(model, mapper, settings, views, render, say)
    images: dict[str, np.ndarray] = {}
    if pictures:
        say("rendering the slider gallery, box corners and coverage heatmaps with Blender ...")
        components = mapper.coefficient_count
        images["gallery"] = render_gallery(model, mapper, views, render)
        if model.plausibility_measure is not None:
            images["corners"] = render_corner_gallery(model, mapper, views, render)
        images["coverage"] = render_coverage_heatmaps(
            model, mapper, coverage.displacement, views, render, theta, components
        )
    report = write_report(Path(out), figures, images)
    say(f"wrote {report}")
    return figures


def coverage_sweep(
    model: LinearMorphableModel,
    mapper: Mapper,
    folder: Path,
    data: dict[str, np.ndarray],
    theta: float,
) -> list[dict[str, Any]]:
    """Coverage and overlap of mappers with the best d descriptors, for the paper's d and the chosen one."""
    from ..mapper.from_dataset import train_from_dataset
    from ..mapper.settings import TrainingSettings

    ranking = _candidate_ranking(mapper, folder, data)
    chosen = len(mapper.descriptors)
    sizes = sorted({d for d in (*SWEEP_SIZES, chosen) if d <= len(ranking)})
    training = TrainingSettings.from_json(mapper.metadata.get("training", {}))
    rows = []
    for size in sizes:
        names = mapper.descriptor_names if size == chosen else ranking[:size]
        if size == chosen:
            candidate = mapper
        else:
            candidate, _ = train_from_dataset(folder, names, model=model, settings=training, data=data)
        result = coverage_and_overlap(model, candidate, theta)
        rows.append(
            {"d": size, "descriptors": list(names), "coverage": result.coverage, "overlap": result.overlap}
        )
    return rows


def held_out_errors(
    model: LinearMorphableModel, mapper: Mapper, folder: Path, data: dict[str, np.ndarray], rows: np.ndarray
) -> dict[str, float]:
    """Mapper applied to the validation rows' own descriptor values, against their true coefficients."""
    from ..mapper.columns import dataset_columns

    columns = dataset_columns(folder, mapper.descriptor_names, [d.kind for d in mapper.descriptors], data)
    truth = columns.coefficients[rows]
    predicted = mapper.evaluate(columns.values[rows])
    vertex_error = (
        np.linalg.norm(model.vertices(predicted) - model.vertices(truth), axis=-1).mean(axis=1) * 1000
    )
    return {
        "samples": len(rows),
        "coefficient_rmse": float(np.sqrt(np.mean((predicted - truth) ** 2))),
        "vertex_error_mm_mean": float(vertex_error.mean()),
        "vertex_error_mm_p90": float(np.percentile(vertex_error, 90)),
    }


def _candidate_ranking(mapper: Mapper, folder: Path, data: dict[str, np.ndarray]) -> list[str]:
    """Descriptors in selection order: the mapper's own first, then the dataset's others by variance."""
    settings = DatasetFolder(folder).read_manifest()["settings"]
    words = list((settings.get("clip") or {}).get("words", []))
    metrics = list((settings.get("metrics") or {}).get("names", []))
    own = list(mapper.descriptor_names)
    kinds = {d.kind for d in mapper.descriptors}
    others: list[tuple[float, str]] = []
    if "word" in kinds and "scores" in data:
        others += [(float(np.var(data["scores"][:, i])), w) for i, w in enumerate(words) if w not in own]
    if "metric" in kinds and "metrics" in data:
        z = (data["metrics"] - data["metrics"].mean(0)) / np.maximum(data["metrics"].std(0), 1e-12)
        others += [(float(np.var(z[:, i])), m) for i, m in enumerate(metrics) if m not in own]
    attributes = list((settings.get("attributes") or {}).get("names", []))
    if "attribute" in kinds and "attributes" in data:
        z = (data["attributes"] - data["attributes"].mean(0)) / np.maximum(data["attributes"].std(0), 1e-12)
        others += [(float(np.var(z[:, i])), a) for i, a in enumerate(attributes) if a not in own]
    return own + [name for _, name in sorted(others, key=lambda item: -item[0])]


def _validation_rows(mapper: Mapper, count: int) -> np.ndarray:
    from ..mapper.settings import TrainingSettings
    from ..mapper.train import split_rows

    training = TrainingSettings.from_json(mapper.metadata.get("training", {}))
    _, validation = split_rows(count, training.validation_fraction, training.seed)
    if len(validation) == 0:
        raise SemantifyError("The mapper was trained without a validation split; nothing is held out.")
    return validation


def _recorded_dataset(mapper: Mapper, mapper_path: Path) -> Path | None:
    """The dataset the mapper records, or None when it records none (a shipped mapper: evaluation then
    samples its own bodies); one that is gone is refused by the mapper's own rule."""
    from ..mapper.provenance import trained_dataset

    if not mapper.metadata.get("dataset", {}).get("folder"):
        return None
    return trained_dataset(mapper, mapper_name=f"The mapper {mapper_path}")


def _views_of(settings: dict[str, Any]) -> tuple[View, ...]:
    views = settings.get("views") or []
    if not views:
        return parse_views("front,side")
    return tuple(View(v["azimuth"], v["elevation"], v["name"]) for v in views)


def _semantic(
    model: LinearMorphableModel,
    mapper: Mapper,
    settings: dict[str, Any],
    views: tuple[View, ...],
    render: RenderSettings,
    say: Say,
) -> dict[str, Any]:
    from ..scoring.clip import recorded_clip
    from .semantic import semantic_faithfulness

    clip = settings["clip"]
    try:
        scorer = recorded_clip(clip)
    except ClipWeightsError as error:
        say(f"semantic faithfulness skipped: {error}")
        return {"skipped": str(error)}
    say("semantic faithfulness: sweeping word sliders, rendering and re-scoring ...")
    return semantic_faithfulness(
        model, mapper, scorer, clip["template"], views, render, framing_components=mapper.coefficient_count
    )
