"""``semantify build``: dataset → descriptors → mapper → evaluation, one resumable command."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from typing import Any

from ..scoring.vocabulary import parse_words
from .dataset_cmd import add_dataset_arguments, ray_options_from, request_from
from .mapper_cmd import epoch_bar
from .progress import progress_bar


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "build",
        help="build a mapper end to end (dataset, descriptors, training, evaluation)",
        description="Sample and render the model, score with CLIP and/or measure, choose descriptors (the "
        "paper's selection), train the mapper and evaluate it, into --out. Run it again to resume. Without "
        "CLIP weights it builds measurement sliders (height, chest, waist, hips for bodies) and says how to "
        "get word sliders.",
    )
    from ..pipeline import CLIP_SAMPLES, MEASUREMENT_SAMPLES

    add_dataset_arguments(
        parser,
        samples_help=f"samples (default {CLIP_SAMPLES} with CLIP scores, {MEASUREMENT_SAMPLES} for "
        "measurement-only builds, which render nothing)",
    )
    choice = parser.add_argument_group("descriptors and evaluation")
    choice.add_argument(
        "--descriptors", type=int, help="how many sliders (default: as the selection decides)"
    )
    choice.add_argument("--force", help="comma-separated words or measurements always kept")
    choice.add_argument("--no-evaluate", action="store_true", help="stop after training")
    choice.add_argument("--no-sweep", action="store_true", help="skip the Table-1 sweep in the evaluation")
    choice.add_argument("--no-pictures", action="store_true", help="skip the evaluation's Blender renders")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    from pathlib import Path

    from ..pipeline import BuildOptions, default_build_components, run_build

    out = Path(arguments.out)
    from ..models import load

    components = default_build_components(load(arguments.model, arguments.model_dir), arguments.scheme)
    forced = parse_words(arguments.force) if arguments.force else ()
    request = request_from(arguments, components=components, forced=forced)
    options = BuildOptions(
        n_descriptors=arguments.descriptors,
        forced=forced,
        evaluate=not arguments.no_evaluate,
        sweep=not arguments.no_sweep,
        pictures=not arguments.no_pictures,
    )
    summary = run_build(
        out,
        request,
        options,
        progress=_dataset_bar(request.model.name),
        training_progress=lambda: epoch_bar("training mapper"),
        ray=ray_options_from(arguments),
    )
    if request.clip is None:
        print(
            f"Word sliders need CLIP weights: this build made sliders from {summary['kind']}. Give "
            "weights with --pretrained /path/to/weights (or SEMANTIFY_CLIP_PRETRAINED) and run again "
            "with a new --out."
        )
    print(json.dumps(summary, indent=2))
    return 0


def _dataset_bar(name: str):
    @contextlib.contextmanager
    def open_bar(total: int, done: int) -> Iterator[Any]:
        with progress_bar(total, f"dataset {name}", unit="sample") as bar:
            bar.update(done)
            yield bar

    return open_bar
