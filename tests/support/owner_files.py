"""The owners' SMPL-family files, written synthetically: pickle stand-ins and the official array layouts.

The owners' files cannot be had here. Old .pkl files hold chumpy objects and scipy sparse matrices from
module paths that no longer exist; :func:`write_pickle` writes such pickles through stand-in modules that
exist only while writing, so loading proves that neither chumpy nor those paths are imported. Shared by
the engine's user-model tests and the Blender rig tests (an SMPL body gets a rig).
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np

UNSIGNED_MINUS_ONE = 4294967295  # the root's parent in the owners' kintree_table (uint32)


# --------------------------------------------------------------------------- pickle stand-ins
class Ch:
    """Pickles like chumpy.ch.Ch: its state is a dict holding the value under 'x'."""

    def __init__(self, value: np.ndarray) -> None:
        self.__dict__.update(
            x=np.asarray(value, dtype=np.float64),
            _dirty_vars=set(),
            _itr=None,
            _depends_on_deps={},
            _make_dense=False,
            _make_sparse=False,
        )


class ChAdd:
    """Pickles like chumpy.ch_ops.add: two terms a and b."""

    def __init__(self, a: Ch, b: Ch) -> None:
        self.__dict__.update(a=a, b=b, _dirty_vars=set(), _itr=None, _depends_on_deps={})


class OldCscMatrix:
    """Pickles like a csc_matrix of an old scipy (module scipy.sparse.csc, long removed): same state."""

    def __init__(self, dense: np.ndarray) -> None:
        columns, rows = np.nonzero(dense.T)  # column-major order, as CSC stores it
        counts = np.bincount(columns, minlength=dense.shape[1])
        self.__dict__.update(
            _shape=dense.shape,
            maxprint=50,
            indptr=np.r_[0, np.cumsum(counts)].astype(np.int32),
            indices=rows.astype(np.int32),
            data=dense[rows, columns],
        )


class CscMatrix(OldCscMatrix):
    """Pickles like scipy's current csc_matrix (module scipy.sparse._csc); the state is the same."""


@contextlib.contextmanager
def legacy_modules() -> Iterator[None]:
    """Make the stand-ins picklable under chumpy's and old scipy's names, only while writing."""
    names = {
        "chumpy": None,
        "chumpy.ch": Ch,
        "chumpy.ch_ops": ChAdd,
        "scipy.sparse.csc": OldCscMatrix,
        "scipy.sparse._csc": CscMatrix,
    }
    saved = {name: sys.modules.get(name) for name in names}
    class_names = {Ch: "Ch", ChAdd: "add", OldCscMatrix: "csc_matrix", CscMatrix: "csc_matrix"}
    try:
        for module_name, cls in names.items():
            module = types.ModuleType(module_name)
            if cls is not None:
                cls.__module__, cls.__qualname__ = module_name, class_names[cls]
                setattr(module, class_names[cls], cls)
            sys.modules[module_name] = module
        yield
    finally:
        for module_name, previous in saved.items():
            if previous is None:
                sys.modules.pop(module_name, None)
            else:
                sys.modules[module_name] = previous


def write_pickle(path: Path, content: dict, protocol: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with legacy_modules(), path.open("wb") as stream:
        pickle.dump(content, stream, protocol=protocol)
    return path


def as_chumpy(arrays_: dict, keys: tuple[str, ...]) -> dict:
    return {key: Ch(value) if key in keys else value for key, value in arrays_.items()}


# ------------------------------------------------------------------------- synthetic models
def body_arrays(seed: int, vertices: int, joints: int, shape_dirs: int) -> dict[str, np.ndarray]:
    """The arrays every SMPL-family file holds, in the official layouts (Y up, metres)."""
    rng = np.random.default_rng(seed)
    template = rng.uniform([-0.4, 0.0, -0.15], [0.4, 1.7, 0.15], size=(vertices, 3))
    regressor = np.zeros((joints, vertices))
    for joint in range(joints):  # each joint averages a few vertices, as the official regressors do
        regressor[joint, rng.choice(vertices, size=4, replace=False)] = 0.25
    weights = rng.random((vertices, joints)) ** 4
    kintree = np.zeros((2, joints), dtype=np.uint32)
    kintree[0, 1:] = [rng.integers(0, joint) for joint in range(1, joints)]
    kintree[0, 0] = UNSIGNED_MINUS_ONE
    kintree[1] = np.arange(joints)
    return {
        "v_template": template,
        "f": rng.integers(0, vertices, size=(2 * vertices, 3)).astype(np.uint32),
        "shapedirs": rng.normal(scale=0.01, size=(vertices, 3, shape_dirs)),
        "posedirs": rng.normal(scale=0.01, size=(vertices, 3, 9 * (joints - 1))),
        "J_regressor": regressor,
        "weights": weights / weights.sum(axis=1, keepdims=True),
        "kintree_table": kintree,
        "J": regressor @ template,
    }
