"""Dataset build throughput: rendering and CLIP encoding overlapped, against running them in turn.

Prints each stage's throughput alone, the sequential build (render a chunk, then encode it) and the
overlapped build (Blender renders chunk c+1 while a worker thread encodes chunk c), on the bundled body
with a randomly initialised ViT-B-32 (the same compute as a trained one; no weights can be had here).

    .venv/bin/python benchmarks/bench_dataset.py [--samples 96] [--chunk-size 16]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="anny-body")
    parser.add_argument("--samples", type=int, default=96)
    parser.add_argument("--chunk-size", type=int, default=16)
    arguments = parser.parse_args()

    model = load(arguments.model)
    spec = ClipSpec(model="ViT-B-32", pretrained=None)
    scorer = get_scorer(spec)  # loaded once, outside every timing
    request = DatasetRequest(
        model_spec=arguments.model,
        model=model,
        samples=arguments.samples,
        plan=SamplingPlan.for_model(model),
        views=parse_views("front,side"),
        clip=ClipScoring(spec=spec, template=template_for(model.kind), words=vocabulary_for(model.kind)),
        metrics=False,
        chunk_size=arguments.chunk_size,
    )
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
