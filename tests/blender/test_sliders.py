"""Word sliders on an object: one per descriptor, driving the shape keys; reset, random, keyframes, save."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.blender import MODULE, evaluated_vertices, make_mapper, positions_of, weights_of

bpy = pytest.importorskip("bpy")


def add_head_with_mapper(mapper_path: Path):
    assert bpy.ops.semantify.add_model(model="anny-head-shape") == {"FINISHED"}
    obj = bpy.context.active_object
    assert bpy.ops.semantify.load_mapper(filepath=str(mapper_path)) == {"FINISHED"}
    return obj


# -------------------------------------------------------------------------------------------- sliders
def test_mapper_gives_one_slider_per_descriptor_driving_the_shape_keys(glue, head, head_mapper) -> None:
    mapper, path = head_mapper
    obj = add_head_with_mapper(path)
    state = obj.semantify
    assert [slider.name for slider in state.sliders] == list(mapper.descriptor_names)
    stored = np.array([(s.low, s.high, s.default) for s in state.sliders])
    assert np.allclose(stored, [(d.low, d.high, d.default) for d in mapper.descriptors])
    assert [slider.value for slider in state.sliders] == pytest.approx(list(mapper.defaults), abs=1e-6)
    assert weights_of(obj)[:10] == pytest.approx(mapper.coefficients(mapper.defaults), abs=1e-5)
    state.sliders[1].position = 0.9  # a user's drag: the update callback runs the mapper
    state.sliders[2].value = 2.27  # descriptor units
    values = np.array([s.value for s in state.sliders], dtype=np.float32)
    assert values[1] == pytest.approx(1.1 + 0.9 * 0.2) and values[2] == pytest.approx(2.27, abs=1e-6)
    coefficients = mapper.coefficients(values)
    assert weights_of(obj)[:10] == pytest.approx(coefficients, abs=1e-5)
    assert np.all(weights_of(obj)[10:] == 0.0)  # components the mapper does not drive are left alone
    assert np.abs(evaluated_vertices(obj) - head.vertices(coefficients)).max() < 1e-5
    assert state.status == ""


def test_corrupt_or_foreign_mapper_is_reported_and_the_scene_is_unchanged(
    glue, head_mapper, capsule, tmp_path: Path
) -> None:
    _, path = head_mapper
    obj = add_head_with_mapper(path)
    state = obj.semantify
    state.sliders[0].position = 0.8
    before = (positions_of(obj), weights_of(obj).copy(), state.mapper_path, state.mapper_checksum)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(path.read_bytes()[:700])
    foreign = tmp_path / "foreign.npz"
    make_mapper(capsule, foreign, count=3)
    for bad, message in ((corrupt, "not a readable mapper"), (foreign, "trained for model 'test-capsule'")):
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.semantify.load_mapper(filepath=str(bad))
        after = (positions_of(obj), weights_of(obj), state.mapper_path, state.mapper_checksum)
        assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
        assert before[2:] == after[2:]


def test_objects_are_independent(glue, head_mapper) -> None:
    mapper, path = head_mapper
    first = add_head_with_mapper(path)
    second = add_head_with_mapper(path)
    assert first.name != second.name and first.data.shape_keys != second.data.shape_keys
    second.semantify.sliders[0].position = 1.0
    assert first.semantify.sliders[0].position == pytest.approx((0.15 - 0.10) / 0.2)
    assert weights_of(first)[:10] == pytest.approx(mapper.coefficients(mapper.defaults), abs=1e-5)
    assert not np.allclose(weights_of(first), weights_of(second))


def test_reset_and_randomise(glue, head_mapper) -> None:
    mapper, path = head_mapper
    obj = add_head_with_mapper(path)
    assert bpy.ops.semantify.randomise_sliders(seed=7) == {"FINISHED"}
    random_positions = positions_of(obj)
    assert not np.allclose(random_positions, 0.25)  # 0.25 is every slider's default position here
    values = np.array([s.value for s in obj.semantify.sliders], dtype=np.float32)
    assert weights_of(obj)[:10] == pytest.approx(mapper.coefficients(values), abs=1e-5)
    bpy.ops.semantify.randomise_sliders(seed=7)
    assert np.allclose(positions_of(obj), random_positions)  # the seed replays the same shape
    assert bpy.ops.semantify.reset_sliders() == {"FINISHED"}
    assert [s.value for s in obj.semantify.sliders] == pytest.approx(list(mapper.defaults), abs=1e-6)
    assert weights_of(obj)[:10] == pytest.approx(mapper.coefficients(mapper.defaults), abs=1e-5)


def test_a_failed_reset_or_random_changes_no_slider_and_no_shape(glue, head, tmp_path: Path) -> None:
    path = tmp_path / "doomed.npz"
    make_mapper(head, path)
    obj = add_head_with_mapper(path)
    obj.semantify.sliders[0].position = 0.9
    before = (positions_of(obj), weights_of(obj).copy())
    path.unlink()  # the mapper file is gone
    for operator in (bpy.ops.semantify.reset_sliders, bpy.ops.semantify.randomise_sliders):
        with pytest.raises(RuntimeError, match="cannot be read"):
            operator()
        assert np.array_equal(positions_of(obj), before[0]) and np.array_equal(weights_of(obj), before[1])
    make_mapper(head, path)
    obj.shape_key_clear()  # the shape keys deleted by hand
    positions = positions_of(obj)
    with pytest.raises(RuntimeError, match="shape keys"):
        bpy.ops.semantify.reset_sliders()
    assert np.array_equal(positions_of(obj), positions)


def test_use_my_mesh_with_only_a_basis_key_says_why(glue) -> None:
    bpy.ops.mesh.primitive_cube_add()
    bpy.context.active_object.shape_key_add(name="Basis")
    with pytest.raises(RuntimeError, match="has only its Basis shape key: add one shape key per way"):
        bpy.ops.semantify.use_mesh()


def test_keyframed_sliders_animate_the_shape(glue, head_mapper) -> None:
    mapper, path = head_mapper
    obj = add_head_with_mapper(path)
    scene = bpy.context.scene
    scene.frame_set(1)
    assert bpy.ops.semantify.keyframe_sliders() == {"FINISHED"}
    scene.frame_set(11)
    obj.semantify.sliders[0].position = 1.0
    bpy.ops.semantify.keyframe_sliders()
    for frame in (1, 6, 11):
        scene.frame_set(frame)  # animation moves positions without update callbacks: the handler applies
        values = np.array([s.value for s in obj.semantify.sliders], dtype=np.float32)
        assert weights_of(obj)[:10] == pytest.approx(mapper.coefficients(values), abs=1e-5)
    scene.frame_set(6)
    assert 0.25 < obj.semantify.sliders[0].position < 1.0


def test_save_and_reload_keeps_sliders_identity_and_shape(glue, head_mapper, tmp_path: Path) -> None:
    mapper, path = head_mapper
    obj = add_head_with_mapper(path)
    bpy.ops.semantify.randomise_sliders(seed=3)
    saved = (positions_of(obj), weights_of(obj).copy(), obj.semantify.model_checksum, obj.name)
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module=MODULE)
    glue.sliders.clear_cache()
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    obj = bpy.data.objects[saved[3]]
    assert np.allclose(positions_of(obj), saved[0]) and np.allclose(weights_of(obj), saved[1])
    assert obj.semantify.model_checksum == saved[2]
    assert obj.semantify.mapper_path == str(path)
    obj.semantify.sliders[2].position = 0.0  # the mapper is read again from its file on the first move
    values = np.array([s.value for s in obj.semantify.sliders], dtype=np.float32)
    assert weights_of(obj)[:10] == pytest.approx(mapper.coefficients(values), abs=1e-5)
    assert obj.semantify.status == ""
