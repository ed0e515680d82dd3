"""The linear model layer and its file format (no Blender, no torch unless a test says so)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from semantify_engine.errors import CoefficientError, ModelFileError
from semantify_engine.models import LinearMorphableModel, Skeleton, load, load_model, save_model

finite = st.floats(-5, 5, allow_nan=False, width=32)


def random_model(seed: int = 0, vertices: int = 30, components: int = 4) -> LinearMorphableModel:
    rng = np.random.default_rng(seed)
    joints = 3
    weights = rng.random((vertices, joints))
    skeleton = Skeleton(
        names=("root", "spine", "head"),
        parents=np.array([-1, 0, 1]),
        joint_template=rng.normal(size=(joints, 3)),
        joint_basis=rng.normal(size=(components, joints, 3)),
        skin_weights=weights / weights.sum(axis=1, keepdims=True),
    )
    return LinearMorphableModel(
        name=f"random-{seed}",
        kind="body",
        template=rng.normal(size=(vertices, 3)),
        faces=rng.integers(0, vertices, size=(20, 3)),
        basis=rng.normal(size=(components, vertices, 3)),
        std=rng.uniform(0.5, 2.0, size=components),
        component_names=tuple(f"c{i}" for i in range(components)),
        skeleton=skeleton,
        info={"licence": "CC0-1.0", "note": "ünïcode survives"},
    )


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, (5, 4), elements=finite))
def test_vertices_are_template_plus_weighted_basis(coefficients: np.ndarray) -> None:
    model = random_model()
    expected = np.stack([model.template + sum(c[k] * model.basis[k] for k in range(4)) for c in coefficients])
    np.testing.assert_allclose(model.vertices(coefficients), expected, atol=1e-4)
    np.testing.assert_allclose(model.vertices(coefficients[0]), expected[0], atol=1e-4)


def test_fewer_coefficients_mean_zeros_for_the_rest() -> None:
    model = random_model()
    np.testing.assert_allclose(model.vertices([1.5, -2.0]), model.vertices([1.5, -2.0, 0.0, 0.0]))


def test_bad_coefficients_are_refused_with_a_clear_message() -> None:
    model = random_model()
    with pytest.raises(CoefficientError, match="4 components but 5"):
        model.vertices(np.zeros(5))
    with pytest.raises(CoefficientError, match=r"Coefficient 2 of sample 1 .* nan"):
        model.vertices([[0, 0, 0], [0, 0, np.nan]])
    with pytest.raises(CoefficientError, match="vector or an"):
        model.vertices(np.zeros((2, 2, 2)))


def test_torch_twin_matches_numpy() -> None:
    torch = pytest.importorskip("torch")
    model = random_model(components=6)
    coefficients = np.random.default_rng(1).normal(size=(7, 6)).astype(np.float32)
    result = model.vertices_torch(torch.from_numpy(coefficients)).numpy()
    np.testing.assert_allclose(result, model.vertices(coefficients), atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.5, 4.0))
def test_vertex_bounds_hold_every_shape_in_the_box_and_are_tight(seed: int, sigmas: float) -> None:
    model = random_model(seed % 7)
    box = model.coefficient_box(sigmas)
    lowest, highest = model.vertex_bounds(box)
    rng = np.random.default_rng(seed)
    inside = rng.uniform(box[:, 0], box[:, 1], size=(64, len(box)))
    corners = np.where(rng.random((64, len(box))) < 0.5, box[:, 0], box[:, 1])
    for vertices in model.vertices(np.concatenate([inside, corners])):
        assert np.all(vertices.min(axis=0) >= lowest - 1e-4)
        assert np.all(vertices.max(axis=0) <= highest + 1e-4)
    # Tight: the bound of the first axis is reached by the corner that maximises that vertex.
    vertex = int(np.argmax(model.template[:, 0] + np.abs(model.basis[:, :, 0] * box[:, 1:2]).sum(0)))
    best_corner = np.where(model.basis[:, vertex, 0] > 0, box[:, 1], box[:, 0])
    assert model.vertices(best_corner)[vertex, 0] == pytest.approx(highest[0], abs=1e-4)


def test_coefficient_box_respects_bounds() -> None:
    model = random_model()
    bounded = LinearMorphableModel(
        **{**model.__dict__, "coefficient_bounds": np.tile([0.0, 1.0], (4, 1)), "std": np.full(4, 0.25)}
    )
    np.testing.assert_allclose(bounded.coefficient_box(4.0), np.tile([0.0, 1.0], (4, 1)))
    np.testing.assert_allclose(bounded.coefficient_box(2.0), np.tile([0.0, 0.5], (4, 1)))


def test_skeleton_joints_are_linear_in_coefficients() -> None:
    model = random_model()
    skeleton = model.skeleton
    assert skeleton is not None
    c = np.array([0.3, -1.0, 2.0, 0.5], np.float32)
    expected = skeleton.joint_template + np.tensordot(c, skeleton.joint_basis, axes=1)
    np.testing.assert_allclose(skeleton.joints(c), expected, atol=1e-5)


def test_inconsistent_models_are_refused() -> None:
    model = random_model()
    with pytest.raises(ModelFileError, match="faces index vertices"):
        LinearMorphableModel(**{**model.__dict__, "faces": np.array([[0, 1, 99]])})
    with pytest.raises(ModelFileError, match="positive"):
        LinearMorphableModel(**{**model.__dict__, "std": np.zeros(4)})
    with pytest.raises(ModelFileError, match="NaN"):
        template = model.template.copy()
        template[0, 0] = np.nan
        LinearMorphableModel(**{**model.__dict__, "template": template})


def test_model_file_round_trip(tmp_path) -> None:
    model = random_model()
    path = save_model(model, tmp_path / "m.npz")
    loaded = load_model(path)
    for name in ("template", "faces", "basis", "std"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.skeleton is not None and model.skeleton is not None
    np.testing.assert_array_equal(loaded.skeleton.joint_basis, model.skeleton.joint_basis)
    assert loaded.skeleton.names == model.skeleton.names
    assert loaded.info == model.info
    assert loaded.checksum() == model.checksum()
    assert not list(tmp_path.glob("*.partial")), "temporary files must not be left behind"


def test_model_file_is_loaded_without_pickle(tmp_path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, header=np.array([{"format": "semantify-model"}], dtype=object))
    with pytest.raises(ModelFileError, match="evil.npz"):
        load_model(path)


def test_damaged_and_altered_model_files_are_named(tmp_path) -> None:
    path = save_model(random_model(), tmp_path / "m.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated.npz"):
        load_model(truncated)

    altered = tmp_path / "altered.npz"
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["basis"] = arrays["basis"] * 1.01
    np.savez(altered, **arrays)
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(altered)

    not_a_model = tmp_path / "other.npz"
    np.savez(not_a_model, header=np.array(json.dumps({"format": "something-else"})))
    with pytest.raises(ModelFileError, match="not a semantify model file"):
        load_model(not_a_model)

    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "missing.npz")

    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match="text.npz"):
        load_model(text)
    assert not zipfile.is_zipfile(text)


def test_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(ModelFileError, match="Unknown model 'no-such-model'.*semantify models"):
        load("no-such-model")


def test_truncated_model_keeps_the_first_components() -> None:
    model = random_model(components=6)
    small = model.truncated(3)
    assert small.component_count == 3
    np.testing.assert_allclose(small.vertices([1, 2, 3]), model.vertices([1, 2, 3]))
    assert small.skeleton is not None and small.skeleton.joint_basis.shape[0] == 3
