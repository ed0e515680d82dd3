"""Argument lists for ``semantify`` subcommands, written from the parser's own definitions.

The Blender add-on runs engine commands in background processes (Build Mapper is ``semantify build``,
Fit Photo is ``semantify fit image``, ...). An argument list written by hand in the glue would be a second
copy of the command-line grammar, free to drift from the first: an option renamed in the parser, a flag
the glue still passes. Here the caller names what it wants by the parser's own destinations
(``samples=300``, ``no_evaluate=True``); each is looked up among the subcommand's actions and written with
the option's own spelling, and the finished list is parsed by the real parser before anything starts, so
what the command would refuse is refused in the caller, with the parser's own message.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Sequence

from ..errors import ArgumentsError, SemantifyError


def subcommand_parser(command: Sequence[str]) -> argparse.ArgumentParser:
    """The parser of ``semantify <command...>`` (``("mapper", "add-word")``), from the real parser."""
    from .main import build_parser

    parser = build_parser()
    for name in command:
        _, choices = _subcommands(parser)
        if name not in choices:
            raise ArgumentsError(f"'semantify {' '.join(command)}' is not a command ('{name}' is unknown).")
        parser = choices[name]
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> tuple[str, dict[str, argparse.ArgumentParser]]:
    """The destination that names ``parser``'s subcommand, and their parsers (none: ``("", {})``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.dest, dict(action.choices)
    return "", {}


def _option_string(action: argparse.Action) -> str:
    """The option's long spelling (``--no-evaluate``), as ``--help`` shows it."""
    longs = [option for option in action.option_strings if option.startswith("--")]
    return (longs or list(action.option_strings))[0]


def _spelling(action: argparse.Action) -> str:
    """How ``--help`` names an argument: an option's long spelling, a positional's metavar (``DATASET``)."""
    if action.option_strings:
        return _option_string(action)
    return action.metavar if isinstance(action.metavar, str) else action.dest.upper()


def _named(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """``parser``'s own arguments that land in the namespace (not ``--help``'s kind)."""
    return [action for action in parser._actions if action.dest != argparse.SUPPRESS]


def parameter_spellings(
    parser: argparse.ArgumentParser, arguments: argparse.Namespace | None = None
) -> dict[str, str]:
    """Engine parameters as the command line spells them: ``{"samples": "--samples", ...}``.

    An engine error names the parameter at fault (:class:`~semantify_engine.errors.SemantifyError`); on
    the command line it is the argument with that destination. The command ``arguments`` were parsed for
    spells its own (``mapper train DATASET`` and ``evaluate --dataset`` differ); a parameter only another
    command has is spelled as that command's option, so a message may point to it. Read from the parser
    itself, so that an option renamed there is renamed in every message.
    """
    spellings: dict[str, str] = {}
    everywhere: list[argparse.Action] = []
    pending = [parser]
    while pending:  # every command's arguments, options before positionals, the first command's first
        current = pending.pop(0)
        everywhere += _named(current)
        pending += _subcommands(current)[1].values()
    for action in sorted(everywhere, key=lambda action: not action.option_strings):
        spellings.setdefault(action.dest, _spelling(action))
    current = parser
    while arguments is not None:  # then the command's own, from the outermost parser in
        spellings.update((action.dest, _spelling(action)) for action in _named(current))
        destination, choices = _subcommands(current)
        chosen = getattr(arguments, destination, None)
        if chosen not in choices:
            break
        current = choices[chosen]
    return spellings


def spelled(error: SemantifyError, arguments: argparse.Namespace | None = None) -> str:
    """``error``'s message as the command line says it (its parameters as options, see
    :func:`parameter_spellings`), for a command that shows an engine error inside a note of its own."""
    from .main import build_parser

    return error.render(parameter_spellings(build_parser(), arguments).get)


def command_arguments(command: Sequence[str], *positionals: object, **options: object) -> list[str]:
    """``["build", "--model", "anny-body", ...]`` for ``command`` with ``options`` given by destination.

    Options whose value is None or False are left out (the parser's default applies); True turns a flag
    on; a list or tuple repeats an ``append`` option. Positionals follow the options, after ``--`` when
    one of them starts with ``-`` (a prompt such as "-ish"), so they are never read as options. Raises
    :class:`ArgumentsError` for a destination the command does not have, or a list it would refuse.
    """
    parser = subcommand_parser(command)
    by_destination = {action.dest: action for action in parser._actions if action.option_strings}
    written: list[str] = []
    for destination, value in options.items():
        action = by_destination.get(destination)
        if action is None:
            known = ", ".join(sorted(by_destination))
            raise ArgumentsError(
                f"'semantify {' '.join(command)}' has no option '{destination}' (it has {known})."
            )
        if value is None or value is False:
            continue
        flag = _option_string(action)
        if isinstance(
            action, argparse._StoreTrueAction | argparse._StoreFalseAction | argparse._StoreConstAction
        ):
            if value is not True:
                raise ArgumentsError(f"'{flag}' is a switch: give True or leave it out, not {value!r}.")
            written.append(flag)
        elif isinstance(action, argparse._AppendAction) and isinstance(value, list | tuple):
            for item in value:
                written += [flag, str(item)]
        else:
            written += [flag, str(value)]
    texts = [str(value) for value in positionals]
    if any(text.startswith("-") for text in texts):
        texts.insert(0, "--")
    arguments = [*command, *written, *texts]
    _check(arguments)
    return arguments


def _check(arguments: list[str]) -> None:
    """Parse ``arguments`` with the real parser; its complaint (usage error) becomes an ArgumentsError."""
    from .main import build_parser

    complaint = io.StringIO()
    try:
        with contextlib.redirect_stderr(complaint), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(arguments)
    except SystemExit as exit_:
        if exit_.code in (0, None):
            return
        message = complaint.getvalue().strip().splitlines()
        raise ArgumentsError(
            f"'semantify {' '.join(arguments)}' would be refused: {message[-1] if message else exit_.code}"
        ) from None
