"""``semantify export``: a shaped (rigged, posed) character written for another tool with a preset.

Exporting is Blender's work (its exporters, and the add-on carrying the preset out on copies of the
character), so the command runs inside Blender: the extension registers the same grammar with a runner
that does the work, for ``blender -b [FILE.blend] -c semantify export ...``
(``semantify_blender/export_cmd.py``). The plain ``semantify`` command line has the same options and
help, and says where to run it. Two sources:

- a character in a .blend: ``--blend FILE`` (or the file Blender opened) and ``--object NAME`` (default:
  the only Semantify character in it);
- a new one from a mapper and slider values: ``--mapper FILE`` with ``--set NAME=VALUE`` (centimetres and
  kilograms for measurement sliders, like ``semantify fit measure``) or ``--fit RESULT.json`` (what
  ``semantify fit ... --out`` wrote), the model from ``--model`` (default: the mapper's), ``--rig`` for a
  rigged character and ``--influences N`` for a game-ready skin.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..errors import SemantifyError

COMMAND = "export"


def register(
    commands: argparse._SubParsersAction, run: Callable[[argparse.Namespace], int] | None = None
) -> None:
    """The ``export`` command; ``run`` does the work (the extension gives one; else: where to run it)."""
    from ..export.presets import PRESETS

    parser = commands.add_parser(
        COMMAND,
        help="export a character for another tool with a preset (runs inside Blender)",
        description="Write a Semantify character as its target reads it: "
        + "; ".join(f"{preset.name}: {preset.label}" for preset in PRESETS)
        + ". Runs inside Blender: blender -b [FILE.blend] -c semantify export ...",
    )
    parser.add_argument("--preset", required=True, choices=[preset.name for preset in PRESETS])
    parser.add_argument("--out", required=True, help="the file to write (its suffix follows the preset)")
    scene = parser.add_argument_group("a character in a .blend")
    scene.add_argument("--blend", help="open this .blend first (default: the file Blender opened)")
    scene.add_argument("--object", help="the character's mesh or armature (default: the only character)")
    new = parser.add_argument_group("a new character from a mapper")
    new.add_argument("--mapper", help="a mapper file (.npz) or a shipped one's name (anny-body-measurements)")
    new.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a slider value (centimetres and kilograms for measurements, as in 'fit measure'); repeatable",
    )
    new.add_argument("--fit", help="the slider values of a fit ('semantify fit ... --out RESULT.json')")
    new.add_argument("--model", help="the mapper's model (default: the one the mapper names)")
    new.add_argument("--model-dir", help="folder with your SMPL-family / SMAL files, for user models")
    new.add_argument("--rig", action="store_true", help="a rigged character (an armature with the skeleton)")
    new.add_argument(
        "--influences", type=int, default=0, help="bones per vertex at most, with --rig (0: all)"
    )
    parser.set_defaults(run=run or run_outside_blender)


def run_outside_blender(arguments: argparse.Namespace) -> int:
    raise SemantifyError(
        "semantify export runs inside Blender, with its exporters: install the extension (make extension, "
        "then Install from Disk) and run 'blender -b -c semantify export ...' with the same options."
    )
