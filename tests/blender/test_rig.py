"""Rigged characters in Blender, headless: joints follow the shape, the pose is kept, the skin stays on.

The references are the engine's: ``model.skeleton.joints(c)`` for where the joints must be, and
:mod:`semantify_engine.rig.skinning` for where the posed skin must be. Blender stores bones and evaluates
the Armature modifier in float32, on coordinates of about a metre (float32 steps there are ~1e-7 m), so
1e-5 m is the tolerance throughout: tight enough to catch any wrong transform or weight, loose enough for
float32 arithmetic.

The add-on is installed from its zip and enabled by the shared fixtures in ``conftest.py``. Headless
there is no event loop, so where Blender would run the add-on's one-shot timer (joints following weights
that were set outside Semantify's slider path), the tests call the timer's function themselves.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from support import ROOT
from support.blender import MODULE, evaluated_vertices, weights_of
from support.recording_layout import RecordingLayout

from semantify_engine.mapper import load_mapper
from semantify_engine.models import load
from semantify_engine.models.shape_keys import model_from_shape_keys
from semantify_engine.rig import skinning
from semantify_engine.rig.regressor import bone_end_regressors

bpy = pytest.importorskip("bpy")
mathutils = pytest.importorskip("mathutils")

TOLERANCE = 1e-5  # metres; see the module docstring
SHIPPED_BODY = ROOT / "semantify_engine/data/mappers/anny-body-measurements.npz"
POSE = {  # bone -> (axis, angle): a few joints along different chains
    "spine03": ((1.0, 0.0, 0.0), 0.3),
    "upperarm01.L": ((0.0, 0.3, 1.0), 0.8),
    "lowerarm01.L": ((1.0, 0.0, 0.0), 1.1),
    "upperleg02.R": ((1.0, 0.2, 0.0), -0.6),
    "neck02": ((0.0, 1.0, 0.0), 0.4),
}


@pytest.fixture(scope="module")
def body():
    return load("anny-body")


def add_rigged(model: str = "anny-body"):
    assert bpy.ops.semantify.add_rigged_character(model=model) == {"FINISHED"}
    obj = bpy.context.active_object
    return obj, obj.modifiers["Armature"].object


def heads_of(armature, names) -> np.ndarray:
    return np.array([armature.data.bones[name].head_local for name in names])


def set_weights(glue, obj, coefficients: np.ndarray) -> None:
    """Weights set the way a script or Blender's Shape Keys panel would: outside Semantify's path."""
    blocks = obj.data.shape_keys.key_blocks
    blocks.foreach_set("value", np.concatenate([[1.0], coefficients]).astype(np.float32))
    obj.data.shape_keys.update_tag()
    bpy.context.evaluated_depsgraph_get()  # the depsgraph handler notes the change ...
    glue.rig.follow_pending()  # ... and the timer Blender's event loop would run moves the joints


def pose_bones(armature, pose: dict) -> None:
    for name, (axis, angle) in pose.items():
        bone = armature.pose.bones[name]
        bone.rotation_mode = "QUATERNION"
        bone.rotation_quaternion = mathutils.Quaternion(axis, angle)


def blender_transforms(armature, names) -> np.ndarray:
    """``A_j = pose.matrix @ rest.inverted()`` per bone, from the evaluated armature (armature space)."""
    evaluated = armature.evaluated_get(bpy.context.evaluated_depsgraph_get())
    return np.array(
        [
            np.array(evaluated.pose.bones[n].matrix @ armature.data.bones[n].matrix_local.inverted())
            for n in names
        ]
    )


def engine_pose(armature, names, pose: dict, location=None) -> tuple[np.ndarray, np.ndarray | None]:
    """The same pose in the engine's terms: a local rotation ``q`` about a bone whose rest orientation is
    ``B`` is the rotation ``B q Bᵀ`` about its joint, and a root location ``l`` is a translation ``B l``."""
    angles = np.zeros((len(names), 3))
    for name, (axis, angle) in pose.items():
        rest = armature.data.bones[name].matrix_local.to_3x3()
        world = rest @ mathutils.Quaternion(axis, angle).to_matrix() @ rest.transposed()
        rotation = world.to_quaternion()
        angles[names.index(name)] = np.array(rotation.axis) * rotation.angle
    translation = None
    if location is not None:
        translation = np.array(
            armature.data.bones[names[0]].matrix_local.to_3x3() @ mathutils.Vector(location)
        )
    return angles, translation


# ------------------------------------------------------------------------------------ the rig itself
def test_rigged_body_is_an_armature_with_the_skeleton_and_a_linear_skin(glue, body) -> None:
    obj, armature = add_rigged()
    skeleton = body.skeleton
    assert bpy.context.active_object == obj and obj.parent == armature and armature.type == "ARMATURE"
    assert [bone.name for bone in armature.data.bones] == list(skeleton.names)
    parents = [skeleton.names.index(b.parent.name) if b.parent else -1 for b in armature.data.bones]
    assert parents == skeleton.parents.tolist()
    assert [modifier.type for modifier in obj.modifiers] == ["ARMATURE"]  # right after the shape keys
    modifier = obj.modifiers[0]
    assert modifier.use_vertex_groups and not modifier.use_bone_envelopes
    assert not modifier.use_deform_preserve_volume  # linear blending, as the engine skins
    assert [group.name for group in obj.vertex_groups] == list(skeleton.names)
    stored = np.zeros_like(skeleton.skin_weights)
    for vertex in obj.data.vertices:
        for element in vertex.groups:
            assert element.weight > 0  # only non-zero weights are stored
            stored[vertex.index, element.group] = element.weight
    np.testing.assert_allclose(stored, skeleton.skin_weights, atol=1e-7)
    np.testing.assert_allclose(heads_of(armature, skeleton.names), skeleton.joint_template, atol=TOLERANCE)
    spine, neck = armature.data.bones["spine01"], armature.data.bones["neck01"]
    assert (spine.tail_local - neck.head_local).length < TOLERANCE  # a tail at the continuing child
    assert obj.semantify.follow_shape and obj.semantify.component_count == body.component_count
    assert np.abs(evaluated_vertices(obj) - body.template).max() < TOLERANCE  # rest pose: the skin is still


def test_joints_follow_sliders_and_shape_keys(glue, body) -> None:
    obj, armature = add_rigged()
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-body-measurements") == {"FINISHED"}
    mapper = load_mapper(SHIPPED_BODY)
    sliders = obj.semantify.sliders
    for name, position in (("height", 0.95), ("waist", 0.1), ("hips", 0.8)):
        sliders[name].position = position  # a user's drag: the slider path moves the joints
        values = np.array([slider.value for slider in sliders], dtype=np.float32)
        expected = body.skeleton.joints(mapper.coefficients(values))
        np.testing.assert_allclose(heads_of(armature, body.skeleton.names), expected, atol=TOLERANCE)
    np.testing.assert_allclose(
        heads_of(armature, body.skeleton.names), body.skeleton.joints(weights_of(obj)), atol=TOLERANCE
    )
    c = np.random.default_rng(4).normal(0.0, 1.5, size=body.component_count).astype(np.float32)
    set_weights(glue, obj, c)
    np.testing.assert_allclose(
        heads_of(armature, body.skeleton.names), body.skeleton.joints(c), atol=TOLERANCE
    )
    tails = np.array([armature.data.bones[name].tail_local for name in body.skeleton.names])
    layout = glue.rig.stored_layout(obj)  # tails follow their own rule, not the heads' offsets
    np.testing.assert_allclose(tails, layout.tails(c.astype(np.float64)), atol=TOLERANCE)
    assert np.abs(tails - heads_of(armature, body.skeleton.names)).max() > 0.01
    assert np.abs(evaluated_vertices(obj) - body.vertices(c)).max() < TOLERANCE  # and the skin stays put
    assert obj.semantify.rig_status == ""


def test_posed_character_skin_equals_the_engines_skinning(glue, body) -> None:
    obj, armature = add_rigged()
    names = list(body.skeleton.names)
    c = np.random.default_rng(7).normal(0.0, 1.0, size=body.component_count).astype(np.float32)
    glue.sliders.write_weights(obj, c)
    pose_bones(armature, POSE)
    armature.pose.bones["root"].location = (0.05, -0.1, 0.02)
    shown = evaluated_vertices(obj)
    from_blender = skinning.skin(
        body.vertices(c), body.skeleton.skin_weights, blender_transforms(armature, names)
    )
    assert np.abs(shown - from_blender).max() < TOLERANCE
    angles, translation = engine_pose(armature, names, POSE, location=(0.05, -0.1, 0.02))
    posed, _ = skinning.pose(body, c, angles, translation)
    assert np.abs(shown - posed).max() < TOLERANCE
    assert np.abs(shown - body.vertices(c)).max() > 0.05  # the pose really moved the body


def test_shape_change_while_posed_keeps_the_pose_and_the_skin(glue, body) -> None:
    obj, armature = add_rigged()
    names = list(body.skeleton.names)
    pose_bones(armature, POSE)
    before = {name: tuple(armature.pose.bones[name].rotation_quaternion) for name in POSE}
    rng = np.random.default_rng(11)
    for _ in range(2):
        c = rng.normal(0.0, 1.5, size=body.component_count).astype(np.float32)
        glue.sliders.write_weights(obj, c)  # what every slider move, reset, random or fit ends in
        assert {name: tuple(armature.pose.bones[name].rotation_quaternion) for name in POSE} == before
        np.testing.assert_allclose(heads_of(armature, names), body.skeleton.joints(c), atol=TOLERANCE)
        angles, _ = engine_pose(armature, names, POSE)
        posed, _ = skinning.pose(body, c, angles)
        assert np.abs(evaluated_vertices(obj) - posed).max() < TOLERANCE
    assert armature.mode == "OBJECT" and bpy.context.active_object == obj


def test_follow_shape_off_leaves_the_joints_and_update_joints_moves_them(glue, body) -> None:
    obj, armature = add_rigged()
    names = body.skeleton.names
    obj.semantify.follow_shape = False
    c = np.random.default_rng(3).normal(0.0, 1.5, size=body.component_count).astype(np.float32)
    glue.sliders.write_weights(obj, c)
    set_weights(glue, obj, c)  # neither path moves them
    np.testing.assert_allclose(heads_of(armature, names), body.skeleton.joint_template, atol=TOLERANCE)
    assert bpy.ops.semantify.update_joints() == {"FINISHED"}
    np.testing.assert_allclose(heads_of(armature, names), body.skeleton.joints(c), atol=TOLERANCE)
    c2 = c * 0.5
    glue.sliders.write_weights(obj, c2)
    bpy.context.view_layer.objects.active = armature  # the operator also works from the armature
    assert bpy.ops.semantify.update_joints() == {"FINISHED"}
    np.testing.assert_allclose(heads_of(armature, names), body.skeleton.joints(c2), atol=TOLERANCE)
    glue.sliders.write_weights(obj, c)
    obj.semantify.follow_shape = True  # switching it back on follows the current shape at once
    np.testing.assert_allclose(heads_of(armature, names), body.skeleton.joints(c), atol=TOLERANCE)


def test_joints_wait_while_another_object_is_in_edit_mode(glue, body) -> None:
    obj, armature = add_rigged()
    bpy.ops.mesh.primitive_cube_add(location=(3.0, 0.0, 0.0))
    bpy.ops.object.mode_set(mode="EDIT")  # the user is editing another mesh
    c = np.random.default_rng(6).normal(0.0, 1.5, size=body.component_count).astype(np.float32)
    glue.sliders.write_weights(obj, c)
    assert bpy.context.mode == "EDIT_MESH"  # not taken out of their mode
    np.testing.assert_allclose(
        heads_of(armature, body.skeleton.names), body.skeleton.joint_template, atol=1e-6
    )
    assert obj.semantify.rig_status.startswith("Joints will follow the shape when they can move")
    bpy.ops.object.mode_set(mode="OBJECT")
    assert glue.rig.follow_pending() is None  # the retrying timer's turn: done, not rescheduled
    np.testing.assert_allclose(
        heads_of(armature, body.skeleton.names), body.skeleton.joints(c), atol=TOLERANCE
    )
    assert obj.semantify.rig_status == ""


def test_keyframed_sliders_move_the_joints_on_frame_change(glue, body) -> None:
    obj, armature = add_rigged()
    bpy.ops.semantify.load_default_mapper(mapper="anny-body-measurements")
    mapper = load_mapper(SHIPPED_BODY)
    scene = bpy.context.scene
    scene.frame_set(1)
    bpy.ops.semantify.keyframe_sliders()
    scene.frame_set(9)
    obj.semantify.sliders["height"].position = 1.0
    bpy.ops.semantify.keyframe_sliders()
    for frame in (1, 5, 9):
        scene.frame_set(frame)
        values = np.array([slider.value for slider in obj.semantify.sliders], dtype=np.float32)
        expected = body.skeleton.joints(mapper.coefficients(values))
        np.testing.assert_allclose(heads_of(armature, body.skeleton.names), expected, atol=TOLERANCE)


# ------------------------------------------------------------------------------ SMPL-family models
def test_smpl_family_model_gets_a_rig_from_its_joint_regressor(glue, tmp_path: Path) -> None:
    pytest.importorskip("smplx")
    from support.owner_files import body_arrays, write_pickle

    write_pickle(
        tmp_path / "smpl" / "SMPL_NEUTRAL.pkl", body_arrays(2, vertices=250, joints=24, shape_dirs=10)
    )
    bpy.context.preferences.addons[MODULE].preferences.model_dir = str(tmp_path)
    model = load("smpl-neutral", model_dir=tmp_path)
    obj, armature = add_rigged("smpl-neutral")
    names = list(model.skeleton.names)
    assert sorted(bone.name for bone in armature.data.bones) == sorted(names)  # Blender orders by hierarchy
    c = np.random.default_rng(5).normal(0.0, 2.0, size=model.component_count).astype(np.float32)
    glue.sliders.write_weights(obj, c)
    np.testing.assert_allclose(heads_of(armature, names), model.skeleton.joints(c), atol=TOLERANCE)
    pose = {names[3]: ((1.0, 0.0, 0.0), 0.5), names[6]: ((0.0, 0.0, 1.0), -0.7)}
    pose_bones(armature, pose)
    angles, _ = engine_pose(armature, names, pose)
    posed, _ = skinning.pose(model, c, angles)
    assert np.abs(evaluated_vertices(obj) - posed).max() < TOLERANCE


# ------------------------------------------------------------------------------- a user's own rig
TUBE_LEVELS = np.linspace(0.0, 2.0, 21)
TUBE_BONES = (("lower", 0.0, 0.8, 0.4), ("middle", 0.8, 1.5, 1.15), ("upper", 1.5, 2.0, 1.75))


def make_rigged_tube():
    """A closed tube along the mesh's Z, three connected bones in it plus an unweighted control bone, and
    shape keys: two affine (``tall``, ``wide``) and one not (``bulge``). The mesh and the armature have
    different transforms, so the mesh → armature mapping is exercised."""
    angles = np.linspace(0.0, 2 * np.pi, 12, endpoint=False)
    rings = [
        np.stack([0.2 * np.cos(angles), 0.2 * np.sin(angles), np.full(12, z)], axis=1) for z in TUBE_LEVELS
    ]
    vertices = np.concatenate([*rings, [[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]]])
    vertices += np.random.default_rng(0).normal(0.0, 1e-3, vertices.shape)  # no ties between distances
    vertices = vertices.astype(np.float32).astype(np.float64)  # what Blender stores
    bottom, top = len(vertices) - 2, len(vertices) - 1
    faces = [
        (level * 12 + i, level * 12 + (i + 1) % 12, (level + 1) * 12 + (i + 1) % 12, (level + 1) * 12 + i)
        for level in range(len(TUBE_LEVELS) - 1)
        for i in range(12)
    ]
    faces += [(bottom, (i + 1) % 12, i) for i in range(12)]
    faces += [
        (top, (len(TUBE_LEVELS) - 1) * 12 + i, (len(TUBE_LEVELS) - 1) * 12 + (i + 1) % 12) for i in range(12)
    ]
    mesh = bpy.data.meshes.new("tube")
    mesh.from_pydata(vertices.tolist(), [], faces)
    obj = bpy.data.objects.new("My Tube", mesh)
    bpy.context.scene.collection.objects.link(obj)
    obj.location, obj.rotation_euler = (1.0, 0.0, 0.2), (0.0, 0.0, np.pi / 2)
    armature = bpy.data.objects.new("My Rig", bpy.data.armatures.new("My Rig"))
    bpy.context.scene.collection.objects.link(armature)
    armature.location = (0.5, 0.3, 0.0)
    mesh_to_armature = mathutils.Matrix.Translation((0.5, -0.3, 0.2)) @ mathutils.Matrix.Rotation(
        np.pi / 2, 4, "Z"
    )
    bpy.context.view_layer.objects.active = armature
    bpy.ops.object.mode_set(mode="EDIT")
    previous = None
    for name, low, high, _ in TUBE_BONES:
        bone = armature.data.edit_bones.new(name)
        bone.head, bone.tail = (
            mesh_to_armature @ mathutils.Vector((0, 0, low)),
            mesh_to_armature @ mathutils.Vector((0, 0, high)),
        )
        bone.parent, bone.use_connect, previous = previous, previous is not None, bone
    control = armature.data.edit_bones.new("control")  # no vertex group: follows the nearest vertices
    control.head, control.tail = (
        mesh_to_armature @ mathutils.Vector((0, 0.3, -0.3)),
        mesh_to_armature @ mathutils.Vector((0, 0.3, 0.0)),
    )
    bpy.ops.object.mode_set(mode="OBJECT")
    heights = vertices[:, 2]
    weights = np.array([np.maximum(0.0, 1.0 - np.abs(heights - centre) / 0.6) for *_, centre in TUBE_BONES]).T
    weights = (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32).astype(np.float64)
    for column, (name, *_) in enumerate(TUBE_BONES):
        group = obj.vertex_groups.new(name=name)
        for index in np.flatnonzero(weights[:, column] > 0):
            group.add([int(index)], float(weights[index, column]), "REPLACE")
    modifier = obj.modifiers.new("Armature", "ARMATURE")
    modifier.object = armature
    obj.shape_key_add(name="Basis")
    radial = 1.0 + 0.5 * np.exp(-(((heights - 1.0) / 0.3) ** 2))
    for name, target in (
        ("tall", vertices * [1.0, 1.0, 1.25]),
        ("wide", vertices * [1.5, 1.5, 1.0]),
        ("bulge", vertices * np.stack([radial, radial, np.ones_like(radial)], axis=1)),
    ):
        key = obj.shape_key_add(name=name, from_mix=False)
        key.data.foreach_set("co", target.astype(np.float32).ravel())
        key.value = 0.0  # the bones were placed on the basis shape
    bpy.context.view_layer.objects.active = obj
    return obj, armature, vertices, weights, mesh_to_armature


def bone_ends(armature) -> np.ndarray:
    return np.array([[bone.head_local, bone.tail_local] for bone in armature.data.bones])


def test_a_users_own_rig_follows_the_vertices_around_its_bones(glue) -> None:
    obj, armature, vertices, weights, mesh_to_armature = make_rigged_tube()
    rest = bone_ends(armature)
    armature.pose.bones["middle"].rotation_quaternion = mathutils.Quaternion((1, 0, 0), 0.5)
    assert bpy.ops.semantify.follow_my_rig() == {"FINISHED"}
    np.testing.assert_allclose(bone_ends(armature), rest, atol=1e-6)  # nothing moves at rest
    to_armature = np.array(mesh_to_armature)

    def affine(scale: np.ndarray) -> np.ndarray:
        """Where rest bone ends go when the mesh is scaled by ``scale`` in its own space."""
        matrix = to_armature @ np.diag([*scale, 1.0]) @ np.linalg.inv(to_armature)
        return rest @ matrix[:3, :3].T + matrix[:3, 3]

    set_weights(glue, obj, np.array([1.0, 0.6, 0.0]))  # tall and wide: an affine change of the whole mesh
    np.testing.assert_allclose(bone_ends(armature), affine(np.array([1.3, 1.3, 1.25])), atol=TOLERANCE)
    ends = bone_ends(armature)
    assert np.abs(ends[1, 0] - ends[0, 1]).max() < TOLERANCE  # connected bones stay connected
    assert np.abs(ends[2, 0] - ends[1, 1]).max() < TOLERANCE
    assert armature.pose.bones["middle"].rotation_quaternion.angle == pytest.approx(0.5)  # the pose is kept

    c = np.array([0.4, 0.0, 1.0])  # a bulge is not affine: the engine's regressor is the reference
    set_weights(glue, obj, c)
    names = tuple(bone.name for bone in armature.data.bones)
    skin = np.zeros((len(vertices), len(names)))
    skin[:, :3] = weights
    inverse = np.linalg.inv(to_armature)
    rest_mesh = rest @ inverse[:3, :3].T + inverse[:3, 3]
    heads, tails = bone_end_regressors(vertices, skin, rest_mesh[:, 0], rest_mesh[:, 1])
    key_model = model_from_shape_keys(
        "tube", vertices, [[0, 1, 2]], {b.name: _key(b) for b in obj.data.shape_keys.key_blocks[1:]}
    )
    shaped = key_model.vertices(c.astype(np.float32)).astype(np.float64)
    expected = np.stack([heads(shaped), tails(shaped)], axis=1) @ to_armature[:3, :3].T + to_armature[:3, 3]
    np.testing.assert_allclose(bone_ends(armature), expected, atol=TOLERANCE)
    assert np.abs(bone_ends(armature)[1, 0] - rest[1, 0]).max() > 0.01  # the bulge moved the middle joint
    assert obj.semantify.rig_status == ""


def _key(block) -> np.ndarray:
    coordinates = np.empty(len(block.data) * 3, dtype=np.float32)
    block.data.foreach_get("co", coordinates)
    return coordinates.reshape(-1, 3)


# ------------------------------------------------------------------------- undo, errors, panel, cost
def test_add_rigged_character_is_undoable_and_slider_undo_restores_the_joints(glue, body) -> None:
    for name in ("add_rigged_character", "update_joints", "follow_my_rig"):
        assert "UNDO" in getattr(bpy.types, f"SEMANTIFY_OT_{name}").bl_options, name
    bpy.ops.ed.undo_push(message="before")
    obj, armature = add_rigged()
    bpy.ops.ed.undo_push(message="added")
    c = np.random.default_rng(2).normal(size=body.component_count).astype(np.float32)
    glue.sliders.write_weights(obj, c)
    bpy.ops.ed.undo_push(message="shaped")
    bpy.ops.ed.undo()
    armature = bpy.data.objects["anny-body rig"]
    np.testing.assert_allclose(
        heads_of(armature, body.skeleton.names), body.skeleton.joint_template, atol=1e-6
    )
    bpy.ops.ed.undo()
    assert len(bpy.data.objects) == len(bpy.data.armatures) == len(bpy.data.meshes) == 0
    bpy.ops.ed.redo()
    obj = bpy.data.objects["anny-body"]
    assert obj.semantify.follow_shape and glue.rig.is_rigged(obj) and len(obj.vertex_groups) == 104


def test_a_saved_rig_keeps_following_after_reopening(glue, body, tmp_path: Path) -> None:
    obj, _ = add_rigged()
    pose_bones(obj.parent, POSE)
    blend = tmp_path / "rigged.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module=MODULE)
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    obj, armature = bpy.data.objects["anny-body"], bpy.data.objects["anny-body rig"]
    c = np.random.default_rng(8).normal(size=body.component_count).astype(np.float32)
    set_weights(glue, obj, c)  # the layout is in the .blend: no model file is read
    np.testing.assert_allclose(
        heads_of(armature, body.skeleton.names), body.skeleton.joints(c), atol=TOLERANCE
    )
    angles, _ = engine_pose(armature, list(body.skeleton.names), POSE)
    assert np.abs(evaluated_vertices(obj) - skinning.pose(body, c, angles)[0]).max() < TOLERANCE


def test_a_model_without_skeleton_is_refused_and_the_scene_is_unchanged(glue) -> None:
    with pytest.raises(RuntimeError, match="'anny-head-shape' has no skeleton, so it cannot be rigged"):
        bpy.ops.semantify.add_rigged_character(model="anny-head-shape")
    assert len(bpy.data.objects) == len(bpy.data.armatures) == len(bpy.data.meshes) == 0
    assert bpy.ops.semantify.add_model(model="anny-head-shape") == {"FINISHED"}
    assert not bpy.ops.semantify.update_joints.poll() and not bpy.ops.semantify.follow_my_rig.poll()


def test_rig_panel_draws_the_add_button_the_switch_and_update(glue) -> None:
    icons = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())
    obj, armature = add_rigged()
    for active in (obj, armature):
        bpy.context.view_layer.objects.active = active
        calls: list = []
        glue.panels.SEMANTIFY_PT_rig.draw(SimpleNamespace(layout=RecordingLayout(calls)), bpy.context)
        operators = {args[0] for name, args, _ in calls if name in ("operator", "operator_menu_enum")}
        assert operators == {"semantify.add_rigged_character", "semantify.update_joints"}
        assert [args[1] for name, args, _ in calls if name == "prop"] == ["follow_shape"]
        assert {keywords["icon"] for _, _, keywords in calls if "icon" in keywords} <= icons


def test_disable_removes_the_rig_handlers(glue) -> None:
    assert glue.rig.on_depsgraph_update in bpy.app.handlers.depsgraph_update_post
    assert bpy.ops.preferences.addon_disable(module=MODULE) == {"FINISHED"}
    for handlers in (bpy.app.handlers.depsgraph_update_post, bpy.app.handlers.frame_change_post):
        assert not [h for h in handlers if getattr(h, "__module__", "").startswith(MODULE)]
