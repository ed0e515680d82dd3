"""Dataset build throughput: rendering and CLIP encoding overlapped, against running them in turn.

Prints each stage's throughput alone, the sequential build (render a chunk, then encode it) and the
overlapped build (Blender renders chunk c+1 while a worker thread encodes chunk c), on the bundled body
with a randomly initialised ViT-B-32 (the same compute as a trained one; no weights can be had here).

    .venv/bin/python benchmarks/bench_dataset.py [--samples 96] [--chunk-size 16]

``--engines`` instead builds the same word dataset end to end (the code ``semantify dataset build`` runs:
render, fidelity check, CLIP, scores, chunk files; default chunks of 64) with ``--clip-engine torch``
(fp32, the path before there was a choice) and ``auto``, in turns, and prints the per-sample wall time.
``auto`` is timed twice: with its one-time ONNX export and quantisation, and with them cached. The random
weights are drawn with ``--seed`` so that every build in the run scores with the same model.

    .venv/bin/python benchmarks/bench_dataset.py --engines --samples 600
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="semantify-bench-blender-"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from semantify_engine.dataset.builder import ClipScoring, DatasetRequest, build_dataset
from semantify_engine.dataset.sampling import SamplingPlan, sample_coefficients
from semantify_engine.dataset.store import DatasetFolder
from semantify_engine.models import load
from semantify_engine.render.blender import BlenderRenderer
from semantify_engine.render.views import parse_views
from semantify_engine.scoring.clip import ClipSpec, get_scorer, template_for
from semantify_engine.scoring.vocabulary import vocabulary_for


def compare_engines(request: DatasetRequest) -> None:
    """torch against auto, end to end on the same request; the first auto build pays the export."""
    from dataclasses import replace

    assert request.clip is not None
    runs = [("torch", "torch"), ("auto, first (export + quantise)", "auto"), ("torch", "torch")]
    runs.append(("auto, export cached", "auto"))
    timings: dict[str, list[float]] = {}
    for label, engine in runs:
        folder = Path(tempfile.mkdtemp(prefix="semantify-bench-dataset-"))
        engine_request = replace(request, clip=replace(request.clip, engine=engine))
        started = time.perf_counter()
        report = build_dataset(DatasetFolder(folder / "data"), engine_request, say=lambda message: None)
        timings.setdefault(label, []).append(time.perf_counter() - started)
        assert report.clip_engine is not None
        print(f"{label:<32}: {report.clip_engine.describe()}", flush=True)
        shutil.rmtree(folder)
    n = request.samples
    baseline = min(timings["torch"])
    print(f"model {request.model.name}, {n} samples × 2 views at 224², chunks of {request.chunk_size}, words")
    print("| path | s | ms / sample | speed-up |")
    print("|---|---|---|---|")
    for label, seconds in timings.items():
        best = min(seconds)
        print(f"| {label} | {best:.1f} | {best / n * 1000:.1f} | {baseline / best:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="anny-body")
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--chunk-size", type=int)
    parser.add_argument("--engines", action="store_true", help="torch against auto, end to end")
    parser.add_argument("--seed", type=int, default=0, help="draws the random weights")
    arguments = parser.parse_args()
    if arguments.chunk_size is None:
        arguments.chunk_size = 64 if arguments.engines else 16

    model = load(arguments.model)
    spec = ClipSpec(model="ViT-B-32", pretrained=None)
    import torch

    torch.manual_seed(arguments.seed)
    scorer = get_scorer(spec)  # loaded once, outside every timing (a command pays it alike on every path)
    request = DatasetRequest(
        model_spec=arguments.model,
        model=model,
        samples=arguments.samples,
        plan=SamplingPlan.for_model(model),
        views=parse_views("front,side"),
        clip=ClipScoring(
            spec=spec, template=template_for(model.kind), words=vocabulary_for(model.kind), engine="torch"
        ),
        metrics=False,
        chunk_size=arguments.chunk_size,
    )
    if arguments.engines:
        compare_engines(request)
        return
    coefficients = sample_coefficients(model, request.plan, range(arguments.samples))
    with BlenderRenderer(model, request.views, request.render, framing_components=10) as renderer:
        renderer.render(coefficients[:4])  # warm-up
        started = time.perf_counter()
        images = renderer.render(coefficients)
        render_seconds = time.perf_counter() - started
    flat = images.reshape(-1, *images.shape[2:])
    scorer.encode_images(flat[:32])  # warm-up
    started = time.perf_counter()
    scorer.encode_images(flat)
    encode_seconds = time.perf_counter() - started

    timings = {}
    for overlap in (False, True, False, True):
        folder = Path(tempfile.mkdtemp(prefix="semantify-bench-dataset-"))
        started = time.perf_counter()
        build_dataset(DatasetFolder(folder / "data"), request, overlap=overlap)
        timings.setdefault(overlap, []).append(time.perf_counter() - started)
        shutil.rmtree(folder)
    sequential, overlapped = min(timings[False]), min(timings[True])
    n = arguments.samples
    print(f"model {model.name}, {n} samples × 2 views at 224², chunks of {arguments.chunk_size}")
    print("CLIP: ViT-B-32 with random weights (same compute as trained ones)")
    for stage, seconds in (("render alone", render_seconds), ("encode alone", encode_seconds)):
        print(f"{stage:<15}: {n / seconds:6.1f} samples/s ({seconds / n * 1000:6.1f} ms/sample)")
    bound = (render_seconds + encode_seconds) / max(render_seconds, encode_seconds)
    print(f"ideal overlap on free cores: {bound:.2f}x over sequential")
    for stage, seconds in (("sequential", sequential), ("overlapped", overlapped)):
        print(f"{stage:<15}: {n / seconds:6.1f} samples/s ({seconds:.1f} s, best of 2)")
    print(f"speed-up overlapped / sequential: {sequential / overlapped:.2f}x")


if __name__ == "__main__":
    main()
