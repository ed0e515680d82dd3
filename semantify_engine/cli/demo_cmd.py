"""``semantify demo``: the main job on the bundled models, what ``make demo`` runs.

It builds a mapper for the bundled body end to end (``semantify build``: dataset, descriptors, training,
evaluation with a report), evaluates every shipped body mapper (plausibility at slider ends, box corners
and random settings; fidelity and reach of every slider; galleries), and renders a contact sheet of every
bundled model. Word sliders need CLIP weights; without them the body gets attribute sliders (MakeHuman's
shape settings and the height in metres) and the output says how to get word sliders.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..mapper.defaults import default_mappers
from ..models.registry import DEFAULT_MODEL, bundled_model_paths, load
from ..render.contact_sheet import render_contact_sheet
from ..render.images import save_png
from ..render.views import NAMED_VIEWS
from .mapper_jobs import build_defaults, build_mapper, evaluate_and_report


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the main job on the bundled models",
        description=f"'semantify build' on the bundled {DEFAULT_MODEL} into OUT/{DEFAULT_MODEL}, 'semantify "
        "evaluate' of every shipped body mapper into OUT/shipped, then a contact sheet (each component at "
        "-2σ / 0 / +2σ, front and side) of every bundled model.",
    )
    parser.add_argument("--out", default="out/demo", help="output folder (out/demo)")
    parser.add_argument("--samples", type=int, help="dataset samples for the build (default: build's)")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    folder = Path(arguments.out)
    build_mapper(
        build_defaults(model=DEFAULT_MODEL, samples=arguments.samples, out=str(folder / DEFAULT_MODEL))
    )
    for entry in default_mappers():
        if entry.model_name in bundled_model_paths() and load(entry.model_name).bank is not None:
            evaluate_and_report(Path(entry.path), folder / "shipped" / entry.name, sweep=False)
    views = (NAMED_VIEWS["front"], NAMED_VIEWS["side"])
    for name in bundled_model_paths():
        started = time.perf_counter()
        model = load(name)
        sheet = render_contact_sheet(model, views, components=10, sigmas=2.0)
        path = save_png(sheet, folder / f"{name}-contact-sheet.png")
        print(f"{name}: {model.vertex_count} vertices, {model.component_count} components -> {path} "
              f"({time.perf_counter() - started:.1f} s)")  # fmt: skip
    print(f"report of the {DEFAULT_MODEL} mapper: {folder / DEFAULT_MODEL / 'evaluation' / 'report.md'}")
    print(f"reports of the shipped body mappers: {folder / 'shipped'}/*/report.md")
    return 0
