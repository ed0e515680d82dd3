"""A restricted unpickler for the owners' model pickles, and the bounds on what a pickle may make.

pickle is unavoidable for these files: it is the owners' own distribution format (SMPL, MANO, FLAME and
SMAL ship only ``.pkl`` files, written with Python 2, chumpy and scipy). :class:`_OwnerFileUnpickler`
builds numpy arrays and a few inert stand-ins and refuses every other class, so a file cannot run code
when loaded; chumpy arrays and scipy sparse matrices become stand-ins that never import either library.
What a file can make is bounded by its size (:class:`_Budget`), so it cannot take the machine's memory
either.
:mod:`.user_models` reads the files through here and words the errors for each family.
"""

from __future__ import annotations

import codecs
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError

# What a damaged or truncated pickle raises while loading (OverflowError: a FRAME longer than memory).
_UNREADABLE_PICKLE_ERRORS = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
    UnicodeDecodeError, OSError, OverflowError,
)  # fmt: skip


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
