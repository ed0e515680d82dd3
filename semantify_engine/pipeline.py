"""``semantify build``: dataset → select descriptors → train → evaluate → export, in one resumable run.

::

    OUT/dataset/          the dataset (resumable chunk by chunk; see dataset.store)
    OUT/selection.json    the descriptors chosen, and why the others were not
    OUT/mapper.npz        the mapper the Blender add-on loads
    OUT/evaluation/       evaluation.json, report.md and its pictures

Each stage records what it was made from (the dataset's checksum, the options, the mapper's checksum);
running the same command again skips every stage whose output is already there for the same inputs, so
an interrupted build resumes where it stopped.

Word sliders need CLIP weights. Where none can be had, the build makes measurement sliders (height,
chest, waist, hips for bodies) and says plainly how to get word sliders.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_output
from .dataset.builder import DatasetRequest, build_dataset
from .dataset.ray_build import RayOptions
from .dataset.sampling import BANK_SCHEMES, default_scheme
from .dataset.store import DatasetFolder, chunk_indices, content_checksum
from .errors import SemantifyError
from .models.linear import LinearMorphableModel

log = logging.getLogger(__name__)

# The paper's ~3K renders when CLIP scores images; twice that for measurement-only builds, which render
# nothing and where every extra sample costs milliseconds. Measured on the bundled body (30 components,
# height/chest/waist/hips): 3000 samples leave the waist slider 20 mm off on average with 15 % cross-talk
# onto hips; 6000 bring them to 15 mm and 9 % (both before the consistency term, mapper/consistency.py).
CLIP_SAMPLES = 3000
MEASUREMENT_SAMPLES = 6000


def default_build_samples(with_clip: bool) -> int:
    """Samples a build makes when the user does not say: see :data:`CLIP_SAMPLES`."""
    return CLIP_SAMPLES if with_clip else MEASUREMENT_SAMPLES


# Measurement sliders per model kind when no CLIP weights are available (and the figures).
DEFAULT_METRIC_DESCRIPTORS = {
    "body": ("height", "chest", "waist", "hips"),
    "face-expression": ("mouth_opening", "eye_opening", "brow_height", "jaw_drop"),
    "head-shape": ("head_circumference", "face_height", "head_width"),
}
# A body whose dataset carries attributes (a model with a source bank) gets MakeHuman's shape settings, with
# the height measurement (metres) where MakeHuman's height setting would be. Not the girths as well: with
# nine sliders a sweep of muscle holds the chest, waist and hips requests at their medians, and anny fitted
# to those bodies read muscle 0.11 off on average (0.04 without the girths) and moved gender by 18 %. The
# girths ship as a mapper of their own (tools/build_default_mappers.py).
DEFAULT_ATTRIBUTE_SLIDERS = ("gender", "age", "muscle", "weight", "height", "proportions")
Say = Callable[[str], None]
ProgressFactory = Callable[[int, int], AbstractContextManager[Any]]
TrainingProgressFactory = Callable[[], AbstractContextManager[Any]]
"""Opens a display for the training stage, yielding ``progress(epoch, epochs, train_mse, validation_mse)``."""


def default_build_components(model: LinearMorphableModel, scheme: str | None = None) -> int:
    """How many components a build samples: all of them when drawn from the model's source bank (bank
    bodies are whole bodies), all of a body's (≤ 30) otherwise, all of an expression model's when they are
    sampled sparsely (its default scheme), the paper's 10 otherwise.

    Measured on the bundled body (3000 samples, height/chest/waist/hips sliders): sampling only the first
    10 components leaves waist and hips correlated at r = 0.984 and the waist slider misses by 52 mm on
    average; sampling all 30 brings r to 0.944 and the miss to 20 mm. An expression model's first 10
    ARKit blendshapes move only the jaw and mouth (the eye-opening slider spanned 0.16 mm, brows did not
    move at all); all 52 at once make faces no one pulls, a few at a time (``sparse``) make expressions.
    """
    scheme = scheme or default_scheme(model)
    if scheme in BANK_SCHEMES:
        return model.component_count
    if model.kind == "body":
        return min(model.component_count, 30)
    if scheme == "sparse":
        return model.component_count
    return min(model.component_count, 10)


@dataclass(frozen=True)
class BuildOptions:
    n_descriptors: int | None = None
    forced: tuple[str, ...] = ()
    evaluate: bool = True
    sweep: bool = True
    pictures: bool = True

    def __post_init__(self) -> None:
        if self.n_descriptors is not None and self.n_descriptors < 1:
            raise SemantifyError(
                f"{{descriptors}} must be at least 1, got {self.n_descriptors}.", parameters=("descriptors",)
            )


def run_build(
    out: Path,
    request: DatasetRequest,
    options: BuildOptions,
    progress: ProgressFactory | None = None,
    say: Say | None = None,
    training_progress: TrainingProgressFactory | None = None,
    ray: RayOptions | None = None,
) -> dict[str, Any]:
    """Run every stage that is not already done; return a summary (paths and headline figures).

    ``progress(total, already_done)`` opens a progress display for the dataset stage (a context manager
    yielding an object with ``update(n)``); ``training_progress()`` one for the training stage (yielding
    the per-epoch callback), so that a program following the build sees its longest stage move too.
    ``say`` hears each stage as it starts (``1/4 dataset: ...``; the command line prints them); without
    it they are logged.
    """
    say = say or log.info
    out.mkdir(parents=True, exist_ok=True)
    folder = DatasetFolder(out / "dataset")
    say(f"1/4 dataset: {request.samples} samples of {request.model.name} into {folder.folder}")
    done = 0
    if folder.exists():
        settings = folder.read_manifest()["settings"]
        done = sum(len(chunk_indices(settings, chunk)) for chunk in folder.present_chunks())
    with progress(request.samples, done) if progress else contextlib.nullcontext() as bar:
        update = bar.update if bar is not None else None
        if ray is None:
            report = build_dataset(folder, request, progress=update, say=say)
        else:  # the same folder, its chunks made on a Ray cluster
            from .dataset.ray_build import build_dataset_on_ray

            report = build_dataset_on_ray(folder, request, ray, progress=update, say=say)
    data = folder.load()
    dataset_checksum = content_checksum([data["indices"], data["coefficients"]])
    say(f"    {report.built_samples} samples built, {report.skipped_chunks} chunks already there")

    say("2/4 choosing descriptors")
    selection = _stage(
        out / "selection.json",
        {"dataset": dataset_checksum, "n_descriptors": options.n_descriptors, "forced": list(options.forced)},
        lambda: select_descriptors(folder, data, request.model, options),
    )
    names = selection["selected"]
    say(f"    {', '.join(names)}")

    say("3/4 training the mapper")
    mapper_path = out / "mapper.npz"
    with training_progress() if training_progress else contextlib.nullcontext() as on_epoch:
        mapper = _train_stage(mapper_path, folder, data, names, request.model, dataset_checksum, on_epoch)
    figures = mapper.metadata.get("figures", {})
    summary: dict[str, Any] = {
        "out": str(out),
        "mapper": str(mapper_path),
        "descriptors": names,
        "kind": selection["kind"],
        "validation_coefficient_rmse": figures.get("validation_coefficient_rmse"),
        "training_seconds": figures.get("wall_s"),
    }
    if options.evaluate:
        say("4/4 evaluating")
        from .evaluation.evaluate import evaluate_mapper

        evaluation = _stage(
            out / "evaluation" / "stage.json",
            {"mapper": mapper.checksum(), "sweep": options.sweep, "pictures": options.pictures},
            lambda: _evaluate_summary(
                evaluate_mapper(
                    mapper_path,
                    out / "evaluation",
                    dataset=folder.folder,
                    sweep=options.sweep,
                    pictures=options.pictures,
                    say=say,
                )
            ),
        )
        summary["evaluation"] = evaluation
        summary["report"] = str(out / "evaluation" / "report.md")
    return summary


def select_descriptors(
    folder: DatasetFolder, data: dict[str, np.ndarray], model: LinearMorphableModel, options: BuildOptions
) -> dict[str, Any]:
    """The paper's selection (:mod:`.selection.from_dataset`) when the dataset has CLIP scores; default
    measurements otherwise."""
    from .selection.from_dataset import has_word_scores, select_words

    settings = folder.read_manifest()["settings"]
    if has_word_scores(settings, data):
        return select_words(folder, data, options.n_descriptors, options.forced)
    metric_names = list((settings.get("metrics") or {}).get("names", []))
    attribute_names = list((settings.get("attributes") or {}).get("names", []))
    spread = np.ptp(data["metrics"], axis=0) if "metrics" in data else np.zeros(len(metric_names))
    still = {name for name, value in zip(metric_names, spread, strict=True) if value <= 1e-6}
    if "attributes" in data:
        spread = np.ptp(data["attributes"], axis=0)
        still |= {name for name, value in zip(attribute_names, spread, strict=True) if value <= 1e-6}
    measurable = [*metric_names, *attribute_names]
    wanted = DEFAULT_METRIC_DESCRIPTORS.get(model.kind, ())
    if model.kind == "body" and attribute_names:
        wanted = DEFAULT_ATTRIBUTE_SLIDERS
    defaults = [name for name in wanted if name in measurable and name not in still]
    chosen = list(dict.fromkeys([*options.forced, *defaults]))
    if options.n_descriptors is not None:
        extra = [name for name in measurable if name not in chosen]
        chosen = (chosen + extra)[: options.n_descriptors]
    unknown = [name for name in chosen if name not in measurable]
    if unknown or not chosen:
        raise SemantifyError(
            f"No word sliders without CLIP weights, and model '{model.name}' has no measurement sliders "
            f"{'named ' + ', '.join(unknown) if unknown else 'by default'} (its measurements: "
            f"{', '.join(metric_names) or 'none'}). Provide CLIP weights ({{pretrained}} FILE or "
            "SEMANTIFY_CLIP_PRETRAINED) to build word sliders.",
            parameters=("pretrained",),
        )
    notes = {name: "does not vary in this dataset" for name in sorted(still)}
    kind = "measurements and attributes" if set(chosen) & set(attribute_names) else "measurements"
    return {"kind": kind, "selected": chosen, "filtered": notes}


def _train_stage(
    path: Path,
    folder: DatasetFolder,
    data: dict[str, np.ndarray],
    names: Sequence[str],
    model: LinearMorphableModel,
    dataset_checksum: str,
    on_epoch: Any = None,
) -> Any:
    from .mapper import load_mapper, save_mapper
    from .mapper.from_dataset import train_from_dataset

    if path.is_file():
        existing = load_mapper(path)
        recorded = existing.metadata.get("dataset", {}).get("checksum")
        if list(existing.descriptor_names) == list(names) and recorded == dataset_checksum:
            return existing
    mapper, _ = train_from_dataset(folder.folder, names, model=model, data=data, progress=on_epoch)
    save_mapper(mapper, path)
    return mapper


def _stage(path: Path, inputs: dict[str, Any], produce: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``produce`` unless ``path`` already holds its result for the same ``inputs``."""
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError):
            stored = {}
        if stored.get("inputs") == inputs:
            return stored["result"]
    result = produce()
    with atomic_output(path, "w") as stream:
        json.dump({"inputs": inputs, "result": result}, stream, indent=2, sort_keys=True)
    return result


def _evaluate_summary(figures: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of an evaluation (the full figures are in evaluation.json)."""
    summary: dict[str, Any] = {
        "coverage": figures["coverage"]["coverage"],
        "overlap": figures["coverage"]["overlap"],
        "held_out_vertex_error_mm": figures["held_out"]["vertex_error_mm_mean"],
    }
    fidelity = figures.get("metric_fidelity")
    if fidelity:
        summary["metric_mean_abs_error"] = {name: row["mean_abs_error"] for name, row in fidelity.items()}
        summary["metric_max_cross_talk"] = {name: row["max_cross_talk"] for name, row in fidelity.items()}
    return summary
