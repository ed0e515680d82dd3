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
never mixed. Every chunk proves it belongs before anything reads it: it carries a ``proof`` (a digest of
the manifest's settings and its own index), its indices must be its range's, and every array must have
one row per sample. A chunk that fails (damaged, copied from another dataset or another index, cut
short) is rebuilt by ``build``, refused by ``merge`` and ``load``, and named by ``info``; a chunk file
past the dataset's last chunk is refused too. Everything loads without pickle.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_output
from ..errors import DatasetError

FORMAT = "semantify-dataset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNK_ARRAYS = ("indices", "coefficients", "embeddings", "scores", "metrics", "attributes")
PROOF = "proof"  # the array every chunk carries besides its data


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
            raise DatasetError(
                f"{{shard}} takes I/N such as 0/4 (shard 0 of 4), got '{text}'.", parameters=("shard",)
            ) from error
        if not (shard.count >= 1 and 0 <= shard.index < shard.count):
            raise DatasetError(f"{{shard}} {text}: need 0 ≤ I < N.", parameters=("shard",))
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
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise DatasetError(f"{self.manifest_path} is not a semantify dataset manifest.")
        version = manifest.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise DatasetError(f"{self.manifest_path} has no whole-number format_version (got {version!r}).")
        if version > FORMAT_VERSION:
            raise DatasetError(
                f"{self.folder} was written by a newer semantify; update semantify to read it."
            )
        settings = manifest.get("settings")
        if (
            not isinstance(settings, dict)
            or not _whole(settings.get("samples"))
            or not _whole(settings.get("chunk_size"))
        ):
            raise DatasetError(
                f"{self.manifest_path} has no settings with whole, positive samples and chunk_size; "
                "the manifest is damaged: rebuild the dataset."
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
                    "Use another {out} folder, or the same settings to resume.",
                    parameters=("out",),
                )
            return manifest
        if self.folder.exists() and not self.folder.is_dir():
            raise DatasetError(
                f"{self.folder} is a file, not a folder; choose a new {{out}} folder.", parameters=("out",)
            )
        if self.folder.exists() and any(self.folder.iterdir()):
            raise DatasetError(
                f"{self.folder} is not empty and is not a dataset; choose an empty or new {{out}} folder.",
                parameters=("out",),
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

    def add_records(self, key: str, entries: list[dict[str, Any]]) -> None:
        """Keep figures about how the data was made (the CLIP engine's fidelity checks) in the manifest.

        Records are not settings: they never refuse a resume or a merge; a merge keeps every shard's.
        """
        manifest = self.read_manifest()
        kept = manifest.setdefault("records", {}).setdefault(key, [])
        added = [entry for entry in _normalised({"entries": entries})["entries"] if entry not in kept]
        if not added:
            return
        kept.extend(added)
        with atomic_output(self.manifest_path, "w") as stream:
            json.dump(manifest, stream, indent=2, sort_keys=True)

    def records(self, key: str) -> list[dict[str, Any]]:
        return list(self.read_manifest().get("records", {}).get(key, []))

    # -------------------------------------------------------------------------------- chunks
    def chunk_path(self, chunk: int) -> Path:
        return self.chunk_folder / f"chunk-{chunk:06d}.npz"

    def chunk_files(self) -> list[int]:
        """Every chunk file's index, in range or not, sound or not."""
        if not self.chunk_folder.is_dir():
            return []
        indices = []
        for path in self.chunk_folder.glob("chunk-*.npz"):
            number = path.stem.split("-", 1)[1]
            if number.isdigit():
                indices.append(int(number))
        return sorted(indices)

    def present_chunks(self, settings: dict[str, Any] | None = None) -> list[int]:
        """The chunks of this dataset that are there and prove they belong (see :meth:`chunk_problem`)."""
        settings = settings or self.read_manifest()["settings"]
        count = chunk_count(settings)
        return [c for c in self.chunk_files() if c < count and self.chunk_problem(c, settings) is None]

    def stray_chunks(self, settings: dict[str, Any] | None = None) -> list[int]:
        """Chunk files past this dataset's last chunk (copied in from a larger dataset)."""
        count = chunk_count(settings or self.read_manifest()["settings"])
        return [c for c in self.chunk_files() if c >= count]

    def damaged_chunks(self, settings: dict[str, Any] | None = None) -> dict[int, str]:
        """Chunks in range that fail their proof: index -> what is wrong."""
        settings = settings or self.read_manifest()["settings"]
        count = chunk_count(settings)
        problems = {c: self.chunk_problem(c, settings) for c in self.chunk_files() if c < count}
        return {chunk: problem for chunk, problem in problems.items() if problem is not None}

    def write_chunk(self, chunk: int, arrays: dict[str, np.ndarray]) -> Path:
        unknown = set(arrays) - set(CHUNK_ARRAYS)
        if unknown:
            raise ValueError(f"unknown chunk arrays {sorted(unknown)}")
        proof = chunk_proof(self.read_manifest()["settings"], chunk)
        buffer = io.BytesIO()  # assembled in memory: a full disk then fails one write, not a zip mid-way
        np.savez(buffer, **arrays, **{PROOF: np.array(proof)})
        path = self.chunk_path(chunk)
        with atomic_output(path) as stream:
            stream.write(buffer.getbuffer())
        return path

    def _open_chunk(self, chunk: int) -> dict[str, np.ndarray]:
        path = self.chunk_path(chunk)
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as error:
            raise DatasetError(
                f"Chunk {path} is damaged ({error}). Run the same build command again to redo it."
            ) from error

    def chunk_problem(self, chunk: int, settings: dict[str, Any]) -> str | None:
        """Why chunk ``chunk`` does not belong to a dataset with ``settings``, or None when it does."""
        try:
            arrays = self._open_chunk(chunk)
        except DatasetError as error:
            return str(error)
        return _chunk_problem(arrays, settings, chunk)

    def read_chunk(self, chunk: int, settings: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        """A chunk's arrays, once it proved it belongs (without its proof)."""
        settings = settings or self.read_manifest()["settings"]
        arrays = self._open_chunk(chunk)
        problem = _chunk_problem(arrays, settings, chunk)
        if problem is not None:
            raise DatasetError(
                f"Chunk {self.chunk_path(chunk)} does not belong to {self.folder}: {problem}. Delete it and "
                "run the same build command again to redo it."
            )
        arrays.pop(PROOF, None)
        return arrays

    def iter_chunks(self) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        settings = self.read_manifest()["settings"]
        for chunk in self.present_chunks(settings):
            yield chunk, self.read_chunk(chunk, settings)

    def problems(self, settings: dict[str, Any] | None = None) -> list[str]:
        """Every chunk file that does not belong, and why, one line each (empty for a sound folder)."""
        settings = settings or self.read_manifest()["settings"]
        lines = [f"{self.chunk_path(c).name}: {why}" for c, why in self.damaged_chunks(settings).items()]
        lines += [
            f"{self.chunk_path(c).name}: past the last chunk ({chunk_count(settings) - 1})"
            for c in self.stray_chunks(settings)
        ]
        return lines

    def load(self, require_complete: bool = True, require_sound: bool = True) -> dict[str, np.ndarray]:
        """All present samples in index order, one array per kind.

        Refused when a chunk file does not belong (``require_sound=False`` skips those: for reports).
        """
        settings = self.read_manifest()["settings"]
        stray = self.stray_chunks(settings) if require_sound else []
        if stray:
            raise DatasetError(
                f"{self.folder} holds {self.chunk_path(stray[0]).name}, past its last chunk "
                f"({chunk_count(settings) - 1}): it belongs to another dataset. Remove it."
            )
        damaged = self.damaged_chunks(settings) if require_sound else {}
        if damaged:
            chunk, problem = next(iter(damaged.items()))
            raise DatasetError(
                f"Chunk {self.chunk_path(chunk)} does not belong to {self.folder}: {problem}. Run the same "
                "build command again to redo it."
            )
        missing = self.missing_chunks({"settings": settings})
        if require_complete and missing:
            raise DatasetError(
                f"{self.folder} is incomplete: {len(missing)} chunk(s) missing (first: {missing[0]}). "
                "Run the build again to finish it, or merge the missing shards."
            )
        parts: dict[str, list[np.ndarray]] = {}
        for chunk in self.present_chunks(settings):
            for key, value in self.read_chunk(chunk, settings).items():
                parts.setdefault(key, []).append(value)
        return {key: np.concatenate(values) for key, values in parts.items()}

    def missing_chunks(self, manifest: dict[str, Any] | None = None, shard: Shard | None = None) -> list[int]:
        """Chunks still to build: absent, or there but not sound (they are rebuilt, never counted)."""
        manifest = manifest or self.read_manifest()
        shard = shard or Shard()
        settings = manifest["settings"]
        present = set(self.present_chunks(settings))
        return [c for c in range(shard.index, chunk_count(settings), shard.count) if c not in present]


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def chunk_proof(settings: dict[str, Any], chunk: int) -> str:
    """What chunk ``chunk`` of a dataset with ``settings`` carries to prove it belongs there."""
    text = json.dumps({"settings": _normalised(settings), "chunk": chunk}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _chunk_problem(arrays: dict[str, np.ndarray], settings: dict[str, Any], chunk: int) -> str | None:
    """What is wrong with a chunk's arrays for ``settings`` (None: it belongs)."""
    proof = arrays.get(PROOF)
    if proof is not None and str(proof) != chunk_proof(settings, chunk):
        return "it was built for another dataset or another chunk (its proof does not match the manifest)"
    expected = chunk_indices(settings, chunk)
    indices = arrays.get("indices")
    if (
        indices is None
        or indices.ndim != 1
        or not np.array_equal(indices, np.arange(expected.start, expected.stop))
    ):
        return f"it does not hold samples {expected.start}..{expected.stop - 1}"
    for key, value in arrays.items():
        if key != PROOF and (value.ndim == 0 or len(value) != len(indices)):
            return f"its '{key}' has {value.shape[0] if value.ndim else 0} rows for {len(indices)} samples"
    views = len(settings.get("views") or [])
    if "embeddings" in arrays and views and arrays["embeddings"].shape[1:2] != (views,):
        return f"its embeddings are for {arrays['embeddings'].shape[1:2]} views, not {views}"
    return None


def chunk_count(settings: dict[str, Any]) -> int:
    return -(-int(settings["samples"]) // int(settings["chunk_size"]))


def shard_samples(settings: dict[str, Any], shard: Shard) -> int:
    """How many samples shard ``shard`` builds: counted, not looped over (a typo may ask for billions)."""
    size, total = int(settings["chunk_size"]), int(settings["samples"])
    chunks = chunk_count(settings)
    if shard.index >= chunks:
        return 0
    owned = (chunks - 1 - shard.index) // shard.count + 1
    last_is_owned = (chunks - 1) % shard.count == shard.index
    return owned * size - (chunks * size - total if last_is_owned else 0)


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
    for folder in folders:  # every chunk proves itself before anything is copied
        stray, damaged = folder.stray_chunks(settings), folder.damaged_chunks(settings)
        if stray or damaged:
            chunk = (stray or list(damaged))[0]
            why = damaged.get(chunk, "it lies past the dataset's last chunk")
            raise DatasetError(
                f"{folder.chunk_path(chunk)} cannot be merged: {why}. Rebuild that shard (the same command "
                "again redoes it), then merge."
            )
    sources_of: dict[int, Path] = {}
    for folder in folders:
        for chunk in folder.present_chunks(settings):
            path = folder.chunk_path(chunk)
            if chunk in sources_of and not _same_chunk(sources_of[chunk], path):
                raise DatasetError(
                    f"{sources_of[chunk]} and {path} are two different copies of chunk {chunk}; copies from "
                    "one build agree, so one of them was built otherwise. Rebuild it, then merge."
                )
            sources_of.setdefault(chunk, path)
    target = DatasetFolder(out)
    target.create_or_check(settings)
    for folder in folders:
        for key, entries in folder.read_manifest().get("records", {}).items():
            target.add_records(key, entries)
    for chunk, path in sorted(sources_of.items()):
        destination = target.chunk_path(chunk)
        if destination.exists() and target.chunk_problem(chunk, settings) is None:
            if not _same_chunk(destination, path):
                raise DatasetError(
                    f"{destination} differs from {path}, chunk {chunk} of the same build; remove one of them."
                )
            continue
        with open(path, "rb") as source, atomic_output(destination) as stream:
            shutil.copyfileobj(source, stream)
    return target


def _same_chunk(first: Path, second: Path) -> bool:
    """Two copies of one chunk agree: sampled arrays exactly, scores and embeddings to their precision.

    Coefficients are a function of (seed, index) alone; CLIP on another machine may round its float16
    embeddings differently (measured: within 1e-3), so those are compared to that precision.
    """
    with np.load(first, allow_pickle=False) as a, np.load(second, allow_pickle=False) as b:
        if set(a.files) != set(b.files):
            return False
        for key in a.files:
            x, y = a[key], b[key]
            if x.shape != y.shape:
                return False
            exact = key in (PROOF, "indices", "coefficients") or not np.issubdtype(x.dtype, np.floating)
            if not (np.array_equal(x, y) if exact else np.allclose(x, y, rtol=0, atol=2e-3)):
                return False
    return True


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
