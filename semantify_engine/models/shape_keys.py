"""Models from shape keys: a base mesh plus one target mesh per key.

Any character whose shape keys (blendshapes, morph targets) span its variation is already a linear
morphable model: ``vertices(c) = base + sum_k c_k * (target_k - base)`` is exactly what Blender computes
for shape-key weights ``c``. This module turns such a mesh into a :class:`LinearMorphableModel`, from
arrays (the Blender add-on reads them from the object) or from Wavefront OBJ files that any tool exports
(the base once, then each key at weight 1).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError
from .linear import LinearMorphableModel

# Blender's OBJ exporter writes Y up and -Z forward by default: a Blender point (X, Y, Z) is written as
# (X, Z, -Y). Turning it back, (x, y, z) -> (x, -z, y), is a +90° rotation about X. The same rotation
# takes the SMPL family (Y up, facing +Z) to the canonical frame (Z up, facing -Y).
Y_UP_TO_CANONICAL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
UP_AXIS_ROTATIONS = {"Y": Y_UP_TO_CANONICAL, "Z": np.eye(3)}

# Shape-key weights live in [0, 1] (Blender's default slider range), with the base shape at 0.
SHAPE_KEY_BOUNDS = (0.0, 1.0)
# The samplers and the renderer's framing explore ±3 std (render.views.compute_framing), cut to the
# bounds: [0, min(1, 3·std)]. std = 1/3 makes that box the whole [0, 1] range the user can dial in
# Blender, so no reachable shape is left out of the data or out of frame (0.25 would stop at 0.75).
SHAPE_KEY_STD = 1.0 / 3.0


def model_from_shape_keys(
    name: str,
    base_vertices: Any,
    faces: Any,
    targets: Mapping[str, Any],
    *,
    info: Mapping[str, Any] | None = None,
) -> LinearMorphableModel:
    """A ``custom`` model whose component ``k`` moves the base towards ``targets[k]``.

    ``base_vertices`` and every target are ``(V, 3)`` arrays in the canonical frame; ``faces`` is an
    ``(F, 3)`` triangle array or a sequence of polygons (triangulated as fans). Coefficients are
    bounded to [0, 1] like Blender's shape-key sliders.
    """
    base = _as_vertices(base_vertices, f"the base mesh of '{name}'")
    if not targets:
        raise ModelFileError(f"Model '{name}' has no shape keys: give at least one target besides the base.")
    offsets = []
    for key, target in targets.items():
        vertices = _as_vertices(target, f"shape key '{key}' of '{name}'")
        if vertices.shape != base.shape:
            raise ModelFileError(
                f"Shape key '{key}' of '{name}' has {len(vertices)} vertices but the base has {len(base)}; "
                "every key must be the same mesh as the base, only moved."
            )
        offsets.append(vertices - base)
    count = len(offsets)
    details = {"licence": "the mesh owner's", "source": "shape keys", "shape_keys": list(targets)}
    details.update(info or {})
    return LinearMorphableModel(
        name=name,
        kind="custom",
        template=base,
        faces=triangulate(faces),
        basis=np.stack(offsets),
        std=np.full(count, SHAPE_KEY_STD),
        component_names=tuple(str(key) for key in targets),
        coefficient_bounds=np.tile(np.array(SHAPE_KEY_BOUNDS), (count, 1)),
        info=details,
    )


def check_unchanged(model: LinearMorphableModel, recorded_checksum: str, owner: str, taken_by: str) -> None:
    """Refuse ``model``, made again from ``owner``'s shape keys, when it is no longer the model that
    ``taken_by`` (the step that first took the keys as a model) recorded: the owner's mapper, its sliders
    and every file made for it belong to that model."""
    if model.checksum() != recorded_checksum:
        raise ModelFileError(
            f"The shape keys of '{owner}' changed since {taken_by} (model checksum {model.checksum()}, "
            f"recorded {recorded_checksum}). Run {taken_by} again."
        )


def triangulate(faces: Any) -> np.ndarray:
    """``(F, 3)`` triangles from triangles or polygons: each n-gon becomes a fan of n - 2 triangles.

    A fan is exact for the convex quads and n-gons that modelling tools export and keeps the vertex
    order (and so the winding, hence the normals) of the original polygon.
    """
    if isinstance(faces, np.ndarray) and faces.ndim == 2:
        if faces.shape[1] < 3:
            raise ModelFileError(f"Faces need at least 3 vertices each; got an array of shape {faces.shape}.")
        polygons: Sequence[Sequence[int]] = faces.tolist()
    else:
        polygons = faces
    triangles = []
    for number, polygon in enumerate(polygons):
        corners = [int(index) for index in polygon]
        if len(corners) < 3:
            raise ModelFileError(f"Face {number} has {len(corners)} vertices; a face needs at least 3.")
        triangles.extend([corners[0], corners[i], corners[i + 1]] for i in range(1, len(corners) - 1))
    return np.asarray(triangles, dtype=np.int32).reshape(-1, 3)


def read_obj(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[list[int]]]:
    """Vertices ``(V, 3)`` and 0-based polygons of a Wavefront OBJ file, as written (no frame change).

    Only ``v`` and ``f`` lines matter; normals, texture coordinates, groups and materials are ignored,
    as are vertex colours after x y z. Negative (relative) face indices are resolved.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"OBJ file {path} does not exist.")
    vertices: list[list[float]] = []
    polygons: list[list[int]] = []
    with path.open(encoding="utf-8", errors="replace") as stream:
        for line_number, line in enumerate(stream, start=1):
            fields = line.split()
            if not fields:
                continue
            if fields[0] == "v":
                vertices.append(_vertex(fields, path, line_number))
            elif fields[0] == "f":
                polygons.append(_face(fields, len(vertices), path, line_number))
    if not vertices:
        raise ModelFileError(f"{path} holds no vertices ('v' lines); it is not a mesh OBJ file.")
    count = len(vertices)
    for polygon in polygons:
        if max(polygon) >= count:
            raise ModelFileError(f"{path}: a face uses vertex {max(polygon) + 1} but the file has {count}.")
    return np.asarray(vertices, dtype=np.float64), polygons


def load_shape_key_objs(
    base_obj: str | os.PathLike[str],
    target_objs: Mapping[str, str | os.PathLike[str]] | Sequence[str | os.PathLike[str]],
    *,
    name: str | None = None,
    up_axis: str = "Y",
) -> LinearMorphableModel:
    """Build a model from a base OBJ and one OBJ per shape key (named by file stem unless a mapping).

    ``up_axis`` is the up axis the files were written with: "Y" (Blender's OBJ exporter default,
    forward -Z) or "Z" (already canonical). Only the base's faces are used; each target must have the
    base's vertex count, in the same order.
    """
    rotation = _up_axis_rotation(up_axis)
    base_path = Path(base_obj)
    base, polygons = read_obj(base_path)
    if not polygons:
        raise ModelFileError(f"{base_path} holds no faces ('f' lines); the base mesh needs its faces.")
    targets = {}
    for key, target_path in _named_targets(target_objs).items():
        vertices, _ = read_obj(target_path)
        if len(vertices) != len(base):
            raise ModelFileError(
                f"{target_path} has {len(vertices)} vertices but the base {base_path} has {len(base)}. "
                "Export every shape key from the same mesh as the base, without modifiers that add or "
                "remove vertices (and with the same export options)."
            )
        targets[key] = vertices @ rotation.T
    return model_from_shape_keys(
        name or base_path.stem,
        base @ rotation.T,
        polygons,
        targets,
        info={
            "source": f"shape keys from {base_path.name}",
            "base_file": str(base_path),
            "up_axis_in": up_axis,
        },
    )


def _as_vertices(value: Any, what: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3 or len(array) < 3:
        raise ModelFileError(
            f"Vertices of {what} must be a (V, 3) array with V >= 3; got shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ModelFileError(f"Vertices of {what} hold NaN or infinite values.")
    return array


def _vertex(fields: list[str], path: Path, line_number: int) -> list[float]:
    if len(fields) < 4:
        raise ModelFileError(f"{path}, line {line_number}: a vertex needs x y z, got '{' '.join(fields)}'.")
    try:
        return [float(value) for value in fields[1:4]]
    except ValueError as error:
        raise ModelFileError(
            f"{path}, line {line_number}: cannot read vertex '{' '.join(fields)}'."
        ) from error


def _face(fields: list[str], vertex_count: int, path: Path, line_number: int) -> list[int]:
    corners = []
    for field in fields[1:]:
        try:
            index = int(field.split("/")[0])
        except ValueError as error:
            raise ModelFileError(f"{path}, line {line_number}: cannot read face corner '{field}'.") from error
        if index == 0:
            raise ModelFileError(f"{path}, line {line_number}: OBJ vertex indices start at 1, not 0.")
        resolved = index - 1 if index > 0 else vertex_count + index
        if resolved < 0:
            raise ModelFileError(
                f"{path}, line {line_number}: face index {index} points before the first vertex."
            )
        corners.append(resolved)
    if len(corners) < 3:
        raise ModelFileError(f"{path}, line {line_number}: a face needs at least 3 vertices.")
    return corners


def _named_targets(
    target_objs: Mapping[str, str | os.PathLike[str]] | Sequence[str | os.PathLike[str]],
) -> dict[str, Path]:
    """Shape-key name -> OBJ path; names from file stems when a plain list is given."""
    if isinstance(target_objs, Mapping):
        return {str(key): Path(value) for key, value in target_objs.items()}
    named: dict[str, Path] = {}
    for value in target_objs:
        path = Path(value)
        if path.stem in named:
            raise ModelFileError(
                f"Two shape-key files are both named '{path.stem}' ({named[path.stem]} and {path}); "
                "give them distinct names or pass a name -> file mapping."
            )
        named[path.stem] = path
    return named


def _up_axis_rotation(up_axis: str) -> np.ndarray:
    key = str(up_axis).upper()
    if key not in UP_AXIS_ROTATIONS:
        raise ModelFileError(
            f"Unknown up axis '{up_axis}'. Use 'Y' (Blender's OBJ export default) or 'Z' (already Z up)."
        )
    return UP_AXIS_ROTATIONS[key]
