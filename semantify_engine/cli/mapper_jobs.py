"""The two jobs on a mapper that more than one command runs: building one, and evaluating one.

``semantify build`` and ``semantify demo`` build a mapper the same way, from the same options;
``semantify evaluate`` and ``semantify demo`` evaluate one and print the same summary. Both jobs live here,
apart from the command modules, so that no command imports another command, nor the whole command line
(the demo builds through :func:`build_mapper`, not by calling ``main`` with an argument list).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..evaluation.coverage import DEFAULT_THETA
from .dataset_options import add_dataset_arguments, ray_options_from, request_from
from .progress import epoch_bar, progress_bar, say
from .selection_options import add_selection_arguments, forced_from


# ------------------------------------------------------------------------------------------ build
def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``semantify build``: a dataset's, then the choice of descriptors and the evaluation."""
    from ..pipeline import CLIP_SAMPLES, MEASUREMENT_SAMPLES

    add_dataset_arguments(
        parser,
        samples_help=f"samples (default {CLIP_SAMPLES} with CLIP scores, {MEASUREMENT_SAMPLES} for "
        "measurement-only builds, which render nothing)",
    )
    choice = parser.add_argument_group("descriptors and evaluation")
    add_selection_arguments(choice)
    choice.add_argument("--no-evaluate", action="store_true", help="stop after training")
    choice.add_argument("--no-sweep", action="store_true", help="skip the Table-1 sweep in the evaluation")
    choice.add_argument("--no-pictures", action="store_true", help="skip the evaluation's Blender renders")


def build_defaults(**values: object) -> argparse.Namespace:
    """``semantify build``'s options at their command-line defaults, ``values`` over them.

    For a caller that builds without a command line of its own (``semantify demo``): the defaults come
    from :func:`add_build_arguments` itself, so they cannot drift from the command's.
    """
    parser = argparse.ArgumentParser(add_help=False)
    add_build_arguments(parser)
    defaults = {action.dest: action.default for action in parser._actions}
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise TypeError(f"'semantify build' has no option {', '.join(unknown)}")
    return argparse.Namespace(**{**defaults, **values})


def build_mapper(arguments: argparse.Namespace) -> int:
    """Dataset, descriptors, training and evaluation into ``arguments.out``, as ``semantify build`` does."""
    from ..models import load
    from ..pipeline import BuildOptions, default_build_components, run_build

    out = Path(arguments.out)
    components = default_build_components(load(arguments.model, arguments.model_dir), arguments.scheme)
    forced = forced_from(arguments)
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
        say=say,
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


# ------------------------------------------------------------------------------------- evaluation
def evaluate_and_report(
    mapper: Path,
    out: Path,
    *,
    dataset: str | None = None,
    theta: float = DEFAULT_THETA,
    sweep: bool = True,
    pictures: bool = True,
    model_dir: str | None = None,
) -> int:
    """Evaluate ``mapper`` into ``out`` (a report with pictures) and print the summary ``semantify
    evaluate`` prints; the keywords default to that command's defaults."""
    from ..evaluation.evaluate import evaluate_mapper

    figures = evaluate_mapper(
        mapper,
        out,
        dataset=dataset,
        theta=theta,
        sweep=sweep,
        pictures=pictures,
        model_dir=model_dir,
        say=say,
    )
    coverage = figures["coverage"]
    print(f"{mapper}: coverage {coverage['coverage']:.1%}, overlap {coverage['overlap']:.1%} (θ={theta})")
    for name, row in {**figures.get("attribute_fidelity", {}), **figures.get("metric_fidelity", {})}.items():
        low, high = row["achieved_range"]
        print(
            f"  {name}: mean abs error {row['mean_abs_error']:.4g} {row['unit']}".rstrip()
            + f", reaches {low:.4g}–{high:.4g}, max cross-talk {row['max_cross_talk']:.1%}"
        )
    plausibility = figures.get("plausibility", {})
    if "worst" in plausibility:
        verdict = "inside" if plausibility["inside"] else "OUTSIDE"
        print(
            f"  plausibility: worst p{plausibility['worst']:.1f} over slider ends, "
            f"{plausibility['corners']['count']} box corners and {plausibility['random']['count']} random "
            f"settings ({verdict} the {plausibility['region']:g} % region)"
        )
    for note in figures.get("notes", []):
        print(f"  note: {note}")
    print(f"report: {out / 'report.md'}")
    return 0
