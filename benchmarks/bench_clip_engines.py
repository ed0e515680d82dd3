"""CLIP image encoding: torch fp32 against the ONNX Runtime engines, side by side, with their fidelity.

All engines encode the same renders of the bundled body (Workbench, 224², front and side views) at the
same batch size, in turns (best of ``--repeats``), with a randomly initialised open_clip ViT-B-32 (the same
compute as trained weights; none can be had here). Each engine's fidelity check is the one a dataset
build runs (:func:`semantify_engine.scoring.engines.measure_fidelity`, against torch fp32, with the body
vocabulary). The first export and quantisation are timed too; builds pay them once per weights.

The random weights are drawn with ``--seed`` (0), so runs compare. Their word scores are noise with near
ties (the 5th and 6th words of an image differ by about 0.0015 in cosine), so whether the top-5 words
survive int8 depends on the draw: ``--seed 1`` makes int8 fail its check (a trained model's scores are
far apart; the check exists for them).

    .venv/bin/python benchmarks/bench_clip_engines.py [--images 128] [--batch 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="semantify-bench-blender-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from semantify_engine.dataset.sampling import SamplingPlan, sample_coefficients
from semantify_engine.models import load
from semantify_engine.render.blender import BlenderRenderer
from semantify_engine.render.views import parse_views
from semantify_engine.scoring import engines
from semantify_engine.scoring.clip import ClipSpec, get_scorer, prompts, template_for
from semantify_engine.scoring.vocabulary import vocabulary_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="anny-body")
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="draws the random weights")
    arguments = parser.parse_args()

    model = load(arguments.model)
    plan = SamplingPlan.for_model(model, components=min(30, model.component_count))
    with BlenderRenderer(model, parse_views("front,side"), framing_components=plan.components) as renderer:
        images = renderer.render(sample_coefficients(model, plan, range(-(-arguments.images // 2))))
    images = images.reshape(-1, *images.shape[2:])[: arguments.images]
    batches = [images[start : start + arguments.batch] for start in range(0, len(images), arguments.batch)]

    import torch

    torch.manual_seed(arguments.seed)
    scorer = get_scorer(ClipSpec(model="ViT-B-32", pretrained=None))
    text = scorer.encode_texts(prompts(vocabulary_for(model.kind), template_for(model.kind)))
    loaded = {}
    for name in (engines.TORCH, engines.ONNX, engines.ONNX_INT8):
        started = time.perf_counter()
        loaded[name] = engines.load_engine(scorer, name, say=lambda message: None)
        if name != engines.TORCH:
            print(f"{name}: export (and quantisation) once, {time.perf_counter() - started:.1f} s")
    outputs: dict[str, np.ndarray] = {}
    seconds: dict[str, list[float]] = {name: [] for name in loaded}
    for engine in loaded.values():
        engine.encode(batches[0], arguments.batch)  # warm-up
    for _ in range(arguments.repeats):
        for name, engine in loaded.items():  # in turns, so that load on the machine hits all alike
            started = time.perf_counter()
            outputs[name] = np.concatenate([engine.encode(batch, arguments.batch) for batch in batches])
            seconds[name].append(time.perf_counter() - started)

    print(
        f"{len(images)} renders of {model.name} (224², front and side), ViT-B-32 with random weights "
        f"(seed {arguments.seed}), batch {arguments.batch}, best of {arguments.repeats} in turns, "
        f"{os.cpu_count()} CPUs"
    )
    print("| engine | ms / image | speed-up | min cosine to torch fp32 | top-5 words agree | check |")
    print("|---|---|---|---|---|---|")
    reference = min(seconds[engines.TORCH])
    for name in loaded:
        check = engines.measure_fidelity(name, outputs[engines.TORCH], outputs[name], text)
        best = min(seconds[name])
        print(
            f"| {name} | {best / len(images) * 1000:.1f} | {reference / best:.2f}× | {check.min_cosine:.5f} "
            f"| {check.top_k_agreement:.1%} | {'passes' if check.passed else 'fails'} |"
        )


if __name__ == "__main__":
    main()
