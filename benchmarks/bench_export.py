"""Export Character against Blender's exporters at their defaults, side by side on one posed rig.

The bundled body, rigged (its own skin: up to 9 bones per vertex), with non-default sliders and a pose
on an arm, a forearm and a leg. Each format is written twice, by the exporter at its defaults and by the
preset, and read back by a reader written elsewhere (pygltflib with glTF's rules, usd-core's UsdSkel,
Blender's own importers for FBX and OBJ); printed: how far the shown vertices are from what Blender
shows (max and mean, mm), and the time each export took.

    .venv/bin/python benchmarks/bench_export.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="semantify-bench-blender-"))
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from bench_extension import MODULE, build_zip  # noqa: E402
from mathutils import Quaternion  # noqa: E402
from support.file_readers import read_gltf, read_usd  # noqa: E402

POSE = {
    "upperarm01.L": ((1, 0, 0), 0.8),
    "lowerarm01.R": ((0, 0, 1), -0.6),
    "upperleg01.R": ((1, 0, 0), -0.4),
}


def reimport(kind: str, path: Path, glue) -> np.ndarray:
    before = set(bpy.data.objects)
    {"fbx": bpy.ops.import_scene.fbx, "obj": bpy.ops.wm.obj_import}[kind](filepath=str(path))
    new = [obj for obj in bpy.data.objects if obj not in before]
    bpy.context.view_layer.update()
    mesh = max((obj for obj in new if obj.type == "MESH"), key=lambda obj: len(obj.data.vertices))
    shown = glue.export.world_vertices(mesh)
    for obj in new:
        bpy.data.objects.remove(obj)
    return shown


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="semantify-bench-export-"))
    zip_path = build_zip(folder)
    assert bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default") == {
        "FINISHED"
    }
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.ops.preferences.addon_enable(module=MODULE) == {"FINISHED"}
    glue = sys.modules[f"{MODULE}.semantify_blender"]
    assert bpy.ops.semantify.add_rigged_character(model="anny-body") == {"FINISHED"}
    obj = bpy.context.active_object
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-body-measurements") == {"FINISHED"}
    obj.semantify.sliders["height"].position, obj.semantify.sliders["waist"].position = 0.85, 0.3
    armature = glue.rig.armature_of(obj)
    for name, (axis, angle) in POSE.items():
        bone = armature.pose.bones[name]
        bone.rotation_mode = "QUATERNION"
        bone.rotation_quaternion = Quaternion(axis, angle)
    bpy.context.view_layer.update()
    shown = glue.export.world_vertices(obj)

    def defaults(kind: str, path: Path) -> None:
        for candidate in bpy.context.view_layer.objects:
            candidate.select_set(candidate in (obj, armature))
        {
            "gltf": lambda: bpy.ops.export_scene.gltf(filepath=str(path), use_selection=True),
            "fbx": lambda: bpy.ops.export_scene.fbx(filepath=str(path), use_selection=True),
            "usd": lambda: bpy.ops.wm.usd_export(filepath=str(path), selected_objects_only=True),
            "obj": lambda: bpy.ops.wm.obj_export(filepath=str(path), export_selected_objects=True),
        }[kind]()

    readers = {
        "gltf": lambda path, animated: read_gltf(path, animation=0 if animated else None).vertices,
        "usd": lambda path, animated: read_usd(path).vertices,
        "fbx": lambda path, animated: reimport("fbx", path, glue),
        "obj": lambda path, animated: reimport("obj", path, glue),
    }
    print(f"{'file':<34}{'reader':<22}{'max mm':>9}{'mean mm':>9}{'export s':>10}")
    for kind, preset, suffix, reader in (
        ("gltf", "gltf-web", ".glb", "pygltflib"),
        ("gltf", "gltf-engine", ".glb", "pygltflib"),
        ("fbx", "fbx", ".fbx", "Blender FBX import"),
        ("usd", "usd", ".usdc", "usd-core UsdSkel"),
        ("obj", "obj", ".obj", "Blender OBJ import"),
    ):
        for label, write in (
            (f"{kind} exporter defaults", lambda path, kind=kind: defaults(kind, path)),
            (
                f"Export Character: {preset}",
                lambda path, preset=preset: glue.export.export_character(bpy.context, obj, preset, path),
            ),
        ):
            path = folder / f"{label.replace(' ', '_').replace(':', '')}{suffix}"
            started = time.perf_counter()
            write(path)
            seconds = time.perf_counter() - started
            read = readers[kind](path, preset == "gltf-engine" and "Character" in label)
            if read.shape != shown.shape:
                print(f"{label:<34}{reader:<22}{'vertex count ' + str(len(read)):>18}")
                continue
            error = np.linalg.norm(read - shown, axis=1) * 1000
            print(f"{label:<34}{reader:<22}{error.max():>9.2f}{error.mean():>9.3f}{seconds:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
