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

The SMPL family is built by ``smplx.create`` (the project's rule: smplx is the reference loader for
these files) and its buffers are read back into a :class:`LinearMorphableModel`: template
``v_template``, basis = the first N shape (or expression) directions, std 1 (their PCA spaces are
unit-variance), joints = ``J_regressor`` applied to template and directions (exactly linear), skin
weights = ``lbs_weights``. smplx does not know SMAL, so SMAL is read with numpy alone.

The owners' files are never handed to smplx directly: they are read here first, safely (``.npz`` without
pickle, ``.pkl`` through a restricted unpickler that also makes chumpy-era files load without chumpy),
and smplx gets plain arrays (or a clean copy in a private temporary folder).

Frames: the SMPL family is Y up with the body facing +Z; it is turned to the canonical frame (Z up,
facing -Y) by (x, y, z) -> (x, -z, y). SMAL is Z up with the body along X and its symmetry plane at
y = 0 (the SMAL tools mirror vertices across y); it is turned about Z so that the head points to -Y,
the canonical "front", with the sign read from the template's neck and tail-root joints rather than
assumed. SMAL keeps the file's units (its template is not in metres).
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError, SemantifyError, quoted
from .linear import LinearMorphableModel, Skeleton
from .registry import MODEL_DIR_VARIABLE, ModelEntry
from .shape_keys import Y_UP_TO_CANONICAL

DEFAULT_COMPONENTS = 10  # smplx's own default (num_betas = num_expression_coeffs = 10) and the paper's
LICENCE = "non-commercial (owner's licence)"


# ------------------------------------------------------------------------------------ catalogue
@dataclass(frozen=True)
class _Family:
    """What one family's files look like and where users get them."""

    title: str
    source: str  # the owner's site
    obtain: str  # how to get the files, said in every error about them
    vertex_count: int  # of the official files (shown by `semantify models` before loading)


_FAMILIES = {
    "smpl": _Family(
        "SMPL",
        "smpl.is.tue.mpg.de",
        "Register at https://smpl.is.tue.mpg.de and download 'SMPL for Python' (v1.1.0); its "
        "smpl/models folder holds basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl (and _m_ / _f_ for male and "
        "female), usable as they are or renamed SMPL_NEUTRAL.pkl, SMPL_MALE.pkl, SMPL_FEMALE.pkl",
        6890,
    ),
    "smplh": _Family(
        "SMPL+H",
        "mano.is.tue.mpg.de",
        "Register at https://mano.is.tue.mpg.de and download 'Models & Code' (mano_v1_2); its models "
        "folder holds SMPLH_male.pkl and SMPLH_female.pkl. A neutral SMPL+H is the 'Extended SMPL+H "
        "model' on the same site (neutral/model.npz: keep it as smplh/neutral/model.npz)",
        6890,
    ),
    "smplx": _Family(
        "SMPL-X",
        "smpl-x.is.tue.mpg.de",
        "Register at https://smpl-x.is.tue.mpg.de and download SMPL-X v1.1 (NPZ+PKL); it holds "
        "SMPLX_NEUTRAL.npz, SMPLX_MALE.npz and SMPLX_FEMALE.npz",
        10475,
    ),
    "mano": _Family(
        "MANO",
        "mano.is.tue.mpg.de",
        "Register at https://mano.is.tue.mpg.de and download 'Models & Code' (mano_v1_2); its models "
        "folder holds MANO_RIGHT.pkl and MANO_LEFT.pkl",
        778,
    ),
    "flame": _Family(
        "FLAME",
        "flame.is.tue.mpg.de",
        "Register at https://flame.is.tue.mpg.de and download FLAME 2020; it holds generic_model.pkl, the "
        "neutral model (usable as is or renamed FLAME_NEUTRAL.pkl). The landmark embedding files "
        "(flame_static_embedding.pkl, flame_dynamic_embedding.npy) are not needed",
        5023,
    ),
    "smal": _Family(
        "SMAL",
        "smal.is.tue.mpg.de",
        "Register at https://smal.is.tue.mpg.de and download the SMAL model; it holds smal_CVPR2017.pkl",
        3889,
    ),
}


@dataclass(frozen=True)
class _Spec:
    """One user model name: which family, which file, which coefficients."""

    name: str
    family: str
    kind: str
    file_names: tuple[str, ...]  # accepted names inside <folder>/<family>/, smplx's name first
    gender: str = "neutral"
    expression: bool = False  # basis = expression directions instead of shape directions
    right_hand: bool = True

    @property
    def subfolder(self) -> str:
        return self.family


def _catalogue() -> dict[str, _Spec]:
    """Every user model name, grouped by family in the order `semantify models` lists them."""
    specs: list[_Spec] = []
    genders = {"neutral": "neutral", "male": "m", "female": "f"}
    for gender, short in genders.items():
        upper = gender.upper()
        originals = tuple(f"basicmodel_{short}_lbs_10_207_0_v1.{minor}.0.pkl" for minor in (1, 0))
        specs.append(
            _Spec(
                f"smpl-{gender}",
                "smpl",
                "body",
                (f"SMPL_{upper}.pkl", f"SMPL_{upper}.npz", *originals),
                gender,
            )
        )
    for gender in genders:
        upper = gender.upper()
        names = (f"SMPLH_{upper}.pkl", f"SMPLH_{upper}.npz", f"{gender}/model.npz")
        specs.append(_Spec(f"smplh-{gender}", "smplh", "body", names, gender))
    for gender in genders:
        upper = gender.upper()
        specs.append(
            _Spec(f"smplx-{gender}", "smplx", "body", (f"SMPLX_{upper}.npz", f"SMPLX_{upper}.pkl"), gender)
        )
    for side in ("right", "left"):
        upper = side.upper()
        names = (f"MANO_{upper}.pkl", f"MANO_{upper}.npz")
        specs.append(_Spec(f"mano-{side}", "mano", "hand", names, right_hand=side == "right"))
    flame_names = ("FLAME_NEUTRAL.pkl", "FLAME_NEUTRAL.npz", "generic_model.pkl")
    specs.append(_Spec("flame-shape", "flame", "head-shape", flame_names))
    specs.append(_Spec("flame-expression", "flame", "face-expression", flame_names, expression=True))
    specs.append(_Spec("smal", "smal", "animal", ("smal_CVPR2017.pkl",)))
    return {spec.name: spec for spec in specs}


_SPECS = _catalogue()
USER_MODEL_NAMES: tuple[str, ...] = tuple(_SPECS)


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
            f"Pass --model-dir FOLDER or set ${MODEL_DIR_VARIABLE}, and put {spec.file_names[0]} in "
            f"FOLDER/{spec.subfolder}/. {family.obtain}."
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


# What a damaged or truncated pickle raises while loading.
_UNREADABLE_PICKLE_ERRORS = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
    UnicodeDecodeError, OSError,
)  # fmt: skip


def _read_pickle(path: Path, spec: _Spec) -> dict[str, np.ndarray]:
    # pickle is unavoidable here: it is the owners' own distribution format (SMPL, MANO, FLAME and SMAL
    # ship only .pkl files, written with Python 2, chumpy and scipy). _OwnerFileUnpickler is restricted:
    # it builds numpy arrays and a few inert stand-ins and refuses every other class, so a file cannot
    # run code when loaded; and what a file can make is bounded by its size (_Budget), so it cannot
    # take the machine's memory either.
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


class _OverBudget(pickle.UnpicklingError):
    """A pickle describes more than its size allows (a memory bomb)."""


@dataclass
class _Budget:
    """How much a pickle of ``size`` bytes may make, so that a small file cannot take all memory.

    - numbers in nested lists: a pickled number costs at least one byte, so a list that expands to more
      elements than the file has bytes shares itself over and over (``[a, a]`` doubled 34 times is a
      400-byte file and 17 billion numbers);
    - a dense array made from a sparse one: at most ``DENSE_PER_BYTE`` times the file's bytes (sparse
      files are 10-100x smaller than dense; SMPL's joint regressor is 24 x 6890 in a 250 kB entry), and
      never past ``DENSE_CAP`` numbers;
    - nesting (lists in lists, chumpy expressions of expressions): at most ``MAX_DEPTH`` levels.
    """

    size: int
    MAX_DEPTH = 64
    DENSE_PER_BYTE = 256
    DENSE_CAP = 200_000_000  # 1.6 GB of float64

    @classmethod
    def for_file(cls, path: Path) -> _Budget:
        return cls(max(path.stat().st_size, 1))

    def numbers(self, count: int, where: str) -> None:
        if count > self.size:
            raise _OverBudget(
                f"{where} expands to {count:,} numbers from a {self.size:,}-byte file: it repeats itself, "
                "which no model file does (a pickle memory bomb)"
            )

    def dense(self, shape: tuple[int, ...], where: str) -> None:
        count = int(np.prod(shape, dtype=np.float64))
        if count > min(self.DENSE_PER_BYTE * self.size, self.DENSE_CAP):
            raise _OverBudget(
                f"{where} claims a {shape} matrix, far larger than a {self.size:,}-byte file holds"
            )

    def depth(self, level: int, where: str) -> None:
        if level > self.MAX_DEPTH:
            raise _OverBudget(f"{where} nests deeper than {self.MAX_DEPTH} levels, which no model file does")


def _expanded_numbers(value: Any, where: str, budget: _Budget) -> None:
    """Check the numbers a nested list or tuple stands for against the budget, without expanding it."""
    sizes: dict[int, int] = {}

    def count(node: Any, level: int) -> int:
        if not isinstance(node, list | tuple):
            return 1
        budget.depth(level, where)
        if (
            id(node) not in sizes
        ):  # each shared list is counted once: linear in the file, not in its expansion
            sizes[id(node)] = sum(count(item, level + 1) for item in node) or 1
        return sizes[id(node)]

    budget.numbers(count(value, 0), where)


def _unreadable(path: Path, spec: _Spec, error: BaseException) -> str:
    family = _FAMILIES[spec.family]
    return (
        f"{path} is not a readable {family.title} model file ({quoted(error)}). "
        f"It may be damaged or incomplete: download it again. {family.obtain}."
    )


def _plain_array(value: Any, where: str, budget: _Budget, level: int = 0) -> np.ndarray:
    """A numpy array from whatever a pickle held (array, chumpy, sparse matrix, list); ``where`` names it."""
    budget.depth(level, where)
    if isinstance(value, _StandIn):
        return value.to_array(where, budget, level + 1)
    if isinstance(value, list | tuple):
        _expanded_numbers(value, where, budget)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:
        raise ModelFileError(f"{where} is not an array ({type(value).__name__}).") from error
    if array.dtype == object:
        raise ModelFileError(f"{where} holds Python objects, not numbers ({type(value).__name__}).")
    return array


class _RefusedClass(pickle.UnpicklingError):
    """A pickle asked for a class outside the restricted set."""


class _StandIn:
    """An inert object that only records the pickled state of a class that is never imported."""

    qualified_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _StandIn:
        instance = super().__new__(cls)
        instance.__dict__["state"] = {}
        return instance

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state if isinstance(state, dict) else {"_raw": state}

    def to_array(self, where: str, budget: _Budget, level: int) -> np.ndarray:
        raise NotImplementedError


# chumpy's elementwise operations (ch_ops add / subtract / multiply / divide of terms a and b).
_CHUMPY_OPERATIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": np.divide,
}


class _ChumpyArray(_StandIn):
    """A chumpy object: a plain ``Ch`` keeps its value in ``x``; + - * / of two of them is evaluated."""

    def to_array(self, where: str, budget: _Budget, level: int) -> np.ndarray:
        if "value" in self.__dict__:  # a shared sub-expression is evaluated once
            return self.__dict__["value"]
        state = self.state
        if "x" in state:
            value = _plain_array(state["x"], where, budget, level)
        else:
            operation = _CHUMPY_OPERATIONS.get(self.qualified_name.rsplit(".", 1)[-1])
            if operation is None or "a" not in state or "b" not in state:
                raise ModelFileError(
                    f"{where} is a chumpy expression ({self.qualified_name}) that cannot be evaluated "
                    "without chumpy. Convert the file once with smplx's tools/clean_ch.py (in an environment "
                    "with chumpy)."
                )
            first = _value_of(state["a"], where, budget, level)
            second = _value_of(state["b"], where, budget, level)
            try:
                shape = np.broadcast_shapes(np.shape(first), np.shape(second))
            except ValueError as error:
                raise ModelFileError(
                    f"{where}: a chumpy {self.qualified_name} of mismatched arrays."
                ) from error
            budget.numbers(int(np.prod(shape, dtype=np.float64)), where)  # (N, 1) + (1, N) is N² numbers
            value = operation(first, second)
        self.__dict__["value"] = value
        return value


class _SparseMatrix(_StandIn):
    """A scipy sparse matrix (CSC, CSR or COO, any scipy version) made dense without scipy."""

    def to_array(self, where: str, budget: _Budget, level: int) -> np.ndarray:
        state = self.state
        try:
            shape = tuple(int(size) for size in state.get("_shape", state.get("shape")))
            if len(shape) != 2 or min(shape) < 0:
                raise ValueError(f"shape {shape}")
            budget.dense(shape, where)
            data = np.asarray(state["data"], dtype=np.float64)
            dense = np.zeros(shape, dtype=np.float64)
            layout = self.qualified_name.rsplit(".", 1)[-1][:3]
            if layout == "coo":
                rows, columns = state["coords"] if "coords" in state else (state["row"], state["col"])
                np.add.at(dense, (np.asarray(rows), np.asarray(columns)), data)
                return dense
            pointers, indices = np.asarray(state["indptr"]), np.asarray(state["indices"])
            major = np.repeat(np.arange(len(pointers) - 1), np.diff(pointers))
            target = (indices, major) if layout == "csc" else (major, indices)
            np.add.at(dense, target, data)
            return dense
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise ModelFileError(f"{where} is a damaged sparse matrix ({error}).") from error


def _value_of(value: Any, where: str, budget: _Budget, level: int) -> np.ndarray:
    budget.depth(level, where)
    if isinstance(value, _StandIn):
        return value.to_array(where, budget, level + 1)
    return _plain_array(value, where, budget, level + 1).astype(np.float64)


_SPARSE_CLASSES = {
    f"{layout}_{container}" for layout in ("csc", "csr", "coo") for container in ("matrix", "array")
}
_stand_in_classes: dict[str, type[_StandIn]] = {}


def _stand_in(base: type[_StandIn], qualified_name: str) -> type[_StandIn]:
    """One stand-in class per pickled class name, so the name survives to explain or evaluate it."""
    if qualified_name not in _stand_in_classes:
        attributes = {"qualified_name": qualified_name}
        _stand_in_classes[qualified_name] = type(base.__name__, (base,), attributes)
    return _stand_in_classes[qualified_name]


def _safe_reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """copyreg._reconstructor (how protocol-0/1 pickles rebuild objects), for stand-ins only."""
    if not (isinstance(cls, type) and issubclass(cls, _StandIn)) or base is not object or state is not None:
        raise _RefusedClass("copyreg._reconstructor is only accepted for chumpy and sparse arrays")
    return cls.__new__(cls)


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """_codecs.encode as used by pickles of bytes (numpy buffers): latin-1 only."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise _RefusedClass(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin-1", errors)


def _numpy_globals() -> dict[tuple[str, str], Any]:
    # The functions numpy pickles call, taken from numpy's own reductions so that the names written by
    # numpy 1 (numpy.core.*) and numpy 2 (numpy._core.*) both map to this numpy's objects.
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    table: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        table[(f"{core}.multiarray", "scalar")] = scalar
        table[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return table


def _python_globals() -> dict[tuple[str, str], Any]:
    # Python 2 pickles name __builtin__ and copy_reg; find_class is overridden, so the standard
    # Python 2 -> 3 renaming (done by the default find_class) has to be spelled out here.
    table: dict[tuple[str, str], Any] = {("_codecs", "encode"): _latin1_encode}
    for builtins in ("builtins", "__builtin__"):
        table.update(
            {(builtins, "set"): set, (builtins, "frozenset"): frozenset, (builtins, "object"): object}
        )
    for copyreg in ("copyreg", "copy_reg"):
        table[(copyreg, "_reconstructor")] = _safe_reconstructor
    return table


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {**_numpy_globals(), **_python_globals()}


class _OwnerFileUnpickler(pickle.Unpickler):
    """Loads owners' model pickles: numpy arrays, chumpy arrays and scipy sparse matrices, nothing else.

    chumpy no longer installs next to modern numpy, and old scipy module paths no longer exist, so both
    are replaced by stand-ins that never import them. Any other class is refused.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream, encoding="latin1")  # Python 2 pickles: numpy buffers as latin-1 text

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "chumpy" or module.startswith("chumpy."):
            return _stand_in(_ChumpyArray, f"{module}.{name}")
        if module.startswith("scipy.sparse") and name in _SPARSE_CLASSES:
            return _stand_in(_SparseMatrix, f"{module}.{name}")
        raise _RefusedClass(
            f"it asks for the Python class {module}.{name}; model files may hold only numpy arrays, "
            "chumpy arrays and scipy sparse matrices, so nothing else is loaded (a pickle can run code)"
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


# ------------------------------------------------------------------------- building a model
@dataclass(frozen=True)
class _Parts:
    """What a linear model needs, in the file's own frame."""

    template: np.ndarray  # (V, 3)
    directions: np.ndarray  # (K, V, 3)
    regressor: np.ndarray  # (J, V)
    weights: np.ndarray  # (V, J)
    parents: np.ndarray  # (J,)
    faces: np.ndarray  # (F, 3)
    rotation: np.ndarray  # (3, 3) file frame -> canonical frame
    joint_names: tuple[str, ...]


def _smplx_parts(spec: _Spec, arrays: dict[str, np.ndarray], path: Path, count: int) -> _Parts:
    """Build the model with smplx.create and read its buffers back."""
    body = _create_with_smplx(spec, _with_unused_keys(arrays), path, count)

    def numpy(name: str) -> np.ndarray:
        return getattr(body, name).detach().cpu().numpy().astype(np.float64)

    directions = numpy("expr_dirs" if spec.expression else "shapedirs")
    parents = body.parents.cpu().numpy().astype(np.int64)
    names = _smplx_joint_names(spec.family)
    if len(names) != len(parents):  # a non-standard file: keep it usable with generic names
        names = tuple(f"joint_{index:02d}" for index in range(len(parents)))
    if directions.shape[-1] == 0:
        raise ModelFileError(
            f"{path}: 'shapedirs' holds no {'expression' if spec.expression else 'shape'} directions."
        )
    return _Parts(
        template=numpy("v_template"),
        directions=np.moveaxis(directions, -1, 0),
        regressor=numpy("J_regressor"),
        weights=numpy("lbs_weights"),
        parents=parents,
        faces=body.faces_tensor.cpu().numpy(),
        rotation=Y_UP_TO_CANONICAL,
        joint_names=names,
    )


# What smplx raises on arrays it cannot use (it checks with assert and fails on attribute access).
_SMPLX_BUILD_ERRORS = (
    AssertionError,
    AttributeError,
    KeyError,
    IndexError,
    ValueError,
    TypeError,
    RuntimeError,
)


def _create_with_smplx(spec: _Spec, arrays: dict[str, np.ndarray], path: Path, count: int) -> Any:
    """``smplx.create`` on clean arrays: a data_struct where smplx takes one, else a private copy."""
    try:
        import smplx
        from smplx.utils import Struct
    except ImportError as error:
        raise SemantifyError(
            f"Model '{spec.name}' is loaded through the smplx package, which is not installed here "
            f"({error}). Install it with: pip install 'semantify[smpl]' (smplx==0.1.28 and torch==2.13.0)."
        ) from error
    sizes = {"num_expression_coeffs": count, "num_betas": 1} if spec.expression else {"num_betas": count}
    quiet = io.StringIO()  # smplx prints warnings (e.g. "only 10 shape coefficients") to stdout
    try:
        with (
            tempfile.TemporaryDirectory(prefix="semantify-smplx-") as scratch,
            contextlib.redirect_stdout(quiet),
        ):
            root = Path(scratch)
            if spec.family in ("smplx", "flame"):  # these two always read a file themselves
                _write_clean_copy(root / spec.family, spec, arrays)
                return smplx.create(str(root), model_type=spec.family, gender=spec.gender, ext="npz", **sizes)
            extra: dict[str, Any] = (
                {"is_rhand": spec.right_hand} if spec.family == "mano" else {"gender": spec.gender}
            )
            return smplx.create(
                str(root), model_type=spec.family, data_struct=Struct(**arrays), **extra, **sizes
            )
    except _SMPLX_BUILD_ERRORS as error:
        raise ModelFileError(
            f"smplx could not build '{spec.name}' from {path} ({type(error).__name__}: {error}). The file "
            f"does not have the layout smplx expects. {_FAMILIES[spec.family].obtain}."
        ) from error


def _write_clean_copy(folder: Path, spec: _Spec, arrays: dict[str, np.ndarray]) -> None:
    """The arrays as an .npz smplx reads, plus FLAME's landmark file, which only landmarks use.

    smplx's FLAME always opens flame_static_embedding.pkl, but landmarks play no part in the shape, so a
    one-landmark placeholder is written instead of asking users for the embedding files.
    """
    folder.mkdir(parents=True)
    # smplx turns every float array to float32 on load; doing it first halves the copy, same result.
    compact = {
        key: value.astype(np.float32) if value.dtype == np.float64 else value for key, value in arrays.items()
    }
    np.savez(folder / f"{spec.family.upper()}_{spec.gender.upper()}.npz", **compact)
    if spec.family == "flame":
        placeholder = {"lmk_face_idx": np.zeros(1, np.int64), "lmk_b_coords": np.array([[1.0, 0.0, 0.0]])}
        with (folder / "flame_static_embedding.pkl").open("wb") as stream:
            pickle.dump(placeholder, stream)


def _with_unused_keys(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add neutral placeholders for arrays smplx insists on but the shape never uses.

    Pose correctives, hand pose PCA and landmarks only matter when posing; files that lack them (e.g.
    AMASS's SMPL+H, which has no hand PCA) still give the exact shape space.
    """
    vertices = arrays["v_template"].shape[0]
    defaults = {
        "posedirs": np.zeros((vertices, 3, 1)),
        "hands_componentsl": np.zeros((45, 45)),
        "hands_componentsr": np.zeros((45, 45)),
        "hands_meanl": np.zeros(45),
        "hands_meanr": np.zeros(45),
        "hands_components": np.zeros((45, 45)),
        "hands_mean": np.zeros(45),
        "lmk_faces_idx": np.zeros(1, np.int64),
        "lmk_bary_coords": np.array([[1.0, 0.0, 0.0]]),
    }
    return {**defaults, **arrays}


def _smal_parts(arrays: dict[str, np.ndarray], count: int) -> _Parts:
    """SMAL read directly (same linear-blend-skinning layout as SMPL; smplx does not know it)."""
    template = arrays["v_template"].astype(np.float64)
    directions = np.moveaxis(arrays["shapedirs"][:, :, :count].astype(np.float64), -1, 0)
    regressor = arrays["J_regressor"].astype(np.float64)
    parents = arrays["kintree_table"][0].astype(np.int64)
    parents[0] = -1  # the root's entry is an "unsigned -1" (4294967295) in the owners' files
    joint_count = len(parents)
    return _Parts(
        template=template,
        directions=directions,
        regressor=regressor,
        weights=arrays["weights"].astype(np.float64),
        parents=parents,
        faces=arrays["f"].astype(np.int64),
        rotation=_smal_rotation(regressor @ template),
        joint_names=tuple(f"joint_{index:02d}" for index in range(joint_count)),
    )


SMAL_NECK_JOINT = 16  # upper neck in SMAL's 35-joint skeleton
SMAL_TAIL_JOINT = 25  # tail root


def _smal_rotation(joints: np.ndarray) -> np.ndarray:
    """Turn SMAL (Z up, body along X) about Z so that its head faces -Y, the canonical front.

    The head's side is read from the template's neck and tail-root joints; a skeleton without them is
    assumed to face +X.
    """
    faces_plus_x = True
    if len(joints) > max(SMAL_NECK_JOINT, SMAL_TAIL_JOINT):
        faces_plus_x = joints[SMAL_NECK_JOINT, 0] >= joints[SMAL_TAIL_JOINT, 0]
    if faces_plus_x:  # +X -> -Y: (x, y, z) -> (y, -x, z)
        return np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    return np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # -X -> -Y


def _assemble(spec: _Spec, parts: _Parts, path: Path) -> LinearMorphableModel:
    """The linear model in the canonical frame, with joints linear in the coefficients."""
    turn = parts.rotation.T
    joint_template = parts.regressor @ parts.template
    joint_basis = np.einsum("jv,kvc->kjc", parts.regressor, parts.directions)
    prefix = "Exp" if spec.expression else "Shape"  # the naming of SMPL-X for Blender's shape keys
    family = _FAMILIES[spec.family]
    try:
        return LinearMorphableModel(
            name=spec.name,
            kind=spec.kind,
            template=parts.template @ turn,
            faces=parts.faces,
            basis=parts.directions @ turn,
            std=np.ones(len(parts.directions)),
            component_names=tuple(f"{prefix}{index:03d}" for index in range(len(parts.directions))),
            skeleton=Skeleton(
                names=parts.joint_names,
                parents=parts.parents,
                joint_template=joint_template @ turn,
                joint_basis=joint_basis @ turn,
                skin_weights=parts.weights,
            ),
            info={
                "licence": LICENCE,
                "source": family.source,
                "family": family.title,
                "file": str(path),
                "gender": spec.gender,
                "coefficients": "expression" if spec.expression else "shape",
                "description": f"{family.title} from the user's own file; not redistributable.",
            },
        )
    except ModelFileError as error:
        raise ModelFileError(f"{path}: {error}") from error


def _smplx_joint_names(family: str) -> tuple[str, ...]:
    """Joint names in smplx's order for each family (generic names where smplx has none)."""
    from smplx.joint_names import JOINT_NAMES, SMPLH_JOINT_NAMES

    fingers = tuple(
        f"{finger}{knuckle}"
        for finger in ("index", "middle", "pinky", "ring", "thumb")
        for knuckle in (1, 2, 3)
    )
    names = {
        "smpl": (*JOINT_NAMES[:22], "left_hand", "right_hand"),
        "smplh": tuple(SMPLH_JOINT_NAMES[:52]),
        "smplx": tuple(JOINT_NAMES[:55]),
        "mano": ("wrist", *fingers),
        "flame": ("root", "neck", "jaw", "left_eye", "right_eye"),
    }
    return names[family]
