"""Linear blend skinning of the bundled body: rest pose, rigid motions, and locality of a joint."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from semantify_engine.errors import SemantifyError
from semantify_engine.models import load
from semantify_engine.rig.skinning import pose, rotation_matrices

BODY = load("anny-body")
JOINTS = len(BODY.skeleton.names)
SHAPE = np.array([1.0, -0.5, 0.3, 0, 0, 0, 0, 0, 0, 0.8], np.float32)


def test_the_rest_pose_changes_nothing() -> None:
    vertices, joints = pose(BODY, SHAPE)
    np.testing.assert_allclose(vertices, BODY.vertices(SHAPE), atol=1e-5)
    np.testing.assert_allclose(joints, BODY.skeleton.joints(SHAPE), atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(arrays(np.float64, 3, elements=st.floats(-3, 3)), arrays(np.float64, 3, elements=st.floats(-1, 1)))
def test_rotating_the_root_moves_the_body_rigidly(axis_angle, translation) -> None:
    angles = np.zeros((JOINTS, 3))
    angles[0] = axis_angle
    posed, _ = pose(BODY, SHAPE, angles, translation)
    rest = BODY.vertices(SHAPE).astype(np.float64)
    root = BODY.skeleton.joints(SHAPE)[0].astype(np.float64)
    expected = (rest - root) @ rotation_matrices(axis_angle[None])[0].T + root + translation
    np.testing.assert_allclose(posed, expected, atol=2e-4)


def test_bending_one_joint_moves_only_what_it_carries() -> None:
    names = BODY.skeleton.names
    elbow = next(i for i, name in enumerate(names) if "lowerarm" in name.lower())
    angles = np.zeros((JOINTS, 3))
    angles[elbow] = [0.0, 0.0, 1.2]
    posed, joints = pose(BODY, SHAPE, angles)
    moved = np.linalg.norm(posed - BODY.vertices(SHAPE), axis=1) > 1e-6
    weights = BODY.skeleton.skin_weights
    descendants = {elbow}
    for joint, parent in enumerate(BODY.skeleton.parents):
        if parent in descendants:
            descendants.add(joint)
    carried = weights[:, sorted(descendants)].sum(axis=1) > 1e-6
    assert moved.any() and np.array_equal(moved, carried)
    np.testing.assert_allclose(joints[0], BODY.skeleton.joints(SHAPE)[0], atol=1e-6)  # the root stays


def test_bad_poses_are_refused() -> None:
    with pytest.raises(SemantifyError, match="axis-angles"):
        pose(BODY, SHAPE, np.zeros((3, 3)))
    with pytest.raises(SemantifyError, match="no skeleton"):
        pose(load("anny-head-shape"), np.zeros(3, np.float32))
