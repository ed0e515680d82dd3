"""Descriptor selection (step 4 of the Semantify pipeline): which scored words become sliders.

:class:`DescriptorSelector` is the paper's algorithm (K-means on image embeddings, top-k votes, variance
ranking, correlation and synonym/antonym filtering) as one scikit-learn estimator, with a fixed count,
forced descriptors and measured metrics as options. :mod:`.lexicon` is the offline synonym/antonym
lexicon it uses; :mod:`.from_dataset` runs it on a dataset folder (``semantify build`` and ``select``).

The estimator needs scikit-learn, an optional dependency (the ``clip`` extra), so it is imported on first
use: ``import semantify_engine.selection`` and the lexicon stay light enough for the Blender add-on to
import while it registers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .lexicon import Lexicon, LexiconError, default_lexicon, normalise

if TYPE_CHECKING:
    from .descriptors import DescriptorSelectionError, DescriptorSelector

__all__ = [
    "DescriptorSelectionError",
    "DescriptorSelector",
    "Lexicon",
    "LexiconError",
    "default_lexicon",
    "normalise",
]

_LAZY = {"DescriptorSelector", "DescriptorSelectionError"}


def __getattr__(name: str) -> Any:
    """Import the scikit-learn based estimator only when it is asked for."""
    if name in _LAZY:
        from . import descriptors

        return getattr(descriptors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
