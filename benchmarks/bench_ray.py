"""Dataset builds on Ray against the single-process build, side by side in one run.

Builds the same word-and-measurement dataset of the bundled body (random ViT-B-32 saved once to a weights
file, so every worker loads the same model) in turns: in this process (`semantify dataset build`), and on
a local Ray instance with 1 and 2 actor workers and with 2 workers in task-per-chunk mode. Each Ray run
includes starting Ray and loading Blender and CLIP in every worker, as a user's run does; the start-up is
also printed alone. Then Ray's own cost per chunk: the round trip of one chunk's arrays from an actor
that does no work, against making nothing at all.

    .venv/bin/python benchmarks/bench_ray.py [--samples 256] [--chunk-size 32]

On one machine Ray cannot beat the local build, which already keeps both cores busy (Blender renders
while CLIP encodes); the figures say what Ray costs, so that a cluster's gain can be judged.
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

import numpy as np

from semantify_engine.dataset.builder import ClipScoring, DatasetRequest, build_dataset
from semantify_engine.dataset.ray_build import RayOptions, build_dataset_on_ray, connected
from semantify_engine.dataset.sampling import SamplingPlan
from semantify_engine.dataset.store import DatasetFolder
from semantify_engine.models import load
from semantify_engine.render.views import parse_views
from semantify_engine.scoring.clip import ClipSpec, template_for
from semantify_engine.scoring.vocabulary import vocabulary_for


def random_weights(folder: Path, architecture: str) -> Path:
    """A random open_clip model saved as a local weights file: what every worker loads alike."""
    import torch

    from semantify_engine.compat.torchvision_ops import ensure_torchvision_importable

    ensure_torchvision_importable()
    import open_clip

    torch.manual_seed(0)
    path = folder / f"{architecture}-random.pt"
    torch.save(open_clip.create_model(architecture, pretrained=None).state_dict(), path)
    return path


def print_nothing(message: str) -> None:
    """The builds' notes (which CLIP engine) would interleave with the table."""


def timed(label: str, build) -> float:
    folder = Path(tempfile.mkdtemp(prefix="semantify-bench-ray-"))
    started = time.perf_counter()
    report = build(DatasetFolder(folder / "data"))
    seconds = time.perf_counter() - started
    assert report.built_chunks > 0
    shutil.rmtree(folder)
    print(f"  {label:<40} {seconds:7.1f} s", flush=True)
    return seconds


def ray_overhead_per_chunk(request: DatasetRequest, rounds: int = 40) -> tuple[float, float]:
    """ms per chunk for the round trip of one chunk's arrays through an idle actor, and for an empty call."""
    import ray as ray_module

    count, views, width = request.chunk_size, len(request.views), 512
    arrays = {
        "indices": np.arange(count, dtype=np.int64),
        "coefficients": np.zeros((count, request.model.component_count), np.float32),
        "embeddings": np.zeros((count, views, width), np.float16),
        "scores": np.zeros((count, len(request.clip.words) if request.clip else 0), np.float32),
        "metrics": np.zeros((count, 8), np.float32),
    }

    @ray_module.remote
    class Echo:
        def chunk(self, index: int) -> dict[str, np.ndarray]:
            return arrays

        def nothing(self, index: int) -> None:
            return None

    with connected(RayOptions(workers=1)) as ray:
        echo = Echo.remote()
        ray.get(echo.nothing.remote(0))
        timings = {}
        for method in ("chunk", "nothing"):
            started = time.perf_counter()
            for index in range(rounds):
                ray.get(getattr(echo, method).remote(index))
            timings[method] = (time.perf_counter() - started) / rounds * 1000
    return timings["chunk"], timings["nothing"]


def ray_start_seconds() -> float:
    started = time.perf_counter()
    with connected(RayOptions(workers=2)):
        pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=32)
    parser.add_argument("--clip", default="ViT-B-32")
    arguments = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="semantify-bench-ray-weights-"))
    try:
        model = load("anny-body")
        request = DatasetRequest(
            model_spec="anny-body",
            model=model,
            samples=arguments.samples,
            plan=SamplingPlan.for_model(model, seed=0),
            views=parse_views("front,side"),
            clip=ClipScoring(
                spec=ClipSpec(model=arguments.clip, pretrained=str(random_weights(scratch, arguments.clip))),
                template=template_for(model.kind),
                words=vocabulary_for(model.kind),
            ),
            metrics=True,
            chunk_size=arguments.chunk_size,
        )
        chunks = -(-arguments.samples // arguments.chunk_size)
        print(
            f"{arguments.samples} samples of {model.name} in {chunks} chunks of {arguments.chunk_size}, "
            f"both views, {len(request.clip.words)} words, random {arguments.clip}, {os.cpu_count()} CPUs",
            flush=True,
        )

        def on_ray(options: RayOptions):
            return lambda folder: build_dataset_on_ray(folder, request, options, say=print_nothing)

        runs = {
            "single process (semantify dataset build)": lambda folder: build_dataset(
                folder, request, say=print_nothing
            ),
            "Ray, 1 actor worker": on_ray(RayOptions(workers=1)),
            "Ray, 2 actor workers": on_ray(RayOptions(workers=2)),
            "Ray, 2 workers, a task per chunk": on_ray(RayOptions(workers=2, mode="tasks")),
        }
        seconds = {label: timed(label, build) for label, build in runs.items()}
        baseline = seconds["single process (semantify dataset build)"]
        start = ray_start_seconds()
        round_trip, empty = ray_overhead_per_chunk(request)
        print()
        print("| build | samples / s | vs single process |")
        print("| --- | --- | --- |")
        for label, value in seconds.items():
            print(f"| {label} | {arguments.samples / value:.2f} | {baseline / value:.2f}× |")
        print()
        print(f"Ray start and stop (local instance, no workers): {start:.1f} s")
        print(
            f"Ray per chunk: {round_trip:.2f} ms for one chunk's arrays from an idle actor "
            f"({empty:.2f} ms for an empty call)"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
