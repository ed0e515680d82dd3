"""What a dataset is scored with: the names a build takes (``--scorer``, the sidebar's Sliders) and what
``auto`` means, decided here once for the command line and the Blender glue.

``clip`` scores the descriptor words with CLIP (it renders the samples), ``metric`` measures the bodies
(nothing is rendered), ``both`` does both, and ``auto`` does each where it can: words when CLIP runs here,
measurements when the model has a measurement definition.
"""

from __future__ import annotations

from collections.abc import Callable

AUTO = "auto"
SCORERS = (AUTO, "clip", "metric", "both")
WORD_SCORERS = ("clip", "both")
METRIC_SCORERS = ("metric", "both")


def asks_clip(scorer: str) -> bool:
    """Whether a build with ``scorer`` scores words with CLIP, or may (``auto``): what needs CLIP's modules,
    its weights and rendered views."""
    return scorer == AUTO or scorer in WORD_SCORERS


def resolve(
    scorer: str, clip_usable: Callable[[], bool], measurable: Callable[[], bool]
) -> tuple[bool, bool]:
    """``(words, measurements)``: what a build with ``scorer`` scores. For ``auto``, words when
    ``clip_usable()`` (CLIP's weights load here) and measurements when ``measurable()`` (the model has a
    measurement definition); each is asked only for ``auto``, and may say why not."""
    if scorer == AUTO:
        return clip_usable(), measurable()
    return scorer in WORD_SCORERS, scorer in METRIC_SCORERS


def settled(scorer: str, clip_runs: Callable[[], bool]) -> str:
    """The scorer to ask of a process that may lack CLIP's modules: there ``auto`` is ``metric`` (what
    :func:`resolve` decides without CLIP, said before the process starts rather than by its import error);
    every other scorer stays what it says, and ``clip_runs()`` is asked only for ``auto``."""
    return "metric" if scorer == AUTO and not clip_runs() else scorer
