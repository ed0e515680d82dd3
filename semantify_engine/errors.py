"""Errors that reach a user.

Every error the engine raises on bad input is a :class:`SemantifyError` whose message names the
file or value at fault, says what was expected and what to do. The command line prints the message
alone (no traceback) and exits with status 2; the Blender add-on shows it in a report. Anything else
that escapes is a bug.
"""

from __future__ import annotations


class SemantifyError(Exception):
    """A problem the user can fix; the message says how."""


def quoted(error: BaseException) -> str:
    """Another library's error as ``Type: message`` on one line (pickle's span two), for a one-line report."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


class ModelFileError(SemantifyError):
    """A model file (or a user's SMPL-family / SMAL / mesh file) is missing, unreadable or malformed."""


class CoefficientError(SemantifyError):
    """Coefficients handed to a model have the wrong shape or non-finite values."""


class RenderError(SemantifyError):
    """Blender could not render what was asked (unknown engine, unwritable output, ...)."""


class ClipError(SemantifyError):
    """A CLIP scoring request cannot be served (bad input, unknown model, missing weights)."""


class ClipModelError(ClipError):
    """The CLIP architecture named is unknown to open_clip and no config for it was found."""


class ClipWeightsError(ClipError):
    """CLIP weights are missing, unreachable or do not fit the architecture; the message says what to do."""


class ClipEngineError(ClipError):
    """A CLIP image engine cannot be used here: not installed, not exportable, or failing its check."""


class ExportError(SemantifyError):
    """An export that cannot be done as asked (unknown preset, nothing to export, an unwritable file)."""
