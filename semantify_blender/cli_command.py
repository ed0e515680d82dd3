"""``blender -b -c semantify <subcommand> ...``: the engine's command line, run inside Blender.

Blender (4.2+) lets an enabled extension register a command for ``-c`` / ``--command``; the arguments after
the command id arrive as a list. It runs the same :func:`semantify_engine.cli.main.main` as the
``semantify`` console script, with Blender's own ``bpy`` for rendering, and the add-on preferences (user
model folder, CLIP model and weights, cache) as defaults for variables the shell did not set.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import bpy

from .engine import import_engine
from .preferences import engine_environment

COMMAND_ID = "semantify"
_handle: Any = None


def execute(argv: Sequence[str]) -> int:
    """The command's entry point: Blender's exit status is what the engine's ``main`` returns."""
    from . import export_cmd  # the extension's own commands: they need Blender (export)

    main = import_engine("cli.main").main
    with _preferences_as_environment():
        try:
            return int(main(list(argv), extra_commands=(export_cmd,)))
        except SystemExit as exit_:  # argparse's --help and usage errors
            code = exit_.code
            return code if isinstance(code, int) else (0 if code is None else 1)


@contextlib.contextmanager
def _preferences_as_environment() -> Iterator[None]:
    """Preferences as defaults for the engine's variables (the shell's win), restored afterwards.

    Restoring matters when the callback runs inside a live session (a script, the Python console).
    """
    added = [name for name in engine_environment() if name not in os.environ]
    os.environ.update({name: value for name, value in engine_environment().items() if name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def register_command() -> None:
    global _handle
    _handle = bpy.utils.register_cli_command(COMMAND_ID, execute)


def unregister_command() -> None:
    global _handle
    if _handle is not None:
        bpy.utils.unregister_cli_command(_handle)
        _handle = None
