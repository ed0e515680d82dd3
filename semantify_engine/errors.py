"""Errors that reach a user, all of them here: the engine raises them, the front ends catch them.

Every error the engine raises on bad input is a :class:`SemantifyError` whose message names the
file or value at fault, says what was expected and what to do. The command line prints the message
alone (no traceback) and exits with status 2; the Blender add-on shows it in a report. Anything else
that escapes is a bug.

A message that tells the user to change a setting names the engine's parameter, never one front end's
spelling of it: the message holds ``{samples}`` where the parameter goes and lists ``samples`` in
:attr:`SemantifyError.parameters`. ``str(error)`` spells it as the engine does (``samples``); the
command line spells it as its option (``--samples``, from its parser) and the add-on as the label of the
field that fed it (``'Samples'``), each through :meth:`SemantifyError.render`. One message serves all
three, so a Blender user is never told about a flag they cannot type. A parameter's name is the one
every front end already shares: the command line's destination (``chunk_size`` for ``--chunk-size``),
which is also how the add-on names the options of the commands it runs in the background.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Spelling = Callable[[str], str | None]
"""How a front end names an engine parameter (``"samples"`` -> ``"--samples"``); None: it has no name of
its own for it, and the engine's name stands."""


_Recast = TypeVar("_Recast", bound="SemantifyError")


class SemantifyError(Exception):
    """A problem the user can fix; the message says how.

    ``parameters`` are the engine parameters the message names, each written ``{name}`` in it.
    """

    def __init__(self, message: str = "", *, parameters: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.parameters: tuple[str, ...] = tuple(parameters)

    @property
    def template(self) -> str:
        """The message with its ``{parameter}`` places unfilled: what a front end renders, or passes on."""
        return super().__str__()

    def render(self, spell: Spelling) -> str:
        """The message with each parameter named as ``spell`` names it (the engine's name where it gives
        None)."""
        text = self.template
        for parameter in self.parameters:
            text = text.replace("{" + parameter + "}", spell(parameter) or parameter)
        return text

    def __str__(self) -> str:
        return self.render(lambda parameter: None)

    def recast(self, kind: type[_Recast], prefix: str = "") -> _Recast:
        """This error as another kind (a fit refusing what its mapper refused, a job failing as its command
        did), its parameters kept so that every front end still names them; ``prefix`` goes before it."""
        return kind(prefix + self.template, parameters=self.parameters)


def quoted(error: BaseException) -> str:
    """Another library's error as ``Type: message`` on one line (pickle's span two), for a one-line report."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def first_line(error: BaseException) -> str:
    """Another library's error reduced to its first line (its type's name when it says nothing): exporters,
    runtimes and hubs write pages, a report has one line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class ModelFileError(SemantifyError):
    """A model file (or a user's SMPL-family / SMAL / mesh file) is missing, unreadable or malformed."""


class CoefficientError(SemantifyError):
    """Coefficients handed to a model have the wrong shape or non-finite values."""


class RenderError(SemantifyError):
    """Blender could not render what was asked (unknown engine, unwritable output, ...)."""


class DatasetError(SemantifyError):
    """A dataset folder is missing, damaged, or was built with other settings."""


class DescriptorSelectionError(SemantifyError):
    """Descriptor selection cannot run on what it was given; the message says what to change."""


class LexiconError(SemantifyError):
    """A lexicon file is unreadable, malformed, or calls two words both synonyms and antonyms."""


class ClipError(SemantifyError):
    """A CLIP scoring request cannot be served (bad input, unknown model, missing weights)."""


class ClipModelError(ClipError):
    """The CLIP architecture named is unknown to open_clip and no config for it was found."""


class ClipWeightsError(ClipError):
    """CLIP weights are missing, unreachable or do not fit the architecture; the message says what to do."""


class ClipEngineError(ClipError):
    """A CLIP image engine cannot be used here: not installed, not exportable, or failing its check."""


class MapperError(SemantifyError):
    """A mapper file is missing, damaged or made for another model, or a mapper was given bad values."""


class FitError(SemantifyError):
    """A fit cannot be done as asked (bad photo, empty text, impossible measurement, unsuitable mapper)."""


class ExportError(SemantifyError):
    """An export that cannot be done as asked (unknown preset, nothing to export, an unwritable file)."""


class ModeBusy(SemantifyError):
    """A rigged character's joints cannot move in the current mode (another object in Edit or Paint Mode,
    a render running).

    The Blender glue keeps the object pending and moves its joints once the mode allows; an operator that
    asked for the move now reports the message.
    """


class ArgumentsError(SemantifyError):
    """An argument list the ``semantify`` parser refuses (the message is the parser's own)."""


class JobError(SemantifyError):
    """A background command failed (its own error is the message) or cannot be started."""


class JobCancelled(JobError):
    """The background command was cancelled before it finished."""
