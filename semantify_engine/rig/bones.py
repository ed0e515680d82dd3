"""Bones whose two ends follow the shape: the Blender-independent half of "apply the shape to a rig".

A model's skeleton gives joint positions that are linear in the coefficients. A Blender bone also needs a
tail, and its tail fixes the bone's orientation, so the tail rule has to be chosen once and kept: if it
changed with the shape (say, a different child chosen because two distances swapped), a bone would turn
and a pose would change meaning under the artist. So every tail here is a *fixed linear combination of
joints*, decided once on the template skeleton:

- one child away from the joint: the tail is at that child;
- several: the child that continues the incoming direction (cosine >= 0.9, e.g. the spine into the neck
  rather than into a clavicle; those continuing it about as well, like a head's eyes, are averaged), else the
  mean of the children (a foot's toes);
- none (a leaf, or children all on the joint itself): half the parent bone further along the parent
  direction, ``tail = head + 0.5 (head - parent head)``; a root without usable children points up.

Because that is linear too, heads and tails of any shape are ``template + c @ basis``: one small matrix
product per shape change. :class:`BoneLayout` holds both ends that way, for a model's skeleton
(:func:`layout_from_skeleton`) and for a user's own rig whose ends are regressed from vertices
(:func:`layout_from_regressors`, see :mod:`.regressor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SemantifyError
from ..models.linear import LinearMorphableModel, Skeleton
from .regressor import VertexRegressor

CONTINUATION_COSINE = 0.9  # a child this well aligned with the incoming bone continues the chain
CONTINUATION_MARGIN = 0.05  # children continuing it about as well as the best one (a pair of eyes) share
LEAF_FRACTION = 0.5  # a leaf bone is this fraction of its parent bone, along the parent's direction
ROOT_FRACTION = 0.1  # a root with no usable child points up, this fraction of the skeleton's size
COINCIDENT_FRACTION = 1e-3  # joints closer than this fraction of the skeleton's size are one point
MIN_BONE_LENGTH = 1e-4  # Blender deletes zero-length bones; a bone is never shorter than this


@dataclass(frozen=True)
class BoneLayout:
    """Head and tail of every bone, each linear in the shape coefficients (float64).

    ``heads(c) = head_template + sum_k c_k head_basis[k]``, the same for tails. ``parents[b]`` is the
    index of bone ``b``'s parent (-1 for a root), parents before children.
    """

    names: tuple[str, ...]
    parents: np.ndarray  # (B,) int
    head_template: np.ndarray  # (B, 3)
    head_basis: np.ndarray  # (K, B, 3)
    tail_template: np.ndarray  # (B, 3)
    tail_basis: np.ndarray  # (K, B, 3)

    def __post_init__(self) -> None:
        count = len(self.names)
        set_ = object.__setattr__  # frozen: normalise once
        set_(self, "names", tuple(str(name) for name in self.names))
        set_(self, "parents", np.asarray(self.parents, dtype=np.int64).reshape(-1))
        for name in ("head_template", "tail_template"):
            set_(self, name, np.asarray(getattr(self, name), dtype=np.float64).reshape(count, 3))
        basis_count = np.asarray(self.head_basis).size // max(3 * count, 1)
        for name in ("head_basis", "tail_basis"):
            set_(self, name, np.asarray(getattr(self, name), dtype=np.float64).reshape(basis_count, count, 3))
        if self.parents.shape != (count,):
            raise SemantifyError(
                f"A bone layout needs one parent per bone: {count} names, {self.parents.size}."
            )

    @property
    def bone_count(self) -> int:
        return len(self.names)

    @property
    def component_count(self) -> int:
        return int(self.head_basis.shape[0])

    def heads(self, coefficients: np.ndarray) -> np.ndarray:
        """Bone heads ``(B, 3)`` for one coefficient vector (fewer than K: the rest are zero)."""
        return _linear(self.head_template, self.head_basis, coefficients)

    def tails(self, coefficients: np.ndarray, min_length: float = MIN_BONE_LENGTH) -> np.ndarray:
        """Bone tails ``(B, 3)``; a bone that would be shorter than ``min_length`` keeps its rest direction.

        The linear tail can meet its head only for extreme shapes; Blender would then delete the bone, so
        it is kept ``min_length`` long, pointing as it does on the template.
        """
        heads = self.heads(coefficients)
        tails = _linear(self.tail_template, self.tail_basis, coefficients)
        lengths = np.linalg.norm(tails - heads, axis=1)
        short = lengths < min_length
        if np.any(short):
            rest = self.tail_template[short] - self.head_template[short]
            rest /= np.maximum(np.linalg.norm(rest, axis=1, keepdims=True), 1e-300)
            tails[short] = heads[short] + min_length * rest
        return tails


def _linear(template: np.ndarray, basis: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    values = np.asarray(coefficients, dtype=np.float64).reshape(-1)
    used = min(len(values), basis.shape[0])
    if len(values) > basis.shape[0] and np.any(values[used:] != 0):
        raise SemantifyError(
            f"{len(values)} coefficients were given for bones that follow {basis.shape[0]} components."
        )
    return template + np.tensordot(values[:used], basis[:used], axes=1)


# ------------------------------------------------------------------------------------------- tails
def tail_weights(parents: np.ndarray, rest_joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The tail rule (module docstring) as ``(T, offsets)``: ``tails = T @ joints + offsets``.

    ``T`` is ``(J, J)``, ``offsets`` ``(J, 3)`` (non-zero only for an upward-pointing root). Decided on
    ``rest_joints`` (the template skeleton) once, so the rule never flips with the shape.
    """
    parents = np.asarray(parents, dtype=np.int64).reshape(-1)
    joints = np.asarray(rest_joints, dtype=np.float64)
    count = len(parents)
    extent = float(np.ptp(joints, axis=0).max()) if count > 1 else 1.0
    extent = extent if extent > 0 else 1.0
    coincident = COINCIDENT_FRACTION * extent
    children: list[list[int]] = [[] for _ in range(count)]
    for joint, parent in enumerate(parents):
        if parent >= 0:
            children[parent].append(joint)
    weights = np.zeros((count, count))
    offsets = np.zeros((count, 3))
    for joint in range(count):
        head = joints[joint]
        ancestor = _distinct_ancestor(parents, joints, joint, coincident)
        incoming = None if ancestor < 0 else _unit(head - joints[ancestor])
        kids = [kid for kid in children[joint] if np.linalg.norm(joints[kid] - head) > coincident]
        chosen = _chosen_children(kids, joints, head, incoming, coincident)
        if chosen:
            weights[joint, chosen] = 1.0 / len(chosen)
        elif ancestor >= 0:  # a leaf: along the parent direction, half the parent bone
            weights[joint, joint] += 1.0 + LEAF_FRACTION
            weights[joint, ancestor] -= LEAF_FRACTION
        else:  # a lone root: up
            weights[joint, joint] = 1.0
            offsets[joint, 2] = ROOT_FRACTION * extent
    return weights, offsets


def _distinct_ancestor(parents: np.ndarray, joints: np.ndarray, joint: int, coincident: float) -> int:
    """The nearest ancestor not on the joint itself (-1 if none), giving the incoming direction."""
    ancestor = int(parents[joint])
    while ancestor >= 0 and np.linalg.norm(joints[joint] - joints[ancestor]) <= coincident:
        ancestor = int(parents[ancestor])
    return ancestor


def _chosen_children(
    kids: list[int], joints: np.ndarray, head: np.ndarray, incoming: np.ndarray | None, coincident: float
) -> list[int]:
    """The children the tail averages: one, the continuing one, or all (empty: use the leaf rule)."""
    if len(kids) <= 1:
        return kids
    if incoming is not None:
        cosines = np.array([float(_unit(joints[kid] - head) @ incoming) for kid in kids])
        if cosines.max() >= CONTINUATION_COSINE:  # the continuing child; a symmetric pair: both
            return [
                kid
                for kid, cosine in zip(kids, cosines, strict=True)
                if cosine >= cosines.max() - CONTINUATION_MARGIN
            ]
    if np.linalg.norm(joints[kids].mean(axis=0) - head) <= coincident:
        return []
    return kids


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-300)


# ------------------------------------------------------------------------------------------ layouts
def layout_from_skeleton(skeleton: Skeleton) -> BoneLayout:
    """One bone per joint: heads at the joints, tails by the tail rule; all linear in the coefficients."""
    weights, offsets = tail_weights(skeleton.parents, skeleton.joint_template)
    head_template = skeleton.joint_template.astype(np.float64)
    head_basis = skeleton.joint_basis.astype(np.float64)
    return BoneLayout(
        names=skeleton.names,
        parents=skeleton.parents,
        head_template=head_template,
        head_basis=head_basis,
        tail_template=weights @ head_template + offsets,
        tail_basis=np.einsum("bj,kjc->kbc", weights, head_basis),
    )


def layout_from_regressors(
    names: tuple[str, ...],
    parents: np.ndarray,
    model: LinearMorphableModel,
    heads: VertexRegressor,
    tails: VertexRegressor,
) -> BoneLayout:
    """A user's own rig: both bone ends are fixed vertex combinations, hence linear in ``model``'s keys."""
    return BoneLayout(
        names=names,
        parents=parents,
        head_template=heads(model.template),
        head_basis=heads.apply_to_offsets(model.basis),
        tail_template=tails(model.template),
        tail_basis=tails.apply_to_offsets(model.basis),
    )
