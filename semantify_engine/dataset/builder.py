"""Build a dataset: sample → render (Blender) → encode (CLIP) → score, plus measurements, chunk by chunk.

Rendering and CLIP encoding overlap: Blender renders chunk ``c + 1`` on the main thread (bpy must stay
there) while a worker thread encodes chunk ``c`` (torch releases the GIL inside its kernels) and writes
it. At most one chunk waits between the stages, so memory stays flat however large the dataset is.

Only missing chunks of the requested shard are built, so running the same command again after a kill
resumes the build; see :mod:`.store` for why the result equals an uninterrupted build.

The CLIP image engine (:mod:`..scoring.engines`) is chosen on every build before a chunk is encoded: the
first batch of the build and a fixed set of renders of the model are encoded by torch fp32 and by the
candidate, which is used only if it passes its fidelity check (the figures go into the manifest's
records). A dataset holds the embeddings of one engine: a fresh folder takes the fastest that passes, a
resumed one keeps the engine it was started with, and if that engine fails here the build stops.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import SemantifyError
from ..models.linear import LinearMorphableModel
from ..render.settings import RenderSettings
from ..render.views import View
from ..scoring.clip import ClipSpec, average_view_scores, prompts
from ..scoring.engines import AUTO, TORCH, EngineChoice
from .sampling import BANK_SCHEMES, SamplingPlan, bank_rows, sample_coefficients
from .store import DatasetError, DatasetFolder, Shard, chunk_count, chunk_indices

MAX_SAMPLES = 10_000_000
"""Samples one dataset may hold: 150,000 chunks; more is a typo, not a dataset (and would take TBs)."""
DEFAULT_CHUNK_SIZE = 64
FIDELITY_BATCH = 32
"""Images of the build's first chunk that the engine's fidelity check compares (one CLIP batch)."""
FIDELITY_PROBE_SAMPLES = 8
FIDELITY_PROBE_SEED = 14
"""The fixed set of renders every check also compares: these samples, whatever the build's seed."""


def _view_settings(view: View) -> dict[str, Any]:
    """A view as the manifest records it. Elevated views were rendered tipped before they were turned
    until the renderer turned them as :meth:`View.rotation` does (``render.blender.TILE_ROTATION_MODE``);
    they say so, so that a dataset begun the old way is not resumed the new way. Level views render alike
    either way and keep their old record."""
    record: dict[str, Any] = {"name": view.label, "azimuth": view.azimuth, "elevation": view.elevation}
    if view.elevation:
        record["turn"] = "azimuth, then elevation"
    return record


@dataclass(frozen=True)
class ClipScoring:
    """CLIP settings of a dataset: which model, which prompt template, which words, which image engine.

    ``engine`` is what was asked for (``auto`` or an engine name); the manifest records the engine used.
    """

    spec: ClipSpec
    template: str
    words: tuple[str, ...]
    engine: str = AUTO

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.spec.model,
            "pretrained": self.spec.pretrained,
            "template": self.template,
            "words": list(self.words),
        }
        # torch, the only engine before there was a choice, is left unwritten: older datasets still resume.
        if self.engine != TORCH:
            data["engine"] = self.engine
        return data


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
    model_dir: str | None = None
    """Where ``model_spec`` was looked up (``--model-dir``): how another machine finds the same model."""

    def __post_init__(self) -> None:
        if not isinstance(self.samples, int) or self.samples <= 0:
            raise SemantifyError(
                f"{{samples}} must be a whole number > 0, got {self.samples!r}.", parameters=("samples",)
            )
        if self.samples > MAX_SAMPLES:
            raise SemantifyError(
                f"{{samples}} {self.samples:,} is more than a dataset holds ({MAX_SAMPLES:,} at most: about "
                f"{MAX_SAMPLES // 1_000_000 * 6} GB of embeddings); the paper's datasets have 3,000.",
                parameters=("samples",),
            )
        if not isinstance(self.chunk_size, int) or self.chunk_size <= 0:
            raise SemantifyError(
                f"{{chunk_size}} must be a whole number > 0, got {self.chunk_size!r}.",
                parameters=("chunk_size",),
            )
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
            "views": [_view_settings(view) for view in self.views] if self.clip is not None else [],
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
        exact = self.plan.scheme in BANK_SCHEMES
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
    clip_engine: EngineChoice | None = None


def build_dataset(
    folder: DatasetFolder,
    request: DatasetRequest,
    shard: Shard | None = None,
    progress: Callable[[int], None] | None = None,
    overlap: bool = True,
    say: Callable[[str], None] | None = None,
) -> BuildReport:
    """Build (or resume) the chunks of ``shard``; ``progress`` gets the number of samples just finished.

    ``overlap=False`` encodes each chunk before rendering the next: the sequential baseline the
    benchmark compares against, and a simpler path to debug. ``say`` hears which CLIP image engine is
    used and why another was passed over.
    """
    shard = shard or Shard()
    request = _with_engine_of(folder, request)
    settings, todo, report = plan_build(folder, request, shard)
    if not todo:
        return report
    metric_scorer = request.metric_scorer() if request.metrics else None
    # CLIP loads (or fails with its how-to) before the folder is created and before anything renders.
    encoder = ChunkEncoder(request) if request.clip is not None else None
    renderer = None
    rendered: dict[int, np.ndarray] = {}
    try:
        if encoder is not None:
            renderer = make_renderer(request)
            rendered[todo[0]] = renderer.render(_coefficients(request, settings, todo[0]))
            report.clip_engine = _choose_engine(folder, request, encoder, renderer, rendered[todo[0]], say)
            assert request.clip is not None
            request = replace(request, clip=replace(request.clip, engine=report.clip_engine.name))
            settings = request.settings()
        settings = folder.create_or_check(settings)["settings"]
        if report.clip_engine is not None:
            record = {"shard": f"{shard.index}/{shard.count}", "chunks": len(todo)}
            folder.add_records("clip_engine", [{**record, **report.clip_engine.to_json()}])
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="semantify-encode") as worker:
            pending: Future[int] | None = None
            for chunk in todo:
                arrays = sample_arrays(request, settings, chunk, metric_scorer)
                images = rendered.pop(chunk, None)
                if images is None and renderer is not None:
                    images = renderer.render(arrays["coefficients"])
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


def plan_build(
    folder: DatasetFolder, request: DatasetRequest, shard: Shard
) -> tuple[dict[str, Any], list[int], BuildReport]:
    """The request's settings, the chunks of ``shard`` still to build (all of them in a new folder, the
    missing ones when resuming a compatible one), and the report counting the ones already there."""
    settings = request.settings()
    existing = folder.check_compatible(settings)
    owned = [c for c in range(chunk_count(settings)) if shard.owns(c)]
    todo = owned if existing is None else folder.missing_chunks(existing, shard)
    return settings, todo, BuildReport(skipped_chunks=len(owned) - len(todo))


def make_renderer(request: DatasetRequest) -> Any:
    """The Blender renderer of a dataset's training views, framed for every shape its sampling can make."""
    from ..render.blender import BlenderRenderer

    return BlenderRenderer(
        request.model,
        request.views,
        request.render,
        sigmas=max(3.0, request.plan.sigmas),
        framing_components=request.plan.components,
    )


def sample_arrays(
    request: DatasetRequest, settings: dict[str, Any], chunk: int, metric_scorer: Any | None
) -> dict[str, np.ndarray]:
    """A chunk's arrays that need no image: its sample indices, coefficients, measurements, attributes.

    One place for what a chunk holds besides CLIP's part, shared by the local build and Ray's workers.
    """
    indices = np.asarray(chunk_indices(settings, chunk), dtype=np.int64)
    coefficients = sample_coefficients(request.model, request.plan, indices)
    arrays: dict[str, np.ndarray] = {"indices": indices, "coefficients": coefficients}
    if metric_scorer is not None:
        arrays["metrics"] = metric_scorer.measure(request.model.vertices(coefficients))
    if request.has_attributes:
        arrays["attributes"] = _attributes(request, indices, coefficients)
    return arrays


def _coefficients(request: DatasetRequest, settings: dict[str, Any], chunk: int) -> np.ndarray:
    indices = np.asarray(chunk_indices(settings, chunk), dtype=np.int64)
    return sample_coefficients(request.model, request.plan, indices)


def _with_engine_of(folder: DatasetFolder, request: DatasetRequest) -> DatasetRequest:
    """``auto`` resumes a folder with the engine it was started with; another engine is refused, because a
    dataset never mixes the embeddings of two engines."""
    if request.clip is None or not folder.exists():
        return request
    clip = folder.read_manifest()["settings"].get("clip")
    if not clip:
        return request  # a metric-only folder: the settings check refuses it
    used = clip.get("engine", TORCH)
    if request.clip.engine not in (AUTO, used):
        raise DatasetError(
            f"{folder.folder} holds image embeddings made by the CLIP engine {used}; {{clip_engine}} "
            f"{request.clip.engine} would mix them with another engine's. Resume with {{clip_engine}} {used} "
            "(or auto), or use another {out} folder.",
            parameters=("clip_engine", "out"),
        )
    return replace(request, clip=replace(request.clip, engine=used))


def _choose_engine(
    folder: DatasetFolder,
    request: DatasetRequest,
    encoder: ChunkEncoder,
    renderer: Any,
    first_chunk: np.ndarray,
    say: Callable[[str], None] | None,
) -> EngineChoice:
    """The image engine for this build, checked on its first batch and the model's fixed probe renders."""
    from ..errors import ClipEngineError

    assert request.clip is not None
    resuming = folder.exists()
    try:
        first_batch, probes = fidelity_batches(request, renderer, first_chunk)
        choice = encoder.choose_engine(
            request.clip.engine, first_batch, probes, fallback=not resuming, say=say
        )
    except ClipEngineError as error:
        if not resuming:
            raise
        raise DatasetError(
            f"{folder.folder} was built with the CLIP image engine {request.clip.engine}, which cannot be "
            f"used here ({error.template}). Its embeddings must not be mixed with another engine's: resume "
            "it where that engine passes, or start a new {out} folder.",
            parameters=(*error.parameters, "out"),
        ) from error
    (say or _log_note)(choice.describe())
    return choice


def fidelity_batches(
    request: DatasetRequest, renderer: Any, first_chunk: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The images an engine's fidelity check compares: the build's first batch (the first
    :data:`FIDELITY_BATCH` images of its first chunk, exactly the encoder's first batch) and the model's
    fixed probe renders (the same every build)."""
    probe_plan = replace(request.plan, seed=FIDELITY_PROBE_SEED)
    probe = renderer.render(sample_coefficients(request.model, probe_plan, range(FIDELITY_PROBE_SAMPLES)))
    first_batch = first_chunk.reshape(-1, *first_chunk.shape[2:])[:FIDELITY_BATCH]
    return first_batch, probe.reshape(-1, *probe.shape[2:])


def _log_note(message: str) -> None:
    import logging

    logging.getLogger(__name__).info(message)


def _attributes(request: DatasetRequest, indices: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Exact settings of bank samples; the regressor's reading for samples drawn some other way."""
    from ..models.bank import attribute_values

    model = request.model
    rows = bank_rows(model, request.plan, indices) if request.plan.scheme in BANK_SCHEMES else None
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
    encoder: ChunkEncoder | None,
) -> int:
    if encoder is not None and images is not None:
        arrays.update(encoder.encode(images))
    folder.write_chunk(chunk, arrays)
    return len(arrays["indices"])


class ChunkEncoder:
    """CLIP for one build: the model loaded once, the words' text embeddings computed once."""

    def __init__(self, request: DatasetRequest) -> None:
        from ..scoring.clip import get_scorer

        assert request.clip is not None
        self.scorer = get_scorer(request.clip.spec)
        self.text = self.scorer.encode_texts(prompts(request.clip.words, request.clip.template))
        self.engine: Any = None
        self._checked: tuple[np.ndarray, np.ndarray] | None = None

    def choose_engine(
        self,
        requested: str,
        first_batch: np.ndarray,
        probes: np.ndarray,
        fallback: bool,
        say: Callable[[str], None] | None,
    ) -> EngineChoice:
        """Check and pick the image engine (:func:`..scoring.engines.choose_engine`) on the build's first
        batch and the model's probes; the chosen engine's embeddings of that batch are kept for
        :meth:`encode`, which would otherwise compute them again."""
        from ..scoring.engines import choose_engine

        choice = choose_engine(
            self.scorer, requested, [first_batch], self.text, fallback=fallback, say=say, fixed=[probes]
        )
        self.engine = choice.engine
        self._checked = (first_batch, choice.encoded[0]) if choice.encoded else None
        return choice

    def encode(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Images ``(n, views, H, W, 3)`` -> float16 embeddings per view and cosine scores.

        Scores are computed from the float16 embeddings as stored, so scoring a word later from the
        dataset gives exactly the numbers a build would have given. Images are encoded in batches of
        :data:`FIDELITY_BATCH`; when the first batch is the one the engine check encoded, its embeddings
        are reused (the same engine, images and batch give the same numbers).
        """
        count, views = images.shape[:2]
        flat = images.reshape(count * views, *images.shape[2:])
        checked, self._checked = self._checked, None
        known = 0 if checked is None else len(checked[0])
        if checked is not None and len(flat) >= known and np.array_equal(flat[:known], checked[0]):
            rest = self.engine.encode(flat[known:], FIDELITY_BATCH) if len(flat) > known else checked[1][:0]
            flat_embeddings = np.concatenate([checked[1], rest])
        else:
            flat_embeddings = self.engine.encode(flat, FIDELITY_BATCH)
        embeddings = flat_embeddings.reshape(count, views, -1).astype(np.float16)
        scores = average_view_scores(embeddings.astype(np.float32), self.text)
        return {"embeddings": embeddings, "scores": scores.astype(np.float32)}
