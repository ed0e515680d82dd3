"""Export Character: the shaped (and posed) character written the way its target reads it.

The presets are the engine's (:mod:`semantify_engine.export.presets`): glTF for the web, glTF for game
engines, FBX, USD, OBJ. Each says what Blender must do before its exporter runs; this module does it on
**copies** of the character (mesh and armature, in a temporary collection, removed afterwards), so an
export never changes the scene: no undo step is needed and a failed export leaves nothing behind.

What the copies may get, as the preset asks:

- the skin limited to N influences per vertex and renormalised with Blender's own operators (Limit Total,
  Normalize All, on deforming bones' groups only), and the largest vertex move this causes on the
  current pose measured on Blender's evaluated mesh and reported;
- the pose as a one-frame action (a new one: the rig's own actions are left out);
- the pose baked into the rest: the mesh becomes the posed, shaped mesh it shows (its shape keys go) and
  the armature's rest becomes the pose, so a reader that shows the bind pose shows the character.

The copies take the originals' object names while the exporter runs, so the file names what the artist
named; the file is written under a temporary name beside the target and renamed once complete.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy
import numpy as np
from bpy.props import EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

from . import polls, sliders
from .engine import import_engine
from .model_objects import key_coordinates
from .operator_base import SemantifyOperator
from .rig_layout import armature_of, rigged_mesh_of

if TYPE_CHECKING:
    from semantify_engine.export.presets import ExportPreset

COLLECTION = "Semantify export (temporary)"
EXPORTERS = {  # format -> (the exporter operator, its "selected objects only" option)
    "gltf": ("export_scene.gltf", "use_selection"),
    "fbx": ("export_scene.fbx", "use_selection"),
    "usd": ("wm.usd_export", "selected_objects_only"),
    "obj": ("wm.obj_export", "export_selected_objects"),
}
_preset_items: list[tuple[str, str, str]] = []  # Blender keeps no reference to dynamic enum items


def export_error(message: str) -> Exception:
    return import_engine("errors").ExportError(message)


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and what it cost."""

    path: Path
    preset: str
    objects: tuple[str, ...]
    influence_limit: int | None  # None: every influence kept
    limited_vertices: int  # vertices that had more influences than the limit
    influence_move_m: float  # the largest vertex move limiting caused on the current pose

    def message(self) -> str:
        text = f"Exported {', '.join(self.objects)} to {self.path} ({self.preset})"
        if self.influence_limit is not None:
            text += (
                f"; skin limited to {self.influence_limit} influences per vertex on {self.limited_vertices} "
                f"vertices, none moving more than {self.influence_move_m * 1000:.2f} mm on this pose"
            )
        return text


# ------------------------------------------------------------------------------------------ parts
def character_parts(obj: bpy.types.Object | None) -> tuple[bpy.types.Object, bpy.types.Object | None]:
    """The mesh to export and the armature deforming it (None for an unrigged character)."""
    mesh = rigged_mesh_of(obj) if obj is not None and obj.type == "ARMATURE" else obj
    if mesh is None or mesh.type != "MESH" or not mesh.semantify.is_model:
        raise export_error(
            "Select a Semantify character to export: a model from Add Model or Add Rigged Character, or "
            "its armature."
        )
    if mesh.data.shape_keys is None or len(mesh.data.shape_keys.key_blocks) < 2:
        raise export_error(
            f"'{mesh.name}' has no shape keys left, so it carries no Semantify shape; export it with "
            "File > Export, or add the model again."
        )
    return mesh, armature_of(mesh)


def world_vertices(obj: bpy.types.Object) -> np.ndarray:
    """What Blender shows of ``obj``: its evaluated mesh (keys, modifiers, pose), in world space."""
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        coordinates = np.empty(len(mesh.vertices) * 3, dtype=np.float64)
        mesh.vertices.foreach_get("co", coordinates)
    finally:
        evaluated.to_mesh_clear()
    matrix = np.array(evaluated.matrix_world)
    return coordinates.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]


# ---------------------------------------------------------------------------------------- copies
@contextlib.contextmanager
def temporary_copies(
    context: Any, mesh: bpy.types.Object, armature: bpy.types.Object | None
) -> Iterator[tuple[bpy.types.Object, bpy.types.Object | None]]:
    """Copies of the mesh and its armature that carry the originals' names until the block ends."""
    collection = bpy.data.collections.new(COLLECTION)
    context.scene.collection.children.link(collection)
    originals = [obj for obj in (mesh, armature) if obj is not None]
    names = {obj: obj.name for obj in originals}
    made: list[bpy.types.Object] = []
    pairs: list[tuple[bpy.types.Object, bpy.types.Object]] = []  # (original, copy)
    data_names: dict[bpy.types.Object, str] = {}
    actions_before = set(bpy.data.actions)
    try:
        armature_copy = None
        if armature is not None:
            armature_copy = armature.copy()
            armature_copy.data = armature.data.copy()
            armature_copy.animation_data_clear()  # the rig's own actions are not this export's
            collection.objects.link(armature_copy)
            made.append(armature_copy)
            pairs.append((armature, armature_copy))
        mesh_copy = mesh.copy()
        mesh_copy.data = mesh.data.copy()
        mesh_copy.animation_data_clear()  # the slider keyframes: the copy keeps the shape it has now
        collection.objects.link(mesh_copy)
        made.append(mesh_copy)
        pairs.append((mesh, mesh_copy))
        mesh_copy.semantify.follow_shape = False  # Semantify's rig handlers leave the copy alone
        if armature_copy is not None:
            if mesh.parent == armature:
                mesh_copy.parent = armature_copy
                mesh_copy.matrix_parent_inverse = mesh.matrix_parent_inverse.copy()
            for modifier in mesh_copy.modifiers:
                if modifier.type == "ARMATURE" and modifier.object == armature:
                    modifier.object = armature_copy
        for original, copy in pairs:  # the file names what the artist named (objects and their data)
            data_name = original.data.name
            original.name = f"{names[original][:40]} (exporting)"
            copy.name = names[original]
            original.data.name = f"{data_name[:40]} (exporting)"
            copy.data.name = data_name
            data_names[original] = data_name
        context.view_layer.update()
        yield mesh_copy, armature_copy
    finally:
        for obj in made:
            data = obj.data
            bpy.data.objects.remove(obj)
            if data is not None and data.users == 0:
                if isinstance(data, bpy.types.Mesh):
                    bpy.data.meshes.remove(data)
                else:
                    bpy.data.armatures.remove(data)
        for action in set(bpy.data.actions) - actions_before:
            bpy.data.actions.remove(action)
        for original in originals:
            original.name = names[original]
            if original in data_names:
                original.data.name = data_names[original]
        bpy.data.collections.remove(collection)
        context.view_layer.update()


@contextlib.contextmanager
def selected_only(context: Any, objects: list[bpy.types.Object], active: bpy.types.Object) -> Iterator[None]:
    """Select just ``objects`` (exporters take the selection) and restore the selection afterwards."""
    view_layer = context.view_layer
    selected = [obj for obj in view_layer.objects if obj.select_get()]
    previous = view_layer.objects.active
    try:
        for obj in selected:
            obj.select_set(False)
        for obj in objects:
            obj.select_set(True)
        view_layer.objects.active = active
        yield
    finally:
        for obj in objects:
            if obj.name in view_layer.objects:
                obj.select_set(False)
        for obj in selected:
            if obj.name in view_layer.objects:
                obj.select_set(True)
        view_layer.objects.active = (
            previous if previous is None or previous.name in view_layer.objects else None
        )


# --------------------------------------------------------------------------------- preparations
def limit_influences(context: Any, mesh: bpy.types.Object, limit: int) -> tuple[float, int]:
    """At most ``limit`` bones per vertex, renormalised (Blender's own operators); the largest move, count."""
    deforming = {bone.name for bone in armature_of(mesh).data.bones if bone.use_deform}
    groups = {group.index for group in mesh.vertex_groups if group.name in deforming}
    over = sum(
        1
        for vertex in mesh.data.vertices
        if sum(1 for item in vertex.groups if item.group in groups and item.weight > 0) > limit
    )
    before = world_vertices(mesh)
    with selected_only(context, [mesh], mesh):  # these operators act on the view layer's active object
        bpy.ops.object.vertex_group_limit_total(group_select_mode="BONE_DEFORM", limit=limit)
        bpy.ops.object.vertex_group_normalize_all(group_select_mode="BONE_DEFORM", lock_active=False)
    moved = np.linalg.norm(world_vertices(mesh) - before, axis=1)
    return float(moved.max()) if len(moved) else 0.0, over


def key_pose(armature: bpy.types.Object, frame: int) -> None:
    """The current pose as a one-frame action on ``armature`` (every bone's location, rotation, scale)."""
    for bone in armature.pose.bones:
        rotation = {"QUATERNION": "rotation_quaternion", "AXIS_ANGLE": "rotation_axis_angle"}.get(
            bone.rotation_mode, "rotation_euler"
        )
        for path in ("location", rotation, "scale"):
            bone.keyframe_insert(path, frame=frame)


def add_slider_targets(mesh: bpy.types.Object, original: bpy.types.Object) -> list[str]:
    """One morph target per slider, named by its descriptor: at weight 1, the slider at its high end.

    The other sliders stay where they are and the target adds to the current shape (weight 0 shows it
    unchanged), so an engine can drive each word or measurement 0 → 1. The model is linear in its
    components, so weight 1 is exactly the mapper's shape there; between 0 and 1 it is the straight line
    to it, where the mapper itself would curve.
    """
    state = original.semantify
    if not len(state.sliders):
        return []
    mapper = sliders.mapper_of(original)
    positions = sliders.positions_of(original)
    values = sliders.values_at(mapper, positions).astype(np.float64)
    current = mapper.coefficients(values).astype(np.float64)
    blocks = mesh.data.shape_keys.key_blocks
    basis = key_coordinates(blocks[0])
    deltas = np.stack([key_coordinates(blocks[k + 1]) - basis for k in range(len(current))])
    taken = {block.name for block in blocks}
    names = []
    for index, slider in enumerate(state.sliders):
        high = values.copy()
        high[index] = mapper.highs[index]
        change = mapper.coefficients(high).astype(np.float64) - current
        name = slider.name if slider.name not in taken else f"{slider.name} (slider)"
        block = mesh.shape_key_add(name=name, from_mix=False)
        block.data.foreach_set(
            "co", (basis + np.tensordot(change, deltas, axes=1)).astype(np.float32).ravel()
        )
        block.slider_min, block.slider_max, block.value = 0.0, 1.0, 0.0
        names.append(name)
    return names


def apply_shape(mesh: bpy.types.Object, coordinates_world: np.ndarray) -> None:
    """Make ``coordinates_world`` the mesh (its shape keys go): the shape shown, without live keys."""
    inverse = np.linalg.inv(np.array(mesh.matrix_world))
    local = coordinates_world @ inverse[:3, :3].T + inverse[:3, 3]
    mesh.shape_key_clear()
    mesh.data.vertices.foreach_set("co", local.astype(np.float32).ravel())
    mesh.data.update()


def bake_pose_into_rest(context: Any, mesh: bpy.types.Object, armature: bpy.types.Object) -> None:
    """The mesh becomes the posed, shaped mesh it shows and the armature's rest becomes its pose."""
    apply_shape(mesh, world_vertices(mesh))
    with selected_only(context, [armature], armature):
        bpy.ops.object.mode_set(mode="POSE")
        try:
            bpy.ops.pose.armature_apply(selected=False)
        finally:
            bpy.ops.object.mode_set(mode="OBJECT")
    context.view_layer.update()


def run_exporter(context: Any, chosen: ExportPreset, path: Path, objects: list[bpy.types.Object]) -> None:
    """Blender's exporter for the preset's format, on ``objects`` only, with the preset's options."""
    operator_path, selection = EXPORTERS[chosen.format]
    group, name = operator_path.split(".")
    operator = getattr(getattr(bpy.ops, group), name)
    with selected_only(context, objects, objects[-1]):
        result = operator(filepath=str(path), **{selection: True}, **dict(chosen.options))
    if result != {"FINISHED"}:
        raise export_error(f"Blender's {chosen.format.upper()} exporter did not finish ({sorted(result)}).")


# ------------------------------------------------------------------------------------------ export
def export_character(
    context: Any, obj: bpy.types.Object | None, preset_name: str, path: str | Path
) -> ExportReport:
    """Export the character ``obj`` belongs to with preset ``preset_name`` to ``path``; what it wrote.

    Everything that can be refused (no character, no shape keys, an unknown preset, a folder that cannot
    be written) is refused before anything is copied.
    """
    chosen = import_engine("export.presets").preset(preset_name)
    atomic = import_engine("atomic")
    mesh, armature = character_parts(obj)
    target = Path(bpy.path.abspath(str(path)))
    if target.suffix.lower() != chosen.suffix:
        target = target.with_suffix(chosen.suffix)
    atomic.ensure_writable(target)
    if context.mode != "OBJECT":
        raise export_error("Leave Edit, Pose or Paint Mode (Tab) before exporting.")
    move, over, limit = 0.0, 0, None
    with temporary_copies(context, mesh, armature) as (mesh_copy, armature_copy):
        skinned = armature_copy is not None and chosen.skinned
        if skinned and chosen.format == "gltf":  # glTF ignores a skinned mesh's parents: make it a root
            placed = mesh_copy.matrix_world.copy()
            mesh_copy.parent = None
            mesh_copy.matrix_world = placed
        if chosen.shape == "morph":
            add_slider_targets(mesh_copy, mesh)
        if skinned and chosen.max_influences:
            limit = chosen.max_influences
            move, over = limit_influences(context, mesh_copy, limit)
        if skinned and chosen.pose == "animation":
            key_pose(armature_copy, context.scene.frame_current)
        if skinned and chosen.pose == "rest":
            bake_pose_into_rest(context, mesh_copy, armature_copy)
        elif chosen.shape == "apply" and chosen.pose != "mesh":
            apply_shape(mesh_copy, world_vertices(mesh_copy))
        objects = [mesh_copy, armature_copy] if skinned else [mesh_copy]
        names = tuple(obj.name for obj in objects)
        with atomic.atomic_path(target) as partial:
            run_exporter(context, chosen, partial, objects)
    return ExportReport(target, chosen.name, names, limit, over, move)


# --------------------------------------------------------------------------------------- operator
def preset_items(_self: Any, _context: Any) -> list[tuple[str, str, str]]:
    if not _preset_items:
        presets = import_engine("export.presets").PRESETS
        _preset_items.extend((chosen.name, chosen.label, chosen.description) for chosen in presets)
    return _preset_items


class SEMANTIFY_OT_export_character(SemantifyOperator, ExportHelper):
    """Export the active Semantify character for another tool, as that tool reads it (the scene is kept)"""

    bl_idname = "semantify.export_character"
    bl_label = "Export Character"
    needs = (polls.CHARACTER,)

    filename_ext = ".glb"
    filter_glob: StringProperty(default="*.glb;*.fbx;*.usdc;*.usd;*.usda;*.obj", options={"HIDDEN"})
    preset: EnumProperty(name="Preset", description="Where the file goes", items=preset_items)

    def check(self, context: Any) -> bool:
        """Keep the file's suffix the preset's (the file browser calls this on every change)."""
        suffix = import_engine("export.presets").preset(self.preset).suffix
        path = Path(self.filepath)
        if self.filepath and path.suffix.lower() != suffix:
            self.filepath = str(path.with_suffix(suffix))
            return True
        return False

    def invoke(self, context: Any, event: Any) -> set[str]:
        self.filename_ext = import_engine("export.presets").preset(self.preset).suffix
        return ExportHelper.invoke(self, context, event)

    def run(self, context: Any) -> set[str]:
        report = export_character(context, context.active_object, self.preset, self.filepath)
        self.report({"INFO"}, report.message())
        return {"FINISHED"}


def menu_entry(menu: Any, context: Any) -> None:
    """File > Export > Semantify Character."""
    menu.layout.operator(
        SEMANTIFY_OT_export_character.bl_idname, text="Semantify Character (.glb .fbx .usd .obj)"
    )


def register_menu() -> None:
    bpy.types.TOPBAR_MT_file_export.append(menu_entry)


def unregister_menu() -> None:
    bpy.types.TOPBAR_MT_file_export.remove(menu_entry)


CLASSES: tuple[type, ...] = (SEMANTIFY_OT_export_character,)
