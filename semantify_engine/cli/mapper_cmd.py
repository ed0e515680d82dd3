"""``semantify mapper train | add-word | info``: train the slider mapper, grow it by a word, inspect it."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..errors import SemantifyError
from ..mapper.mapper import Mapper, describe, load_mapper, read_mapper_header, save_mapper
from ..scoring.vocabulary import parse_words
from .common import output_path, parse_numbers
from .progress import epoch_bar


def register(commands: argparse._SubParsersAction) -> None:
    mapper = commands.add_parser(
        "mapper",
        help="train, extend and inspect slider mappers",
        description="Mappers turn slider values into model coefficients: train, add-word, info.",
    )
    actions = mapper.add_subparsers(dest="action", metavar="ACTION", required=True)

    train = actions.add_parser(
        "train",
        help="train a mapper on a dataset's descriptors",
        description="Train the MLP (d → 800 → 500 → n, ReLU, MSE, Adam) from descriptor values to "
        "coefficients. A descriptor is one of the dataset's measurements (height, waist, ...), one of its "
        "CLIP words, or any other word, scored now from the dataset's cached image embeddings (no render).",
    )
    train.add_argument("dataset", help="dataset folder (from 'semantify dataset build')")
    train.add_argument("--descriptors", required=True, help="comma-separated measurements and/or words")
    train.add_argument("--out", required=True, help="mapper file to write (.npz)")
    train.add_argument("--model-dir", help="folder with your SMPL-family / SMAL files, for user models")
    _add_training_arguments(train)
    train.set_defaults(run=run_train)

    add_word = actions.add_parser(
        "add-word",
        help="add a descriptor word to a mapper and retrain (no rendering)",
        description="Score a new word against the dataset's cached CLIP image embeddings with the dataset's "
        "own CLIP model and prompt template, add it as a slider and retrain with the mapper's recorded "
        "settings.",
    )
    add_word.add_argument("mapper", help="mapper file (.npz)")
    add_word.add_argument("word", help='the new descriptor, e.g. "broad shoulders"')
    add_word.add_argument("--dataset", help="dataset folder (default: the one the mapper was trained from)")
    add_word.add_argument("--out", help="write the new mapper here instead of replacing MAPPER")
    add_word.set_defaults(run=run_add_word)

    info = actions.add_parser(
        "info", help="describe a mapper", description="Print a mapper's descriptors, model and figures."
    )
    info.add_argument("mapper", help="mapper file (.npz)")
    info.add_argument("--json", action="store_true", help="print the full JSON header")
    info.set_defaults(run=run_info)


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per :class:`~..mapper.settings.TrainingSettings` field, its destination the field's name
    and its default the field's own (:func:`_settings_from` reads them back whole)."""
    from ..mapper.settings import TrainingSettings

    defaults = TrainingSettings()
    group = parser.add_argument_group("training")
    hidden = ",".join(str(width) for width in defaults.hidden)
    group.add_argument("--hidden", default=hidden, help=f"hidden layer widths ({hidden})")
    group.add_argument("--epochs", type=int, default=defaults.epochs, help=f"epochs ({defaults.epochs})")
    group.add_argument("--lr", type=float, default=defaults.lr, help=f"Adam learning rate ({defaults.lr:g})")
    group.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help=f"samples per step ({defaults.batch_size})",
    )
    group.add_argument(
        "--validation",
        dest="validation_fraction",
        metavar="VALIDATION",
        type=float,
        default=defaults.validation_fraction,
        help=f"fraction held out for validation ({defaults.validation_fraction:g})",
    )
    group.add_argument("--seed", type=int, default=defaults.seed, help=f"seed ({defaults.seed})")
    group.add_argument(
        "--threads", type=int, default=defaults.threads, help=f"torch threads ({defaults.threads})"
    )
    group.add_argument(
        "--consistency",
        type=float,
        default=defaults.consistency,
        help="weight of the term that keeps measurement sliders true where the data is thin: each one "
        "moves its own measurement and holds the others (measurement descriptors only; 0 turns it off; "
        f"{defaults.consistency:g})",
    )


def _settings_from(arguments: argparse.Namespace) -> Any:
    """The training options as one :class:`~..mapper.settings.TrainingSettings` (which checks them)."""
    from ..mapper.settings import TrainingSettings

    widths = parse_numbers(arguments.hidden, "--hidden", example="800,500")
    if not widths or any(width != int(width) for width in widths):
        raise SemantifyError(f"--hidden takes whole numbers such as 800,500; got '{arguments.hidden}'.")
    given = {field.name: getattr(arguments, field.name) for field in fields(TrainingSettings)}
    return TrainingSettings(**{**given, "hidden": tuple(int(width) for width in widths)})


def run_train(arguments: argparse.Namespace) -> int:
    from ..mapper.from_dataset import train_from_dataset

    out = output_path(arguments.out, ".npz")
    settings = _settings_from(arguments)
    names = parse_words(arguments.descriptors)
    with epoch_bar("training mapper") as progress:
        mapper, figures = train_from_dataset(
            arguments.dataset, names, model_dir=arguments.model_dir, settings=settings, progress=progress
        )
    save_mapper(mapper, out)
    _report(out, mapper, figures)
    return 0


def run_add_word(arguments: argparse.Namespace) -> int:
    from ..mapper.add_word import add_word

    out = output_path(arguments.out, ".npz") if arguments.out else None
    with epoch_bar("retraining mapper") as progress:
        path, mapper, figures = add_word(
            arguments.mapper, arguments.dataset, arguments.word, out, progress=progress
        )
    _report(path, mapper, figures)
    return 0


def run_info(arguments: argparse.Namespace) -> int:
    if arguments.json:
        load_mapper(arguments.mapper)  # verifies the checksum before anything is printed
        print(json.dumps(read_mapper_header(arguments.mapper), indent=2, sort_keys=True))
        return 0
    mapper = load_mapper(arguments.mapper)
    print(f"{Path(arguments.mapper)}:")
    for line in describe(mapper):
        print(f"  {line}")
    return 0


def _report(path: Path, mapper: Mapper, figures: dict[str, Any]) -> None:
    print(f"{path}: {mapper.input_count} sliders → {mapper.coefficient_count} coefficients")
    for line in describe(mapper):
        print(f"  {line}")
