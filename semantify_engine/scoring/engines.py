"""CLIP image engines: open_clip's image tower run by torch, or exported once to ONNX and run by ONNX Runtime.

A word dataset spends most of its time in CLIP's image tower: on 2 CPU cores a ViT-B-32 image costs about
60 ms with torch fp32, rendering it about 11. The same tower exported to ONNX, its weights quantised to
int8, runs about three times faster there (``benchmarks/bench_clip_engines.py`` prints both side by side).
Text stays on torch: a build encodes its words once.

Engines, fastest first (the order :func:`choose_engine` tries them in):

* ``onnx-int8``: the export's matrix products quantised by ONNX Runtime's dynamic quantisation (int8
  weights per tensor; activations quantised per batch at run time, so an image's embedding moves very
  slightly with its batch mates; a dataset's chunks are always batched the same way, so builds stay
  deterministic); how the tower is exported and quantised, and why, is :mod:`.tower_export`;
* ``onnx``: the fp32 export run by ONNX Runtime;
* ``torch``: open_clip itself in fp32, the reference every other engine is measured against.

**Fidelity is proved on the user's own weights, not assumed.** Quantisation error depends on the weights
(trained towers have activation outliers that random ones lack), so :func:`choose_engine` encodes a set of
images with torch fp32 and with the candidate, and accepts the candidate only when every embedding has
cosine ≥ :data:`MIN_COSINE` to fp32 **and** the top-:data:`TOP_K` words by score agree for ≥
:data:`MIN_TOP_K_AGREEMENT` of the images; otherwise it says so and tries the next engine. A build checks
its own first batch afresh every time, and the model's fixed probe renders, whose embeddings by each
engine are kept beside the exports (the same weights and pixels give the same numbers); the chosen
engine's embeddings of the first batch are the build's own (it does not encode those images twice).

Exports are made once and cached, keyed by a checksum of the image tower's weights as loaded (a tag, a hub
id and a file holding the same weights share one export), the architecture, the input size,
:data:`ENGINE_VERSION` and the torch and ONNX Runtime versions; each file is written to a temporary name
and renamed (:mod:`..atomic`). They live beside a local weights file (``<file>.semantify-engines/``) when
that folder is writable, else under the CLIP cache folder (``SEMANTIFY_CLIP_CACHE_DIR``, or
``~/.cache/semantify/clip-engines``); exports of random weights (never the same twice) go to a temporary
folder removed when the process ends.

torch, onnx and onnxruntime are imported inside functions only, like everywhere in scoring.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..atomic import atomic_output
from ..errors import ClipEngineError, SemantifyError, first_line
from .clip import ClipScorer, l2_normalize
from .clip_spec import ENV_CACHE_DIR
from .tower_export import OPSET, export_image_tower, quantize_image_tower, tower_input

log = logging.getLogger(__name__)

TORCH = "torch"
ONNX = "onnx"
ONNX_INT8 = "onnx-int8"
AUTO = "auto"
ENGINES = (ONNX_INT8, ONNX, TORCH)
"""Every image engine, fastest first: the order in which ``auto`` tries them and failures fall back."""
ENGINE_CHOICES = (AUTO, *ENGINES)
ENV_ENGINE = "SEMANTIFY_CLIP_ENGINE"
"""The default of ``--clip-engine`` (the Blender add-on sets it from its preference)."""

ENGINE_VERSION = 2
"""Bump when the export or the quantisation changes (:mod:`.tower_export`): cached exports of other
versions are not used. 2: attention exported as plain products, the patch convolution left fp32."""
DYNAMIC_BLOCK_BASE = 4
"""ONNX Runtime's ``session.dynamic_block_base``: work is handed out in shrinking blocks (see OnnxEngine)."""
MIN_COSINE = 0.999
MIN_TOP_K_AGREEMENT = 0.99
TOP_K = 5
CACHE_FOLDER = "clip-engines"

Say = Callable[[str], None]


# --------------------------------------------------------------------------------------------- names
def parse_engine(name: str | None, variable: str | None = None) -> str:
    """``name`` as one of :data:`ENGINE_CHOICES` (empty or None: ``auto``), or a clear error naming the
    ``clip_engine`` parameter, or the environment ``variable`` it was read from."""
    text = (name or "").strip().lower() or AUTO
    if text not in ENGINE_CHOICES:
        raise ClipEngineError(
            f"{variable or '{clip_engine}'} must be one of {', '.join(ENGINE_CHOICES)} (auto: the fastest "
            f"that passes its fidelity check), got {name!r}.",
            parameters=() if variable else ("clip_engine",),
        )
    return text


def engine_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The engine ``$SEMANTIFY_CLIP_ENGINE`` asks for; ``auto`` when unset."""
    env = os.environ if environ is None else environ
    return parse_engine(env.get(ENV_ENGINE), f"${ENV_ENGINE}")


def candidates(requested: str) -> tuple[str, ...]:
    """The engines to try for a request, in order: ``auto`` tries all, fastest first; an engine name tries
    itself, then the slower ones (ending with torch, which needs no check)."""
    requested = parse_engine(requested)
    return ENGINES if requested == AUTO else ENGINES[ENGINES.index(requested) :]


# ------------------------------------------------------------------------------------------ fidelity
@dataclass(frozen=True)
class Fidelity:
    """How close an engine's image embeddings are to torch fp32's on the same images."""

    engine: str
    images: int
    words: int
    min_cosine: float
    top_k_agreement: float
    top_k: int

    @property
    def passed(self) -> bool:
        return self.min_cosine >= MIN_COSINE and self.top_k_agreement >= MIN_TOP_K_AGREEMENT

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "images": self.images,
            "words": self.words,
            "min_cosine": round(self.min_cosine, 6),
            "top_k": self.top_k,
            "top_k_agreement": round(self.top_k_agreement, 6),
            "passed": self.passed,
            "bounds": {"min_cosine": MIN_COSINE, "top_k_agreement": MIN_TOP_K_AGREEMENT},
        }

    def describe(self) -> str:
        return (
            f"min cosine to torch fp32 {self.min_cosine:.5f} (needs ≥ {MIN_COSINE}), top-{self.top_k} "
            f"words agree for {self.top_k_agreement:.1%} of {self.images} images (needs ≥ "
            f"{MIN_TOP_K_AGREEMENT:.0%})"
        )


def _top_k_sets(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` best columns as a sorted index set (ties broken by column order, stably)."""
    return np.sort(np.argsort(-scores, axis=1, kind="stable")[:, :k], axis=1)


def measure_fidelity(
    engine: str, reference: np.ndarray, candidate: np.ndarray, text_embeddings: np.ndarray
) -> Fidelity:
    """Compare ``candidate`` embeddings with torch fp32's ``reference`` for the same images, row by row.

    The cosine bound catches any drift; the word test asks what a user sees: would the same words top
    each image's scores. With five words or fewer the top-5 sets are all the words and only the cosine
    bound decides.
    """
    reference = l2_normalize(np.asarray(reference, dtype=np.float32))
    candidate = l2_normalize(np.asarray(candidate, dtype=np.float32))
    if reference.shape != candidate.shape or reference.ndim != 2 or len(reference) == 0:
        raise ClipEngineError(
            f"Cannot compare engine {engine}: embeddings of shape {candidate.shape} against torch's "
            f"{reference.shape} (both must be the same non-empty (images, D))."
        )
    text = l2_normalize(np.asarray(text_embeddings, dtype=np.float32))
    k = min(TOP_K, len(text))
    cosine = np.sum(reference * candidate, axis=1)
    if k > 0:
        same = np.all(_top_k_sets(reference @ text.T, k) == _top_k_sets(candidate @ text.T, k), axis=1)
        agreement = float(same.mean())
    else:
        agreement = 1.0
    return Fidelity(engine, len(reference), len(text), float(cosine.min()), agreement, k)


# -------------------------------------------------------------------------------------------- engines
class ImageEngine(Protocol):
    """Something that turns uint8 RGB images into CLIP image embeddings (unit rows, float32)."""

    name: str

    def encode(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray: ...


class TorchEngine:
    """open_clip's own forward pass in fp32: the reference."""

    name = TORCH

    def __init__(self, scorer: ClipScorer) -> None:
        self.scorer = scorer

    def encode(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        return self.scorer.encode_images(images, batch_size=batch_size)


class OnnxEngine:
    """The image tower exported to ONNX, run by ONNX Runtime on the CPU; same input as torch's."""

    def __init__(self, scorer: ClipScorer, model_file: Path, name: str) -> None:
        import onnxruntime

        self.name = name
        self.scorer = scorer
        self.model_file = model_file
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep rather than spin: a dataset build renders on the other core meanwhile.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # ...and split each operator's work into small blocks that free threads take as they come, not
        # one equal share per thread: while the other core renders, a fixed share waits for the thread
        # that lost its core (a cached 600-sample build: 60.0 → 54.5 ms a sample). Each output is still
        # computed whole by one thread, so the numbers do not change.
        options.add_session_config_entry("session.dynamic_block_base", str(DYNAMIC_BLOCK_BASE))
        options.log_severity_level = 3  # errors only: its optimiser's notes are not the user's business
        self._session = onnxruntime.InferenceSession(
            str(model_file), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name

    def encode(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        arr = np.asarray(images)
        if len(arr) == 0:
            return np.zeros((0, self.scorer.embed_dim), dtype=np.float32)
        step = max(1, int(batch_size))
        rows = []
        for start in range(0, len(arr), step):
            pixels = self.scorer.preprocess_images(arr[start : start + step]).numpy()
            rows.append(l2_normalize(self._session.run(None, {self._input: pixels})[0]))
        return np.concatenate(rows, axis=0)


_LOADED: weakref.WeakKeyDictionary[ClipScorer, dict[str, ImageEngine]] = weakref.WeakKeyDictionary()
_LOADED_LOCK = threading.Lock()


def load_engine(scorer: ClipScorer, name: str, say: Say | None = None) -> ImageEngine:
    """The engine ``name`` for a loaded scorer, exporting (and quantising) its image tower the first time.

    Raises :class:`ClipEngineError` when the engine cannot run here (ONNX Runtime missing, a tower the
    exporter cannot handle, CLIP on a GPU); callers fall back to the next engine.
    """
    name = parse_engine(name)
    if name == AUTO:
        raise ClipEngineError("load_engine needs an engine name, not 'auto' (see choose_engine).")
    if name == TORCH:
        return TorchEngine(scorer)
    with _LOADED_LOCK:
        loaded = _LOADED.setdefault(scorer, {})
        if name not in loaded:
            loaded[name] = _load_onnx_engine(scorer, name, say or log.info)
        return loaded[name]


def _load_onnx_engine(scorer: ClipScorer, name: str, say: Say) -> OnnxEngine:
    if scorer.spec.device != "cpu":
        raise ClipEngineError(f"it runs on the CPU, and CLIP is set to run on '{scorer.spec.device}'")
    try:
        import onnx  # noqa: F401  (the exporter and the quantiser need it)
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise ClipEngineError(
            f"{error.name} is not installed in this Python: `pip install onnxruntime==1.32.0 onnx==1.22.0` "
            "(make env installs both; the platform extension ships them)"
        ) from error
    files = export_files(scorer)
    fp32 = files / "image-fp32.onnx"
    if not fp32.is_file():
        started = time.perf_counter()
        export_image_tower(scorer, fp32)
        say(f"exported the CLIP image tower to ONNX once ({time.perf_counter() - started:.0f} s): {fp32}")
    model_file = fp32
    if name == ONNX_INT8:
        model_file = files / "image-int8.onnx"
        if not model_file.is_file():
            started = time.perf_counter()
            quantize_image_tower(fp32, model_file)
            say(f"quantised it to int8 once ({time.perf_counter() - started:.0f} s): {model_file}")
    try:
        return OnnxEngine(scorer, model_file, name)
    except Exception as error:  # onnxruntime raises its own exception types for unreadable models
        raise ClipEngineError(f"ONNX Runtime could not load {model_file} ({first_line(error)})") from error


# --------------------------------------------------------------------------------------- export, cache
def tower_checksum(scorer: ClipScorer) -> str:
    """SHA-256 of the image tower's weights as loaded: names, dtypes, shapes and bytes, in order."""
    import torch

    digest = hashlib.sha256()
    for key, tensor in scorer.model.visual.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{key}:{value.dtype}:{tuple(value.shape)};".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def export_key(scorer: ClipScorer) -> dict[str, Any]:
    """Everything an export depends on; a change in any of it makes a new export."""
    import onnxruntime
    import torch

    return {
        "architecture": scorer.spec.model,
        "tower_sha256": tower_checksum(scorer),
        "input": list(tower_input(scorer)),
        "engine_version": ENGINE_VERSION,
        "opset": OPSET,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def cache_root(scorer: ClipScorer) -> Path:
    """Where the exports of this scorer's weights live (see the module docstring for the rule)."""
    spec = scorer.spec
    if spec.pretrained is None:
        return _temporary_root()
    weights = spec.weights_file
    if weights is not None and os.access(weights.parent, os.W_OK):
        return weights.parent / f"{weights.name}.semantify-engines"
    base = spec.cache_dir or os.environ.get(ENV_CACHE_DIR)
    if base:
        return Path(base).expanduser() / f"semantify-{CACHE_FOLDER}"
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(home) / "semantify" / CACHE_FOLDER


_TEMPORARY: list[Path] = []


def _temporary_root() -> Path:
    """One folder per process for random weights' exports, removed at exit (they are never reused)."""
    if not _TEMPORARY:
        folder = Path(tempfile.mkdtemp(prefix="semantify-clip-engines-"))
        atexit.register(shutil.rmtree, folder, True)
        _TEMPORARY.append(folder)
    return _TEMPORARY[0]


def export_files(scorer: ClipScorer) -> Path:
    """The folder holding this scorer's exports (created, with ``key.json`` saying what they are from)."""
    key = export_key(scorer)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", scorer.spec.model)
    folder = cache_root(scorer) / f"{label}-{digest}"
    if not (folder / "key.json").is_file():
        with atomic_output(folder / "key.json", "w") as stream:
            json.dump(key, stream, indent=2, sort_keys=True)
    return folder


# ------------------------------------------------------------------------------------------- choosing
@dataclass
class EngineChoice:
    """The engine a build uses, the checks that chose it, and what was said about the others."""

    requested: str
    engine: ImageEngine
    checks: list[Fidelity] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    encoded: list[np.ndarray] = field(default_factory=list)
    """The chosen engine's embeddings of the build's own checked batches (empty if none were encoded):
    a build uses them for its first batch instead of encoding those images a second time."""

    @property
    def name(self) -> str:
        return self.engine.name

    @property
    def check(self) -> Fidelity | None:
        """The passing check of the chosen engine (None for torch, the reference)."""
        return next((c for c in self.checks if c.engine == self.name and c.passed), None)

    def describe(self) -> str:
        check = self.check
        return f"CLIP image engine {self.name}" + (f": {check.describe()}" if check else " (the reference)")

    def to_json(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "engine": self.name,
            "checks": [check.to_json() for check in self.checks],
            "notes": list(self.notes),
        }


def choose_engine(
    scorer: ClipScorer,
    requested: str,
    batches: Sequence[np.ndarray],
    text_embeddings: np.ndarray,
    fallback: bool = True,
    say: Say | None = None,
    fixed: Sequence[np.ndarray] = (),
) -> EngineChoice:
    """The first of :func:`candidates` that runs here and passes its fidelity check on the images.

    ``batches`` are the build's own uint8 image batches, encoded afresh by both engines every time (each
    as one batch, so the comparison is one to one); ``fixed`` are batches that are the same every build
    (the model's probe renders), whose embeddings by each engine are kept on disk beside the exports
    (:func:`fixed_embeddings`). ``text_embeddings`` are the words the check ranks. With ``fallback=False``
    (a build that resumes a dataset, which must not mix engines) only ``requested`` is tried and a
    failure is an error.
    """
    say = say or log.warning
    order = candidates(requested) if fallback else (parse_engine(requested),)
    if order[0] == AUTO:
        raise ClipEngineError(
            "A dataset records the engine it was built with; 'auto' cannot be resumed as such."
        )
    choice = EngineChoice(requested=parse_engine(requested), engine=TorchEngine(scorer))
    own = [np.asarray(batch) for batch in batches if len(batch)]
    kept = [np.asarray(batch) for batch in fixed if len(batch)]
    reference: list[np.ndarray] | None = None
    for position, name in enumerate(order):
        following = order[position + 1] if position + 1 < len(order) else None
        if name == TORCH:
            choice.encoded = reference[: len(own)] if reference is not None else []
            return choice
        try:
            engine = load_engine(scorer, name, say)
        except ClipEngineError as error:
            _refuse(choice, f"CLIP engine {name} is not available here: {error}", following, say)
            continue
        if reference is None:
            torch_engine = TorchEngine(scorer)
            reference = [torch_engine.encode(batch, len(batch)) for batch in own]
            reference += [fixed_embeddings(scorer, torch_engine, batch) for batch in kept]
        candidate = [engine.encode(batch, len(batch)) for batch in own]
        candidate += [fixed_embeddings(scorer, engine, batch) for batch in kept]
        check = measure_fidelity(name, np.concatenate(reference), np.concatenate(candidate), text_embeddings)
        choice.checks.append(check)
        if check.passed:
            choice.engine = engine
            choice.encoded = candidate[: len(own)]
            return choice
        _refuse(choice, f"CLIP engine {name} failed its fidelity check: {check.describe()}", following, say)
    raise ClipEngineError(choice.notes[-1] if choice.notes else f"No CLIP engine among {order} can be used.")


def fixed_embeddings(scorer: ClipScorer, engine: ImageEngine, images: np.ndarray) -> np.ndarray:
    """``engine``'s embeddings of a batch that every build checks again (the model's probe renders).

    Kept in the scorer's export folder, whose key already holds the weights' checksum, the engine
    version and the torch and ONNX Runtime versions, under a name made of the engine and a checksum of
    the images' bytes: the same engine on the same weights and the same pixels gives the same numbers,
    so a later build reads them (the torch fp32 reference of 16 probes is about a second on 2 cores)
    instead of encoding them again. Different renders are different pixels, hence a different name.
    """
    images = np.ascontiguousarray(images)
    digest = hashlib.sha256(repr((images.shape, str(images.dtype))).encode() + images.tobytes())
    path = export_files(scorer) / f"fixed-{engine.name}-{digest.hexdigest()[:20]}.npy"
    expected = (len(images), scorer.embed_dim)
    if path.is_file():
        with contextlib.suppress(OSError, ValueError):
            kept = np.load(path, allow_pickle=False)
            if kept.shape == expected and kept.dtype == np.float32 and np.isfinite(kept).all():
                return kept
    embeddings = np.asarray(engine.encode(images, len(images)), dtype=np.float32)
    with (
        contextlib.suppress(OSError, SemantifyError),
        atomic_output(path) as stream,
    ):  # unwritable: costs time
        np.save(stream, embeddings, allow_pickle=False)
    return embeddings


def _refuse(choice: EngineChoice, reason: str, following: str | None, say: Say) -> None:
    """Record why an engine was passed over and say what happens instead."""
    note = reason + (f"; using {following} instead." if following else ".")
    choice.notes.append(note)
    if following:
        say(note)
