"""Bone layouts and vertex regressors: the Blender-independent half of rigging a character."""

from __future__ import annotations

import numpy as np
import pytest

from semantify_engine.errors import SemantifyError
from semantify_engine.models import load
from semantify_engine.rig.bones import MIN_BONE_LENGTH, BoneLayout, layout_from_skeleton, tail_weights
from semantify_engine.rig.regressor import bone_end_regressors, joint_regressor_from_vertices

BODY = load("anny-body")
SKELETON = BODY.skeleton
NAMES = SKELETON.names


def index(name: str) -> int:
    return NAMES.index(name)


def test_layout_heads_are_the_skeletons_joints_for_any_shape() -> None:
    layout = layout_from_skeleton(SKELETON)
    for seed in range(3):
        c = np.random.default_rng(seed).normal(0.0, 2.0, BODY.component_count).astype(np.float32)
        np.testing.assert_allclose(layout.heads(c), SKELETON.joints(c), atol=1e-6)
    np.testing.assert_allclose(layout.heads(np.zeros(3)), SKELETON.joint_template, atol=1e-7)  # fewer: zero


def test_tails_follow_the_rule_decided_on_the_template() -> None:
    weights, offsets = tail_weights(SKELETON.parents, SKELETON.joint_template)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)  # affine: tails move with the skeleton
    chosen = {name: {NAMES[k] for k in np.flatnonzero(weights[index(name)] > 0)} for name in NAMES}
    assert chosen["upperarm01.L"] == {"upperarm02.L"}  # one child
    assert chosen["spine01"] == {"neck01"}  # the child continuing the spine, not a clavicle
    assert chosen["head"] == {"eye.L", "eye.R"}  # both eyes continue it about as well
    assert chosen["foot.L"] == {f"toe{toe}-1.L" for toe in range(1, 6)}  # no continuation: all toes
    tip = index("finger2-3.L")  # a leaf: half its parent bone further on
    parent = SKELETON.parents[tip]
    assert weights[tip, tip] == pytest.approx(1.5) and weights[tip, parent] == pytest.approx(-0.5)
    assert np.count_nonzero(offsets) == 1 and offsets[index("root"), 2] > 0  # the root's children sit on it


def test_tails_keep_a_bone_long_enough_for_blender() -> None:
    layout = layout_from_skeleton(SKELETON)
    for seed in range(5):
        c = np.random.default_rng(seed).normal(0.0, 3.0, BODY.component_count)
        lengths = np.linalg.norm(layout.tails(c) - layout.heads(c), axis=1)
        assert lengths.min() >= MIN_BONE_LENGTH * 0.999
    collapsing = BoneLayout(
        names=("a",),
        parents=[-1],
        head_template=[[0.0, 0.0, 0.0]],
        head_basis=[[[0.0, 0.0, 0.0]]],
        tail_template=[[0.0, 0.0, 1.0]],
        tail_basis=[[[0.0, 0.0, -1.0]]],
    )
    np.testing.assert_allclose(collapsing.tails(np.array([1.0])), [[0.0, 0.0, MIN_BONE_LENGTH]])
    with pytest.raises(SemantifyError, match="follow 1 components"):
        collapsing.heads(np.array([1.0, 2.0]))


def test_vertex_regressor_reproduces_the_joints_at_rest_and_moves_them_affinely() -> None:
    regressor = joint_regressor_from_vertices(BODY.template, SKELETON.skin_weights, SKELETON.joint_template)
    assert regressor.max_offset == 0.0
    np.testing.assert_allclose(regressor(BODY.template), SKELETON.joint_template, atol=1e-9)
    np.testing.assert_allclose(regressor.weights.sum(axis=1), 1.0, atol=1e-9)
    assert regressor.weights.min() > -0.5  # an interpolation of the surface around, not an extrapolation
    rotation = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    moved = 1.3 * BODY.template.astype(np.float64) @ rotation.T + [0.2, -0.1, 0.5]
    expected = 1.3 * SKELETON.joint_template.astype(np.float64) @ rotation.T + [0.2, -0.1, 0.5]
    np.testing.assert_allclose(regressor(moved), expected, atol=1e-9)


def test_vertex_regressor_stays_near_the_bodys_own_joint_regressor() -> None:
    """For a body, bone heads regressed from the vertices around them land within millimetres of anny's own
    joints on new shapes (its regressor was fitted on data, ours is local: they are not the same thing)."""
    regressor = joint_regressor_from_vertices(BODY.template, SKELETON.skin_weights, SKELETON.joint_template)
    c = np.random.default_rng(1).normal(0.0, 1.0, BODY.component_count).astype(np.float32)
    errors = np.linalg.norm(regressor(BODY.vertices(c)) - SKELETON.joints(c), axis=1)
    assert errors.mean() < 0.01


def test_connected_bone_ends_are_one_point_and_unweighted_bones_use_the_nearest_vertices() -> None:
    rng = np.random.default_rng(2)
    vertices = rng.uniform(-1.0, 1.0, size=(400, 3)) * [0.2, 0.2, 1.0]
    heads = np.array([[0.0, 0.0, -0.8], [0.0, 0.0, 0.0], [0.0, 0.0, 1.5]])
    tails = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.8], [0.0, 0.0, 1.8]])  # the third: outside, unweighted
    skin = np.zeros((400, 3))
    skin[:, 0] = vertices[:, 2] < 0
    skin[:, 1] = 1.0 - skin[:, 0]
    head_regressor, tail_regressor = bone_end_regressors(vertices, skin, heads, tails)
    np.testing.assert_array_equal(head_regressor.indices[1], tail_regressor.indices[0])  # one point
    np.testing.assert_array_equal(head_regressor.weights[1], tail_regressor.weights[0])
    np.testing.assert_allclose(head_regressor(vertices), heads, atol=1e-9)
    np.testing.assert_allclose(tail_regressor(vertices), tails, atol=1e-9)
    stretched = vertices * [1.0, 1.0, 1.2]
    np.testing.assert_allclose(tail_regressor(stretched), tails * [1.0, 1.0, 1.2], atol=1e-9)


def test_bad_regressor_inputs_are_refused() -> None:
    with pytest.raises(SemantifyError, match="at least 4 vertices"):
        joint_regressor_from_vertices(np.zeros((3, 3)), np.ones((3, 1)), np.zeros((1, 3)))
    with pytest.raises(SemantifyError, match="must be"):
        joint_regressor_from_vertices(np.zeros((8, 3)), np.ones((8, 2)), np.zeros((1, 3)))
