"""The ``semantify`` command: one parser, one module per group of subcommands.

Errors the user can fix (:class:`SemantifyError`) print as one line on stderr with exit status 2, no
traceback, the parameters they name spelled as this command's options (``--samples``); for a program
following the command (``SEMANTIFY_PROGRESS=json``) a machine-readable record of the error comes first,
with the parameters unspelled, so that it can name them its own way. Ctrl-C exits with 130.
``blender -b -c semantify ...`` reaches the same :func:`main`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from .. import __version__
from ..errors import SemantifyError
from . import (
    build_cmd,
    clip_cmd,
    dataset_cmd,
    demo_cmd,
    evaluate_cmd,
    export_cmd,
    fit_cmd,
    mapper_cmd,
    models_cmd,
    render_cmd,
    select_cmd,
)
from .arguments import parameter_spellings
from .progress import error_record_line, listen_for_cancel, machine_readable

COMMAND_MODULES = (
    build_cmd,
    models_cmd,
    render_cmd,
    dataset_cmd,
    select_cmd,
    mapper_cmd,
    evaluate_cmd,
    fit_cmd,
    clip_cmd,
    export_cmd,
    demo_cmd,
)


def build_parser(extra_commands: Sequence[ModuleType] = ()) -> argparse.ArgumentParser:
    """The parser of every command; ``extra_commands`` (the Blender extension's) replace same-named ones.

    A command module has ``register(subparsers)``; one with a ``COMMAND`` name that an extra module also
    has is left out, so ``blender -c semantify export`` gets the extension's real export command.
    """
    parser = argparse.ArgumentParser(
        prog="semantify",
        description="Semantic sliders for 3D morphable models: build datasets with Blender and CLIP, "
        "select descriptors, train and evaluate mappers.",
        epilog="The method step by step: 'dataset build' (sample, render, score), 'select' (choose the "
        "descriptors), 'mapper train', 'evaluate'; all of them in one resumable run: 'build'.",
    )
    parser.add_argument("--version", action="version", version=f"semantify {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    replaced = {getattr(module, "COMMAND", None) for module in extra_commands} - {None}
    for module in (*COMMAND_MODULES, *extra_commands):
        if module in COMMAND_MODULES and getattr(module, "COMMAND", None) in replaced:
            continue
        module.register(commands)
    _refuse_abbreviations(parser)
    return parser


def _refuse_abbreviations(parser: argparse.ArgumentParser) -> None:
    """No prefix matching anywhere: ``--model`` must never silently mean ``--model-dir``."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _refuse_abbreviations(child)


def main(argv: Sequence[str] | None = None, extra_commands: Sequence[ModuleType] = ()) -> int:
    parser = build_parser(extra_commands)
    arguments = parser.parse_args(argv)
    listen_for_cancel()
    try:
        status = int(arguments.run(arguments) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at the interpreter's exit
        return status
    except BrokenPipeError:  # the reader (head, less) stopped reading: nothing left to tell it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except SemantifyError as error:
        if machine_readable():  # for a program following this one, which names the parameters its own way
            print(error_record_line(error), file=sys.stderr)
        message = error.render(parameter_spellings(parser, arguments).get)
        print(f"semantify: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("semantify: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
