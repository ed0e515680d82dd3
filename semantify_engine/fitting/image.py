"""Photo → shape, the paper's zero-shot fit (§7): CLIP-score a photo against the mapper's words, map the
scores to coefficients, and hand the slider values back so the user can refine them.

The photo must be scored exactly as the mapper's words were scored on the renders: the same CLIP model,
weights and prompt template, all recorded in the mapper (``metadata["scorers"]["clip"]``), and the same
cosine. The weights must be available (a :class:`~semantify_engine.errors.ClipWeightsError` says how to
get them otherwise); a different CLIP would give scores on another scale, and the sliders would mean
nothing.

What a photo cannot say is kept honest: measurement sliders stay at their defaults (a single photo gives
no metric scale), scores outside a slider's range are clamped and reported, and the result says how the
photo was cropped (:mod:`.crop`).

Photos arrive in every state, so loading refuses what cannot be a photo with a message naming the file:
non-images and damaged files, more than :data:`MAX_PIXELS` (a decompression bomb, or a scan that needs
downscaling first) and fewer than :data:`MIN_SIDE` pixels a side. Grayscale and 16-bit images become RGB;
transparent pixels are laid on the training renders' background. Pillow is imported only here, inside
functions: Blender's own Python has no Pillow, and the rest of the engine must import there.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..render.images import composite
from .crop import CROP_CHOICES, Crop, choose_crop, cut
from .result import FitError, FitResult, clamp_to_ranges, mapper_summary, sliders_by_name

if TYPE_CHECKING:
    from ..mapper.mapper import Mapper

MIN_SIDE = 16
"""Fewer pixels than this on a side is an icon, not a photo: CLIP would see a blur of upscaled blocks."""

MAX_PIXELS = 89_478_485
"""Pillow's own decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``): about 89 megapixels, more than any
camera photo. Beyond it an image is refused before it is decoded (decoding could need gigabytes)."""

WORK_SIDE = 1024
"""Photos are decoded (JPEG: at a reduced scale, which is much faster) and shrunk to at most this many
pixels on their longer side. Detection runs at 320 px and CLIP at 224 px, so nothing is lost, and a
12-megapixel photo costs milliseconds instead of a third of a second."""

BLACK = (0.0, 0.0, 0.0)
_PIL_FAILURES = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error, zlib.error)


@dataclass
class Photo:
    """An RGB uint8 photo ready to crop, with notes on what was done to it on the way in."""

    pixels: np.ndarray
    source: str
    original_size: tuple[int, int]  # width, height as stored in the file
    notes: list[str] = field(default_factory=list)
    scale: float = 1.0  # pixels of the (oriented) file per pixel of ``pixels``


# ------------------------------------------------------------------------------------------- loading
def load_photo(path: str | os.PathLike[str], background: tuple[float, float, float] = BLACK) -> Photo:
    """Read a photo file as RGB, oriented as its camera recorded it, with a clear refusal for bad files."""
    from PIL import ImageOps

    path = Path(path)
    if not path.exists():
        raise FitError(f"Photo {path} does not exist.")
    if path.is_dir():
        raise FitError(f"Photo {path} is a folder; give an image file (JPEG, PNG, ...).")
    image = _open(path)
    with image:
        width, height = image.size
        _check_size(path, width, height)
        notes: list[str] = []
        try:
            image.draft("RGB", (WORK_SIDE, WORK_SIDE))  # JPEG decodes at 1/2, 1/4 or 1/8 scale: fast
            oriented = ImageOps.exif_transpose(image)
            oriented.thumbnail((WORK_SIDE, WORK_SIDE))
            pixels = _to_rgb(oriented, background, notes)
        except _PIL_FAILURES as error:
            raise FitError(f"Photo {path} is damaged or truncated ({error}); use an intact copy.") from error
    scale = max(width, height) / max(pixels.shape[:2])
    if scale > 1.0:
        notes.append(f"photo of {width}×{height} pixels scaled to {pixels.shape[1]}×{pixels.shape[0]}")
    return Photo(pixels, str(path), (width, height), notes, scale)


def _open(path: Path) -> Any:
    """Open (read the header only) with Pillow, turning its many failures into one clear message."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise FitError(
            f"Photo {path} has more than {MAX_PIXELS / 1e6:.0f} megapixels ({error}). Images that large are "
            "refused as a guard against decompression bombs; scale it down (a few megapixels is plenty)."
        ) from error
    except UnidentifiedImageError as error:
        raise FitError(
            f"{path} is not an image Pillow can read (JPEG, PNG, WebP, TIFF, BMP, ...); give a photo."
        ) from error
    except _PIL_FAILURES as error:
        raise FitError(f"Photo {path} is damaged or truncated ({error}); use an intact copy.") from error


def _check_size(path: Path, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise FitError(
            f"Photo {path} is {width}×{height} = {width * height / 1e6:.0f} megapixels, more than the "
            f"{MAX_PIXELS / 1e6:.0f} accepted (a guard against decompression bombs); scale it down first."
        )
    if min(width, height) < MIN_SIDE:
        raise FitError(
            f"Photo {path} is only {width}×{height} pixels; a photo needs at least {MIN_SIDE} pixels on "
            "each side (CLIP looks at 224×224)."
        )


def _to_rgb(image: Any, background: tuple[float, float, float], notes: list[str]) -> np.ndarray:
    """RGB uint8 pixels of any Pillow mode: grey and 16-bit scaled, transparency laid on ``background``."""
    mode = image.mode
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        notes.append(f"{_depth(mode)} grayscale photo converted to 8-bit RGB")
        return _wide_grey_to_rgb(np.asarray(image))
    if mode in ("L", "1"):
        notes.append("grayscale photo converted to RGB (CLIP sees it in grey)")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info)
    if not has_alpha:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    rgba = np.asarray(image.convert("RGBA"), dtype=np.uint8)
    if rgba[..., 3].min() < 255:
        colour = "black" if tuple(background) == BLACK else f"RGB {tuple(round(c, 3) for c in background)}"
        notes.append(f"transparent pixels laid on {colour}, the background of the renders the mapper saw")
    return composite(rgba, background)


def _depth(mode: str) -> str:
    return "32-bit float" if mode == "F" else ("16-bit" if mode.startswith("I;16") else "32-bit")


def _wide_grey_to_rgb(values: np.ndarray) -> np.ndarray:
    """16/32-bit or float grey to 8 bits: 16-bit files by their full scale, others by their own range."""
    integers = values.dtype.kind in "ui"
    values = np.nan_to_num(values.astype(np.float64))
    low, high = float(values.min()), float(values.max())
    if integers and low >= 0 and 255 < high <= 65535:
        scaled = values / 257.0
    elif high > low:
        scaled = (values - low) * (255.0 / (high - low))
    else:
        scaled = np.zeros_like(values)
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def photo_from_array(pixels: np.ndarray, source: str = "array") -> Photo:
    """A photo given as pixels (the add-on hands over an image it already holds): RGB uint8 (H, W, 3)."""
    array = np.asarray(pixels)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise FitError(f"Photo pixels must be RGB uint8 of shape (H, W, 3); got {array.dtype} {array.shape}.")
    height, width = array.shape[:2]
    _check_size(Path(source), width, height)
    return Photo(np.ascontiguousarray(array), source, (width, height))


# ------------------------------------------------------------------------------------------- fitting
def word_columns(
    mapper: Mapper,
    *,
    mapper_name: str = "This mapper",
    instead: str = "Use 'semantify fit measure', or a mapper with word descriptors.",
) -> list[int]:
    """The columns of ``mapper``'s word sliders, the only ones a photo can set; refused when it has none.

    ``mapper_name`` names the mapper in the message and ``instead`` says what this front end offers in
    place of a photo fit."""
    columns = [i for i, d in enumerate(mapper.descriptors) if d.kind == "word"]
    if not columns:
        kinds = (
            "measurement and attribute"
            if any(d.kind == "attribute" for d in mapper.descriptors)
            else "measurement"
        )
        raise FitError(
            f"{mapper_name} has only {kinds} sliders ({', '.join(mapper.descriptor_names)}); a photo gives "
            f"CLIP word scores, not measurements. {instead}"
        )
    return columns


class ImageFitter:
    """One mapper's photo fit, with its CLIP and its words' text embeddings loaded once (warm fits)."""

    def __init__(self, mapper: Mapper, device: str | None = None) -> None:
        from ..scoring.clip import recorded_clip

        self.mapper = mapper
        self.word_columns = word_columns(mapper)
        clip = mapper.metadata.get("scorers", {}).get("clip")
        if not clip or not clip.get("model") or not clip.get("template"):
            raise FitError(
                "This mapper does not record which CLIP model and prompt template scored its words, so a "
                "photo cannot be scored like its renders. Retrain it with 'semantify mapper train'."
            )
        self.template = str(clip["template"])
        self.scorer = recorded_clip(clip, device)
        words = [mapper.descriptors[i].name for i in self.word_columns]
        from ..scoring.clip import prompts

        self.text = self.scorer.encode_texts(prompts(words, self.template))

    def fit(
        self,
        photo: str | os.PathLike[str] | np.ndarray | Photo,
        crop: str = "auto",
        background: tuple[float, float, float] = BLACK,
    ) -> FitResult:
        """Score ``photo`` (a file, RGB pixels or a loaded :class:`Photo`) and map it to a shape."""
        if crop not in CROP_CHOICES:
            raise FitError(f"Unknown crop '{crop}'; choose one of {', '.join(CROP_CHOICES)}.")
        if isinstance(photo, Photo):
            loaded = photo
        elif isinstance(photo, np.ndarray):
            loaded = photo_from_array(photo)
        else:
            loaded = load_photo(photo, background)
        square = self._crop(loaded, crop)
        pixels = cut(loaded.pixels, square)
        scores = self._scores(pixels)
        return self._result(loaded, square, scores)

    def _crop(self, photo: Photo, method: str) -> Crop:
        kind = str(self.mapper.model_info.get("kind", "body"))
        try:
            return choose_crop(photo.pixels, kind, method)
        except LookupError as reason:
            raise FitError(
                f"{{crop}} person: {reason} in {photo.source}. Use {{crop}} auto or centre to fit it anyway.",
                parameters=("crop",),
            ) from reason

    def _scores(self, pixels: np.ndarray) -> np.ndarray:
        """Cosine of the photo's embedding with each word's prompt: the renders' score for one view."""
        embedding = self.scorer.encode_images(pixels[None])
        return (embedding @ self.text.T)[0]

    def _result(self, photo: Photo, square: Crop, scores: np.ndarray) -> FitResult:
        mapper = self.mapper
        values = mapper.defaults.astype(np.float64)
        values[self.word_columns] = scores
        clamped_values, clamped = clamp_to_ranges(mapper, values)
        coefficients = mapper.coefficients(clamped_values)
        kept = [d.name for d in mapper.descriptors if d.kind != "word"]
        square = square.scaled(photo.scale)  # reported in the file's own pixels
        notes = [*photo.notes, _crop_note(square)]
        if kept:
            notes.append(
                f"{', '.join(kept)} kept at {'its' if len(kept) == 1 else 'their'} default: a photo gives "
                "no measurements (set them with the sliders, or fit them with 'semantify fit measure')"
            )
        notes += [item.message() for item in clamped]
        words = [mapper.descriptors[i].name for i in self.word_columns]
        return FitResult(
            method="image",
            sliders=sliders_by_name(mapper, clamped_values),
            coefficients=coefficients,
            slider_coefficients=coefficients,
            mapper=mapper_summary(mapper),
            notes=notes,
            clamped=clamped,
            defaults_kept=kept,
            details={
                "crop": square.method,
                "crop_box": square.to_json(),
                "scores": dict(zip(words, (float(s) for s in scores), strict=True)),
                "clip": {"model": self.scorer.spec.model, "template": self.template},
            },
            inputs={"photo": photo.source, "size": list(photo.original_size)},
        )


def fit_image(
    photo: str | os.PathLike[str] | np.ndarray,
    mapper: Mapper,
    crop: str = "auto",
    background: tuple[float, float, float] | None = None,
    device: str | None = None,
) -> FitResult:
    """Photo → slider values and coefficients through ``mapper`` (see :class:`ImageFitter`).

    ``background`` is the colour transparent pixels are laid on; by default the background of the
    renders of the mapper's dataset when its manifest can be read, else black (the datasets' default).
    """
    fitter = ImageFitter(mapper, device)
    return fitter.fit(photo, crop, background if background is not None else render_background(mapper))


def render_background(mapper: Mapper) -> tuple[float, float, float]:
    """The background colour of the renders the mapper was trained on (black when unknown)."""
    from ..dataset.store import DatasetError, DatasetFolder

    folder = mapper.metadata.get("dataset", {}).get("folder")
    if not folder:
        return BLACK
    try:
        settings = DatasetFolder(folder).read_manifest()["settings"]
    except (DatasetError, KeyError):
        return BLACK
    colour = (settings.get("render") or {}).get("background")
    if not isinstance(colour, list | tuple) or len(colour) < 3:
        return BLACK
    return (float(colour[0]), float(colour[1]), float(colour[2]))


def _crop_note(square: Crop) -> str:
    if square.method == "centre":
        return f"centre crop ({square.reason})"
    what, detector = ("face", "BlazeFace") if square.method == "face-detector" else ("person", "BlazePose")
    return f"cropped to the {what} found by MediaPipe's {detector} ({square.side} px square)"
