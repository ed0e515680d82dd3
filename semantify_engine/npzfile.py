"""The container every semantify file uses: one ``.npz`` of arrays plus a JSON header, without pickle.

Model files and mapper files differ in what they hold, not in how they are stored or checked: the
header is a 0-d unicode array named ``header`` holding JSON with ``format`` and ``format_version``;
arrays load with ``allow_pickle=False``; writes are atomic. This module is that shared part, with error
messages that name the file, say what kind of file was expected and what to do.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_output
from .errors import SemantifyError

_READ_ERRORS = (ValueError, OSError, zipfile.BadZipFile, EOFError)


@dataclass(frozen=True)
class FileKind:
    """What a reader expects: the header's format tag, the newest version it reads, and its words."""

    format: str
    version: int
    noun: str  # "model file", "mapper file"
    remedy: str  # what to do with a damaged file
    error: type[SemantifyError]


def write(
    path: str | os.PathLike[str], kind: FileKind, header: dict[str, Any], arrays: dict[str, Any]
) -> Path:
    """Write ``arrays`` and ``header`` (format fields added) to ``path`` atomically, compressed."""
    path = Path(path)
    full = {**header, "format": kind.format, "format_version": kind.version}
    payload = {**arrays, "header": np.array(json.dumps(full, sort_keys=True, allow_nan=False))}
    with atomic_output(path) as stream:
        np.savez_compressed(stream, **payload)
    return path


def compact(array: np.ndarray) -> np.ndarray:
    """``array`` as float16 when that loses nothing (every value is a float16 number), else as it is: exact
    float16 numbers stored in float32 waste half their bytes, and they load back as float32 unchanged."""
    if array.dtype != np.float32 or array.size == 0:
        return array
    with np.errstate(over="ignore"):
        half = array.astype(np.float16)
    return half if np.array_equal(half.astype(np.float32), array) else array


def read(path: str | os.PathLike[str], kind: FileKind, header_only: bool = False) -> tuple[dict, dict]:
    """``(header, arrays)`` of a file of ``kind`` (arrays empty with ``header_only``), or a clear error."""
    path = Path(path)
    if not path.is_file():
        raise kind.error(f"{kind.noun.capitalize()} {path} does not exist.")
    try:
        archive = np.load(path, allow_pickle=False)
    except _READ_ERRORS as error:
        raise kind.error(
            f"{path} is not a readable {kind.noun} ({error}). Expected a .npz written by semantify."
        ) from error
    with archive:
        header = _header(archive, path, kind)
        if header_only:
            return header, {}
        try:
            arrays = {key: archive[key] for key in archive.files if key != "header"}
        except _READ_ERRORS as error:
            raise kind.error(f"{path} is damaged ({error}). {kind.remedy}") from error
    return header, arrays


def _header(archive: Any, path: Path, kind: FileKind) -> dict[str, Any]:
    try:
        header = json.loads(str(archive["header"]))
    except (KeyError, *_READ_ERRORS) as error:
        raise kind.error(
            f"{path} has no readable header ({error}); it is not a semantify {kind.noun}."
        ) from error
    found = header.get("format") if isinstance(header, dict) else None
    if found != kind.format:
        raise kind.error(f"{path} is not a semantify {kind.noun} (format {found!r}).")
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise kind.error(
            f"{path} has format_version {version!r} where a whole number is expected; it is damaged. "
            f"{kind.remedy}"
        )
    if version > kind.version:
        raise kind.error(
            f"{path} was written by a newer semantify ({kind.noun} format {header['format_version']}); "
            "update semantify to read it."
        )
    return header
