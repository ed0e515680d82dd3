"""Write files so that a reader never sees half of one.

Everything the project writes (model files, dataset chunks, mappers, images) goes through here: the
bytes land in a temporary file in the destination folder and are renamed over the target only once
complete, so a crash, a kill or a full disk leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from .errors import SemantifyError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; finished files get the permissions any new file
# would get (0666 less the umask), or keep those of the file they replace.
_NEW_FILE_MODE = 0o666 & ~_read_umask()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Yield a file object whose content replaces ``path`` only if the block finishes.

    The temporary file lives beside the target (same file system, so the rename is atomic) and is
    fsync'ed before the rename so that a power loss cannot expose an empty file under the final name.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=folder)
    except OSError as error:
        raise SemantifyError(
            f"Cannot write {target}: {error.strerror or error}. Choose a folder you can write to."
        ) from error
    try:
        with os.fdopen(handle, mode) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        try:
            mode = target.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = _NEW_FILE_MODE
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise SemantifyError(
                f"Could not write {target}: {error.strerror or error}. Nothing was changed there; "
                "free some space or choose another folder, then run again."
            ) from error
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file name beside ``path`` for a writer that only takes a name (an exporter).

    It keeps ``path``'s suffix (writers choose their format by it). Once the block finishes and the
    writer made the file, it is fsync'ed and renamed over ``path``; otherwise (an error, a writer that
    wrote nothing) it is removed and ``path`` is left as it was.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    ensure_writable(target)
    handle, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=folder)
    os.close(handle)
    temporary = Path(name)
    temporary.unlink()  # the writer creates it; an empty placeholder could be taken for its output
    try:
        yield temporary
        if not temporary.is_file():
            raise SemantifyError(f"Nothing was written to {target}; the writer made no file.")
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.chmod(temporary, _NEW_FILE_MODE)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def ensure_writable(path: str | os.PathLike[str]) -> Path:
    """Fail now, before minutes of work, if ``path`` cannot be written; create its folder if needed."""
    target = Path(path)
    _probe(target.parent if str(target.parent) else Path("."), f"Cannot write {target}")
    if target.is_dir():
        raise SemantifyError(f"Cannot write {target}: it is a folder. Give a file name.")
    return target


def ensure_writable_folder(path: str | os.PathLike[str]) -> Path:
    """Fail now, before minutes of work, if files cannot be written into the folder ``path`` (made if
    needed): an existing file there, a read-only place or a path through a file are refused in one line."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise SemantifyError(f"Cannot write into {folder}: it is a file, not a folder. Give a folder.")
    _probe(folder, f"Cannot write into {folder}")
    return folder


def _probe(folder: Path, failure: str) -> None:
    """Make ``folder`` if needed and write a temporary file in it; ``failure`` begins the one-line error."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise SemantifyError(
            f"{failure}: {error.strerror or error}. Choose a folder you can write to."
        ) from error
