"""Which CLIP to use: the user-facing spec, in open_clip's terms, and the environment that sets it.

A :class:`ClipSpec` only names a model and its weights: nothing here loads, finds or downloads anything,
so a spec is cheap to make, to compare and to hash (one loaded model per spec: :func:`.clip.get_scorer`),
and the add-on, the command line and worker processes all read the same ``SEMANTIFY_CLIP_*`` variables
through :meth:`ClipSpec.from_env`. Where the weights are and how they are loaded is :mod:`.clip_loading`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

ENV_MODEL = "SEMANTIFY_CLIP_MODEL"
ENV_PRETRAINED = "SEMANTIFY_CLIP_PRETRAINED"
ENV_DEVICE = "SEMANTIFY_CLIP_DEVICE"
ENV_CACHE_DIR = "SEMANTIFY_CLIP_CACHE_DIR"

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "openai"
NO_WEIGHTS = "none"
"""``SEMANTIFY_CLIP_PRETRAINED=none``: a randomly initialised model, for benchmarks and mechanics only."""

HF_HUB_SCHEMA = "hf-hub:"
LOCAL_DIR_SCHEMA = "local-dir:"
LOCAL_DIR_CONFIG = "open_clip_config.json"
"""The file a ``local-dir:`` folder must hold: open_clip's ``HF_CONFIG_NAME``, spelled here so that checking
for it does not import open_clip."""
WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors", ".npz", ".ckpt")


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

    @property
    def hub_id(self) -> str | None:
        """The ``hf-hub:org/name`` id naming the model, if any: ``pretrained``'s first (it overrides
        ``model``, as in open_clip), else ``model``'s. Loading, status and messages all ask here."""
        for text in (self.pretrained, self.model):
            if text and text.startswith(HF_HUB_SCHEMA):
                return text
        return None

    @property
    def local_dir(self) -> Path | None:
        """The folder of a ``local-dir:/folder`` model (open_clip's config and weights side by side)."""
        if not self.model.startswith(LOCAL_DIR_SCHEMA):
            return None
        return Path(self.model[len(LOCAL_DIR_SCHEMA) :]).expanduser()

    def normalized(self) -> ClipSpec:
        """The same spec with a file path made absolute, so that equal requests share one loaded model."""
        file = self.weights_file
        if file is None:
            return self
        return replace(self, pretrained=str(file.resolve()))

    def describe(self) -> str:
        """A short human description for messages and logs."""
        return f"CLIP model '{self.model}' with pretrained={self.pretrained!r}"
