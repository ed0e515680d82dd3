"""``semantify preview`` and ``semantify contact-sheet``: look at a model through the renderer."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..errors import SemantifyError
from ..models import load
from ..render.images import grid, save_png
from .common import (
    add_model_arguments,
    add_render_arguments,
    output_path,
    read_coefficients,
    render_settings_from,
    views_from,
)

MAX_PREVIEW_STDS = 20.0
"""How far from the mean a previewed component may be: past it the shape leaves any sensible frame."""


def register(commands: argparse._SubParsersAction) -> None:
    preview = commands.add_parser(
        "preview",
        help="render one shape of a model to a PNG",
        description="Render a model with the given coefficients (all zero by default) from each view, "
        "side by side, into one PNG.",
    )
    add_model_arguments(preview)
    preview.add_argument(
        "--coeffs", help="coefficients: inline (1.5,0,-2) or a .npy / .json file; missing ones are 0"
    )
    preview.add_argument("--out", required=True, help="the PNG to write")
    add_render_arguments(preview)
    preview.set_defaults(run=run_preview)

    sheet = commands.add_parser(
        "contact-sheet",
        help="render what each component does (low / 0 / high)",
        description="One row per component: the component at -σ, 0 and +σ (cut to the model's valid "
        "range), all others zero, from each view.",
    )
    add_model_arguments(sheet)
    sheet.add_argument("--out", required=True, help="the PNG to write")
    sheet.add_argument("--components", type=int, default=10, help="how many components (10)")
    sheet.add_argument("--sigma", type=float, default=2.0, help="how many standard deviations (2)")
    add_render_arguments(sheet, views="front")
    sheet.set_defaults(run=run_contact_sheet)


def run_preview(arguments: argparse.Namespace) -> int:
    out = output_path(arguments.out, ".png")
    model = load(arguments.model, arguments.model_dir)
    coefficients = (
        np.zeros(1, np.float32) if arguments.coeffs is None else read_coefficients(arguments.coeffs)
    )
    batch = model.check_coefficients(coefficients)
    distance = np.abs(batch / model.std[: batch.shape[1]]).max()
    if model.coefficient_bounds is None and distance > MAX_PREVIEW_STDS:
        raise SemantifyError(
            f"--coeffs puts a component {distance:.3g} standard deviations from the mean; a preview frames "
            f"shapes within {MAX_PREVIEW_STDS:g} (the model's samples span 2 to 3): give smaller values."
        )
    from ..render.blender import BlenderRenderer

    views, settings = views_from(arguments), render_settings_from(arguments)
    framed = max(10, batch.shape[1])  # the frame must hold every component the user moved
    with BlenderRenderer(model, views, settings, framing_components=framed) as renderer:
        images = renderer.render(batch)
    save_png(grid(images.reshape(-1, *images.shape[-3:]), columns=images.shape[1]), out)
    print(f"wrote {out} ({len(batch)} shape(s) × {images.shape[1]} view(s) of {model.name})")
    return 0


def run_contact_sheet(arguments: argparse.Namespace) -> int:
    out = output_path(arguments.out, ".png")
    model = load(arguments.model, arguments.model_dir)
    from ..render.contact_sheet import render_contact_sheet

    print(
        f"rendering {min(arguments.components, model.component_count)} components of {model.name} ...",
        file=sys.stderr,
    )
    sheet = render_contact_sheet(
        model,
        views_from(arguments),
        components=arguments.components,
        sigmas=arguments.sigma,
        settings=render_settings_from(arguments),
    )
    save_png(sheet, out)
    print(f"wrote {out}")
    return 0
