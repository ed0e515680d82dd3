"""Text → shape (AvatarCLIP's shape step) and text → expression: rank the dataset's renders against a prompt.

A dataset already holds what AvatarCLIP builds its codebook for: many shapes, each rendered and
CLIP-encoded (the per-view embeddings cached by the build). A free-text prompt ("a tall muscular man",
"a surprised face") is encoded once with the dataset's CLIP, every sample is ranked by its cosine with the
prompt (per view, averaged over the views, exactly as the build scores words), and the best ``top_k``
samples are blended with softmax weights at ``temperature``. The default temperature, 0.01, is CLIP's own
(its logit scale is 100): weights then follow the odds CLIP itself would give between the matches.

The optional *neutral-difference* form is AvatarCLIP's: rank by
``cos(e_render − e_neutral_render, t_prompt − t_neutral_prompt)``, which cancels what every render shares
(grey mesh, black background, T-pose) and what every prompt shares ("a photo of a"), leaving the
direction that the prompt adds to a neutral person. The neutral render is the dataset sample closest to
zero coefficients (the model's mean shape or rest expression), or the mean embedding; the neutral prompt
is the template with its word left out ("a photo of a person").

"Set the sliders to the scores of the result": the blended samples' own descriptor values (CLIP scores
and measurements from the dataset), weighted the same way, become the slider values, so the mapper
turns the sliders back into approximately the blended shape, and the user refines from there. The
blended coefficients themselves are returned too (``FitResult.coefficients``), with how far the sliders'
shape is from them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dataset.store import DatasetError, DatasetFolder
from .result import FitError, FitResult, clamp_to_ranges, mapper_summary, sliders_by_name

if TYPE_CHECKING:
    from ..mapper.mapper import Mapper

DEFAULT_TOP_K = 5
DEFAULT_TEMPERATURE = 0.01
NEUTRAL_RENDERS = ("sample", "mean")
MAX_PROMPT_CHARACTERS = 300
"""CLIP reads at most 77 tokens (about 50-75 words) and open_clip cuts the rest silently; a prompt this
long is a paragraph whose end would be ignored without a word, so it is refused instead."""

_ARTICLES = {"a", "an", "the"}


class TextFitter:
    """One mapper's text fit over its dataset, with embeddings, descriptor values and CLIP loaded once."""

    def __init__(
        self, mapper: Mapper, dataset: str | os.PathLike[str] | None = None, device: str | None = None
    ) -> None:
        self.mapper = mapper
        self.folder, settings = _checked_dataset(mapper, dataset)
        self.clip = settings["clip"]
        data = DatasetFolder(self.folder).load()
        from ..mapper.provenance import require_clip_embeddings
        from ..scoring.clip import recorded_clip

        with _as_fit_error():
            require_clip_embeddings(self.folder, settings, data, "to rank against a prompt")

        self.scorer = recorded_clip(self.clip, device)
        self.embeddings = _unit(data["embeddings"].astype(np.float32))  # (N, V, D)
        if self.embeddings.shape[-1] != self.scorer.embed_dim:
            raise FitError(
                f"Dataset {self.folder} holds embeddings of size {self.embeddings.shape[-1]} but "
                f"{self.scorer.spec.describe()} gives {self.scorer.embed_dim}: it is not the dataset's CLIP."
            )
        self.indices = np.asarray(data["indices"])
        self.coefficients = np.asarray(data["coefficients"], dtype=np.float32)
        self.values = _descriptor_values(mapper, self.folder, data)
        self.template = str(self.clip.get("template") or "{}")
        self._differences: dict[str, tuple[np.ndarray, int | None]] = {}

    # -------------------------------------------------------------------------------------- ranking
    def similarities(
        self, prompt: str, neutral: bool = False, neutral_render: str = "sample", neutral_prompt: str = ""
    ) -> np.ndarray:
        """Per-sample similarity ``(N,)`` of the renders to ``prompt``: cosine per view, mean over views."""
        text = self.scorer.encode_texts([clean_prompt(prompt)])[0]
        embeddings = self.embeddings
        if neutral:
            embeddings, _ = self._difference_embeddings(neutral_render)
            neutral_text = self.scorer.encode_texts([neutral_prompt or self.neutral_prompt()])[0]
            text = text - neutral_text
            if np.linalg.norm(text) < 1e-6:
                raise FitError(
                    f"The prompt '{prompt}' is the neutral prompt itself: it asks for no change from a "
                    "neutral shape. Describe the shape, or fit without {neutral_difference}.",
                    parameters=("neutral_difference",),
                )
            text = text / np.linalg.norm(text)
        samples, views, dim = embeddings.shape
        return (embeddings.reshape(-1, dim) @ text).reshape(samples, views).mean(axis=1)

    def neutral_prompt(self) -> str:
        """The template with its word left out ("a photo of a {} person" → "a photo of a person")."""
        return neutral_prompt(self.template)

    def _difference_embeddings(self, neutral_render: str) -> tuple[np.ndarray, int | None]:
        """Unit ``e_render − e_neutral`` per view (cached); the neutral sample's row is zero."""
        if neutral_render not in NEUTRAL_RENDERS:
            raise FitError(
                f"Unknown neutral render '{neutral_render}'; choose {' or '.join(NEUTRAL_RENDERS)}."
            )
        if neutral_render not in self._differences:
            if neutral_render == "sample":
                row: int | None = int(np.argmin(np.linalg.norm(self.coefficients, axis=1)))
                reference = self.embeddings[row]
            else:
                row, reference = None, self.embeddings.mean(axis=0)
            self._differences[neutral_render] = (_unit(self.embeddings - reference[None]), row)
        return self._differences[neutral_render]

    # ---------------------------------------------------------------------------------------- fit
    def fit(
        self,
        prompt: str,
        top_k: int = DEFAULT_TOP_K,
        temperature: float = DEFAULT_TEMPERATURE,
        neutral: bool = False,
        neutral_render: str = "sample",
        neutral_prompt: str = "",
    ) -> FitResult:
        """Blend the ``top_k`` renders most like ``prompt`` into a shape and its slider values."""
        top_k, temperature = _checked_blend(top_k, temperature, len(self.coefficients))
        options = _Options(clean_prompt(prompt), top_k, temperature, neutral, neutral_render, neutral_prompt)
        similarity = self.similarities(options.prompt, neutral, neutral_render, neutral_prompt)
        top = np.argsort(-similarity, kind="stable")[: options.top_k]
        weights = np.exp((similarity[top] - similarity[top[0]]) / options.temperature)
        weights /= weights.sum()
        blend = _Blend(
            top=top,
            similarity=similarity,
            weights=weights,
            coefficients=(weights @ self.coefficients[top].astype(np.float64)).astype(np.float32),
            values=weights @ self.values[top].astype(np.float64),
        )
        return self._result(options, blend)

    def _result(self, options: _Options, blend: _Blend) -> FitResult:
        mapper, top, weights = self.mapper, blend.top, blend.weights
        values, clamped = clamp_to_ranges(mapper, blend.values)
        slider_coefficients = mapper.coefficients(values)
        gap = float(np.sqrt(np.mean((slider_coefficients - blend.coefficients) ** 2)))
        best = top[0]
        notes = [
            f"blend of the {len(top)} dataset renders most like the prompt (best: sample "
            f"{int(self.indices[best])}, similarity {blend.similarity[best]:.4f}, weight {weights[0]:.2f})",
            "sliders set to the blended samples' descriptor values; through the mapper they give a shape "
            f"within {gap:.3g} (coefficient RMS) of the blend",
            *(item.message() for item in clamped),
        ]
        details: dict[str, Any] = {
            "dataset": str(self.folder),
            "top_k": options.top_k,
            "temperature": options.temperature,
            "form": "neutral-difference" if options.neutral else "plain",
            "matches": [
                {
                    "sample": int(self.indices[row]),
                    "similarity": float(blend.similarity[row]),
                    "weight": float(w),
                }
                for row, w in zip(top, weights, strict=True)
            ],
            "slider_reproduction_rms": gap,
        }
        if options.neutral:
            _, row = self._difference_embeddings(options.neutral_render)
            details["neutral"] = {
                "render": "mean embedding" if row is None else f"sample {int(self.indices[row])}",
                "prompt": options.neutral_prompt or self.neutral_prompt(),
            }
        return FitResult(
            method="text",
            sliders=sliders_by_name(mapper, values),
            coefficients=blend.coefficients,
            slider_coefficients=slider_coefficients,
            mapper=mapper_summary(mapper),
            notes=notes,
            clamped=clamped,
            details=details,
            inputs={"prompt": options.prompt},
        )


@dataclass(frozen=True)
class _Options:
    prompt: str
    top_k: int
    temperature: float
    neutral: bool
    neutral_render: str
    neutral_prompt: str


@dataclass(frozen=True)
class _Blend:
    """The ranked matches and their softmax blend."""

    top: np.ndarray  # rows of the best matches, best first
    similarity: np.ndarray  # (N,) every sample's similarity
    weights: np.ndarray  # (k,) softmax weights of the matches
    coefficients: np.ndarray  # (n,) blended coefficients
    values: np.ndarray  # (d,) blended descriptor values (before clamping)


def fit_text(
    prompt: str,
    mapper: Mapper,
    dataset: str | os.PathLike[str] | None = None,
    top_k: int = DEFAULT_TOP_K,
    temperature: float = DEFAULT_TEMPERATURE,
    neutral: bool = False,
    neutral_render: str = "sample",
    neutral_prompt: str = "",
    device: str | None = None,
) -> FitResult:
    """Prompt → shape and slider values (see :class:`TextFitter`); ``dataset`` defaults to the mapper's."""
    prompt = clean_prompt(prompt)  # refuse an empty prompt before the dataset and CLIP are loaded
    fitter = TextFitter(mapper, dataset, device)
    return fitter.fit(prompt, top_k, temperature, neutral, neutral_render, neutral_prompt)


# ------------------------------------------------------------------------------------------ helpers
def clean_prompt(prompt: str) -> str:
    """The prompt with its whitespace normalised, or a clear refusal (empty, no letters, too long)."""
    text = " ".join(str(prompt).split())
    if not text:
        raise FitError('The prompt is empty; describe the shape, e.g. "a tall muscular man".')
    if not any(character.isalpha() for character in text):
        raise FitError(f"The prompt '{text}' holds no words; describe the shape, e.g. \"a surprised face\".")
    if len(text) > MAX_PROMPT_CHARACTERS:
        raise FitError(
            f"The prompt is {len(text)} characters long; CLIP reads only its first 77 tokens and would "
            f"ignore the rest silently. Keep it under {MAX_PROMPT_CHARACTERS} characters."
        )
    return text


def neutral_prompt(template: str) -> str:
    """The template without its word; when that ends on an article ("a photo of a"), "neutral" fills it."""
    words = template.replace("{}", " ").split()
    if not words or words[-1].lower() in _ARTICLES:
        return " ".join(template.replace("{}", "neutral").split())
    return " ".join(words)


def _checked_dataset(mapper: Mapper, dataset: str | os.PathLike[str] | None) -> tuple[Path, dict[str, Any]]:
    """The dataset to rank (the one given, else the mapper's own) and its settings, once it is known to be
    of the mapper's model and scored with its CLIP (:mod:`..mapper.provenance`'s rules)."""
    from ..mapper.provenance import checked_dataset_settings, trained_dataset

    with _as_fit_error():
        store = DatasetFolder(trained_dataset(mapper, dataset))
        settings = checked_dataset_settings(mapper, store, "to rank against a prompt")
    return store.folder, settings


@contextlib.contextmanager
def _as_fit_error(prefix: str = "") -> Iterator[None]:
    """A dataset's or mapper's refusal, raised again as the fit's, with the parameters it names."""
    from ..mapper.mapper import MapperError

    try:
        yield
    except (DatasetError, MapperError) as error:
        raise error.recast(FitError, prefix) from error


def _descriptor_values(mapper: Mapper, folder: Path, data: dict[str, np.ndarray]) -> np.ndarray:
    """Every sample's value of every mapper descriptor ``(N, d)``: stored scores and measurements, and
    words added later scored now from the cached embeddings (as add-word and training do)."""
    from ..mapper.columns import dataset_columns

    kinds = [d.kind for d in mapper.descriptors]
    with _as_fit_error("The dataset cannot give this mapper's slider values: "):
        columns = dataset_columns(folder, mapper.descriptor_names, kinds, data)
    return columns.values


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows along the last axis scaled to unit length; zero rows stay zero (they then match nothing)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms > 1e-12, norms, 1.0)).astype(np.float32)


def _checked_blend(top_k: int, temperature: float, samples: int) -> tuple[int, float]:
    if not isinstance(top_k, int | np.integer) or top_k < 1:
        raise FitError(f"{{top_k}} must be a whole number ≥ 1, got {top_k!r}.", parameters=("top_k",))
    if not (np.isfinite(temperature) and temperature > 0):
        raise FitError(
            f"{{temperature}} must be a number > 0, got {temperature!r}.", parameters=("temperature",)
        )
    return min(int(top_k), samples), float(temperature)
