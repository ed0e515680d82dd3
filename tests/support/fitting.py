"""Fitting helpers shared by the engine's fitting tests and the Fit panel's: photos, datasets, mappers.

The Fit panel's tests need the same small mappers and photo-like pictures as the engine's fitting tests;
they are written here once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semantify_engine.dataset.sampling import SamplingPlan
from semantify_engine.dataset.store import DatasetFolder
from semantify_engine.mapper import Mapper
from semantify_engine.models import LinearMorphableModel

SMALL = {"epochs": 3, "hidden": (32, 16), "batch_size": 8}
"""Training settings small enough for tests: a mapper in a second or two."""


def train(folder: Path, names: list[str], model: LinearMorphableModel, **settings) -> Mapper:
    from semantify_engine.mapper.from_dataset import train_from_dataset
    from semantify_engine.mapper.settings import TrainingSettings

    mapper, _ = train_from_dataset(folder, names, model=model, settings=TrainingSettings(**settings))
    return mapper


def write_png(path: Path, pixels: np.ndarray, mode: str | None = None) -> Path:
    from PIL import Image

    Image.fromarray(pixels, mode=mode).save(path)
    return path


def photo_pixels(seed: int = 0, height: int = 96, width: int = 64) -> np.ndarray:
    """A photo-like picture: a bright figure on a dark, noisy background."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    pixels[height // 6 : -height // 10, width // 3 : -width // 3] = 200
    return pixels


def clip_text(spec, texts: list[str]) -> np.ndarray:
    from semantify_engine.scoring.clip import get_scorer

    return get_scorer(spec).encode_texts(texts)


def synthetic_dataset(
    folder: Path, model: LinearMorphableModel, spec, template: str, words: tuple[str, ...], samples: int = 40
) -> tuple[Path, dict[str, np.ndarray]]:
    """A dataset folder written directly (no rendering): random unit embeddings, words scored from them."""
    from semantify_engine.scoring.clip import average_view_scores, l2_normalize

    rng = np.random.default_rng(11)
    embeddings = l2_normalize(rng.normal(size=(samples, 2, 32))).astype(np.float16)
    coefficients = rng.uniform(0.1, 1.0, (samples, 3)).astype(np.float32)
    coefficients[3] = 0.0  # the rest expression: the neutral render
    text = clip_text(spec, [template.format(word) for word in words])
    scores = average_view_scores(embeddings.astype(np.float32), text).astype(np.float32)
    settings = {
        "model": {"spec": "capsule-face", "name": model.name, "kind": model.kind,
                  "checksum": model.checksum(), "vertex_count": model.vertex_count},
        "samples": samples, "chunk_size": samples,
        "sampling": SamplingPlan(components=3).to_json(),
        "views": [{"name": "front", "azimuth": 0.0, "elevation": 0.0},
                  {"name": "side", "azimuth": 90.0, "elevation": 0.0}],
        "render": None,
        "clip": {"model": spec.model, "pretrained": spec.pretrained, "template": template,
                 "words": list(words)},
        "metrics": None,
    }  # fmt: skip
    store = DatasetFolder(folder)
    store.create_or_check(settings)
    arrays = {
        "indices": np.arange(samples, dtype=np.int64),
        "coefficients": coefficients,
        "embeddings": embeddings,
        "scores": scores,
    }
    store.write_chunk(0, arrays)
    return folder, arrays
