"""``semantify evaluate MAPPER``: coverage, overlap, errors, fidelity, semantics; a report with pictures."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..evaluation.coverage import DEFAULT_THETA
from .mapper_jobs import evaluate_and_report


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "evaluate",
        help="evaluate a mapper and write a report",
        description="Coverage and overlap (paper §5.1) with a Table-1 sweep over d = 2, 5, 10, 15, held-out "
        "errors, expressiveness against raw PCA sliders, fidelity, reach and cross-talk of measurement and "
        "attribute sliders, plausibility at every slider's ends, the slider box's corners and random "
        "settings, semantic faithfulness of word sliders (needs the CLIP weights the dataset was scored "
        "with) and their agreement with the model's attributes, and a report with a slider gallery, the "
        "least plausible box corners and coverage heatmaps rendered by Blender. Without a dataset (shipped "
        "mappers record none) the sweep, held-out errors and expressiveness are skipped.",
    )
    parser.add_argument("mapper", help="mapper file (.npz)")
    parser.add_argument("--out", help="report folder (default: <mapper>-evaluation next to the mapper)")
    parser.add_argument("--dataset", help="dataset folder (default: the one the mapper records)")
    parser.add_argument(
        "--theta", type=float, default=DEFAULT_THETA, help="coverage threshold θ (0.3, paper)"
    )
    parser.add_argument(
        "--no-sweep", action="store_true", help="skip the Table-1 sweep (trains extra mappers)"
    )
    parser.add_argument("--no-pictures", action="store_true", help="skip the Blender renders")
    parser.add_argument("--model-dir", help="folder with your SMPL-family / SMAL files, for user models")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    mapper = Path(arguments.mapper)
    out = Path(arguments.out) if arguments.out else mapper.with_name(f"{mapper.stem}-evaluation")
    return evaluate_and_report(
        mapper,
        out,
        dataset=arguments.dataset,
        theta=arguments.theta,
        sweep=not arguments.no_sweep,
        pictures=not arguments.no_pictures,
        model_dir=arguments.model_dir,
    )
