"""Arguments and parsing shared by several subcommands, so each means the same thing everywhere."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..atomic import ensure_writable
from ..errors import SemantifyError
from ..models import DEFAULT_MODEL
from ..render.settings import ENGINES, RenderSettings
from ..render.views import View, parse_views
from ..scoring.clip import ClipSpec


def add_model_arguments(parser: argparse.ArgumentParser, positional: bool = True) -> None:
    help_text = (
        "a bundled model (see 'semantify models'), a user model name such as smplx-neutral, "
        f"or a model file (.npz); default {DEFAULT_MODEL}"
    )
    if positional:
        parser.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=help_text)
    else:
        parser.add_argument("--model", default=DEFAULT_MODEL, help=help_text)
    parser.add_argument(
        "--model-dir",
        help="folder with your SMPL-family / SMAL files (default: $SEMANTIFY_MODEL_DIR)",
    )


def add_render_arguments(parser: argparse.ArgumentParser, views: str = "front,side") -> None:
    group = parser.add_argument_group("rendering")
    group.add_argument(
        "--views",
        default=views,
        help=f"comma-separated: front, side, back, az<deg>[el<deg>] (default {views})",
    )
    group.add_argument("--resolution", type=int, default=224, help="pixels per side of each image (224)")
    group.add_argument("--engine", choices=ENGINES, default="workbench", help="Blender engine (workbench)")
    group.add_argument(
        "--supersample", type=int, default=1, help="render n× larger and average, for smoother edges (1)"
    )
    group.add_argument("--render-samples", type=int, default=16, help="Cycles/EEVEE samples per pixel (16)")
    group.add_argument("--background", default="0,0,0", help="background RGB in 0..1 (0,0,0: black)")


def render_settings_from(arguments: argparse.Namespace) -> RenderSettings:
    return RenderSettings(
        resolution=arguments.resolution,
        engine=arguments.engine,
        supersample=arguments.supersample,
        samples=arguments.render_samples,
        background=parse_numbers(arguments.background, "--background"),
    )


def views_from(arguments: argparse.Namespace) -> tuple[View, ...]:
    return parse_views(arguments.views)


def parse_numbers(text: str, what: str, example: str = "1.5,-2,0") -> list[float]:
    """``"1, -2.5,0"`` -> floats, with an error naming the option, an example of its own and the bad value."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        message = f"{what} takes comma-separated numbers such as {example}; got '{text}'."
        raise SemantifyError(message) from error


def read_coefficients(text: str) -> np.ndarray:
    """Coefficients given inline (``1,0,-2``) or as a file (.npy, or .json holding a list)."""
    path = Path(text)
    if path.suffix in {".npy", ".json"}:
        if not path.is_file():
            raise SemantifyError(f"Coefficient file {path} does not exist.")
        try:
            if path.suffix == ".npy":
                values = np.load(path, allow_pickle=False)
            else:
                values = np.asarray(json.loads(path.read_text()), dtype=np.float32)
        except (ValueError, OSError) as error:
            raise SemantifyError(
                f"Could not read coefficients from {path} ({error}); expected numbers."
            ) from error
        return np.asarray(values, dtype=np.float32)
    return np.asarray(parse_numbers(text, "--coeffs"), dtype=np.float32)


def output_path(text: str, suffix: str) -> Path:
    """The output file, checked for its ending and for being writable before any work starts."""
    path = Path(text).expanduser()
    if path.suffix.lower() != suffix:
        raise SemantifyError(f"Output {path} must end in {suffix}.")
    return ensure_writable(path)


def add_clip_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--clip`` and ``--pretrained``: which CLIP, in open_clip's terms (defaults from the environment)."""
    parser.add_argument("--clip", help="open_clip architecture (default $SEMANTIFY_CLIP_MODEL or ViT-B-32)")
    parser.add_argument(
        "--pretrained",
        help="open_clip tag (openai), hf-hub:org/name, or a local weights file "
        "(default $SEMANTIFY_CLIP_PRETRAINED or openai)",
    )


def clip_spec_from(arguments: argparse.Namespace) -> ClipSpec:
    """The CLIP the options name, over ``SEMANTIFY_CLIP_*`` defaults (device and cache folder kept)."""
    from dataclasses import replace

    spec = ClipSpec.from_env()
    if arguments.clip:
        spec = replace(spec, model=arguments.clip)
    if arguments.pretrained:
        spec = replace(
            spec, pretrained=None if arguments.pretrained.lower() == "none" else arguments.pretrained
        )
    return spec.normalized()


CM_PER_M = 100.0


def parse_assignments(items: list[str], option: str = "--set") -> dict[str, float]:
    """``["shoulder-width=42", "waist=80"]`` as ``{"shoulder_width": 42.0, "waist": 80.0}``, each once."""
    given: dict[str, float] = {}
    for item in items:
        name, separator, text = item.partition("=")
        name = name.strip().replace("-", "_")
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not separator or not name or value != value:
            raise SemantifyError(f"{option} takes NAME=VALUE such as shoulder_width=42; got '{item}'.")
        if name in given:
            raise SemantifyError(f"{name} is given twice.")
        given[name] = value
    return given


def in_descriptor_units(mapper: object, values: dict[str, float]) -> dict[str, float]:
    """Command-line values in the mapper's units: centimetres become metres for its metre sliders."""
    units = {descriptor.name: descriptor.unit for descriptor in mapper.descriptors}  # type: ignore[attr-defined]
    return {name: value / CM_PER_M if units.get(name) == "m" else value for name, value in values.items()}
