"""User-owned models: SMPL, SMPL-H, SMPL-X, MANO, FLAME and SMAL from files the user downloaded.

Their owners allow research use but forbid redistribution, so semantify never ships them: users register
on the owners' sites, download the files once and point semantify at the folder (``--model-dir`` or
``$SEMANTIFY_MODEL_DIR``). The folder follows smplx's layout, and the owners' original file names are
accepted too (matched without regard to case)::

    <folder>/smpl/SMPL_NEUTRAL.pkl      SMPL_MALE.pkl, SMPL_FEMALE.pkl (or basicmodel_*_v1.1.0.pkl)
    <folder>/smplh/SMPLH_MALE.pkl       SMPLH_FEMALE.pkl (MANO's SMPLH_male.pkl as is), .npz too
    <folder>/smplx/SMPLX_NEUTRAL.npz    SMPLX_MALE.npz, SMPLX_FEMALE.npz, .pkl too
    <folder>/mano/MANO_RIGHT.pkl        MANO_LEFT.pkl
    <folder>/flame/FLAME_NEUTRAL.pkl    (FLAME 2020's generic_model.pkl as is)
    <folder>/smal/smal_CVPR2017.pkl

Each name is one entry of :mod:`.user_catalogue`. The owners' files are never handed to smplx directly:
they are read here first, safely (``.npz`` without pickle, ``.pkl`` through the restricted unpickler of
:mod:`.restricted_pickle`, which also makes chumpy-era files load without chumpy), checked for the layout
every family shares, and only then built into a model by :mod:`.smpl_family`.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ModelFileError, quoted
from .entry import MODEL_DIR_VARIABLE, ModelEntry
from .linear import LinearMorphableModel
from .restricted_pickle import (
    _UNREADABLE_PICKLE_ERRORS,
    _Budget,
    _OverBudget,
    _OwnerFileUnpickler,
    _plain_array,
    _RefusedClass,
)
from .smpl_family import _assemble, _smal_parts, _smplx_parts
from .user_catalogue import _FAMILIES, _SPECS, DEFAULT_COMPONENTS, LICENCE, USER_MODEL_NAMES, _Spec


# --------------------------------------------------------------------------------- public API
def list_user_models(folder: str | os.PathLike[str] | None) -> list[ModelEntry]:
    """One entry per user model name; ``available`` only where its file is in ``folder``.

    Cheap: it looks for files and reads none of them (the counts are those of the official files).
    """
    root = None if folder is None else Path(folder).expanduser()
    entries = []
    for spec in _SPECS.values():
        family = _FAMILIES[spec.family]
        path = _find_file(spec, root) if root is not None and root.is_dir() else None
        entries.append(
            ModelEntry(
                name=spec.name,
                vertex_count=family.vertex_count,
                component_count=DEFAULT_COMPONENTS,
                licence=LICENCE,
                source=family.source,
                location=str(path) if path is not None else _missing_location(spec, root),
                available=path is not None,
            )
        )
    return entries


def load_user_model(
    name: str, folder: str | os.PathLike[str] | None, components: int | None = None
) -> LinearMorphableModel:
    """Load user model ``name`` from ``folder`` with up to ``components`` components (default 10).

    The count is capped by what the file holds (SMPL v1.0 has 10 betas, SMPL-X 300 and 100 expression
    directions, SMAL 41). Missing or malformed files raise :class:`ModelFileError` naming the file, the
    folder searched and where to obtain the right one.
    """
    if name not in _SPECS:
        raise ModelFileError(f"Unknown user model '{name}'. User models are: {', '.join(USER_MODEL_NAMES)}.")
    count = DEFAULT_COMPONENTS if components is None else int(components)
    if count < 1:
        raise ModelFileError(f"Model '{name}': components must be at least 1, got {components}.")
    spec = _SPECS[name]
    path = _locate(spec, folder)
    arrays = _read_owner_file(path, spec)
    _check_layout(arrays, path, spec)
    smal = spec.family == "smal"
    parts = _smal_parts(arrays, count) if smal else _smplx_parts(spec, arrays, path, count)
    return _assemble(spec, parts, path)


# ------------------------------------------------------------------------------ finding files
def _locate(spec: _Spec, folder: str | os.PathLike[str] | None) -> Path:
    """The file for ``spec`` in ``folder``, or an error that says exactly what to put where."""
    family = _FAMILIES[spec.family]
    if folder is None:
        raise ModelFileError(
            f"Model '{spec.name}' is loaded from your own {family.title} files, but no model folder is set. "
            f"Name the FOLDER with {{model_dir}} or ${MODEL_DIR_VARIABLE}, and put {spec.file_names[0]} in "
            f"FOLDER/{spec.subfolder}/. {family.obtain}.",
            parameters=("model_dir",),
        )
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ModelFileError(
            f"The model folder {root} does not exist (searched for model '{spec.name}'). Create it and put "
            f"{spec.file_names[0]} in {root / spec.subfolder}/. {family.obtain}."
        )
    path = _find_file(spec, root)
    if path is None:
        raise ModelFileError(
            f"Model '{spec.name}' needs {root / spec.subfolder / spec.file_names[0]}, which is missing "
            f"(searched {root / spec.subfolder} for {', '.join(spec.file_names)}). {family.obtain}; put "
            f"{spec.file_names[0]} in {root / spec.subfolder}/."
        )
    return path


def _find_file(spec: _Spec, root: Path) -> Path | None:
    """The first accepted file name present under ``root/<family>``, matched without regard to case."""
    for relative in spec.file_names:
        found = _match_ignoring_case(root / spec.subfolder, relative)
        if found is not None:
            return found
    return None


def _match_ignoring_case(base: Path, relative: str) -> Path | None:
    # Owners ship e.g. SMPLH_female.pkl where smplx asks for SMPLH_FEMALE.pkl; on case-sensitive file
    # systems an exact match would send users renaming files for nothing.
    current = base
    for part in relative.split("/"):
        if not current.is_dir():
            return None
        exact = current / part
        if exact.exists():
            current = exact
            continue
        try:
            matches = sorted(child for child in current.iterdir() if child.name.lower() == part.lower())
        except OSError:  # an unreadable folder holds nothing we can use
            return None
        if not matches:
            return None
        current = matches[0]
    return current if current.is_file() else None


def _missing_location(spec: _Spec, root: Path | None) -> str:
    wanted = f"{spec.subfolder}/{spec.file_names[0]}"
    if root is None:
        return f"missing: no model folder set (--model-dir or ${MODEL_DIR_VARIABLE}); needs FOLDER/{wanted}"
    if not root.is_dir():
        return f"missing: model folder {root} does not exist; needs {root / wanted}"
    return f"missing: {root / wanted}"


# ---------------------------------------------------------------------------- reading safely
# Arrays that any loader here uses; everything else in the owners' files is never read.
_USED_KEYS = (
    "v_template",
    "f",
    "shapedirs",
    "posedirs",
    "J_regressor",
    "weights",
    "kintree_table",
    "hands_componentsl",
    "hands_componentsr",
    "hands_meanl",
    "hands_meanr",
    "hands_components",
    "hands_mean",
    "lmk_faces_idx",
    "lmk_bary_coords",
)


def _read_owner_file(path: Path, spec: _Spec) -> dict[str, np.ndarray]:
    """The used arrays of an owner's ``.npz`` or ``.pkl`` file, as plain numpy arrays."""
    if path.suffix.lower() == ".npz":
        return _read_npz(path, spec)
    return _read_pickle(path, spec)


def _read_npz(path: Path, spec: _Spec) -> dict[str, np.ndarray]:
    # Official .npz files hold a few object arrays (e.g. SMPL-X's joint2num) that would need pickle;
    # they are never read, so the archive opens with allow_pickle=False and only numeric keys are taken.
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ModelFileError(_unreadable(path, spec, error)) from error
    arrays = {}
    with archive:
        for key in _USED_KEYS:
            if key not in archive.files:
                continue
            try:
                arrays[key] = archive[key]
            except ValueError as error:
                raise ModelFileError(
                    f"{path}: the array '{key}' is stored as Python objects, not numbers; this is not an "
                    f"official {_FAMILIES[spec.family].title} file. {_FAMILIES[spec.family].obtain}."
                ) from error
            except (OSError, zipfile.BadZipFile, EOFError) as error:
                raise ModelFileError(_unreadable(path, spec, error)) from error
    return arrays


def _read_pickle(path: Path, spec: _Spec) -> dict[str, np.ndarray]:
    # The owners' own distribution format, read through the restricted unpickler and within the budget
    # of the file's size (.restricted_pickle says why that is safe); this adds the family's words.
    budget = _Budget.for_file(path)
    try:
        with path.open("rb") as stream:
            content = _OwnerFileUnpickler(stream).load()
        if not isinstance(content, dict):
            raise ModelFileError(
                f"{path} holds a {type(content).__name__}, not the dictionary of arrays of a "
                f"{_FAMILIES[spec.family].title} model file. {_FAMILIES[spec.family].obtain}."
            )
        return {
            key: _plain_array(content[key], f"{path}: '{key}'", budget)
            for key in _USED_KEYS
            if key in content
        }
    except _RefusedClass as error:
        raise ModelFileError(f"{path} was refused: {error}. {_FAMILIES[spec.family].obtain}.") from error
    except _OverBudget as error:
        raise ModelFileError(f"{path} was refused: {error}. {_FAMILIES[spec.family].obtain}.") from error
    except (*_UNREADABLE_PICKLE_ERRORS, MemoryError, RecursionError) as error:
        raise ModelFileError(_unreadable(path, spec, error)) from error


def _unreadable(path: Path, spec: _Spec, error: BaseException) -> str:
    family = _FAMILIES[spec.family]
    return (
        f"{path} is not a readable {family.title} model file ({quoted(error)}). "
        f"It may be damaged or incomplete: download it again. {family.obtain}."
    )


# ------------------------------------------------------------------------------- key layout
_REQUIRED_KEYS = ("v_template", "f", "shapedirs", "J_regressor", "weights", "kintree_table")


def _check_layout(arrays: dict[str, np.ndarray], path: Path, spec: _Spec) -> None:
    """Refuse a file whose arrays are missing or mis-shaped, naming the file and the key."""
    family = _FAMILIES[spec.family]
    missing = [key for key in _REQUIRED_KEYS if key not in arrays]
    if missing:
        raise ModelFileError(
            f"{path} has no {', '.join(repr(key) for key in missing)} array, which every {family.title} "
            f"model file holds (expected keys: {', '.join(_REQUIRED_KEYS)}). It is not an official "
            f"{family.title} file or was re-saved by another tool. {family.obtain}."
        )
    for key in _REQUIRED_KEYS:
        if not np.issubdtype(arrays[key].dtype, np.number):
            raise ModelFileError(f"{path}: '{key}' holds {arrays[key].dtype} values, not numbers.")
    vertices = arrays["v_template"].shape[0] if arrays["v_template"].ndim == 2 else -1
    joints = arrays["kintree_table"].shape[1] if arrays["kintree_table"].ndim == 2 else -1
    expected = {
        "v_template": ((vertices, 3), "(V, 3)"),
        "kintree_table": ((2, joints), "(2, J)"),
        "J_regressor": ((joints, vertices), f"(J, V) = ({joints}, {vertices})"),
        "weights": ((vertices, joints), f"(V, J) = ({vertices}, {joints})"),
    }
    for key, (shape, said) in expected.items():
        if arrays[key].shape != shape or min(shape) < 1:
            raise ModelFileError(
                f"{path}: '{key}' has shape {arrays[key].shape}; a {family.title} file has {said}."
            )
    shapedirs = arrays["shapedirs"]
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (vertices, 3) or shapedirs.shape[2] < 1:
        raise ModelFileError(
            f"{path}: 'shapedirs' has shape {shapedirs.shape}; a {family.title} file has (V, 3, K) = "
            f"({vertices}, 3, K) shape directions."
        )
    faces = arrays["f"]
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise ModelFileError(
            f"{path}: 'f' has shape {faces.shape}; a {family.title} file has (F, 3) triangles."
        )
    if faces.min() < 0 or faces.max() >= vertices:
        raise ModelFileError(f"{path}: 'f' uses vertices outside 0..{vertices - 1}.")
    for key, array in arrays.items():  # every array a model uses: a NaN regressor puts every joint at NaN
        if np.issubdtype(array.dtype, np.number) and not np.all(np.isfinite(array)):
            raise ModelFileError(
                f"{path}: '{key}' holds NaN or infinite values; the file is damaged: download it again. "
                f"{family.obtain}."
            )
