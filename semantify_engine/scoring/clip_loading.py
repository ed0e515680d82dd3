"""From a :class:`ClipSpec` to a built open_clip model: the load plan, then open_clip's own factory.

Model loading follows open_clip's conventions (``create_model_and_transforms(model, pretrained=...)``):
``pretrained`` is a tag open_clip knows for the model ("openai", "laion2b_s34b_b79k", ...), a local weights
file, or an ``hf-hub:org/name`` model id. Weights are located *before* the model is built
(:func:`_plan_load`): from the local file, or from open_clip's / Hugging Face's local cache
(:mod:`.clip_cache`); if they are not cached and the network is not reachable (checked in about two
seconds, or ``HF_HUB_OFFLINE=1``: :mod:`.clip_network`), :class:`ClipWeightsError` says at once how to
provide them, instead of open_clip's ~45 s DNS timeout followed by an obscure error. :func:`_build` then
hands the plan to open_clip and turns its failures into errors a user can act on.

The scorer (:meth:`.clip.ClipScorer.load`) and ``semantify clip check`` (:mod:`.weights`) both load
through here. torch and open_clip are imported inside functions only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ClipModelError, ClipWeightsError, first_line
from .clip_cache import (
    _cached_tag_weights,
    _hf_cache_dir,
    _hub_host,
    _hub_offline,
    _hub_remote,
    _url_cache_dir,
)
from .clip_network import HOW_TO_PARAMETERS, _how_to_provide, _require_download_possible
from .clip_spec import LOCAL_DIR_CONFIG, ClipSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _LoadPlan:
    """What to hand to open_clip, decided before the model is built."""

    model_name: str
    pretrained: str | None
    cache_dir: str | None
    force_quick_gelu: bool = False
    offline: bool = False


def _known_tags(model_name: str) -> list[str]:
    """Pretrained tags open_clip lists for an architecture."""
    import open_clip

    return list(open_clip.list_pretrained_tags_by_model(model_name))


def _unknown_tag(model_name: str, tag: str | None) -> ClipWeightsError:
    """The error for a ``pretrained`` that is neither a file nor one of the architecture's tags."""
    return ClipWeightsError(
        f"pretrained={tag!r} is neither a weights file nor a tag open_clip knows for '{model_name}' "
        f"(known tags: {', '.join(_known_tags(model_name)) or 'none'})."
    )


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


def _plan_local_file(spec: ClipSpec, weights: Path) -> _LoadPlan:
    """A weights file on disk: it must exist, and its architecture must be known or described beside it."""
    if not weights.is_file():
        raise ClipWeightsError(
            f"The CLIP weights file {weights} does not exist (from pretrained={spec.pretrained!r}). "
            "Check the path given with {pretrained} / SEMANTIFY_CLIP_PRETRAINED.\n"
            + _how_to_provide(spec, _hf_cache_dir(spec.cache_dir)),
            parameters=HOW_TO_PARAMETERS,
        )
    model_name = _clean_model_name(spec.model)
    _register_config_beside(weights, model_name)
    _require_known_architecture(model_name, weights)
    return _LoadPlan(model_name, str(weights), spec.cache_dir)


def _plan_hf_hub(spec: ClipSpec, hub_id: str) -> _LoadPlan:
    """An ``hf-hub:org/name`` model: its config and weights come from the hub cache, or a reachable hub."""
    remote = _hub_remote(hub_id, spec.cache_dir)
    if remote.cached():
        return _LoadPlan(hub_id, None, spec.cache_dir, offline=True)
    _require_download_possible(spec, remote.host, remote.cache_dir)
    return _LoadPlan(hub_id, None, spec.cache_dir)


def _plan_tag(spec: ClipSpec, tag: str) -> _LoadPlan:
    """An open_clip pretrained tag ("openai"): cached file, or a download that can actually happen."""
    from open_clip.pretrained import get_pretrained_cfg

    model_name = _clean_model_name(spec.model)
    _require_known_architecture(model_name, None)
    cfg = get_pretrained_cfg(model_name, tag)
    if not cfg:
        raise _unknown_tag(model_name, tag)
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
    hub_id, folder = spec.hub_id, spec.local_dir
    if hub_id:
        return _plan_hf_hub(spec, hub_id)
    if folder is not None:
        if not (folder / LOCAL_DIR_CONFIG).is_file():
            raise ClipWeightsError(f"{folder} holds no {LOCAL_DIR_CONFIG} (from model={spec.model!r}).")
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
        detail = first_line(exc)
        if "state_dict" in str(exc):  # torch lists every mismatched tensor; one sentence says it
            detail = f"its tensors do not fit the architecture '{plan.model_name}'"
        raise ClipWeightsError(
            f"Could not load {spec.describe()}: {detail}. If the file holds weights for another "
            "architecture, name that architecture with {clip} / SEMANTIFY_CLIP_MODEL; a truncated or "
            "damaged file must be downloaded again.",
            parameters=("clip",),
        ) from exc
    model.eval()
    return model, preprocess, tokenizer
