"""CLIP weights on disk: are they there, where, and fetching them into the cache without a torn file.

The Blender add-on's preferences show whether the configured weights are present and offer *Download*;
``semantify clip status | download | check`` do the same from a shell. Weights are found exactly the
way :mod:`.clip_loading` loads them (open_clip's tags and ``hf-hub:`` ids through Hugging Face's cache, plain
URLs through open_clip's, local files as they are), so "present" here means "loads offline there".

A download never leaves a half-written file in the cache: it goes into a staging folder *inside* the
cache folder (same file system, so moving is a rename), and only complete files are moved into place,
content before the names that point at it (Hugging Face's ``blobs/`` before ``snapshots/`` and
``refs/``). A failed or cancelled download removes its staging folder; one killed outright leaves it
behind, and the next download removes it. Before anything is fetched, the host is probed for two
seconds (or ``HF_HUB_OFFLINE`` refuses at once), so no one waits for a DNS timeout.

torch and open_clip are imported inside functions only, like everywhere in scoring.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ClipError, ClipWeightsError, first_line
from .clip_cache import _hub_remote, _Remote, _tag_remote
from .clip_loading import (
    _build,
    _clean_model_name,
    _plan_load,
    _plan_local_file,
    _require_known_architecture,
    _unknown_tag,
)
from .clip_network import _require_download_possible
from .clip_spec import HF_HUB_SCHEMA, LOCAL_DIR_CONFIG, ClipSpec

STAGING_PREFIX = ".semantify-download-"
Progress = Callable[[int, int | None], None]
"""``progress(bytes_done, bytes_total)``; the total is None while a server has not said it."""


@dataclass(frozen=True)
class WeightsStatus:
    """Where the weights of a :class:`ClipSpec` are, or would go, and whether they can be used.

    ``present``: they load without the network. ``location``: the weights file when present, else the
    cache folder a download would fill. ``source``: where a download fetches them from (empty for a
    local file). ``problem``: why this spec cannot be used at all (an unknown architecture or tag, a
    missing local file), one line.
    """

    model: str
    pretrained: str | None
    kind: str  # "file", "tag", "hf-hub", "local-dir" or "random"
    present: bool
    location: str
    source: str = ""
    problem: str = ""

    @property
    def downloadable(self) -> bool:
        return not self.present and not self.problem and bool(self.source)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "downloadable": self.downloadable}

    def summary(self) -> str:
        """One line for a panel or a shell."""
        what = f"'{self.model}'" + (f" / {self.pretrained}" if self.pretrained else " (random weights)")
        if self.problem:
            return f"CLIP {what}: {self.problem}"
        if self.present:
            return f"CLIP {what}: present ({self.location})"
        return f"CLIP {what}: not downloaded yet (from {self.source} into {self.location})"


# ----------------------------------------------------------------------------------------- status
def _remote(spec: ClipSpec) -> _Remote:
    """Where the weights of a tag or ``hf-hub:`` spec come from (:class:`ClipError` for unknown ones)."""
    from open_clip.pretrained import get_pretrained_cfg

    hub_id = spec.hub_id
    if hub_id:  # an open_clip model on the hub: its config and its weights
        return _hub_remote(hub_id, spec.cache_dir)
    model_name = _clean_model_name(spec.model)
    _require_known_architecture(model_name, None)
    cfg = get_pretrained_cfg(model_name, spec.pretrained or "")
    if not cfg:
        raise _unknown_tag(model_name, spec.pretrained)
    return _tag_remote(cfg, spec.cache_dir)


def weights_status(spec: ClipSpec) -> WeightsStatus:
    """Whether ``spec``'s weights are on this machine, where, and where a download would fetch them."""
    from ..compat.torchvision_ops import ensure_torchvision_importable

    ensure_torchvision_importable()
    base = {"model": spec.model, "pretrained": spec.pretrained}
    if spec.pretrained is None:
        return WeightsStatus(**base, kind="random", present=True, location="")
    weights = spec.weights_file
    if weights is not None:
        try:
            _plan_local_file(spec, weights)
        except ClipError as error:
            return WeightsStatus(
                **base, kind="file", present=False, location=str(weights), problem=first_line(error)
            )
        return WeightsStatus(**base, kind="file", present=True, location=str(weights))
    folder = spec.local_dir
    if folder is not None:
        present = (folder / LOCAL_DIR_CONFIG).is_file()
        problem = "" if present else f"{folder} holds no {LOCAL_DIR_CONFIG}"
        return WeightsStatus(**base, kind="local-dir", present=present, location=str(folder), problem=problem)
    kind = "hf-hub" if HF_HUB_SCHEMA in f"{spec.model}{spec.pretrained}" else "tag"
    try:
        remote = _remote(spec)
    except ClipError as error:
        return WeightsStatus(**base, kind=kind, present=False, location="", problem=first_line(error))
    cached = remote.cached()
    return WeightsStatus(
        **base,
        kind=kind,
        present=cached is not None,
        location=cached or remote.cache_dir,
        source=remote.describe(),
    )


# --------------------------------------------------------------------------------------- download
class _ProgressBar:
    """Stands in for the tqdm class huggingface_hub draws a download's bar with; forwards the bytes."""

    def __init__(self, progress: Progress | None, **options: Any) -> None:
        self.progress = progress
        self.total = options.get("total")
        self.n = options.get("initial") or 0

    def update(self, count: int = 1) -> None:
        self.n += count
        if self.progress is not None:
            self.progress(self.n, self.total)

    def close(self) -> None:
        pass

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remove_stale_staging(root: Path) -> None:
    """Staging folders of downloads that were killed outright: never reused, always removed."""
    for folder in root.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(folder, ignore_errors=True)


def _move_into(staging: Path, root: Path) -> None:
    """Move the complete files of ``staging`` into ``root``: content first, then the names pointing at it."""
    order = {"blobs": 0, ".no_exist": 1, "snapshots": 2, "refs": 3}
    files = [
        path
        for path in staging.rglob("*")
        if (path.is_file() or path.is_symlink())
        and not path.name.endswith((".incomplete", ".lock"))
        and ".locks" not in path.relative_to(staging).parts
    ]

    def rank(path: Path) -> tuple[int, str]:
        parts = path.relative_to(staging).parts
        return (order.get(parts[1], 4) if len(parts) > 2 else 5, str(path))

    for path in sorted(files, key=rank):
        target = root / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)


def _fetch(remote: _Remote, staging: Path, progress: Progress | None) -> None:
    if remote.url:
        from open_clip.pretrained import download_pretrained_from_url

        download_pretrained_from_url(remote.url, cache_dir=str(staging))
        return
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    def bar(**options: Any) -> _ProgressBar:
        return _ProgressBar(progress, **options)

    for group in remote.hub_files:
        for index, filename in enumerate(group):
            try:
                hf_hub_download(remote.hub_repo, filename, cache_dir=str(staging), tqdm_class=bar)
                break
            except EntryNotFoundError:
                if index == len(group) - 1:
                    raise


def download_weights(spec: ClipSpec, progress: Progress | None = None) -> WeightsStatus:
    """Fetch ``spec``'s weights into the cache (nothing to do when present); the status afterwards.

    Raises :class:`ClipWeightsError` when the spec cannot be downloaded (a local file, an unknown tag),
    when the network or the hub is unreachable, or when the transfer fails; the cache then holds no
    part of it.
    """
    status = weights_status(spec)
    if status.problem:
        raise ClipWeightsError(f"Cannot download the weights of {spec.describe()}: {status.problem}")
    if status.present:
        return status
    remote = _remote(spec)
    _require_download_possible(spec, remote.host, remote.cache_dir)
    root = Path(remote.cache_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(root)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
    except OSError as error:
        raise ClipWeightsError(
            f"The CLIP cache folder {root} cannot be written ({error}); choose another cache folder."
        ) from error
    try:
        _fetch(remote, staging, progress)
        _move_into(staging, root)
    except ClipError:
        raise
    except Exception as error:  # network, HTTP and file-system failures of the download libraries
        raise ClipWeightsError(
            f"Could not download {remote.describe()} into {root} ({type(error).__name__}: "
            f"{first_line(error)}); nothing was kept. Check the network connection (and HF_ENDPOINT if "
            "you use a mirror) and try again, or use a local weights file."
        ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    status = weights_status(spec)
    if not status.present:
        raise ClipWeightsError(
            f"{remote.describe()} was downloaded but is not where open_clip looks ({root})."
        )
    return status


# ------------------------------------------------------------------------------------------ check
def check_weights(spec: ClipSpec) -> dict[str, Any]:
    """Load ``spec`` as a build would and encode one image and one word: proof the weights fit.

    Returns the embedding width and the file used. Raises :class:`ClipWeightsError` with the reason
    (a truncated or corrupt file, weights of another architecture, missing weights).
    """
    import numpy as np
    import torch

    plan = _plan_load(spec)
    model, preprocess, tokenizer = _build(plan, spec)
    from PIL import Image

    with torch.inference_mode():
        image = preprocess(Image.fromarray(np.zeros((64, 64, 3), np.uint8))).unsqueeze(0)
        image_width = model.encode_image(image).shape[-1]
        text_width = model.encode_text(tokenizer(["a photo of a person"])).shape[-1]
    if image_width != text_width:
        raise ClipWeightsError(
            f"{spec.describe()} encodes images to {image_width} numbers and texts to {text_width}: these "
            "weights do not belong together."
        )
    status = weights_status(spec)
    return {**status.to_json(), "embedding_width": int(image_width)}
