"""Linear blend skinning for a model's skeleton: the engine's reference for "apply the shape to a rig".

A rigged character is a shaped rest mesh plus a pose. The shape fixes the rest joints (the skeleton's
joints are linear in the coefficients); the pose gives each joint a rotation relative to its parent.
Skinning then moves every vertex by the weighted blend of its joints' transforms:

    G_j = G_parent(j) · [R_j | J_j − J_parent(j)]       (world transform of joint j; root: [R_0 | J_0 + t])
    A_j = G_j · [I | −J_j]                              (rest → posed, for vertices bound at rest)
    v'  = Σ_j w_vj · A_j · v

This is exactly what Blender's Armature modifier computes with linear (not dual-quaternion) blending and
normalised weights, which is what the Blender side is tested against.
"""

from __future__ import annotations

import numpy as np

from ..errors import SemantifyError
from ..models.linear import LinearMorphableModel


def rotation_matrices(axis_angles: np.ndarray) -> np.ndarray:
    """Rodrigues: ``(J, 3)`` axis-angle vectors (radians) to ``(J, 3, 3)`` rotation matrices."""
    axis_angles = np.asarray(axis_angles, dtype=np.float64)
    angles = np.linalg.norm(axis_angles, axis=-1, keepdims=True)
    axes = np.divide(axis_angles, angles, out=np.zeros_like(axis_angles), where=angles > 0)
    x, y, z = axes[..., 0], axes[..., 1], axes[..., 2]
    zeros = np.zeros_like(x)
    cross = np.stack([zeros, -z, y, z, zeros, -x, -y, x, zeros], axis=-1).reshape(*x.shape, 3, 3)
    sine, cosine = np.sin(angles)[..., None], np.cos(angles)[..., None]
    outer = axes[..., :, None] * axes[..., None, :]
    return cosine * np.eye(3) + sine * cross + (1 - cosine) * outer


def world_transforms(
    parents: np.ndarray, rest_joints: np.ndarray, rotations: np.ndarray, translation: np.ndarray | None = None
) -> np.ndarray:
    """``(J, 4, 4)`` world transforms ``G_j`` of a posed skeleton (parents must precede children)."""
    count = len(parents)
    transforms = np.zeros((count, 4, 4))
    for joint in range(count):
        local = np.eye(4)
        local[:3, :3] = rotations[joint]
        parent = int(parents[joint])
        if parent < 0:
            local[:3, 3] = rest_joints[joint] + (0.0 if translation is None else translation)
            transforms[joint] = local
        else:
            local[:3, 3] = rest_joints[joint] - rest_joints[parent]
            transforms[joint] = transforms[parent] @ local
    return transforms


def skinning_transforms(world: np.ndarray, rest_joints: np.ndarray) -> np.ndarray:
    """``A_j = G_j · [I | −J_j]``: what each joint does to a vertex bound in the rest pose."""
    result = world.copy()
    result[:, :3, 3] -= np.einsum("jab,jb->ja", world[:, :3, :3], rest_joints)
    return result


def skin(vertices: np.ndarray, weights: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Posed vertices ``(V, 3)``: the weighted blend of each joint's ``(4, 4)`` transform."""
    blended = np.einsum("vj,jab->vab", weights.astype(np.float64), transforms)
    return np.einsum("vab,vb->va", blended[:, :3, :3], vertices) + blended[:, :3, 3]


def pose(
    model: LinearMorphableModel,
    coefficients: np.ndarray,
    axis_angles: np.ndarray | None = None,
    translation: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posed vertices and posed joint positions of the shape ``coefficients`` in pose ``axis_angles``.

    ``axis_angles`` is ``(J, 3)``, one local rotation per joint (None: the rest pose).
    """
    skeleton = model.skeleton
    if skeleton is None:
        raise SemantifyError(f"Model '{model.name}' has no skeleton; it cannot be posed or rigged.")
    count = len(skeleton.names)
    rotations = np.broadcast_to(np.eye(3), (count, 3, 3))
    if axis_angles is not None:
        axis_angles = np.asarray(axis_angles, dtype=np.float64)
        if axis_angles.shape != (count, 3):
            raise SemantifyError(
                f"A pose of '{model.name}' needs ({count}, 3) axis-angles, got {axis_angles.shape}."
            )
        rotations = rotation_matrices(axis_angles)
    rest = skeleton.joints(coefficients).astype(np.float64)
    world = world_transforms(skeleton.parents, rest, rotations, translation)
    vertices = skin(
        model.vertices(coefficients).astype(np.float64),
        skeleton.skin_weights,
        skinning_transforms(world, rest),
    )
    return vertices.astype(np.float32), world[:, :3, 3].astype(np.float32)


def limit_influences(weights: np.ndarray, limit: int) -> np.ndarray:
    """``(V, J)`` skin weights with at most ``limit`` non-zero joints per vertex, each row summing to 1.

    What game engines and web viewers read (Unity and three.js: 4 joints per vertex): the ``limit``
    largest weights are kept and renormalised, as Blender's Limit Total and Normalize All do. Rows with no
    weight stay zero; rows already within the limit are only renormalised.
    """
    weights = np.asarray(weights, dtype=np.float64)
    if limit < 1:
        raise SemantifyError(f"A vertex needs at least one joint; got a limit of {limit} influences.")
    limited = weights.copy()
    if weights.shape[1] > limit:
        dropped = np.argsort(-weights, axis=1, kind="stable")[:, limit:]
        np.put_along_axis(limited, dropped, 0.0, axis=1)
    totals = limited.sum(axis=1, keepdims=True)
    return np.divide(limited, totals, out=np.zeros_like(limited), where=totals > 0)
