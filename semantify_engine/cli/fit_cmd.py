"""``semantify fit image | text | measure``: a shape from a photo, a sentence or measurements, as sliders.

Every fit prints the slider values it found (so the user can set them and refine), with notes on anything
clamped, cropped or left at its default; ``--out`` writes the full result as JSON (what the Blender add-on
reads), ``--obj`` the fitted mesh, ``--json`` prints the JSON instead of the summary.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import SemantifyError
from .arguments import spelled
from .common import CM_PER_M, in_descriptor_units, output_path, parse_assignments

LENGTH_MEASUREMENTS = (
    "height", "chest", "waist", "hips", "shoulder_width", "leg_length",
    "mouth_opening", "eye_opening", "brow_height", "jaw_drop",
)  # fmt: skip
"""Measurements with an option of their own (``--shoulder-width``), in centimetres on the command line."""
MASS_MEASUREMENTS = ("mass",)


def register(commands: argparse._SubParsersAction) -> None:
    fit = commands.add_parser(
        "fit",
        help="fit a shape to a photo, a text or measurements",
        description="Fit a shape and report the slider values that give it: from a photo (CLIP scores of "
        "the photo through the mapper), from text (the dataset renders most like the prompt, blended), or "
        "from measurements (a mapper with measurement sliders).",
    )
    actions = fit.add_subparsers(dest="action", metavar="ACTION", required=True)
    _register_image(actions)
    _register_text(actions)
    _register_measure(actions)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mapper", required=True, help="mapper file (.npz)")
    parser.add_argument("--out", help="write the result (sliders, coefficients, notes) as JSON here")
    parser.add_argument("--obj", help="write the fitted mesh as Wavefront OBJ here (Y up, Blender's default)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a summary")
    parser.add_argument(
        "--model", help="the mapper's model (name or .npz), for --obj (default: the one its dataset names)"
    )
    parser.add_argument("--model-dir", help="folder with your SMPL-family / SMAL files, for user models")


def _register_image(actions: argparse._SubParsersAction) -> None:
    from ..fitting.crop import CROP_CHOICES

    image = actions.add_parser(
        "image",
        help="photo → shape (zero-shot, the paper's §7)",
        description="Score the photo with the CLIP model and prompt template the mapper's words were scored "
        "with, and map the scores to a shape. The photo is first cropped to the person (or face) when a "
        "detector is installed (pip install 'semantify[detect]'), else to its centre square; measurement "
        "sliders stay at their defaults.",
    )
    image.add_argument("photo", help="the photo (JPEG, PNG, WebP, TIFF, BMP, ...)")
    _common(image)
    image.add_argument(
        "--crop",
        choices=CROP_CHOICES,
        default="auto",
        help="auto: the detector if installed and it finds someone, else the centre; person: the detector "
        "or an error; centre: the centre square (auto)",
    )
    image.add_argument(
        "--background",
        help="R,G,B in 0..1 to lay transparent pixels on (default: the mapper's render background, or black)",
    )
    image.add_argument("--device", help="torch device for CLIP (default: $SEMANTIFY_CLIP_DEVICE or cpu)")
    image.set_defaults(run=run_image)


def _register_text(actions: argparse._SubParsersAction) -> None:
    from ..fitting.text import DEFAULT_TEMPERATURE, DEFAULT_TOP_K, NEUTRAL_RENDERS

    text = actions.add_parser(
        "text",
        help='text → shape or expression ("a tall muscular man", "a surprised face")',
        description="Rank the dataset's cached render embeddings against the prompt with the dataset's CLIP "
        "(AvatarCLIP's shape step), blend the best matches' coefficients with softmax weights, and set the "
        "sliders to the blended matches' descriptor values.",
    )
    text.add_argument("prompt", help='what the shape should look like, e.g. "a tall muscular man"')
    _common(text)
    text.add_argument("--dataset", help="dataset folder (default: the one the mapper was trained from)")
    text.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help=f"matches to blend ({DEFAULT_TOP_K})")
    text.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        help=f"softmax temperature over the cosines ({DEFAULT_TEMPERATURE:g}, CLIP's own)",
    )
    text.add_argument(
        "--neutral-difference",
        action="store_true",
        help="rank by cos(render − neutral render, prompt − neutral prompt), AvatarCLIP's form",
    )
    text.add_argument(
        "--neutral-render",
        choices=NEUTRAL_RENDERS,
        default="sample",
        help="the neutral render: the sample nearest zero coefficients, or the mean embedding (sample)",
    )
    text.add_argument("--neutral-prompt", default="", help="default: the template without its word")
    text.add_argument("--device", help="torch device for CLIP (default: $SEMANTIFY_CLIP_DEVICE or cpu)")
    text.set_defaults(run=run_text)


def _register_measure(actions: argparse._SubParsersAction) -> None:
    measure = actions.add_parser(
        "measure",
        help="measurements → shape (centimetres, kilograms)",
        description="Set a mapper's measurement sliders to the given measurements (centimetres; mass in "
        "kilograms). Values outside a slider's range are clamped with a warning; values far outside are "
        "refused. Measurements not given stay at their defaults.",
    )
    _common(measure)
    group = measure.add_argument_group("measurements (only those the mapper has)")
    for name in LENGTH_MEASUREMENTS:
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float, metavar="CM")
    for name in MASS_MEASUREMENTS:
        group.add_argument(f"--{name}", dest=name, type=float, metavar="KG")
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other measurement slider (lengths in cm, mass in kg); repeatable",
    )
    measure.set_defaults(run=run_measure)


# ----------------------------------------------------------------------------------------------- runs
def run_image(arguments: argparse.Namespace) -> int:
    from ..fitting.image import fit_image
    from ..mapper import load_mapper
    from .common import parse_numbers

    outputs = _outputs(arguments)
    mapper = load_mapper(arguments.mapper)
    background = None
    if arguments.background:
        background = parse_numbers(arguments.background, "--background")
        if len(background) != 3 or not all(0.0 <= value <= 1.0 for value in background):
            raise SemantifyError(
                f"--background takes R,G,B in 0..1 such as 1,1,1; got '{arguments.background}'."
            )
    result = fit_image(
        arguments.photo, mapper, crop=arguments.crop, background=background, device=arguments.device
    )
    header = f"{arguments.photo}: crop {result.details['crop']}"
    return _finish(arguments, mapper, result, outputs, header)


def run_text(arguments: argparse.Namespace) -> int:
    from ..fitting.text import clean_prompt, fit_text
    from ..mapper import load_mapper

    clean_prompt(arguments.prompt)
    outputs = _outputs(arguments)
    mapper = load_mapper(arguments.mapper)
    result = fit_text(
        arguments.prompt,
        mapper,
        dataset=arguments.dataset,
        top_k=arguments.top_k,
        temperature=arguments.temperature,
        neutral=arguments.neutral_difference,
        neutral_render=arguments.neutral_render,
        neutral_prompt=arguments.neutral_prompt,
        device=arguments.device,
    )
    header = f'"{result.inputs["prompt"]}": {result.details["form"]} ranking, top {result.details["top_k"]}'
    return _finish(arguments, mapper, result, outputs, header)


def run_measure(arguments: argparse.Namespace) -> int:
    from ..fitting.measure import fit_measurements
    from ..mapper import load_mapper

    outputs = _outputs(arguments)
    mapper = load_mapper(arguments.mapper)
    requested = _requested_measurements(arguments, mapper)
    model, problem = _model_and_problem(mapper, arguments)
    if model is None and outputs["obj"] is not None:
        raise SemantifyError(f"--obj needs the mapper's model: {problem} Name it with --model.")
    result = fit_measurements(mapper, requested, model)
    if model is None:
        result.notes.append(f"the fitted mesh was not measured: {problem}")
    header = "measurements: " + ", ".join(
        f"{name} {_cli_value(mapper, name, v)}" for name, v in requested.items()
    )
    return _finish(arguments, mapper, result, outputs, header, model)


def _requested_measurements(arguments: argparse.Namespace, mapper: Any) -> dict[str, float]:
    """Command-line measurements in SI units: centimetres become metres for the mapper's metre sliders."""
    given = {
        name: getattr(arguments, name)
        for name in (*LENGTH_MEASUREMENTS, *MASS_MEASUREMENTS)
        if getattr(arguments, name) is not None
    }
    for name, value in parse_assignments(arguments.set).items():
        if name in given:
            raise SemantifyError(f"{name} is given twice.")
        given[name] = value
    return in_descriptor_units(mapper, given)


def _cli_value(mapper: Any, name: str, value: float) -> str:
    unit = {d.name: d.unit for d in mapper.descriptors}.get(name, "")
    return f"{value * CM_PER_M:g} cm" if unit == "m" else f"{value:g} {unit}".strip()


# ------------------------------------------------------------------------------------------- output
def _outputs(arguments: argparse.Namespace) -> dict[str, Path | None]:
    """Output paths checked before any work (a typo in a folder name fails at once, not after CLIP)."""
    return {
        "json": output_path(arguments.out, ".json") if arguments.out else None,
        "obj": output_path(arguments.obj, ".obj") if arguments.obj else None,
    }


def _model_and_problem(mapper: Any, arguments: argparse.Namespace) -> tuple[Any, str]:
    """The mapper's model (--model, else its dataset's, else its recorded name), or None and why not.

    Why not is the engine's own message: a model that cannot be loaded, or one that loads but is not the
    one the mapper was trained for (another checksum or vertex count).
    """
    from ..mapper import check_model
    from ..models import load

    spec = arguments.model or _dataset_model_spec(mapper) or mapper.model_info.get("name")
    try:
        model = load(spec, arguments.model_dir)
        check_model(mapper, model)
    except SemantifyError as error:
        return None, spelled(error, arguments)
    return model, ""


def _model_for(mapper: Any, arguments: argparse.Namespace, required: bool) -> Any:
    """The mapper's model, or None when it is not needed and cannot be had (see _model_and_problem)."""
    model, problem = _model_and_problem(mapper, arguments)
    if model is None and required:
        raise SemantifyError(f"--obj needs the mapper's model: {problem} Name it with --model.")
    return model


def _dataset_model_spec(mapper: Any) -> str | None:
    folder = mapper.metadata.get("dataset", {}).get("folder")
    manifest = Path(folder) / "manifest.json" if folder else None
    if manifest is None or not manifest.is_file():
        return None
    try:
        return json.loads(manifest.read_text())["settings"]["model"]["spec"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _finish(
    arguments: argparse.Namespace,
    mapper: Any,
    result: Any,
    outputs: dict[str, Path | None],
    header: str,
    model: Any = None,
) -> int:
    if outputs["obj"] is not None:
        model = model if model is not None else _model_for(mapper, arguments, required=True)
        result.write_obj(outputs["obj"], model)
    if outputs["json"] is not None:
        result.write_json(outputs["json"])
    if arguments.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    print(header)
    for line in result.summary_lines():
        print(f"  {line}")
    for name, row in result.details.get("achieved", {}).items():
        unit = {d.name: d.unit for d in mapper.descriptors}[name]
        scale, shown = (CM_PER_M, "cm") if unit == "m" else (1.0, unit)
        print(
            f"  {name}: mesh measures {row['achieved'] * scale:.1f} {shown} "
            f"(asked {row['requested'] * scale:.1f}, off by {row['error'] * scale:+.1f})"
        )
    for kind, path in outputs.items():
        if path is not None:
            print(f"wrote {path} ({'fitted mesh' if kind == 'obj' else 'sliders and coefficients'})")
    return 0
