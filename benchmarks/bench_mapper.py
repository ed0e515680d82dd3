"""Mapper: training time, add-word time and slider latency against their goals, plus accuracy figures.

1. Training, 3000 samples, default settings (goal ≤ 60 s on 2 cores): on a real metric dataset of the
   bundled body (built here without rendering if not given: ~30 s) with its measurements as descriptors, and
   on synthetic inputs of the realistic shape d = 8 → n = 10. For the real dataset it also prints how well the
   metric sliders hit their own values and how much each moves the others (each slider swept over its range
   with the others at their defaults), and on held-out samples with all sliders set from a real body; with
   and without the measurement-consistency term, side by side.
2. add-word on a 3000-sample dataset with cached embeddings (goal ≤ 15 s, no rendering): a synthetic
   dataset folder with random float16 embeddings of size 512 and a random ViT-B-32 text tower, cold (the CLIP
   model is loaded inside the timing, as in a fresh ``semantify mapper add-word`` process).
3. Slider latency: one slider vector through the numpy mapper vs the same network in torch (p50 / p95).

    .venv/bin/python benchmarks/bench_mapper.py [--dataset DIR] [--batch-sizes 1500,256,128,64,32,16]

Recorded runs: the figures that chose the training defaults (``semantify_engine/mapper/settings.py``).

Batch size (``--batch-sizes 1500,256,128,64,32,16`` on a 3000-sample metric dataset of the bundled body, 2
shared cores at load ~1, one torch thread). Validation MSE is in normalised units (always predicting the
mean scores 1); held-out: the validation bodies mapped from their own measurements and measured again.

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
0.418). 32 is the largest batch within 2% of the best validation MSE for both.

Consistency weight (``--dataset`` of 6000 samples of the bundled body, one run, both ways; sweep MAE mm /
max cross-talk on the other measurements):

======  =======  ============  ============  =============  =============  =======
weight  train s  height        chest         waist          hips           val MSE
======  =======  ============  ============  =============  =============  =======
0       13.9     1.9 / 1.0 %   4.6 / 2.6 %   12.7 / 11.2 %  13.6 / 4.0 %   0.8732
1       37.4     0.9 / 0.8 %   0.3 / 0.9 %   13.8 / 5.6 %   4.8 / 2.9 %    0.8727
======  =======  ============  ============  =============  =============  =======

Bodies set from held-out bodies' measurements measure within 1.8 / 2.0 / 3.2 / 2.6 mm of them with the term
(2.4 / 4.3 / 4.9 / 4.4 without). Over 4 runs (2 datasets × 2 training seeds) the waist→hips cross-talk was
3.9–5.6 %. Weights 2 and 3 were less stable (up to 21.8 % with uniform anchors): the network overshoots
between two real measurements.

Measured outside this script: torch threads on 2 busy cores, 13-16 s for 50 epochs with one thread, 85-280 s
with two (two OpenMP threads collapse when another process holds a core); fused Adam, 93 vs 374 ms per
epoch at batch 64.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from semantify_engine.dataset.store import DatasetFolder
from semantify_engine.evaluation.fidelity import metric_slider_errors
from semantify_engine.mapper import load_mapper, save_mapper
from semantify_engine.mapper.from_dataset import train_from_dataset
from semantify_engine.mapper.settings import TrainingSettings
from semantify_engine.mapper.train import descriptors_from_data, split_rows, to_torch, train_mapper
from semantify_engine.models import load

TRAIN_GOAL_S = 60.0
ADD_WORD_GOAL_S = 15.0
SAMPLES = 3000
METRIC_DESCRIPTORS = ("height", "chest", "waist", "hips")


# ------------------------------------------------------------------------------------------- datasets
def metric_dataset(folder: Path | None, model_name: str) -> Path:
    """A 3000-sample metric dataset of ``model_name`` (measured meshes, no rendering), built if needed, with
    the components ``semantify build`` samples (all 30 of a body)."""
    from semantify_engine.dataset.builder import DatasetRequest, build_dataset
    from semantify_engine.dataset.sampling import SamplingPlan
    from semantify_engine.pipeline import default_build_components
    from semantify_engine.render.views import parse_views

    if folder is not None and DatasetFolder(folder).exists():
        return folder  # used as it is, whatever version of the measurements built it
    folder = folder or Path(tempfile.mkdtemp(prefix="semantify-bench-metric-")) / "data"
    model = load(model_name)
    request = DatasetRequest(
        model_spec=model_name,
        model=model,
        samples=SAMPLES,
        plan=SamplingPlan.for_model(model, components=default_build_components(model)),
        views=parse_views("front,side"),
        metrics=True,
    )
    started = time.perf_counter()
    report = build_dataset(DatasetFolder(folder), request)
    elapsed = time.perf_counter() - started
    print(f"built metric dataset {folder}: {report.built_samples} samples in {elapsed:.1f} s")
    return folder


def clip_dataset(folder: Path, model_name: str, words: list[str], dim: int = 512) -> Path:
    """A dataset folder with cached CLIP embeddings (random) for a random ViT-B-32: add-word's input."""
    from semantify_engine.dataset.sampling import SamplingPlan
    from semantify_engine.scoring.clip import average_view_scores, l2_normalize

    model = load(model_name)
    chunk_size = 64
    settings = {
        "model": {
            "spec": model_name,
            "name": model.name,
            "kind": model.kind,
            "checksum": model.checksum(),
            "vertex_count": model.vertex_count,
        },
        "samples": SAMPLES,
        "chunk_size": chunk_size,
        "sampling": SamplingPlan.for_model(model).to_json(),
        "views": [
            {"name": "front", "azimuth": 0.0, "elevation": 0.0},
            {"name": "side", "azimuth": 90.0, "elevation": 0.0},
        ],
        "render": None,
        "clip": {
            "model": "ViT-B-32",
            "pretrained": None,
            "template": "a photo of a {} person",
            "words": words,
        },
        "metrics": None,
    }
    store = DatasetFolder(folder)
    store.create_or_check(settings)
    rng = np.random.default_rng(0)
    text = l2_normalize(rng.normal(size=(len(words), dim)))
    for chunk, start in enumerate(range(0, SAMPLES, chunk_size)):
        count = min(chunk_size, SAMPLES - start)
        embeddings = l2_normalize(rng.normal(size=(count, 2, dim))).astype(np.float16)
        store.write_chunk(
            chunk,
            {
                "indices": np.arange(start, start + count, dtype=np.int64),
                "coefficients": rng.uniform(-2, 2, (count, 10)).astype(np.float32),
                "embeddings": embeddings,
                "scores": average_view_scores(embeddings.astype(np.float32), text).astype(np.float32),
            },
        )
    return folder


# ---------------------------------------------------------------------------------------- 1. training
def bench_training_synthetic(batch_size: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(SAMPLES, 8)).astype(np.float32)
    y = np.tanh(x @ rng.normal(size=(8, 10))).astype(np.float32)
    names = [f"d{i}" for i in range(8)]
    found = descriptors_from_data(names, ["word"] * 8, ["cosine"] * 8, x)
    _, figures = train_mapper(x, y, found, TrainingSettings(batch_size=batch_size))
    print(
        f"training, synthetic d=8 → n=10, {SAMPLES} samples, batch {batch_size}: {figures['wall_s']:.1f} s "
        f"({figures['wall_s'] / TRAIN_GOAL_S:.2f} of the {TRAIN_GOAL_S:.0f} s goal)"
    )


def bench_training_metric(folder: Path, model_name: str, batch_sizes: list[int], names: list[str]) -> None:
    """Default settings, then without the measurement-consistency term (same run, side by side), then the
    other batch sizes asked for."""
    from semantify_engine.scoring.metrics import MetricScorer

    model = load(model_name)
    scorer = MetricScorer.for_model(model)
    data = DatasetFolder(folder).load()
    defaults = TrainingSettings()
    runs = [defaults, replace(defaults, consistency=0.0)]
    runs += [replace(defaults, batch_size=batch) for batch in batch_sizes if batch != defaults.batch_size]
    print(
        f"\ntraining on {folder} ({model_name}, {len(data['coefficients'])} samples, descriptors "
        f"{', '.join(names)}); sweep: each slider over its range, the others at their defaults"
    )
    print(
        f"{'batch':>6} {'consist':>7} {'train s':>8} {'goal':>5} {'val mse':>8}  "
        "sweep MAE mm / max cross-talk %          held-out bodies MAE (mm)"
    )
    for settings in runs:
        mapper, figures = train_from_dataset(folder, names, model=model, settings=settings, data=data)
        sweep = metric_slider_errors(mapper, model)
        held_out = _held_out_errors(mapper, model, scorer, data)
        print(
            f"{settings.batch_size:>6} {settings.consistency:>7g} {figures['wall_s']:>8.1f} "
            f"{figures['wall_s'] / TRAIN_GOAL_S:>5.2f} {figures['validation_mse']:>8.4f}  "
            + " ".join(
                f"{name}={error['mean_abs_error'] * 1000:4.1f}/{error['max_cross_talk'] * 100:4.1f}"
                for name, error in sweep.items()
            )
            + "  "
            + " ".join(f"{name}={error:4.1f}" for name, error in held_out.items())
        )


def _held_out_errors(mapper, model, scorer, data) -> dict[str, float]:
    """Sliders set to the measurements of held-out bodies: does the mapped body measure the same? (mm)"""
    _, rows = split_rows(len(data["coefficients"]), 0.2, mapper.metadata["training"]["seed"])
    columns = [scorer.names.index(name) for name in mapper.descriptor_names]
    requested = data["metrics"][rows][:, columns]
    measured = scorer.measure(model.vertices(mapper.evaluate(requested)))[:, columns]
    errors = np.abs(measured - requested).mean(axis=0) * 1000
    return dict(zip(mapper.descriptor_names, (float(e) for e in errors), strict=True))


# ---------------------------------------------------------------------------------------- 2. add-word
def bench_add_word(model_name: str) -> None:
    from semantify_engine.mapper.add_word import add_word
    from semantify_engine.scoring.clip import ClipSpec, clear_scorers, get_scorer

    words = ["fat", "thin", "tall", "short", "muscular", "broad", "slim", "curvy"]
    with tempfile.TemporaryDirectory(prefix="semantify-bench-addword-") as temporary:
        folder = clip_dataset(Path(temporary) / "data", model_name, words)
        mapper, _ = train_from_dataset(folder, words, model=load(model_name))
        path = save_mapper(mapper, Path(temporary) / "mapper.npz")
        clear_scorers()
        started = time.perf_counter()
        _, grown, figures = add_word(path, None, "broad shoulders")
        total = time.perf_counter() - started
        clear_scorers()
        started = time.perf_counter()
        scorer = get_scorer(ClipSpec(model="ViT-B-32", pretrained=None))
        loading = time.perf_counter() - started
        started = time.perf_counter()
        scorer.encode_texts(["a photo of a broad shoulders person"])
        encoding = time.perf_counter() - started
        started = time.perf_counter()
        DatasetFolder(folder).load()
        reading = time.perf_counter() - started
        assert load_mapper(path).descriptor_names[-1] == "broad shoulders" == grown.descriptor_names[-1]
    print(
        f"\nadd-word, {SAMPLES} samples with cached embeddings, {len(words)} → {len(words) + 1} descriptors: "
        f"{total:.1f} s ({total / ADD_WORD_GOAL_S:.2f} of the {ADD_WORD_GOAL_S:.0f} s goal); of which CLIP "
        f"load {loading:.1f} s, text encoding {encoding * 1000:.0f} ms, dataset read {reading * 1000:.0f} "
        f"ms, training {figures['wall_s']:.1f} s"
    )


# ------------------------------------------------------------------------------------------ 3. latency
def bench_latency() -> None:
    import torch

    rng = np.random.default_rng(2)
    x = rng.normal(size=(SAMPLES, 8)).astype(np.float32)
    y = rng.normal(size=(SAMPLES, 10)).astype(np.float32)
    found = descriptors_from_data([f"d{i}" for i in range(8)], ["word"] * 8, ["cosine"] * 8, x)
    mapper, _ = train_mapper(x, y, found, TrainingSettings(epochs=1))
    network = to_torch(mapper)
    vectors = rng.uniform(mapper.lows, mapper.highs, size=(2000, 8)).astype(np.float32)
    tensors = [torch.from_numpy(v[None]) for v in vectors]

    def numpy_call(index: int) -> None:
        mapper.coefficients(vectors[index])

    def torch_call(index: int) -> None:
        with torch.inference_mode():
            network(tensors[index])

    numpy_times, torch_times = _timings(numpy_call, len(vectors)), _timings(torch_call, len(vectors))
    n50, n95 = np.percentile(numpy_times, [50, 95])
    t50, t95 = np.percentile(torch_times, [50, 95])
    print(
        f"\nslider latency, one vector d=8 → n=10 (800, 500 hidden): numpy p50 {n50:.0f} µs / "
        f"p95 {n95:.0f} µs (input checks and clamping included); torch p50 {t50:.0f} µs / p95 {t95:.0f} µs; "
        f"numpy is {t50 / n50:.1f}× faster at p50"
    )


def _timings(call, count: int) -> np.ndarray:
    for index in range(100):
        call(index)
    times = np.empty(count)
    for index in range(count):
        started = time.perf_counter()
        call(index)
        times[index] = (time.perf_counter() - started) * 1e6
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, help="metric dataset folder (built here if absent)")
    parser.add_argument("--model", default="anny-body", help="bundled model (anny-body)")
    parser.add_argument(
        "--batch-sizes",
        default="",
        help="also train the metric dataset at these batch sizes, e.g. 1500,64,32",
    )
    parser.add_argument(
        "--descriptors", default=",".join(METRIC_DESCRIPTORS), help="metric descriptors to train on"
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to skip: train, metric, add-word, latency"
    )
    arguments = parser.parse_args()
    skip = set(filter(None, arguments.skip.split(",")))
    if "train" not in skip:
        bench_training_synthetic(TrainingSettings().batch_size)
    if "metric" not in skip:
        folder = metric_dataset(arguments.dataset, arguments.model)
        batches = [int(b) for b in arguments.batch_sizes.split(",") if b.strip()]
        names = [name.strip() for name in arguments.descriptors.split(",") if name.strip()]
        bench_training_metric(folder, arguments.model, list(dict.fromkeys(batches)), names)
    if "add-word" not in skip:
        bench_add_word(arguments.model)
    if "latency" not in skip:
        bench_latency()


if __name__ == "__main__":
    main()
