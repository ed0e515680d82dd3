"""The tests' tiny random CLIP, and small dataset requests on the capsule (scored by it, or measured only).

No pretrained weights can be had on test machines: a random tiny open_clip model exercises the real
loading and scoring paths for mechanics (the ``tiny_weights`` and ``tiny_spec`` fixtures save it).
"""

from __future__ import annotations

import json
from pathlib import Path

from semantify_engine.models import LinearMorphableModel

TINY_CLIP_NAME = "semantify-tiny-test-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def save_tiny_clip(folder: Path) -> Path:
    """The tiny CLIP, seeded, saved as ``<name>.bin`` in ``folder`` with its open_clip config beside it.

    Returns the weights file. Used by the ``tiny_weights`` fixture and by the benchmarks, which run the
    same model outside pytest.
    """
    from semantify_engine.compat.torchvision_ops import ensure_torchvision_importable

    ensure_torchvision_importable()
    import open_clip
    import torch

    config = folder / f"{TINY_CLIP_NAME}.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None)
    weights = folder / f"{TINY_CLIP_NAME}.bin"
    torch.save(model.state_dict(), weights)
    return weights


def capsule_clip_request(
    capsule: LinearMorphableModel,
    spec,
    words: tuple[str, ...],
    *,
    samples: int = 24,
    chunk_size: int = 8,
    metrics: bool = False,
    template: str = "a photo of a {} person",
    views: str = "front,side",
    engine: str = "auto",
):
    """A small real dataset request: capsules rendered front and side at 64², scored by the tiny CLIP.

    Shared by the dataset, mapper and fitting tests so they all exercise the same build path (``engine``
    ``auto``: the fastest CLIP image engine that passes its fidelity check, as for users).
    """
    from semantify_engine.dataset.builder import ClipScoring, DatasetRequest
    from semantify_engine.dataset.sampling import SamplingPlan
    from semantify_engine.render.settings import RenderSettings
    from semantify_engine.render.views import parse_views

    return DatasetRequest(
        model_spec="capsule",
        model=capsule,
        samples=samples,
        plan=SamplingPlan(seed=7, components=3),
        views=parse_views(views),
        render=RenderSettings(resolution=64),
        clip=ClipScoring(spec=spec, template=template, words=tuple(words), engine=engine),
        metrics=metrics,
        chunk_size=chunk_size,
    )


def capsule_metric_request(
    capsule: LinearMorphableModel, *, samples: int = 12, chunk_size: int = 4, seed: int = 7
):
    """A small measurement-only dataset request: measured capsules, nothing rendered, no CLIP."""
    from semantify_engine.dataset.builder import DatasetRequest
    from semantify_engine.dataset.sampling import SamplingPlan
    from semantify_engine.render.views import parse_views

    return DatasetRequest(
        model_spec="capsule",
        model=capsule,
        samples=samples,
        plan=SamplingPlan(seed=seed, components=3),
        views=parse_views("front"),
        clip=None,
        metrics=True,
        chunk_size=chunk_size,
    )
