"""``blender -b [FILE.blend] -c semantify export ...``: Export Character from the command line.

The grammar is the engine's (:mod:`semantify_engine.cli.export_cmd`); this module gives it a runner that
does the work inside Blender: the character from the .blend (``--object``), or a new one made from a
mapper and slider values, exactly as the sidebar would make it (Add Model or Add Rigged Character, Load
Mapper, the sliders set by name), then :func:`.export.export_character`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import bpy

from . import export, fitting_ops, model_objects, sliders
from .engine import import_engine
from .preferences import user_model_dir
from .rig_build import create_rigged_character
from .rig_layout import rigged_mesh_of

COMMAND = "export"


def register(commands: argparse._SubParsersAction) -> None:
    import_engine("cli.export_cmd").register(commands, run=run)


def error(message: str) -> Exception:
    return import_engine("errors").ExportError(message)


def scene_character(name: str | None) -> bpy.types.Object:
    """The character named ``name`` (mesh or armature), or the only one in the file."""
    characters = [obj for obj in bpy.data.objects if obj.type == "MESH" and obj.semantify.is_model]
    if name:
        obj = bpy.data.objects.get(name)
        if obj is None or (rigged_mesh_of(obj) is None and obj not in characters):
            known = ", ".join(sorted(obj.name for obj in characters)) or "none"
            raise error(f"There is no Semantify character '{name}' in this file (characters: {known}).")
        return obj
    if len(characters) != 1:
        known = ", ".join(sorted(obj.name for obj in characters)) or "none"
        raise error(f"Name the character to export with --object (characters in this file: {known}).")
    return characters[0]


def mapper_reference(text: str) -> str:
    """A mapper file, or the name of a shipped mapper (``anny-body-measurements``)."""
    path = Path(text).expanduser()
    if path.is_file():
        return str(path.resolve())
    defaults = import_engine("mapper.defaults")
    if (defaults.DEFAULT_MAPPER_DIR / f"{text}.npz").is_file():
        return f"{sliders.DEFAULT_MAPPER_PREFIX}{text}"
    raise error(f"Mapper {text} is neither a file nor a shipped mapper (see semantify_engine/data/mappers).")


def slider_values(arguments: argparse.Namespace, mapper: Any) -> tuple[dict[str, float], str | None]:
    """Values by descriptor name in the mapper's units, and the mapper a fit was made with (if any)."""
    common = import_engine("cli.common")
    values: dict[str, float] = {}
    fitted_with = None
    if arguments.fit:
        try:
            data = json.loads(Path(arguments.fit).read_text(encoding="utf-8"))
            values = {str(name): float(value) for name, value in data["sliders"].items()}
            fitted_with = (data.get("mapper") or {}).get("checksum")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as problem:
            raise error(
                f"{arguments.fit} is not a fit's result ('semantify fit ... --out'): {problem}."
            ) from None
    values.update(common.in_descriptor_units(mapper, common.parse_assignments(arguments.set)))
    return values, fitted_with


def new_character(context: Any, arguments: argparse.Namespace) -> bpy.types.Object:
    """The character the sidebar would make from ``--model``, ``--mapper`` and the slider values."""
    registry = import_engine("models.registry")
    if not arguments.mapper:
        raise error("--set, --fit, --model and --rig describe a new character: give its --mapper too.")
    reference = mapper_reference(arguments.mapper)
    mapper, _ = sliders.cached_mapper(sliders.mapper_file(reference))
    spec = arguments.model or mapper.model_info.get("name", "")
    model = registry.load(spec, model_dir=arguments.model_dir or user_model_dir(context))
    values, fitted_with = slider_values(arguments, mapper)  # everything checked before the scene changes
    unknown = sorted(set(values) - set(mapper.descriptor_names))
    if unknown:
        names = ", ".join(mapper.descriptor_names)
        raise error(f"The mapper has no slider {', '.join(unknown)}; its sliders are {names}.")
    if arguments.rig:
        obj, armature = create_rigged_character(context, model, spec, arguments.influences)
    else:
        obj, armature = model_objects.create_model_object(context, model, source=spec), None
    try:
        sliders.load_onto(obj, reference)
        fitting_ops.set_sliders(obj, values, fitted_with if arguments.fit else None)
    except Exception:
        for made in (obj, armature):  # a character half made is not left behind
            if made is not None:
                bpy.data.objects.remove(made)
        raise
    return obj


def run(arguments: argparse.Namespace) -> int:
    context = bpy.context
    if arguments.blend:
        path = Path(arguments.blend).expanduser()
        if not path.is_file():
            raise error(f"{path} does not exist; give a .blend file to --blend.")
        bpy.ops.wm.open_mainfile(filepath=str(path))
        context = bpy.context
    builds_new = bool(arguments.mapper or arguments.fit or arguments.set or arguments.model or arguments.rig)
    obj = new_character(context, arguments) if builds_new else scene_character(arguments.object)
    report = export.export_character(context, obj, arguments.preset, arguments.out)
    print(report.message())
    return 0
