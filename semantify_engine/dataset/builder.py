"""Build a dataset: sample → render (Blender) → encode (CLIP) → score, plus measurements, chunk by chunk.

Rendering and CLIP encoding overlap: Blender renders chunk ``c + 1`` on the main thread (bpy must stay
there) while a worker thread encodes chunk ``c`` (torch releases the GIL inside its kernels) and writes
it. At most one chunk waits between the stages, so memory stays flat however large the dataset is.

Only missing chunks of the requested shard are built, so running the same command again after a kill
resumes the build; see :mod:`.store` for why the result equals an uninterrupted build.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SemantifyError
from ..models.linear import LinearMorphableModel
from ..render.settings import RenderSettings
from ..render.views import View
from ..scoring.clip import ClipSpec, average_view_scores, prompts
from .sampling import SamplingPlan, bank_rows, sample_coefficients
from .store import DatasetFolder, Shard, chunk_count, chunk_indices

SCORERS = ("auto", "clip", "metric", "both")
DEFAULT_CHUNK_SIZE = 64


@dataclass(frozen=True)
class ClipScoring:
    """CLIP settings of a dataset: which model, which prompt template, which words."""

    spec: ClipSpec
    template: str
    words: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.spec.model,
            "pretrained": self.spec.pretrained,
            "template": self.template,
            "words": list(self.words),
        }


@dataclass(frozen=True)
class DatasetRequest:
    """Everything that defines a dataset's content. Two requests with equal settings build equal data."""

    model_spec: str
    model: LinearMorphableModel
    samples: int
    plan: SamplingPlan
    views: tuple[View, ...]
    render: RenderSettings = field(default_factory=RenderSettings)
    clip: ClipScoring | None = None
    metrics: bool = True
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        if not isinstance(self.samples, int) or self.samples <= 0:
            raise SemantifyError(f"--samples must be a whole number > 0, got {self.samples!r}.")
        if not isinstance(self.chunk_size, int) or self.chunk_size <= 0:
            raise SemantifyError(f"--chunk-size must be a whole number > 0, got {self.chunk_size!r}.")
        if self.clip is None and not self.metrics:
            raise SemantifyError("A dataset needs at least one scorer: CLIP, metric, or both.")

    def settings(self) -> dict[str, Any]:
        """The manifest's settings: what must match for a build to resume or shards to merge."""
        return {
            "model": {
                "spec": self.model_spec,
                "name": self.model.name,
                "kind": self.model.kind,
                "checksum": self.model.checksum(),
                "vertex_count": self.model.vertex_count,
            },
            "samples": self.samples,
            "chunk_size": self.chunk_size,
            "sampling": self.plan.to_json(),
            # Views and render settings only matter when images are made (CLIP scoring).
            "views": [{"name": v.label, "azimuth": v.azimuth, "elevation": v.elevation} for v in self.views]
            if self.clip is not None
            else [],
            "render": self.render.to_json() if self.clip is not None else None,
            "clip": self.clip.to_json() if self.clip is not None else None,
            "metrics": self.metric_scorer().to_json() if self.metrics else None,
            **({"attributes": self.attribute_settings()} if self.has_attributes else {}),
        }

    @property
    def has_attributes(self) -> bool:
        """Attributes (MakeHuman shape settings) come with the measurements of models that can read them."""
        return self.metrics and self.model.attributes is not None

    def attribute_settings(self) -> dict[str, Any]:
        """The manifest's record of the attribute columns: names, units, ranges and where values come from."""
        from ..models.bank import attribute_specs

        assert self.model.attributes is not None
        specs = attribute_specs(self.model.attributes)
        exact = self.plan.scheme == "bank"
        return {
            "names": [spec.name for spec in specs],
            "units": [spec.unit for spec in specs],
            "ranges": [[spec.low, spec.high] for spec in specs],
            "source": "the bank's exact shape settings" if exact else "the model's attribute regressor",
        }

    def metric_scorer(self) -> Any:
        from ..scoring.metrics import MetricScorer

        return MetricScorer.for_model(self.model)


@dataclass
class BuildReport:
    built_chunks: int = 0
    skipped_chunks: int = 0
    built_samples: int = 0


def build_dataset(
    folder: DatasetFolder,
    request: DatasetRequest,
    shard: Shard | None = None,
    progress: Callable[[int], None] | None = None,
    overlap: bool = True,
) -> BuildReport:
    """Build (or resume) the chunks of ``shard``; ``progress`` gets the number of samples just finished.

    ``overlap=False`` encodes each chunk before rendering the next: the sequential baseline the
    benchmark compares against, and a simpler path to debug.
    """
    shard = shard or Shard()
    settings = request.settings()
    existing = folder.check_compatible(settings)
    owned = [c for c in range(chunk_count(settings)) if shard.owns(c)]
    todo = owned if existing is None else folder.missing_chunks(existing, shard)
    report = BuildReport(skipped_chunks=len(owned) - len(todo))
    if not todo:
        return report
    metric_scorer = request.metric_scorer() if request.metrics else None
    # CLIP loads (or fails with its how-to) before the folder is created and before anything renders.
    encoder = _ChunkEncoder(request) if request.clip is not None else None
    settings = folder.create_or_check(settings)["settings"]
    renderer = None
    if encoder is not None:
        from ..render.blender import BlenderRenderer

        renderer = BlenderRenderer(
            request.model,
            request.views,
            request.render,
            sigmas=max(3.0, request.plan.sigmas),
            framing_components=request.plan.components,
        )
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="semantify-encode") as worker:
            pending: Future[int] | None = None
            for chunk in todo:
                indices = np.asarray(chunk_indices(settings, chunk), dtype=np.int64)
                coefficients = sample_coefficients(request.model, request.plan, indices)
                arrays: dict[str, np.ndarray] = {"indices": indices, "coefficients": coefficients}
                if metric_scorer is not None:
                    arrays["metrics"] = metric_scorer.measure(request.model.vertices(coefficients))
                if request.has_attributes:
                    arrays["attributes"] = _attributes(request, indices, coefficients)
                images = renderer.render(coefficients) if renderer is not None else None
                if pending is not None:
                    _finish(pending, report, progress)
                pending = worker.submit(_encode_and_write, folder, chunk, arrays, images, encoder)
                if not overlap:
                    _finish(pending, report, progress)
                    pending = None
            if pending is not None:
                _finish(pending, report, progress)
    finally:
        if renderer is not None:
            renderer.close()
    return report


def _attributes(request: DatasetRequest, indices: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Exact settings of bank samples; the regressor's reading for samples drawn some other way."""
    from ..models.bank import attribute_values

    model = request.model
    rows = bank_rows(model, request.plan, indices) if request.plan.scheme == "bank" else None
    return attribute_values(model.bank, model.attributes, coefficients, rows)


def _finish(pending: Future[int], report: BuildReport, progress: Callable[[int], None] | None) -> None:
    samples = pending.result()  # re-raises the worker's error here, on the main thread
    report.built_chunks += 1
    report.built_samples += samples
    if progress is not None:
        progress(samples)


def _encode_and_write(
    folder: DatasetFolder,
    chunk: int,
    arrays: dict[str, np.ndarray],
    images: np.ndarray | None,
    encoder: _ChunkEncoder | None,
) -> int:
    if encoder is not None and images is not None:
        arrays.update(encoder.encode(images))
    folder.write_chunk(chunk, arrays)
    return len(arrays["indices"])


class _ChunkEncoder:
    """CLIP for one build: the model loaded once, the words' text embeddings computed once."""

    def __init__(self, request: DatasetRequest) -> None:
        from ..scoring.clip import get_scorer

        assert request.clip is not None
        self.scorer = get_scorer(request.clip.spec)
        self.text = self.scorer.encode_texts(prompts(request.clip.words, request.clip.template))

    def encode(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Images ``(n, views, H, W, 3)`` -> float16 embeddings per view and cosine scores.

        Scores are computed from the float16 embeddings as stored, so scoring a word later from the
        dataset gives exactly the numbers a build would have given.
        """
        count, views = images.shape[:2]
        flat = self.scorer.encode_images(images.reshape(count * views, *images.shape[2:]))
        embeddings = flat.reshape(count, views, -1).astype(np.float16)
        scores = average_view_scores(embeddings.astype(np.float32), self.text)
        return {"embeddings": embeddings, "scores": scores.astype(np.float32)}
