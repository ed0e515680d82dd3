"""CLIP scoring: how much each rendered image looks like each descriptor word.

Semantify (Gralnik et al., ICCV 2023) scores every render of a sampled shape against every descriptor
("fat", "tall", "smiling", ...) with CLIP, learns a mapper from those scores to shape coefficients, and uses
the scores as slider values.

Two score scales, both available here:

* **cosine** (the paper): ``cos(image_embedding, text_embedding)`` in [-1, 1]; for CLIP on renders it
  sits in a narrow band around 0.2 - 0.3. :meth:`ClipScorer.scores`.
* **logits** (the reference code): ``logit_scale * cosine`` with ``logit_scale = 100``, the value of
  ``model.logit_scale.exp()`` for OpenAI's ViT-B/32 that ``logits_per_image`` uses. The reference app's
  slider units are these logits (range 0-50, default 20), so the product keeps the fixed 100 for every
  model rather than a model's own learned scale, so that slider ranges mean the same thing whatever CLIP
  model is used. :meth:`ClipScorer.logits`.

Multi-view renders (front and side) are scored per view and the scores averaged over the views, as the
reference code does: :func:`average_view_scores` / :meth:`ClipScorer.multiview_scores`.

Model loading follows open_clip's own conventions (``create_model_and_transforms(model, pretrained=...)``):
``pretrained`` is a tag open_clip knows for the model ("openai", "laion2b_s34b_b79k", ...), a local weights
file, or an ``hf-hub:org/name`` model id. Weights are located *before* the model is built: from the local
file, or from open_clip's / Hugging Face's local cache; if they are not cached and the network is not
reachable (checked in about two seconds, or ``HF_HUB_OFFLINE=1``), :class:`ClipWeightsError` says at once how
to provide them, instead of open_clip's ~45 s DNS timeout followed by an obscure error.

torch and open_clip are imported only inside functions, never at module import: the Blender add-on imports
this module while registering and must not pay for torch then.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ClipError, ClipModelError, ClipWeightsError

log = logging.getLogger(__name__)

ENV_MODEL = "SEMANTIFY_CLIP_MODEL"
ENV_PRETRAINED = "SEMANTIFY_CLIP_PRETRAINED"
ENV_DEVICE = "SEMANTIFY_CLIP_DEVICE"
ENV_CACHE_DIR = "SEMANTIFY_CLIP_CACHE_DIR"

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "openai"
NO_WEIGHTS = "none"
"""``SEMANTIFY_CLIP_PRETRAINED=none``: a randomly initialised model, for benchmarks and mechanics only."""

REFERENCE_LOGIT_SCALE = 100.0
"""``exp(logit_scale)`` of OpenAI's ViT-B/32: the factor between the reference code's logits and cosine."""

HF_HUB_SCHEMA = "hf-hub:"
LOCAL_DIR_SCHEMA = "local-dir:"
WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors", ".npz", ".ckpt")
NETWORK_PROBE_TIMEOUT_S = 2.0

PROMPT_TEMPLATES: dict[str, str] = {
    "body": "a photo of a {} person",
    "head-shape": "a photo of a {} face",
    "face-expression": "a photo of a {} face",
    "hand": "a photo of a {} hand",
    "animal": "a photo of a {}",
    "custom": "a photo of a {} object",
}
"""Prompt template per model kind (the kinds of :data:`semantify_engine.models.MODEL_KINDS`).

The paper wraps each descriptor in a sentence because CLIP was trained on captions, not single words.
Animal descriptors are species names ("lion", "cow"), hence no noun after them. Override per call with
``template_for(kind, overrides)`` or by passing a template to :meth:`ClipScorer.scores`.
"""

_DOWNLOAD_COMMAND = 'python -c "import open_clip; open_clip.create_model_and_transforms({args})"'


# --------------------------------------------------------------------------------------------------
# Specification of which CLIP to use
# --------------------------------------------------------------------------------------------------


def _is_file_like(pretrained: str) -> bool:
    """Whether ``pretrained`` names a file rather than an open_clip tag (tags have no slashes or suffixes)."""
    if pretrained.startswith(HF_HUB_SCHEMA):
        return False
    return (
        "/" in pretrained
        or os.sep in pretrained
        or pretrained.startswith(("~", "."))
        or pretrained.lower().endswith(WEIGHT_SUFFIXES)
        or os.path.isfile(pretrained)
    )


@dataclass(frozen=True)
class ClipSpec:
    """Which CLIP model to load, in open_clip's terms.

    ``model`` is an open_clip architecture name ("ViT-B-32"; "ViT-B/32" is accepted as open_clip does), an
    ``hf-hub:org/name`` id or a ``local-dir:/folder``. ``pretrained`` is a tag open_clip knows for that
    architecture ("openai"), a local weights file, an ``hf-hub:org/name`` id (then it names the model and
    ``model`` is ignored, as in open_clip), or None for random weights (benchmarks and tests only).

    A custom architecture can be used by registering its config with ``open_clip.add_model_config`` or by
    putting ``<model>.json`` (open_clip's config format) beside the weights file.

    OpenAI's weights were trained with QuickGELU: for a local copy of them, name the architecture
    ``ViT-B-32-quickgelu`` (with the tag "openai" this is taken care of automatically).
    """

    model: str = DEFAULT_MODEL
    pretrained: str | None = DEFAULT_PRETRAINED
    device: str = "cpu"
    cache_dir: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClipSpec:
        """Read ``SEMANTIFY_CLIP_MODEL`` / ``_PRETRAINED`` / ``_DEVICE`` / ``_CACHE_DIR``.

        Defaults: ViT-B-32 with the "openai" tag, the reference code's model. ``_PRETRAINED=none`` gives
        random weights (benchmarks only).
        """
        env = os.environ if environ is None else environ
        pretrained: str | None = env.get(ENV_PRETRAINED) or DEFAULT_PRETRAINED
        if pretrained.strip().lower() == NO_WEIGHTS:
            pretrained = None
        return cls(
            model=env.get(ENV_MODEL) or DEFAULT_MODEL,
            pretrained=pretrained,
            device=env.get(ENV_DEVICE) or "cpu",
            cache_dir=env.get(ENV_CACHE_DIR) or None,
        )

    @property
    def weights_file(self) -> Path | None:
        """The local weights file named by ``pretrained``, or None when it is a tag / hub id / absent."""
        if self.pretrained is None or not _is_file_like(self.pretrained):
            return None
        return Path(self.pretrained).expanduser()

    def normalized(self) -> ClipSpec:
        """The same spec with a file path made absolute, so that equal requests share one loaded model."""
        file = self.weights_file
        if file is None:
            return self
        return replace(self, pretrained=str(file.resolve()))

    def describe(self) -> str:
        """A short human description for messages and logs."""
        return f"CLIP model '{self.model}' with pretrained={self.pretrained!r}"


# --------------------------------------------------------------------------------------------------
# Weight resolution (before anything is built, never a long network wait)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _LoadPlan:
    """What to hand to open_clip, decided before the model is built."""

    model_name: str
    pretrained: str | None
    cache_dir: str | None
    force_quick_gelu: bool = False
    offline: bool = False


def _hf_cache_dir(cache_dir: str | None) -> str:
    """Where Hugging Face's hub cache lives (``HF_HUB_CACHE``, ``HF_HOME/hub``, ~/.cache/huggingface/hub)."""
    if cache_dir:
        return cache_dir
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _url_cache_dir(cache_dir: str | None) -> str:
    """The folder open_clip downloads plain-URL weights to (when huggingface_hub is not installed)."""
    return cache_dir or os.path.expanduser("~/.cache/clip")


def _hub_offline_requested() -> bool:
    """True when the user told Hugging Face not to use the network (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    return False


@contextlib.contextmanager
def _hub_offline(enabled: bool) -> Iterator[None]:
    """Put huggingface_hub in offline mode for one block, so that cached files load without any request.

    huggingface_hub reads HF_HUB_OFFLINE once at import, so the module constant is set as well as the
    environment; both are restored afterwards so a later download in the same process still works.
    """
    if not enabled:
        yield
        return
    from huggingface_hub import constants

    old_env = os.environ.get("HF_HUB_OFFLINE")
    old_const = constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old_const
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env


def _probe_target(host: str, port: int) -> tuple[str, int]:
    """Where a connection would really go: the HTTPS proxy when one is configured, else the host itself."""
    import urllib.request  # pulls in http.client and ssl: only when a probe is needed

    proxy = urllib.request.getproxies().get("https")
    if proxy and not urllib.request.proxy_bypass(host):
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parsed.hostname:
            return parsed.hostname, parsed.port or 80
    return host, port


def _network_reachable(host: str, port: int = 443, timeout: float = NETWORK_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host`` can be opened within ``timeout`` seconds, DNS included.

    ``host`` may carry its own port (``127.0.0.1:8000``, a mirror's). The connection runs in a daemon
    thread because name resolution ignores socket timeouts: on a machine without DNS it can block for
    ~45 s, which is exactly the wait this check exists to avoid.
    """
    name, _, explicit = host.rpartition(":")
    if name and explicit.isdigit():
        host, port = name, int(explicit)
    target = _probe_target(host, port)
    outcome: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection(target, timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    worker = threading.Thread(target=attempt, name="semantify-network-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(outcome) and outcome[0]


def _hub_host() -> str:
    """Host of the Hugging Face endpoint in use, with its port when it has one (HF_ENDPOINT mirrors)."""
    from huggingface_hub import constants

    parts = urllib.parse.urlsplit(constants.ENDPOINT)
    host = parts.hostname or "huggingface.co"
    return f"{host}:{parts.port}" if parts.port else host


def _hf_weight_candidates(filename: str) -> list[str]:
    """File names open_clip would fetch from a hub repo, in its order (safetensors first)."""
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    filename = filename or HF_WEIGHTS_NAME
    candidates = []
    if filename == HF_WEIGHTS_NAME:
        candidates.append(HF_SAFE_WEIGHTS_NAME)
    elif filename.endswith((".bin", ".pth")):
        candidates.append(filename[:-4] + ".safetensors")
    return [*candidates, filename]


def _cached_hf_file(repo_id: str, filenames: Sequence[str], cache_dir: str | None) -> str | None:
    """The first of ``filenames`` present in the local Hugging Face cache for ``repo_id``, or None."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def _known_tags(model_name: str) -> list[str]:
    """Pretrained tags open_clip lists for an architecture."""
    import open_clip

    return list(open_clip.list_pretrained_tags_by_model(model_name))


def _cached_tag_weights(model_name: str, tag: str, cache_dir: str | None) -> tuple[str | None, str]:
    """Find the weights of an open_clip tag in the local cache, the way open_clip would look them up.

    Returns the cached file (or None) and the host a download would contact.
    """
    from open_clip.pretrained import get_pretrained_cfg, has_hf_hub

    cfg = get_pretrained_cfg(model_name, tag)
    if "file" in cfg:
        return (cfg["file"] if os.path.isfile(cfg["file"]) else None), ""
    hub_entry, url = cfg.get("hf_hub", ""), cfg.get("url", "")
    if hub_entry and has_hf_hub():
        repo_id, filename = os.path.split(hub_entry)
        return _cached_hf_file(repo_id, _hf_weight_candidates(filename), cache_dir), _hub_host()
    target = os.path.join(_url_cache_dir(cache_dir), os.path.basename(url))
    return (target if os.path.isfile(target) else None), (urllib.parse.urlsplit(url).hostname or "")


def _clean_model_name(model: str) -> str:
    """open_clip's own normalisation of architecture names ("ViT-B/32" -> "ViT-B-32")."""
    return model.replace("/", "-")


def _register_config_beside(weights: Path, model_name: str) -> None:
    """Register ``<model>.json`` lying beside the weights file, so custom architectures need no code."""
    import open_clip

    config = weights.parent / f"{model_name}.json"
    if config.is_file():
        open_clip.add_model_config(config)


def _require_known_architecture(model_name: str, weights: Path | None) -> None:
    """Fail early, with the ways to fix it, when open_clip has no config for ``model_name``."""
    import open_clip

    if model_name in open_clip.list_models():
        return
    beside = f" or put '{model_name}.json' beside {weights}" if weights else ""
    raise ClipModelError(
        f"open_clip knows no CLIP architecture named '{model_name}'. Use one of open_clip.list_models() "
        f"(e.g. ViT-B-32), register a config with open_clip.add_model_config(path){beside}."
    )


def _how_to_provide(spec: ClipSpec, cache_hint: str) -> str:
    """The instructions that end every missing-weights message."""
    if spec.pretrained and spec.pretrained.startswith(HF_HUB_SCHEMA):
        args = repr(spec.pretrained)
    elif spec.model.startswith(HF_HUB_SCHEMA):
        args = repr(spec.model)
    else:
        args = f"{spec.model!r}, pretrained={spec.pretrained!r}"
    return (
        "Provide the weights in one of these ways:\n"
        f"  1. On a machine with internet access, download them once into open_clip's cache:\n"
        f"       {_DOWNLOAD_COMMAND.format(args=args)}\n"
        f"     then copy the cache folder ({cache_hint}) to the same place on this machine, or point\n"
        "     HF_HUB_CACHE / HF_HOME (or SEMANTIFY_CLIP_CACHE_DIR) to where you put it.\n"
        "  2. Use a local weights file: --pretrained /path/to/file.bin, or\n"
        "     SEMANTIFY_CLIP_PRETRAINED=/path/to/file.bin, with --clip / SEMANTIFY_CLIP_MODEL naming its\n"
        "     architecture (ViT-B-32-quickgelu for OpenAI's ViT-B/32 weights); in Blender: Preferences >\n"
        "     Semantify > Use a Local File."
    )


def _missing_weights(spec: ClipSpec, cache_hint: str, reason: str) -> ClipWeightsError:
    """The error for weights that are neither cached nor downloadable right now."""
    return ClipWeightsError(
        f"No weights for {spec.describe()}: they are not in the local cache ({cache_hint}) and {reason}.\n"
        + _how_to_provide(spec, cache_hint)
    )


def _require_download_possible(spec: ClipSpec, host: str, cache_hint: str) -> None:
    """Raise :class:`ClipWeightsError` at once when a download cannot succeed (offline mode or no network)."""
    if _hub_offline_requested():
        raise _missing_weights(spec, cache_hint, "HF_HUB_OFFLINE is set, so nothing may be downloaded")
    if host and not _network_reachable(host):
        reason = f"{host} cannot be reached from this machine (tried for {NETWORK_PROBE_TIMEOUT_S:.0f} s)"
        raise _missing_weights(spec, cache_hint, reason)


def _plan_local_file(spec: ClipSpec, weights: Path) -> _LoadPlan:
    """A weights file on disk: it must exist, and its architecture must be known or described beside it."""
    if not weights.is_file():
        raise ClipWeightsError(
            f"The CLIP weights file {weights} does not exist (from pretrained={spec.pretrained!r}). "
            "Check the path given with --pretrained / SEMANTIFY_CLIP_PRETRAINED.\n"
            + _how_to_provide(spec, _hf_cache_dir(spec.cache_dir))
        )
    model_name = _clean_model_name(spec.model)
    _register_config_beside(weights, model_name)
    _require_known_architecture(model_name, weights)
    return _LoadPlan(model_name, str(weights), spec.cache_dir)


def _plan_hf_hub(spec: ClipSpec, hub_id: str) -> _LoadPlan:
    """An ``hf-hub:org/name`` model: its config and weights come from the hub cache, or a reachable hub."""
    from open_clip.constants import HF_CONFIG_NAME

    repo_id = hub_id[len(HF_HUB_SCHEMA) :]
    config = _cached_hf_file(repo_id, [HF_CONFIG_NAME], spec.cache_dir)
    weights = _cached_hf_file(repo_id, _hf_weight_candidates(""), spec.cache_dir)
    if config and weights:
        return _LoadPlan(hub_id, None, spec.cache_dir, offline=True)
    _require_download_possible(spec, _hub_host(), _hf_cache_dir(spec.cache_dir))
    return _LoadPlan(hub_id, None, spec.cache_dir)


def _plan_tag(spec: ClipSpec, tag: str) -> _LoadPlan:
    """An open_clip pretrained tag ("openai"): cached file, or a download that can actually happen."""
    from open_clip.pretrained import get_pretrained_cfg

    model_name = _clean_model_name(spec.model)
    _require_known_architecture(model_name, None)
    cfg = get_pretrained_cfg(model_name, tag)
    if not cfg:
        raise ClipWeightsError(
            f"pretrained={tag!r} is neither a weights file nor a tag open_clip knows for '{model_name}' "
            f"(known tags: {', '.join(_known_tags(model_name)) or 'none'})."
        )
    import open_clip

    quick_gelu = bool(cfg.get("quick_gelu")) and not open_clip.get_model_config(model_name).get("quick_gelu")
    cached, host = _cached_tag_weights(model_name, tag, spec.cache_dir)
    if cached:
        return _LoadPlan(model_name, tag, spec.cache_dir, force_quick_gelu=quick_gelu, offline=True)
    hint = _hf_cache_dir(spec.cache_dir) if host == _hub_host() else _url_cache_dir(spec.cache_dir)
    _require_download_possible(spec, host, hint)
    return _LoadPlan(model_name, tag, spec.cache_dir, force_quick_gelu=quick_gelu)


def _plan_load(spec: ClipSpec) -> _LoadPlan:
    """Decide how to load ``spec`` without touching the network for longer than the quick probe."""
    from ..compat.torchvision_ops import ensure_torchvision_importable

    ensure_torchvision_importable()
    if spec.pretrained and spec.pretrained.startswith(HF_HUB_SCHEMA):
        return _plan_hf_hub(spec, spec.pretrained)
    if spec.model.startswith(HF_HUB_SCHEMA):
        return _plan_hf_hub(spec, spec.model)
    if spec.model.startswith(LOCAL_DIR_SCHEMA):
        folder = Path(spec.model[len(LOCAL_DIR_SCHEMA) :]).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise ClipWeightsError(f"{folder} holds no open_clip_config.json (from model={spec.model!r}).")
        return _LoadPlan(spec.model, None, spec.cache_dir)
    weights = spec.weights_file
    if weights is not None:
        return _plan_local_file(spec, weights)
    if spec.pretrained is None:
        model_name = _clean_model_name(spec.model)
        _require_known_architecture(model_name, None)
        log.warning("%s: random weights, scores are meaningless (benchmarks and tests only)", spec.describe())
        return _LoadPlan(model_name, None, spec.cache_dir)
    return _plan_tag(spec, spec.pretrained)


def _load_failures() -> tuple[type[BaseException], ...]:
    """What open_clip raises for an unreadable, corrupt or mismatched weights file (all user-fixable).

    It uses ``assert`` for shape mismatches, pickle for .bin/.pt files and safetensors for .safetensors.
    """
    import pickle

    failures: tuple[type[BaseException], ...] = (
        RuntimeError,
        EOFError,  # a truncated legacy (pickle) checkpoint
        IndexError,  # random bytes read as a pickle (torch.load's unpickler pops an empty stack)
        OSError,
        ValueError,
        KeyError,
        AssertionError,
        pickle.UnpicklingError,
    )
    try:
        from safetensors import SafetensorError
    except ImportError:
        return failures
    return (*failures, SafetensorError)


def _build(plan: _LoadPlan, spec: ClipSpec) -> tuple[Any, Any, Any]:
    """Create model, eval transform and tokenizer through open_clip, turning its failures into user errors."""
    import open_clip

    try:
        with _hub_offline(plan.offline):
            model, _, preprocess = open_clip.create_model_and_transforms(
                plan.model_name,
                pretrained=plan.pretrained,
                device=spec.device,
                force_quick_gelu=plan.force_quick_gelu,
                cache_dir=plan.cache_dir,
            )
            tokenizer = open_clip.get_tokenizer(plan.model_name, cache_dir=plan.cache_dir)
    except _load_failures() as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "state_dict" in str(exc):  # torch lists every mismatched tensor; one sentence says it
            detail = f"its tensors do not fit the architecture '{plan.model_name}'"
        raise ClipWeightsError(
            f"Could not load {spec.describe()}: {detail}. If the file holds weights for another "
            "architecture, name that architecture with --clip / SEMANTIFY_CLIP_MODEL (in Blender: the "
            "preference 'CLIP Model'); a truncated or damaged file must be downloaded again."
        ) from exc
    model.eval()
    return model, preprocess, tokenizer


# --------------------------------------------------------------------------------------------------
# Pure numpy helpers (no model needed)
# --------------------------------------------------------------------------------------------------


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero) in float32: CLIP compares directions only."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0).astype(np.float32)


def cosine_similarity(image_embeddings: np.ndarray, text_embeddings: np.ndarray) -> np.ndarray:
    """(N, D) x (M, D) -> (N, M) cosine similarities; inputs are normalised here, so any scale works."""
    images, texts = _as_2d(image_embeddings, "image embeddings"), _as_2d(text_embeddings, "text embeddings")
    if images.shape[1] != texts.shape[1]:
        raise ClipError(f"embedding sizes differ: images have {images.shape[1]}, texts {texts.shape[1]}")
    return l2_normalize(images) @ l2_normalize(texts).T


def logits_from_cosine(cosine: np.ndarray, logit_scale: float = REFERENCE_LOGIT_SCALE) -> np.ndarray:
    """The reference code's CLIP logits: ``logit_scale * cosine`` (100 x cosine for OpenAI's ViT-B/32)."""
    return (np.asarray(cosine, dtype=np.float32) * np.float32(logit_scale)).astype(np.float32)


def average_view_scores(view_embeddings: np.ndarray, text_embeddings: np.ndarray) -> np.ndarray:
    """(N, V, D) image embeddings of V views x (M, D) texts -> (N, M) cosine averaged over the views.

    Each view is scored on its own and the scores averaged (the reference code's way), which is not the
    same as scoring the mean embedding: a view that matches a word strongly is not diluted by normalisation.
    """
    views = np.asarray(view_embeddings, dtype=np.float32)
    if views.ndim != 3:
        raise ClipError(f"view embeddings must have shape (N, views, D), got {views.shape}")
    n, v, d = views.shape
    per_view = cosine_similarity(views.reshape(n * v, d), text_embeddings)
    return per_view.reshape(n, v, -1).mean(axis=1)


def _as_2d(x: np.ndarray, what: str) -> np.ndarray:
    """``x`` as a float32 (rows, D) array, or a clear error."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise ClipError(f"{what} must have shape (rows, D), got {arr.shape}")
    return arr


def template_for(kind: str, overrides: Mapping[str, str] | None = None) -> str:
    """The prompt template for a model kind, ``overrides`` first, then :data:`PROMPT_TEMPLATES`."""
    table = {**PROMPT_TEMPLATES, **(overrides or {})}
    if kind not in table:
        raise ClipError(f"no prompt template for model kind '{kind}' (known: {', '.join(sorted(table))})")
    return _check_template(table[kind])


def _check_template(template: str) -> str:
    """A template must hold exactly one ``{}``, where the descriptor goes."""
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ClipError(f"a prompt template needs exactly one '{{}}' for the word, got {template!r}")
    return template


def prompts(words: Sequence[str], template: str = "{}") -> list[str]:
    """Fill ``template`` with each word: ``prompts(["fat"], "a photo of a {} person")``."""
    if isinstance(words, str):
        raise ClipError(f"words must be a list of strings, got the single string {words!r}")
    template = _check_template(template)
    return [template.replace("{}", str(word)) for word in words]


# --------------------------------------------------------------------------------------------------
# The scorer
# --------------------------------------------------------------------------------------------------


class ClipScorer:
    """A loaded CLIP model with batched, normalised encoders and a text-embedding cache.

    Obtain one with :func:`get_scorer` (loads once per process per spec); the constructor takes parts that
    are already built. Not meant for concurrent use from several threads.
    """

    logit_scale: float = REFERENCE_LOGIT_SCALE

    def __init__(self, spec: ClipSpec, model: Any, preprocess: Any, tokenizer: Any) -> None:
        self.spec = spec
        self._model = model
        self._preprocess = preprocess
        self._tokenizer = tokenizer
        self._text_cache: dict[str, np.ndarray] = {}
        self.texts_encoded = 0
        """How many strings went through the text encoder (cache hits do not count)."""
        self.embed_dim = int(self._probe_embed_dim())

    @classmethod
    def load(cls, spec: ClipSpec) -> ClipScorer:
        """Resolve weights, build the model and wrap it; prefer :func:`get_scorer`, which caches."""
        plan = _plan_load(spec)
        return cls(spec, *_build(plan, spec))

    def _probe_embed_dim(self) -> int:
        """Embedding width: the image tower's output size, or one text forward pass when it has none."""
        output_dim = getattr(getattr(self._model, "visual", None), "output_dim", None)
        if isinstance(output_dim, int):
            return output_dim
        import torch

        with torch.inference_mode():
            return int(self._model.encode_text(self._tokenizer(["a"]).to(self.spec.device)).shape[-1])

    @property
    def model_logit_scale(self) -> float:
        """The model's own learned ``exp(logit_scale)`` (100 for OpenAI CLIP), for information."""
        return float(self._model.logit_scale.exp().item())

    @property
    def text_cache_size(self) -> int:
        """Number of distinct strings whose embeddings are cached."""
        return len(self._text_cache)

    # -- images --------------------------------------------------------------------------------

    def encode_images(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB images -> (N, D) float32 unit vectors, through the model's own preprocess.

        Images of any size are resized and centre-cropped by open_clip's eval transform, exactly as for
        the weights' training data; batching bounds memory without changing results.
        """
        arr = _check_images(images)
        if len(arr) == 0:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        step = max(1, int(batch_size))
        chunks = [self._encode_image_batch(arr[i : i + step]) for i in range(0, len(arr), step)]
        return np.concatenate(chunks, axis=0)

    def preprocess_images(self, batch: np.ndarray) -> Any:
        """uint8 (n, H, W, 3) images -> the image tower's input, a float tensor (n, 3, S, S) on the CPU.

        Every image engine (:mod:`.engines`) takes exactly this input, so engines differ only in how they
        run the tower and their embeddings can be compared one to one.
        """
        import torch
        from PIL import Image

        batch = _check_images(batch)
        fast = self._pixels_at_input_size(batch)
        if fast is not None:
            return fast
        return torch.stack([self._preprocess(Image.fromarray(image)) for image in batch])

    def _pixels_at_input_size(self, batch: np.ndarray) -> Any:
        """open_clip's standard eval transform in one tensor operation, for images already at its size.

        Renders come at 224², the tower's input: then Resize and CenterCrop change nothing, and what is
        left (to float / 255, then (x - mean) / std) is done here for the whole batch with the same float
        operations as torchvision's, so the result is the same to the bit (tested) in a fraction of the
        time (PIL one image at a time took about 4 ms an image). None when the transform is another.
        """
        import torch

        steps = list(getattr(self._preprocess, "transforms", ()))
        names = [type(step).__name__ for step in steps]
        if names != ["Resize", "CenterCrop", "MaybeConvertMode", "MaybeToTensor", "Normalize"]:
            return None
        resize, crop, normalize = steps[0], steps[1], steps[4]
        side = batch.shape[1]
        if batch.shape[2] != side or resize.size not in (side, [side], (side,)) or resize.max_size:
            return None
        if tuple(crop.size) != (side, side) or getattr(steps[2], "mode", "RGB") != "RGB":
            return None
        pixels = torch.from_numpy(np.require(batch, requirements=["C", "W"])).permute(0, 3, 1, 2).contiguous()
        pixels = pixels.to(dtype=torch.get_default_dtype()).div(255)
        mean = torch.as_tensor(normalize.mean, dtype=pixels.dtype).view(1, -1, 1, 1)
        std = torch.as_tensor(normalize.std, dtype=pixels.dtype).view(1, -1, 1, 1)
        return pixels.sub_(mean).div_(std)

    @property
    def model(self) -> Any:
        """The open_clip model itself (for exporting its image tower; see :mod:`.engines`)."""
        return self._model

    def _encode_image_batch(self, batch: np.ndarray) -> np.ndarray:
        """One forward pass of the image tower (inference mode: no autograd bookkeeping at all)."""
        import torch

        pixels = self.preprocess_images(batch).to(self.spec.device)
        with torch.inference_mode():
            features = self._model.encode_image(pixels).float()
            features = torch.nn.functional.normalize(features, dim=-1)
        return features.cpu().numpy().astype(np.float32, copy=False)

    # -- texts ---------------------------------------------------------------------------------

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Strings -> (M, D) float32 unit vectors; each distinct string is encoded once per scorer."""
        if isinstance(texts, str):
            raise ClipError(f"texts must be a list of strings, got the single string {texts!r}")
        texts = [str(text) for text in texts]
        missing = list(dict.fromkeys(text for text in texts if text not in self._text_cache))
        step = max(1, int(batch_size))
        for start in range(0, len(missing), step):
            self._encode_text_batch(missing[start : start + step])
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        return np.stack([self._text_cache[text] for text in texts])

    def _encode_text_batch(self, texts: list[str]) -> None:
        """Encode strings not yet cached and store each row read-only (callers get copies via np.stack)."""
        import torch

        tokens = self._tokenizer(texts).to(self.spec.device)
        with torch.inference_mode():
            features = torch.nn.functional.normalize(self._model.encode_text(tokens).float(), dim=-1)
        rows = features.cpu().numpy().astype(np.float32, copy=False)
        for text, row in zip(texts, rows, strict=True):
            row = row.copy()
            row.setflags(write=False)
            self._text_cache[text] = row
        self.texts_encoded += len(texts)

    # -- scores --------------------------------------------------------------------------------

    @staticmethod
    def prompts(words: Sequence[str], template: str = "{}") -> list[str]:
        """See :func:`prompts`."""
        return prompts(words, template)

    def scores(self, image_embeddings: np.ndarray, words: Sequence[str], template: str = "{}") -> np.ndarray:
        """(N, D) image embeddings x words -> (N, M) cosine similarity to ``template`` filled with each."""
        return cosine_similarity(image_embeddings, self.encode_texts(prompts(words, template)))

    def logits(self, image_embeddings: np.ndarray, words: Sequence[str], template: str = "{}") -> np.ndarray:
        """The reference code's scale: ``logit_scale`` (100) x :meth:`scores`."""
        return logits_from_cosine(self.scores(image_embeddings, words, template), self.logit_scale)

    def multiview_scores(
        self, view_embeddings: np.ndarray, words: Sequence[str], template: str = "{}", as_logits: bool = False
    ) -> np.ndarray:
        """(N, views, D) embeddings -> (N, M) scores averaged over the views (cosine, or logits if asked)."""
        cosine = average_view_scores(view_embeddings, self.encode_texts(prompts(words, template)))
        return logits_from_cosine(cosine, self.logit_scale) if as_logits else cosine


def _check_images(images: np.ndarray) -> np.ndarray:
    """Validate a uint8 (N, H, W, 3) batch; anything else is a caller's mistake worth a clear message."""
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise ClipError(f"images must be uint8 RGB, got dtype {arr.dtype}")
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ClipError(f"images must have shape (N, H, W, 3), got {arr.shape}")
    return arr


# --------------------------------------------------------------------------------------------------
# One model per process
# --------------------------------------------------------------------------------------------------

_SCORERS: dict[ClipSpec, ClipScorer] = {}
_SCORERS_LOCK = threading.Lock()


def get_scorer(spec: ClipSpec | None = None) -> ClipScorer:
    """The process-wide scorer for ``spec`` (default: :meth:`ClipSpec.from_env`), loaded on first use.

    Loading CLIP costs seconds and ~1.5 GB for ViT-B-32, so every caller in a process shares one.
    """
    key = (spec or ClipSpec.from_env()).normalized()
    with _SCORERS_LOCK:
        scorer = _SCORERS.get(key)
        if scorer is None:
            scorer = ClipScorer.load(key)
            _SCORERS[key] = scorer
        return scorer


def clear_scorers() -> None:
    """Forget loaded scorers (tests, or to free memory); the next :func:`get_scorer` loads again."""
    with _SCORERS_LOCK:
        _SCORERS.clear()
