"""``semantify build``: dataset → descriptors → mapper → evaluation, one resumable command."""

from __future__ import annotations

import argparse

from .mapper_jobs import add_build_arguments, build_mapper


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "build",
        help="build a mapper end to end (dataset, descriptors, training, evaluation)",
        description="Sample and render the model, score with CLIP and/or measure, choose descriptors (the "
        "paper's selection), train the mapper and evaluate it, into --out. Run it again to resume. Without "
        "CLIP weights it builds measurement sliders (height, chest, waist, hips for bodies) and says how to "
        "get word sliders.",
    )
    add_build_arguments(parser)
    parser.set_defaults(run=build_mapper)
