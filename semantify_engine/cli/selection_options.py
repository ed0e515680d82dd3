"""The options that choose descriptors, shared by ``semantify build`` and ``semantify select``.

Step 4 runs inside a build and on its own; defining ``--descriptors`` and ``--force`` once keeps their
names, defaults and meaning the same in both, so ``select`` shows exactly what ``build`` would choose.
"""

from __future__ import annotations

import argparse

from ..scoring.vocabulary import parse_words


def add_selection_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--descriptors N`` (how many) and ``--force WORDS`` (always kept)."""
    parser.add_argument(
        "--descriptors", type=int, help="how many sliders (default: as the selection decides)"
    )
    parser.add_argument("--force", help="comma-separated words or measurements always kept")


def forced_from(arguments: argparse.Namespace) -> tuple[str, ...]:
    """The ``--force`` names, in order and each once (none when the option is not given)."""
    return parse_words(arguments.force) if arguments.force else ()
