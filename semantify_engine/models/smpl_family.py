"""A linear model from an owner's arrays: the SMPL family built through smplx, SMAL read directly.

The SMPL family is built by ``smplx.create`` (the project's rule: smplx is the reference loader for
these files) and its buffers are read back into a :class:`LinearMorphableModel`: template
``v_template``, basis = the first N shape (or expression) directions, std 1 (their PCA spaces are
unit-variance), joints = ``J_regressor`` applied to template and directions (exactly linear), skin
weights = ``lbs_weights``. smplx does not know SMAL, so SMAL is read with numpy alone. smplx only ever
gets plain arrays that :mod:`.user_models` has read safely (or a clean copy of them in a private
temporary folder), never an owner's file.

Frames: the SMPL family is Y up with the body facing +Z; it is turned to the canonical frame (Z up,
facing -Y) by (x, y, z) -> (x, -z, y). SMAL is Z up with the body along X and its symmetry plane at
y = 0 (the SMAL tools mirror vertices across y); it is turned about Z so that the head points to -Y,
the canonical "front", with the sign read from the template's neck and tail-root joints rather than
assumed. SMAL keeps the file's units (its template is not in metres).
"""

from __future__ import annotations

import contextlib
import io
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError, SemantifyError
from .linear import LinearMorphableModel, Skeleton
from .shape_keys import Y_UP_TO_CANONICAL
from .user_catalogue import _FAMILIES, LICENCE, _Spec


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
