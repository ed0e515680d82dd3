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

Which model to use is a :class:`ClipSpec` (:mod:`.clip_spec`; importable from here, as most callers do);
how its weights are found and the model is built is :mod:`.clip_loading`, which keeps a missing download
from costing open_clip's ~45 s DNS timeout. This module holds what comes after loading: the scorer, the
embedding maths, the prompt templates and the one scorer per process.

torch and open_clip are imported only inside functions, never at module import: the Blender add-on imports
this module while registering and must not pay for torch then.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ClipError
from .clip_loading import _build, _plan_load
from .clip_spec import ClipSpec

REFERENCE_LOGIT_SCALE = 100.0
"""``exp(logit_scale)`` of OpenAI's ViT-B/32: the factor between the reference code's logits and cosine."""

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

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Strings -> (M, D) float32 unit vectors; each distinct string is encoded once per scorer.

        Each string goes through the text tower on its own. A batched matrix product adds its sums in an
        order that depends on the batch's size, so a word encoded beside five others differs in the last
        bit from the same word beside two: a dataset's scores would then depend on which words this
        process had encoded before (a Blender session, a test run), and a Ray worker's build would not
        equal a local one. One at a time costs about 17 % on 64 words (3.5 s against 3.0 s, ViT-B-32 on
        two cores), once per word.
        """
        if isinstance(texts, str):
            raise ClipError(f"texts must be a list of strings, got the single string {texts!r}")
        texts = [str(text) for text in texts]
        for text in dict.fromkeys(text for text in texts if text not in self._text_cache):
            self._encode_text(text)
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        return np.stack([self._text_cache[text] for text in texts])

    def _encode_text(self, text: str) -> None:
        """Encode one string not yet cached and store its row read-only (callers get copies via np.stack)."""
        import torch

        tokens = self._tokenizer([text]).to(self.spec.device)
        with torch.inference_mode():
            features = torch.nn.functional.normalize(self._model.encode_text(tokens).float(), dim=-1)
        row = features.cpu().numpy().astype(np.float32, copy=False)[0].copy()
        row.setflags(write=False)
        self._text_cache[text] = row
        self.texts_encoded += 1

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


def recorded_clip(record: Mapping[str, Any], device: str | None = None) -> ClipScorer:
    """The CLIP a record names (a mapper's ``scorers.clip``, a dataset's ``clip`` settings): its model and
    weights are the record's, so that a score made now means what the recorded ones mean; where it runs is
    this machine's choice (``device``, else the environment's)."""
    spec = ClipSpec(
        model=str(record["model"]),
        pretrained=record.get("pretrained"),
        device=device or ClipSpec.from_env().device,
    )
    return get_scorer(spec)


def clear_scorers() -> None:
    """Forget loaded scorers (tests, or to free memory); the next :func:`get_scorer` loads again."""
    with _SCORERS_LOCK:
        _SCORERS.clear()
