"""Where CLIP weights are cached and where a download would fetch them, looked up the way open_clip does.

open_clip keeps this apart from building models (its ``pretrained.py`` beside ``factory.py``), and so does
semantify: loading (:mod:`.clip_loading`) asks here whether a spec's weights are already on this machine
before anything is built, and ``semantify clip status | download`` (:mod:`.weights`) asks the same
questions of the same functions, so "present" there means "loads offline" here. Open_clip's tags and
``hf-hub:`` ids live in Hugging Face's hub cache, plain URLs in open_clip's own folder.

huggingface_hub and open_clip are imported inside functions only, like everywhere in scoring.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .clip_spec import HF_HUB_SCHEMA


def _hf_cache_dir(cache_dir: str | None) -> str:
    """Where Hugging Face's hub cache lives (``HF_HUB_CACHE``, ``HF_HOME/hub``, ~/.cache/huggingface/hub)."""
    if cache_dir:
        return cache_dir
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _url_cache_dir(cache_dir: str | None) -> str:
    """The folder open_clip downloads plain-URL weights to (when huggingface_hub is not installed)."""
    return cache_dir or os.path.expanduser("~/.cache/clip")


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


@dataclass(frozen=True)
class _Remote:
    """Where weights come from and are cached: files of a hub repository (each group: alternatives, first
    found wins) or one plain URL."""

    host: str
    cache_dir: str
    hub_repo: str = ""
    hub_files: tuple[tuple[str, ...], ...] = ()
    url: str = ""

    def describe(self) -> str:
        if self.url:
            return self.url
        return f"{HF_HUB_SCHEMA}{self.hub_repo} ({', '.join(group[-1] for group in self.hub_files)})"

    def cached(self) -> str | None:
        """The weights file when every group has a file in the cache, else None."""
        if self.url:
            target = os.path.join(self.cache_dir, os.path.basename(self.url))
            return target if os.path.isfile(target) else None
        found = [_cached_hf_file(self.hub_repo, group, self.cache_dir) for group in self.hub_files]
        return found[-1] if all(found) else None


def _hub_remote(hub_id: str, cache_dir: str | None) -> _Remote:
    """An ``hf-hub:org/name`` model: its open_clip config and its weights, from the hub."""
    from open_clip.constants import HF_CONFIG_NAME

    repo = hub_id[len(HF_HUB_SCHEMA) :]
    files = ((HF_CONFIG_NAME,), tuple(_hf_weight_candidates("")))
    return _Remote(_hub_host(), _hf_cache_dir(cache_dir), hub_repo=repo, hub_files=files)


def _tag_remote(cfg: Mapping[str, Any], cache_dir: str | None) -> _Remote:
    """Where open_clip fetches a pretrained tag's weights (``cfg``: the tag's pretrained config): its hub
    copy when it has one and huggingface_hub is installed, else its URL."""
    from open_clip.pretrained import has_hf_hub

    if cfg.get("hf_hub") and has_hf_hub():
        repo, filename = os.path.split(cfg["hf_hub"])
        files = (tuple(_hf_weight_candidates(filename)),)
        return _Remote(_hub_host(), _hf_cache_dir(cache_dir), hub_repo=repo, hub_files=files)
    url = cfg.get("url", "")
    return _Remote(urllib.parse.urlsplit(url).hostname or "", _url_cache_dir(cache_dir), url=url)


def _cached_tag_weights(model_name: str, tag: str, cache_dir: str | None) -> tuple[str | None, str]:
    """Find the weights of an open_clip tag in the local cache, the way open_clip would look them up.

    Returns the cached file (or None) and the host a download would contact.
    """
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name, tag)
    if "file" in cfg:
        return (cfg["file"] if os.path.isfile(cfg["file"]) else None), ""
    remote = _tag_remote(cfg, cache_dir)
    return remote.cached(), remote.host


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
