"""The dataset folder: a manifest plus chunk files, each written whole or not at all.

::

    DIR/manifest.json            what the dataset is (model, sampling, views, render and scorer settings)
    DIR/chunks/chunk-000012.npz  samples [12·C, 13·C): indices, coefficients, and per scorer
                                  embeddings (n, views, D) float16, scores (n, words), metrics (n, M)

Chunk ``c`` always holds the same sample indices, whoever builds it and whenever; a chunk file only
appears under its final name once complete (atomic rename). So a build killed at any moment is resumed
by building the chunks that are not there, shards built on different machines are merged by copying
their chunk files, and the result is the same dataset as one uninterrupted build.

The manifest's ``settings`` are compared on every build: a folder made with other settings is refused,
never mixed. Everything loads without pickle.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_output
from ..errors import SemantifyError

FORMAT = "semantify-dataset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNK_ARRAYS = ("indices", "coefficients", "embeddings", "scores", "metrics", "attributes")


class DatasetError(SemantifyError):
    """A dataset folder is missing, damaged, or was built with other settings."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the chunks ``c`` with ``c % count == index``.

    Round-robin rather than contiguous ranges, so every shard gets a fair share of the work even when
    the dataset is later grown, and shard ``i`` of ``n`` is stable for a given chunk size.
    """

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            index_text, count_text = text.split("/")
            shard = cls(int(index_text), int(count_text))
        except ValueError as error:
            raise DatasetError(f"--shard takes I/N such as 0/4 (shard 0 of 4), got '{text}'.") from error
        if not (shard.count >= 1 and 0 <= shard.index < shard.count):
            raise DatasetError(f"--shard {text}: need 0 ≤ I < N.")
        return shard

    def owns(self, chunk: int) -> bool:
        return chunk % self.count == self.index


class DatasetFolder:
    """Read and write one dataset folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.chunk_folder = self.folder / "chunks"

    # ------------------------------------------------------------------------------ manifest
    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read_manifest(self) -> dict[str, Any]:
        if not self.exists():
            raise DatasetError(
                f"{self.folder} is not a dataset: it has no {MANIFEST}. "
                "Build one with 'semantify dataset build'."
            )
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as error:
            raise DatasetError(f"{self.manifest_path} is unreadable ({error}).") from error
        if manifest.get("format") != FORMAT:
            raise DatasetError(f"{self.manifest_path} is not a semantify dataset manifest.")
        if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
            raise DatasetError(
                f"{self.folder} was written by a newer semantify; update semantify to read it."
            )
        return manifest

    def check_compatible(self, settings: dict[str, Any]) -> dict[str, Any] | None:
        """The existing manifest if it has exactly these settings, None for a fresh folder; else refuse."""
        if self.exists():
            manifest = self.read_manifest()
            if manifest["settings"] != _normalised(settings):
                raise DatasetError(
                    f"{self.folder} holds a dataset built with other settings "
                    f"({describe_difference(manifest['settings'], _normalised(settings))}). "
                    "Use another --out folder, or the same settings to resume."
                )
            return manifest
        if self.folder.exists() and any(self.folder.iterdir()):
            raise DatasetError(
                f"{self.folder} is not empty and is not a dataset; choose an empty or new --out folder."
            )
        return None

    def create_or_check(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Start a dataset with these settings, or check that the folder already has exactly them."""
        existing = self.check_compatible(settings)
        if existing is not None:
            return existing
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "settings": _normalised(settings)}
        with atomic_output(self.manifest_path, "w") as stream:
            json.dump(manifest, stream, indent=2, sort_keys=True)
        return manifest

    # -------------------------------------------------------------------------------- chunks
    def chunk_path(self, chunk: int) -> Path:
        return self.chunk_folder / f"chunk-{chunk:06d}.npz"

    def present_chunks(self) -> list[int]:
        if not self.chunk_folder.is_dir():
            return []
        return sorted(int(path.stem.split("-")[1]) for path in self.chunk_folder.glob("chunk-*.npz"))

    def write_chunk(self, chunk: int, arrays: dict[str, np.ndarray]) -> Path:
        unknown = set(arrays) - set(CHUNK_ARRAYS)
        if unknown:
            raise ValueError(f"unknown chunk arrays {sorted(unknown)}")
        path = self.chunk_path(chunk)
        with atomic_output(path) as stream:
            np.savez(stream, **arrays)
        return path

    def read_chunk(self, chunk: int) -> dict[str, np.ndarray]:
        path = self.chunk_path(chunk)
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            raise DatasetError(
                f"Chunk {path} is damaged ({error}). "
                "Delete it and run the same build command again to redo it."
            ) from error

    def iter_chunks(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        for chunk in self.present_chunks():
            yield chunk, self.read_chunk(chunk)

    def load(self, require_complete: bool = True) -> dict[str, np.ndarray]:
        """All present samples in index order, one array per kind."""
        manifest = self.read_manifest()
        missing = self.missing_chunks(manifest)
        if require_complete and missing:
            raise DatasetError(
                f"{self.folder} is incomplete: {len(missing)} chunk(s) missing (first: {missing[0]}). "
                "Run the build again to finish it, or merge the missing shards."
            )
        parts: dict[str, list[np.ndarray]] = {}
        for _, arrays in self.iter_chunks():
            for key, value in arrays.items():
                parts.setdefault(key, []).append(value)
        return {key: np.concatenate(values) for key, values in parts.items()}

    def missing_chunks(self, manifest: dict[str, Any] | None = None, shard: Shard | None = None) -> list[int]:
        manifest = manifest or self.read_manifest()
        shard = shard or Shard()
        present = set(self.present_chunks())
        return [c for c in range(chunk_count(manifest["settings"])) if shard.owns(c) and c not in present]


def chunk_count(settings: dict[str, Any]) -> int:
    return -(-int(settings["samples"]) // int(settings["chunk_size"]))


def chunk_indices(settings: dict[str, Any], chunk: int) -> range:
    size, total = int(settings["chunk_size"]), int(settings["samples"])
    return range(chunk * size, min((chunk + 1) * size, total))


def content_checksum(arrays: list[np.ndarray]) -> str:
    """A checksum of array contents (shape, dtype and bytes), for comparing datasets from the shell."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def merge_datasets(out: str | Path, sources: list[str | Path]) -> DatasetFolder:
    """Copy the chunks of shard folders built with identical settings into ``out``."""
    if not sources:
        raise DatasetError("Name at least one dataset folder to merge.")
    folders = [DatasetFolder(source) for source in sources]
    settings = folders[0].read_manifest()["settings"]
    for folder in folders[1:]:
        other = folder.read_manifest()["settings"]
        if other != settings:
            raise DatasetError(
                f"{folder.folder} was built with other settings than {folders[0].folder} "
                f"({describe_difference(settings, other)}); only shards of one build can be merged."
            )
    target = DatasetFolder(out)
    target.create_or_check(settings)
    for folder in folders:
        for chunk in folder.present_chunks():
            destination = target.chunk_path(chunk)
            if destination.exists():
                continue
            with open(folder.chunk_path(chunk), "rb") as source, atomic_output(destination) as stream:
                shutil.copyfileobj(source, stream)
    return target


def describe_difference(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    """The first setting that differs, as 'key: old -> new'."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            return describe_difference(a, b, f"{prefix}{key}.")
        return f"{prefix}{key}: {a!r} -> {b!r}"
    return "no difference"


def _normalised(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings as they read back from JSON (tuples become lists), so comparisons are exact."""
    return json.loads(json.dumps(settings, sort_keys=True))
