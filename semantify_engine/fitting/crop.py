"""Cropping a photo to the person (or face) before CLIP sees it.

CLIP's own preprocessing resizes a photo and keeps its centre square. The renders the mapper learned from
show the whole body (or head) filling most of a square frame, so a photo scores like them only when it
is framed like them: a person standing off-centre, or small in a landscape photo, is scored mostly as
background, and a full-length portrait photo loses head and feet to the centre square. So the photo is
cropped to a square around the person first, framed as the render frame is around the model.

The detectors are MediaPipe's BlazePose (33 body landmarks, from which the whole body's extent follows) and
BlazeFace, from ``mediapipe==0.10.21``: the last release whose wheel ships these models (later releases
download their models at run time, which these machines, and many users', cannot do) and that runs with
numpy 1.x, which Blender's Python module needs. OpenCV's classic detectors also ship in a wheel, but its
HOG pedestrian detector missed a rendered body filling 60-95 % of the photo's height, the common case,
and mistook noise for people, while BlazePose found every one of them within 1 % of its centre. MediaPipe
is an optional extra (``pip install 'semantify[detect]'``); without it, or when nothing is found, the photo
is centre-cropped, which is what CLIP would have done, and the result says so.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

DETECTED = "person-detector"
FACE_DETECTED = "face-detector"
CENTRE = "centre"
CROP_CHOICES = ("auto", "person", "centre")
"""``auto``: the detector when installed and it finds someone, else the centre; ``person``: the detector
or an error; ``centre``: the centre square, as CLIP's own preprocessing takes it."""

FACE_KINDS = ("head-shape", "face-expression")
BODY_KINDS = ("body",)

BODY_SQUARE = 1.45
"""Side of the crop square over the vertical extent of the body landmarks (eyes to heels): measured on the
bundled body's front render, whose frame is 1.45 times that extent."""

BODY_RAISE = 0.15
"""The square's centre sits this fraction of the landmark extent above the landmarks' centre: the
landmarks stop at the eyes, the body goes on to the crown (measured on the same render)."""

FACE_SQUARE = 1.8
"""Side of the crop square over the side of BlazeFace's box: the bundled head renders show the whole head,
1.8 times that box."""

FACE_RAISE = 0.1
"""The square's centre sits this fraction of the face box above the box's centre (the box is centred on
the eyes-to-chin face; the render frame on the whole head)."""

MIN_CONFIDENCE = 0.5
"""Detections below this confidence (MediaPipe's default) are treated as no detection."""


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels of the photo (left, top, width, height) with the detector's score."""

    left: float
    top: float
    width: float
    height: float
    score: float

    def to_json(self) -> dict[str, float]:
        return {
            "left": round(self.left, 1),
            "top": round(self.top, 1),
            "width": round(self.width, 1),
            "height": round(self.height, 1),
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class Crop:
    """The square the photo was cut to: how it was chosen, and where (pixels of the photo, turned upright
    as its camera recorded; results report it in the file's own pixels)."""

    method: str
    left: int
    top: int
    side: int
    detection: Box | None = None
    reason: str = ""

    def scaled(self, factor: float) -> Crop:
        """The same crop with every length times ``factor`` (from the shrunk working copy to the file)."""
        if factor == 1.0:
            return self
        box = self.detection
        if box is not None:
            box = Box(box.left * factor, box.top * factor, box.width * factor, box.height * factor, box.score)
        left, top, side = (round(value * factor) for value in (self.left, self.top, self.side))
        return Crop(self.method, left, top, side, box, self.reason)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "left": self.left, "top": self.top, "side": self.side}
        if self.detection is not None:
            out["detection"] = self.detection.to_json()
        if self.reason:
            out["reason"] = self.reason
        return out


# ---------------------------------------------------------------------------------------- detectors
def detector_available() -> bool:
    """Whether MediaPipe's solutions (with their bundled models) can be imported here."""
    return _mediapipe() is not None


@cache
def _mediapipe() -> Any:
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging: warnings and above only
    try:
        from mediapipe.python.solutions import face_detection, pose
    except ImportError:
        return None
    return pose, face_detection


@cache
def _pose() -> Any:
    pose, _ = _mediapipe()
    return pose.Pose(static_image_mode=True, model_complexity=1, min_detection_confidence=MIN_CONFIDENCE)


@cache
def _faces(model: int) -> Any:
    _, face_detection = _mediapipe()
    return face_detection.FaceDetection(model_selection=model, min_detection_confidence=MIN_CONFIDENCE)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the C++ side of MediaPipe for one call.

    Its graphs print TensorFlow Lite and absl log lines straight to file descriptor 2 when they first run
    (no Python logger, and absl's log level cannot be set before its first message), which would litter
    every ``semantify fit image`` with lines that mean nothing to a user. Python's own stderr is flushed
    first and restored after, so nothing of ours is lost.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def detect_person(pixels: np.ndarray) -> Box | None:
    """The extent of the person in an RGB photo (BlazePose landmarks), or None when there is none.

    BlazePose sees the photo shrunk to a square, where a person under about half the photo's height is
    too small to be found; so when the whole photo gives nothing, overlapping squares along its longer
    side are searched too (two or three more passes of ~30 ms, only for such photos).
    """
    found = _landmark_box(pixels)
    if found is not None:
        return found
    height, width = pixels.shape[:2]
    short, long = min(height, width), max(height, width)
    if long < 1.2 * short:
        return None
    count = int(np.ceil((long - short) / (short / 2))) + 1
    for start in np.linspace(0, long - short, count).round().astype(int):
        window = pixels[:, start : start + short] if width > height else pixels[start : start + short]
        box = _landmark_box(window)
        if box is not None:
            dx, dy = (start, 0) if width > height else (0, start)
            return Box(box.left + dx, box.top + dy, box.width, box.height, box.score)
    return None


def _landmark_box(pixels: np.ndarray) -> Box | None:
    with _quiet_stderr():
        found = _pose().process(np.ascontiguousarray(pixels)).pose_landmarks
    if found is None:
        return None
    height, width = pixels.shape[:2]
    points = np.array([(mark.x * width, mark.y * height) for mark in found.landmark])
    visibility = float(np.mean([mark.visibility for mark in found.landmark]))
    (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
    return Box(float(left), float(top), float(right - left), float(bottom - top), visibility)


def detect_face(pixels: np.ndarray) -> Box | None:
    """The most confident face in an RGB photo (BlazeFace: close range first, then full range), or None."""
    height, width = pixels.shape[:2]
    for model in (0, 1):
        with _quiet_stderr():
            detections = _faces(model).process(np.ascontiguousarray(pixels)).detections
        if detections:
            best = max(detections, key=lambda detection: detection.score[0])
            box = best.location_data.relative_bounding_box
            return Box(
                box.xmin * width, box.ymin * height, box.width * width, box.height * height, best.score[0]
            )
    return None


# --------------------------------------------------------------------------------------------- crop
def choose_crop(pixels: np.ndarray, kind: str, method: str = "auto") -> Crop:
    """Where to cut ``pixels`` (an oriented RGB photo) for a mapper of model ``kind``.

    ``method`` is one of :data:`CROP_CHOICES`; ``person`` raises :class:`LookupError` (with the reason)
    when no detector is installed or nothing is found, and the caller turns it into a user message.
    """
    if method not in CROP_CHOICES:
        raise ValueError(f"crop method {method!r}; expected one of {', '.join(CROP_CHOICES)}")
    if method == CENTRE:
        return centre_crop(pixels.shape, "asked for")
    reason = _why_no_detection(kind)
    if not reason:
        face = kind in FACE_KINDS
        box = detect_face(pixels) if face else detect_person(pixels)
        if box is not None:
            return square_around(box, face)
        reason = f"the {'face' if face else 'person'} detector found no {'face' if face else 'person'}"
    if method == "person":
        raise LookupError(reason)
    return centre_crop(pixels.shape, reason)


def _why_no_detection(kind: str) -> str:
    if not detector_available():
        return "no person detector installed (pip install 'semantify[detect]' adds MediaPipe's)"
    if kind not in FACE_KINDS + BODY_KINDS:
        return f"no detector for models of kind '{kind}'"
    return ""


def centre_crop(shape: tuple[int, ...], reason: str) -> Crop:
    """The largest centred square: exactly what CLIP's preprocessing keeps of a photo."""
    height, width = shape[:2]
    side = min(height, width)
    return Crop(CENTRE, (width - side) // 2, (height - side) // 2, side, reason=reason)


def square_around(box: Box, face: bool) -> Crop:
    """The square that frames the detected person (or face) as the training renders frame the model.

    It may reach past the photo's edges (a person close to the edge, or cut by it); :func:`cut` fills that
    part. The side follows the longer of the box's sides, so a person lying down is framed whole too.
    """
    factor, raise_ = (FACE_SQUARE, FACE_RAISE) if face else (BODY_SQUARE, BODY_RAISE)
    side = max(1, round(factor * max(box.width, box.height)))
    centre_x = box.left + box.width / 2
    centre_y = box.top + box.height / 2 - raise_ * box.height
    left, top = round(centre_x - side / 2), round(centre_y - side / 2)
    return Crop(FACE_DETECTED if face else DETECTED, left, top, side, detection=box)


def cut(pixels: np.ndarray, crop: Crop) -> np.ndarray:
    """The crop's square of ``pixels``; parts outside the photo are filled with its border's median colour.

    The fill matches the photo's own background as well as one colour can, so the square adds no edge
    that CLIP could read as part of the person.
    """
    height, width = pixels.shape[:2]
    left, top, side = crop.left, crop.top, crop.side
    if left >= 0 and top >= 0 and left + side <= width and top + side <= height:
        return np.ascontiguousarray(pixels[top : top + side, left : left + side])
    out = np.empty((side, side, 3), np.uint8)
    out[:] = border_colour(pixels)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + side, width), min(top + side, height)
    if x1 > x0 and y1 > y0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = pixels[y0:y1, x0:x1]
    return out


def border_colour(pixels: np.ndarray) -> np.ndarray:
    """The median colour of the photo's outermost pixels."""
    edges = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return np.median(edges, axis=0).astype(np.uint8)
