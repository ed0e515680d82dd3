"""Fitting: photo → shape, text → shape or expression, measurements → shape, each ending in slider values.

- :mod:`.image`: the paper's zero-shot fit (§7): CLIP scores of a (cropped) photo through the mapper.
- :mod:`.text`: AvatarCLIP's shape step: rank the dataset's cached render embeddings against a prompt and
  blend the best matches (bodies, heads and expressions alike).
- :mod:`.measure`: SHAPY-style: measurement sliders set to a tape measure's numbers.
- :mod:`.result`: the :class:`FitResult` they all return (sliders by name, coefficients, notes; JSON and
  OBJ output).

Importing this package imports neither torch, open_clip, Pillow nor OpenCV (the measurement fit and the
result run inside Blender's own Python); the photo and text fits load them when first used.
"""

from .image import ImageFitter, fit_image
from .measure import REFUSE_BEYOND, fit_measurements, measurement_descriptors
from .result import Clamped, FitError, FitResult
from .text import TextFitter, fit_text

__all__ = [
    "REFUSE_BEYOND",
    "Clamped",
    "FitError",
    "FitResult",
    "ImageFitter",
    "TextFitter",
    "fit_image",
    "fit_measurements",
    "fit_text",
    "measurement_descriptors",
]
