"""Export Character: every preset, on a plain body and on posed rigs, checked by tools written elsewhere.

For each preset the character is exported from the installed extension, then read back by what a user's
target would use, or the nearest thing that installs here: the Khronos glTF validator (its npm package),
pygltflib with the glTF 2.0 skinning and morph rules (:mod:`file_readers`), usd-core's UsdSkel, and
Blender's own importers (glTF, FBX, USD, OBJ). What they show must be what Blender shows of the original
(its evaluated mesh): to 1e-4 m, or, where the preset limits the skin to 4 influences on a rig that has
up to 9, to 1e-4 m plus the largest vertex move the export reports for that limit (and that report is
checked against what the file shows). A game-ready rig (4 influences at creation) loses nothing.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from support import ROOT, SUPPORT
from support.blender import MODULE
from support.file_readers import nearest_distance, read_gltf, read_usd

from semantify_engine.export.presets import PRESETS, preset

bpy = pytest.importorskip("bpy")
from mathutils import Quaternion  # noqa: E402  (bpy first)

VALIDATOR = ROOT / "build" / "node" / "node_modules" / "gltf-validator"
KINDS = ("plain", "rig", "game-rig")
POSE = {
    "upperarm01.L": ((1, 0, 0), 0.8),
    "lowerarm01.R": ((0, 0, 1), -0.6),
    "upperleg01.R": ((1, 0, 0), -0.4),
}
IMPORTERS = {
    "gltf": lambda path: bpy.ops.import_scene.gltf(filepath=str(path)),
    "fbx": lambda path: bpy.ops.import_scene.fbx(filepath=str(path)),
    "usd": lambda path: bpy.ops.wm.usd_import(filepath=str(path)),
    "obj": lambda path: bpy.ops.wm.obj_import(filepath=str(path)),
}


@pytest.fixture(scope="session")
def gltf_validator() -> Path:
    """The Khronos glTF validator's npm package (``make validators`` installs it; here if missing)."""
    if not (VALIDATOR / "package.json").is_file():
        subprocess.run(["make", "-C", str(ROOT), "validators"], check=True, capture_output=True)
    return VALIDATOR


def validate_gltf(validator: Path, path: Path) -> dict:
    script = SUPPORT / "gltf_validate.mjs"
    result = subprocess.run(
        ["node", str(script), str(validator), str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def bundled_export_error() -> type[Exception]:
    """The installed extension's ExportError (its engine is bundled: another class than the checkout's)."""
    return importlib.import_module(f"{MODULE}.semantify_engine.errors").ExportError


def make_character(glue, kind: str):
    """The bundled body with non-default sliders; for the rigs, a pose on an arm, a forearm and a leg."""
    if kind == "plain":
        assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    else:
        influences = 4 if kind == "game-rig" else 0
        assert bpy.ops.semantify.add_rigged_character(model="anny-body", influences=influences) == {
            "FINISHED"
        }
    obj = bpy.context.active_object
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-body-measurements") == {"FINISHED"}
    obj.semantify.sliders["height"].position = 0.85
    obj.semantify.sliders["waist"].position = 0.3
    if kind != "plain":
        armature = glue.rig.armature_of(obj)
        for name, (axis, angle) in POSE.items():
            bone = armature.pose.bones[name]
            bone.rotation_mode = "QUATERNION"
            bone.rotation_quaternion = Quaternion(axis, angle)
    bpy.context.view_layer.update()
    return obj


def scene_state(obj) -> tuple:
    """What an export must leave as it was: objects, data, names, selection, weights, pose, keys."""
    groups = {group.index: group.name for group in obj.vertex_groups}
    weights = sorted(
        (v.index, groups[g.group], round(g.weight, 6)) for v in obj.data.vertices for g in v.groups
    )
    armature = obj.parent if obj.parent is not None and obj.parent.type == "ARMATURE" else None
    pose = (
        [tuple(bone.matrix_basis.col[3]) + tuple(bone.rotation_quaternion) for bone in armature.pose.bones]
        if armature
        else []
    )
    return (
        sorted((o.name, o.type, o.parent.name if o.parent else "") for o in bpy.data.objects),
        len(bpy.data.meshes),
        len(bpy.data.armatures),
        len(bpy.data.actions),
        len(bpy.data.collections),
        sorted(o.name for o in bpy.context.view_layer.objects if o.select_get()),
        bpy.context.view_layer.objects.active.name,
        hash(tuple(weights)),
        pose,
        [block.value for block in obj.data.shape_keys.key_blocks],
    )


def reimported(glue, fmt: str, path: Path):
    """Import the file with Blender's importer; its mesh's evaluated vertices, bones, shape keys."""
    before = set(bpy.data.objects)
    IMPORTERS[fmt](path)
    new = [obj for obj in bpy.data.objects if obj not in before]
    bpy.context.view_layer.update()
    mesh = max(
        (obj for obj in new if obj.type == "MESH"), key=lambda obj: len(obj.data.vertices)
    )  # not bone shapes
    armatures = [obj for obj in new if obj.type == "ARMATURE"]
    keys = [block.name for block in mesh.data.shape_keys.key_blocks[1:]] if mesh.data.shape_keys else []
    record = {
        "vertices": glue.export.world_vertices(mesh),
        "bones": [bone.name for bone in armatures[0].data.bones] if armatures else [],
        "keys": keys,
    }
    for obj in new:
        bpy.data.objects.remove(obj)
    return record


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", [chosen.name for chosen in PRESETS])
def test_every_preset_writes_what_blender_shows(glue, gltf_validator, tmp_path, name, kind) -> None:
    chosen = preset(name)
    obj = make_character(glue, kind)
    shown = glue.export.world_vertices(obj)
    armature = glue.rig.armature_of(obj)
    bones = [bone.name for bone in armature.data.bones] if armature else []
    morphs = [block.name for block in obj.data.shape_keys.key_blocks[1:]]
    morphs += [slider.name for slider in obj.semantify.sliders]  # one target per slider, after the keys
    before = scene_state(obj)
    report = glue.export.export_character(bpy.context, obj, name, tmp_path / "character")
    assert scene_state(obj) == before  # the export worked on copies
    assert report.path == tmp_path / f"character{chosen.suffix}" and report.path.is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == [report.path.name]  # no partial file
    limited = armature is not None and chosen.max_influences is not None
    if kind == "game-rig" and limited:
        assert report.limited_vertices == 0 and report.influence_move_m < 1e-6  # renormalising: round-off
    if kind == "rig" and limited:
        assert report.limited_vertices > 0 and report.influence_move_m > 1e-3  # the bundled skin has up to 9
    tolerance = 1e-4 + (report.influence_move_m if limited else 0.0)

    if chosen.format == "usd":  # USD names are identifiers: pelvis.L is written pelvis_L (usd-core's rule)
        from pxr import Tf

        bones = [Tf.MakeValidIdentifier(bone) for bone in bones]
    back = reimported(glue, chosen.format, report.path)  # Blender's own importer
    assert nearest_distance(back["vertices"], shown) <= tolerance
    if chosen.skinned and armature is not None:
        assert back["bones"] == bones or sorted(back["bones"]) == sorted(bones)  # no *_end leaf bones
    if chosen.shape == "morph":
        assert back["keys"] == morphs

    if chosen.format == "gltf":  # tools no one here wrote
        issues = validate_gltf(gltf_validator, report.path)["issues"]
        assert issues["numErrors"] == 0, issues["messages"]
        read = read_gltf(report.path, animation=0 if chosen.pose == "animation" and armature else None)
        distance = nearest_distance(read.vertices, shown)
        assert distance <= tolerance
        if limited and kind == "rig":  # the reported cost is what the file shows
            assert distance == pytest.approx(report.influence_move_m, abs=2e-4)
        assert read.morph_names == morphs
        if armature is not None:
            assert read.joint_names == bones and read.max_influences <= 4
    if chosen.format == "usd":
        read = read_usd(report.path)
        assert (
            read.up_axis == "Z" and nearest_distance(read.vertices, shown) <= 1e-4
        )  # UsdSkel shows the pose
        if armature is not None:
            assert read.joint_names == bones


def test_slider_targets_give_the_mappers_shape_at_the_sliders_high_end(glue, tmp_path) -> None:
    """Driven to 1 in a reader (pygltflib + glTF's morph rule), a slider's target is the engine's shape."""
    from semantify_engine.mapper import load_mapper
    from semantify_engine.mapper.defaults import DEFAULT_MAPPER_DIR
    from semantify_engine.models import load

    obj = make_character(glue, "plain")
    report = glue.export.export_character(bpy.context, obj, "gltf-web", tmp_path / "body")
    mapper = load_mapper(DEFAULT_MAPPER_DIR / "anny-body-measurements.npz")
    values = np.array([slider.value for slider in obj.semantify.sliders])
    model = load("anny-body")
    for index, name in enumerate(mapper.descriptor_names):
        high = values.copy()
        high[index] = mapper.highs[index]
        expected = model.vertices(mapper.coefficients(high)) + np.array(obj.matrix_world)[:3, 3]
        driven = read_gltf(report.path, morph_weights={name: 1.0}).vertices
        assert nearest_distance(driven, expected) < 1e-4, name
    assert nearest_distance(read_gltf(report.path).vertices, glue.export.world_vertices(obj)) < 1e-4  # at 0


def test_game_ready_rigs_hold_four_influences_per_vertex_that_sum_to_one(glue) -> None:
    obj = make_character(glue, "game-rig")
    counts = [sum(1 for g in vertex.groups if g.weight > 0) for vertex in obj.data.vertices]
    sums = [sum(g.weight for g in vertex.groups) for vertex in obj.data.vertices]
    assert (
        max(counts) == 4
        and min(sums) == pytest.approx(1.0, abs=1e-5)
        and max(sums) == pytest.approx(1.0, abs=1e-5)
    )


# ------------------------------------------------------------------------------------------- bad input
def test_exporting_without_a_character_or_shape_keys_is_refused_and_changes_nothing(glue, tmp_path) -> None:
    bpy.ops.mesh.primitive_cube_add()
    with pytest.raises(RuntimeError, match="Select a Semantify character"):
        bpy.ops.semantify.export_character(filepath=str(tmp_path / "x.glb"), preset="gltf-web")
    with pytest.raises(bundled_export_error(), match="Select a Semantify character"):
        glue.export.export_character(bpy.context, bpy.context.active_object, "gltf-web", tmp_path / "x")
    obj = make_character(glue, "plain")
    obj.shape_key_clear()
    with pytest.raises(RuntimeError, match="has no shape keys left"):
        bpy.ops.semantify.export_character(filepath=str(tmp_path / "x.glb"), preset="gltf-web")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_preset_or_an_unwritable_target_is_refused_before_anything_is_copied(
    glue, tmp_path
) -> None:
    obj = make_character(glue, "rig")
    before = scene_state(obj)
    with pytest.raises(
        bundled_export_error(), match="no export preset 'unity'.*gltf-web, gltf-engine, fbx, usd, obj"
    ):
        glue.export.export_character(bpy.context, obj, "unity", tmp_path / "x")
    with pytest.raises(TypeError):  # Blender's own enum check at the operator
        bpy.ops.semantify.export_character(filepath=str(tmp_path / "x.glb"), preset="unity")
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("")
    with pytest.raises(RuntimeError, match="Cannot write"):
        bpy.ops.semantify.export_character(filepath=str(not_a_folder / "x.fbx"), preset="fbx")
    assert scene_state(obj) == before and sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_the_file_suffix_follows_the_preset(glue, tmp_path) -> None:
    make_character(glue, "plain")
    assert bpy.ops.semantify.export_character(filepath=str(tmp_path / "body.glb"), preset="usd") == {
        "FINISHED"
    }
    assert [path.name for path in tmp_path.iterdir()] == ["body.usdc"]


def test_the_sidebar_and_file_export_menu_offer_export_character(glue) -> None:
    from support.recording_layout import RecordingLayout

    make_character(glue, "plain")
    calls: list = []
    glue.panels.SEMANTIFY_PT_shape.draw(type("Panel", (), {"layout": RecordingLayout(calls)})(), bpy.context)
    assert ("semantify.export_character", "preset") in [
        args for name, args, _ in calls if name == "operator_menu_enum"
    ]
    assert glue.export.menu_entry in bpy.types.TOPBAR_MT_file_export._dyn_ui_initialize()


# -------------------------------------------------------------------------------------- command line
def test_blender_c_semantify_export_makes_a_character_from_a_mapper_and_exports_it(glue, tmp_path) -> None:
    out = tmp_path / "runner.glb"
    new_character = [
        "--mapper",
        "anny-body-measurements",
        "--set",
        "height=185",
        "--rig",
        "--influences",
        "4",
    ]
    code = glue.cli_command.execute(["export", *new_character, "--preset", "gltf-web", "--out", str(out)])
    assert code == 0 and out.is_file()
    read = read_gltf(out)
    assert read.max_influences <= 4 and len(read.joint_names) == 104
    assert np.ptp(read.vertices[:, 2]) == pytest.approx(1.85, abs=0.01)  # the height asked for


def test_blender_c_semantify_export_takes_a_character_from_a_blend(glue, tmp_path) -> None:
    obj = make_character(glue, "rig")
    shown = glue.export.world_vertices(obj)
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    out = tmp_path / "static.obj"
    arguments = ["export", "--blend", str(blend), "--object", obj.name, "--preset", "obj", "--out", str(out)]
    assert glue.cli_command.execute(arguments) == 0
    back = reimported(glue, "obj", out)
    assert nearest_distance(back["vertices"], shown) <= 1e-4


def test_export_command_errors_are_one_line_with_status_2(glue, tmp_path, capsys) -> None:
    base = ["export", "--out", str(tmp_path / "x.glb")]
    assert glue.cli_command.execute([*base, "--preset", "unity"]) == 2  # argparse: invalid choice
    assert glue.cli_command.execute([*base, "--preset", "fbx", "--blend", str(tmp_path / "none.blend")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert (
        glue.cli_command.execute(
            [*base, "--preset", "fbx", "--mapper", "anny-body-measurements", "--set", "shoe=42"]
        )
        == 2
    )
    assert "has no slider shoe" in capsys.readouterr().err
    assert not [obj for obj in bpy.data.objects if obj.type == "MESH"]  # nothing half made is left
    assert glue.cli_command.execute([*base, "--preset", "fbx"]) == 2  # nothing in the scene to export
    assert "--object" in capsys.readouterr().err
    assert not (tmp_path / "x.glb").exists()


def test_the_plain_command_line_says_export_runs_inside_blender(capsys) -> None:
    from semantify_engine.cli.main import main

    assert main(["export", "--preset", "fbx", "--out", "x.fbx"]) == 2
    assert "blender -b -c semantify export" in capsys.readouterr().err


def test_the_extension_zip_carries_the_export_glue(extension_zip) -> None:
    with zipfile.ZipFile(extension_zip) as archive:
        names = archive.namelist()
    shipped = {
        "semantify_blender/export.py",
        "semantify_blender/export_cmd.py",
        "semantify_engine/export/presets.py",
    }
    assert shipped <= set(names)
