"""Atomic writes: a reader sees the old file or the new one, never a torn one."""

from __future__ import annotations

import errno
import os

import pytest

from semantify_engine.atomic import atomic_output, ensure_writable
from semantify_engine.errors import SemantifyError


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing_behind(tmp_path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as stream:
        stream.write(b"new but unfinished")
        raise RuntimeError("killed half way")
    assert target.read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["data.bin"]


def test_a_full_disk_is_reported_with_the_path(tmp_path) -> None:
    target = tmp_path / "data.bin"
    with pytest.raises(SemantifyError, match=r"data\.bin.*No space left"), atomic_output(target):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert not target.exists() and not list(tmp_path.iterdir())


def test_finished_files_get_ordinary_permissions(tmp_path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    with atomic_output(tmp_path / "fresh.txt", "w") as stream:
        stream.write("x")
    assert (tmp_path / "fresh.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    kept = tmp_path / "kept.txt"
    kept.write_text("old")
    kept.chmod(0o600)
    with atomic_output(kept, "w") as stream:
        stream.write("new")
    assert kept.stat().st_mode & 0o777 == 0o600 and kept.read_text() == "new"


def test_ensure_writable_refuses_folders_and_unwritable_places(tmp_path) -> None:
    assert ensure_writable(tmp_path / "new" / "file.png").parent.is_dir()
    with pytest.raises(SemantifyError, match="it is a folder"):
        ensure_writable(tmp_path)
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    with pytest.raises(SemantifyError, match="Cannot write"):
        ensure_writable(blocker / "inside.png")


def test_the_data_reaches_the_disk_before_the_new_name_does(tmp_path, monkeypatch) -> None:
    """fsync of the temporary file, then the rename: a power loss cannot leave an empty file named right."""
    import semantify_engine.atomic as atomic
    from semantify_engine.atomic import atomic_path

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def replace(source, target) -> None:
        events.append(("replace", str(source)))
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    with atomic_output(tmp_path / "a.bin") as stream:
        stream.write(b"data")
    with atomic_path(tmp_path / "b.glb") as temporary:
        temporary.write_bytes(b"written by an exporter")
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync", "replace"]
    assert events[0][1] == events[1][1] and events[2][1] == events[3][1]  # the file synced is the one renamed
    assert (tmp_path / "b.glb").read_bytes() == b"written by an exporter"


def test_a_writer_that_writes_nothing_leaves_the_target_as_it_was(tmp_path) -> None:
    from semantify_engine.atomic import atomic_path

    target = tmp_path / "old.fbx"
    target.write_bytes(b"old")
    with pytest.raises(SemantifyError, match="Nothing was written"), atomic_path(target):
        pass
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["old.fbx"]
