"""``semantify demo``: the main job on the bundled models, what ``make demo`` runs.

Today it renders a contact sheet of every bundled model, the most complete job the product has; it
grows into the full build (dataset → descriptors → mapper → evaluation) as those parts land.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..models.registry import bundled_model_paths, load
from ..render.contact_sheet import render_contact_sheet
from ..render.images import save_png
from ..render.settings import RenderSettings
from ..render.views import NAMED_VIEWS


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the main job on the bundled models",
        description="Render a contact sheet (each component at -2σ / 0 / +2σ, front and side) of every "
        "bundled model into --out.",
    )
    parser.add_argument("--out", default="out/demo", help="output folder (out/demo)")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    folder = Path(arguments.out)
    views = (NAMED_VIEWS["front"], NAMED_VIEWS["side"])
    for name in bundled_model_paths():
        started = time.perf_counter()
        model = load(name)
        sheet = render_contact_sheet(model, views, components=10, sigmas=2.0, settings=RenderSettings())
        path = save_png(sheet, folder / f"{name}-contact-sheet.png")
        print(
            f"{name}: {model.vertex_count} vertices, {model.component_count} components -> {path} "
            f"({time.perf_counter() - started:.1f} s)"
        )
    return 0
