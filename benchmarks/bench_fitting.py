"""Fitting latency, warm, against the issue's goals: photo → shape ≤ 0.5 s and text → shape ≤ 0.3 s (2 cores).

Setup (not timed): a random ViT-B-32 (``ClipSpec(model="ViT-B-32", pretrained=None)``: the compute of trained
weights, which cannot be had here), a synthetic dataset of realistic size (3000 samples × 2 views × 512-d
float16 embeddings of the bundled body, 8 words; see ``bench_mapper.clip_dataset``) and a mapper trained on
it with the default architecture (one epoch: size, not accuracy, decides latency).

- **Photo**: a 12-megapixel JPEG (4000 × 3000, a phone photo) holding a rendered body off-centre (a synthetic
  figure when bpy is missing). Timed: the whole fit from the file (decode, orientation, person detection and
  crop, CLIP image encoding, mapper) with CLIP loaded and the words' text embeddings cached, i.e. a second fit
  in the same session; with the detector (when OpenCV is installed) and with the centre crop.
- **Text**: the :class:`TextFitter` built once (dataset read, embeddings normalised); every timed fit uses a
  new prompt, so encoding the prompt is included; plain and neutral-difference ranking.

Cold costs (loading CLIP, reading the dataset) are printed for information.

    .venv/bin/python benchmarks/bench_fitting.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from semantify_engine.fitting import ImageFitter, TextFitter
from semantify_engine.fitting.crop import detector_available
from semantify_engine.mapper.from_dataset import train_from_dataset
from semantify_engine.mapper.settings import TrainingSettings
from semantify_engine.models import load

IMAGE_GOAL_S = 0.5
TEXT_GOAL_S = 0.3
MODEL = "anny-body"
WORDS = ["fat", "thin", "tall", "short", "muscular", "broad", "slim", "curvy"]
PROMPTS = (
    "a tall muscular man", "a short heavy woman", "a slim athletic person", "a very fat man",
    "a petite woman", "a broad shouldered man", "a lanky teenager", "a curvy woman", "an old thin man",
    "a stocky wrestler", "a long-legged runner", "a small child", "a pear shaped body", "a bodybuilder",
    "a thin tall woman", "a round apple shaped man", "a skinny boy", "a strong lean woman", "a big man",
    "a proportioned person", "a heavyset woman", "a rectangular body", "an hourglass figure",
)  # fmt: skip


def phone_photo(path: Path) -> Path:
    """A 4000 × 3000 JPEG with a body standing right of centre on a noisy wall."""
    from PIL import Image

    rng = np.random.default_rng(0)
    photo = rng.integers(150, 200, (3000, 4000, 3), dtype=np.uint8)
    figure = _body_render(1600)
    photo[900:2500, 2200:3800] = figure
    Image.fromarray(photo).save(path, quality=92)
    return path


def _body_render(size: int) -> np.ndarray:
    """The bundled body rendered by Blender on the photo's grey, or a synthetic figure without bpy."""
    try:
        from semantify_engine.render.blender import BlenderRenderer
        from semantify_engine.render.settings import RenderSettings
        from semantify_engine.render.views import parse_views
    except ImportError:
        return _synthetic_figure(size)
    try:
        renderer = BlenderRenderer(
            load(MODEL), parse_views("front"), RenderSettings(resolution=size, background=(0.69,) * 3)
        )
    except ImportError:
        return _synthetic_figure(size)
    try:
        return renderer.render(np.zeros((1, 10), np.float32))[0, 0]
    finally:
        renderer.close()


def _synthetic_figure(size: int) -> np.ndarray:
    figure = np.full((size, size, 3), 176, np.uint8)
    figure[size // 10 : -size // 10, size * 2 // 5 : -size * 2 // 5] = 90
    return figure


def timings(call: Callable[[int], object], repeats: int) -> np.ndarray:
    call(0)  # warm-up: first-use costs (lazy imports, caches) are not what a second fit pays
    out = np.empty(repeats)
    for index in range(repeats):
        started = time.perf_counter()
        call(index + 1)
        out[index] = time.perf_counter() - started
    return out


def report(name: str, seconds: np.ndarray, goal: float) -> None:
    p50, p95 = np.percentile(seconds, [50, 95])
    print(
        f"{name:<44} p50 {p50 * 1000:6.0f} ms  p95 {p95 * 1000:6.0f} ms   "
        f"{p50 / goal:.2f} of the {goal:g} s goal (p95 {p95 / goal:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=15, help="timed fits per case (15)")
    arguments = parser.parse_args()
    from bench_mapper import clip_dataset

    from semantify_engine.scoring.clip import ClipSpec, get_scorer

    with tempfile.TemporaryDirectory(prefix="semantify-bench-fit-") as temporary:
        folder = clip_dataset(Path(temporary) / "data", MODEL, WORDS)
        mapper, _ = train_from_dataset(folder, WORDS, model=load(MODEL), settings=TrainingSettings(epochs=1))
        photo = phone_photo(Path(temporary) / "photo.jpg")

        started = time.perf_counter()
        get_scorer(ClipSpec(model="ViT-B-32", pretrained=None))
        print(f"cold: CLIP ViT-B-32 load {time.perf_counter() - started:.1f} s", end="")
        started = time.perf_counter()
        image_fitter = ImageFitter(mapper)
        text_fitter = TextFitter(mapper)
        print(f", fitters (word prompts, dataset read) {time.perf_counter() - started:.1f} s\n")

        print(f"photo → shape, 4000×3000 JPEG, {len(WORDS)} words (goal {IMAGE_GOAL_S} s):")
        if detector_available():
            result = image_fitter.fit(photo, crop="auto")
            box = result.details["crop_box"]
            print(f"  (crop: {box['method']}, a {box['side']} px square at ({box['left']}, {box['top']}))")
            seconds = timings(lambda _: image_fitter.fit(photo, crop="auto"), arguments.repeats)
            report("  person detector crop", seconds, IMAGE_GOAL_S)
        else:
            print("  (OpenCV not installed: no person detector; pip install 'semantify[detect]')")
        seconds = timings(lambda _: image_fitter.fit(photo, crop="centre"), arguments.repeats)
        report("  centre crop", seconds, IMAGE_GOAL_S)

        samples = len(text_fitter.coefficients)
        print(f"\ntext → shape, {samples} samples × 2 views × 512-d cached (goal {TEXT_GOAL_S} s):")
        for label, neutral in (("plain ranking", False), ("neutral-difference ranking", True)):
            offset = 0 if not neutral else len(PROMPTS) // 2

            def fit(index: int, neutral: bool = neutral, offset: int = offset) -> object:
                prompt = (
                    f"{PROMPTS[(index + offset) % len(PROMPTS)]}, photo {index}"  # a new prompt each time
                )
                return text_fitter.fit(prompt, neutral=neutral)

            report(f"  {label}, new prompt each fit", timings(fit, arguments.repeats), TEXT_GOAL_S)


if __name__ == "__main__":
    main()
