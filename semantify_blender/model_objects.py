"""Morphable models as Blender objects: a mesh whose shape keys are the model's components.

``vertices(c) = template + sum_k c_k * basis[k]`` is exactly what Blender computes for a mesh whose basis
key is the template, whose key ``k`` (relative to the basis) is ``template + basis[k]`` and whose key
weights are ``c``. So a model becomes one mesh with K + 1 shape keys, all created once, up front: the
slider path then only writes K weights and never adds a key mid-drag (MPFB2's users saw hiccups from
exactly that). Keys are named after the components, in component order, right after the basis; that
order is the contract the slider path relies on (key ``k + 1`` is component ``k``).

Models are in the canonical frame (metres, Z up, facing -Y), which is Blender's own: no conversion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import bpy
import numpy as np

from .engine import import_engine

if TYPE_CHECKING:
    from semantify_engine.models.linear import LinearMorphableModel
    from semantify_engine.models.plausibility import Plausibility

# Blender refuses shape-key slider limits outside [-10, 10]; a weight outside the slider range is clamped.
SHAPE_KEY_LIMIT = 10.0
SHAPE_KEY_SOURCE = "shape keys"
MODEL_CACHE_SIZE = 4

_models: dict[tuple[str, str, str | None], LinearMorphableModel | None] = {}  # (source, checksum, folder)
_plausibility: dict[tuple[str, str], Plausibility | None] = {}  # (source, checksum) -> its judge


@dataclass(frozen=True)
class ModelIdentity:
    """What identifies a model to a mapper (:func:`semantify_engine.mapper.check_model` reads these)."""

    name: str
    vertex_count: int
    component_count: int
    model_checksum: str

    def checksum(self) -> str:
        return self.model_checksum


def semantify_object(context: Any) -> bpy.types.Object | None:
    """The active object if Semantify made it (or took it over with 'Use My Mesh'), else None."""
    obj = getattr(context, "active_object", None)
    if obj is None or obj.type != "MESH" or not obj.semantify.is_model:
        return None
    return obj


def identity_of(obj: bpy.types.Object) -> ModelIdentity:
    """The identity stored on a Semantify object, shaped like a model for the engine's checks."""
    state = obj.semantify
    return ModelIdentity(state.model_name, state.vertex_count, state.component_count, state.model_checksum)


# ---------------------------------------------------------------------------------- object → model
def model_of(obj: bpy.types.Object, model_dir: str | None = None) -> LinearMorphableModel | None:
    """The model an object was made from (to measure a fitted shape, to judge its plausibility), loaded once
    and cached; None when it cannot be had (a model file that moved, a user model folder not set)."""
    state = obj.semantify
    key = (state.model_source, state.model_checksum, model_dir)  # a failure is retried in another folder
    if key in _models:
        return _models[key]
    errors = import_engine("errors")
    try:
        if state.model_source == SHAPE_KEY_SOURCE:
            model = own_mesh_model(obj)
        else:
            registry = import_engine("models.registry")
            spec = state.model_source
            if spec.endswith(".npz"):
                spec = bpy.path.abspath(spec)
            model = registry.load(spec, model_dir=model_dir)
    except (errors.SemantifyError, OSError):
        model = None
    if model is not None and model.checksum() != state.model_checksum:
        model = None
    if len(_models) >= MODEL_CACHE_SIZE:
        _models.pop(next(iter(_models)))
    _models[key] = model
    return model


def plausibility_of(obj: bpy.types.Object, model_dir: str | None = None) -> Plausibility | None:
    """What judges the object's shapes (:mod:`semantify_engine.models.plausibility`), once per model; None
    for a mesh's own shape keys. A user's SMPL-family model gets its unit-variance prior without being
    loaded (loading goes through smplx and torch, which the slider path never imports)."""
    state = obj.semantify
    key = (state.model_source, state.model_checksum)
    if key in _plausibility:
        return _plausibility[key]
    measure = None
    if state.model_source in import_engine("models.user_models").USER_MODEL_NAMES:
        measure = import_engine("models.plausibility").unit_prior(state.component_count)
    elif state.model_source != SHAPE_KEY_SOURCE:
        model = model_of(obj, model_dir)
        measure = None if model is None else model.plausibility_measure
    _plausibility[key] = measure
    return measure


def clear_models() -> None:
    _models.clear()
    _plausibility.clear()


# ------------------------------------------------------------------------------------- model → object
def create_model_object(context: Any, model: LinearMorphableModel, source: str) -> bpy.types.Object:
    """A new mesh object for ``model`` at the 3D cursor, with one shape key per component; made active."""
    render_blender = import_engine("render.blender")
    mesh = render_blender.mesh_from_arrays(bpy, model.name, model.template, model.faces)
    obj = bpy.data.objects.new(model.name, mesh)
    collection = context.collection or context.scene.collection
    collection.objects.link(obj)
    obj.location = context.scene.cursor.location
    add_component_keys(obj, model)
    write_identity(obj, model, source)
    for other in context.view_layer.objects.selected:
        other.select_set(False)
    obj.select_set(True)
    context.view_layer.objects.active = obj
    return obj


def add_component_keys(obj: bpy.types.Object, model: LinearMorphableModel) -> None:
    """The basis key plus one key per component, weights 0, slider ranges as wide as the model allows."""
    obj.shape_key_add(name="Basis", from_mix=False)
    ranges = slider_ranges(model)
    for index, name in enumerate(model.component_names):
        block = obj.shape_key_add(name=name, from_mix=False)
        block.data.foreach_set("co", (model.template + model.basis[index]).ravel())
        block.slider_min, block.slider_max = (float(v) for v in ranges[index])
        block.value = 0.0
    obj.data.shape_keys.use_relative = True


def slider_ranges(model: LinearMorphableModel) -> np.ndarray:
    """Per-component shape-key slider limits: the model's bounds, else Blender's widest range.

    The widest range (±10, i.e. ±10 std for the unit-variance bases) keeps Blender from silently clamping
    any weight a mapper can produce; bounded components (blendshapes in [0, 1]) keep their bounds.
    """
    count = model.component_count
    ranges = np.tile(np.array([-SHAPE_KEY_LIMIT, SHAPE_KEY_LIMIT], dtype=np.float64), (count, 1))
    if model.coefficient_bounds is not None:
        bounds = np.asarray(model.coefficient_bounds, dtype=np.float64)
        ranges = np.clip(bounds, -SHAPE_KEY_LIMIT, SHAPE_KEY_LIMIT)
    return ranges


def write_identity(obj: bpy.types.Object, model: LinearMorphableModel, source: str) -> None:
    """Record which model the object is (name, kind, counts, checksum), for mapper checks later."""
    state = obj.semantify
    state.model_name = model.name
    state.model_kind = model.kind
    state.model_checksum = model.checksum()
    state.model_source = source
    state.vertex_count = model.vertex_count
    state.component_count = model.component_count


# ------------------------------------------------------------------------------ shape keys → model
def model_from_object(obj: bpy.types.Object, name: str | None = None) -> LinearMorphableModel:
    """The active mesh's own shape keys as a linear model (component ``k`` = key ``k + 1``).

    Each component is what Blender adds for weight 1: the key minus its relative key, scaled by the key's
    vertex group if it has one; so the model reproduces Blender's own evaluation of the keys. Coordinates
    are the mesh's (object space): Blender's frame is the canonical one.
    """
    errors = import_engine("errors")
    models = import_engine("models")
    mesh = obj.data
    key = getattr(mesh, "shape_keys", None)
    if obj.type != "MESH" or key is None or len(key.key_blocks) < 2:
        raise errors.ModelFileError(
            f"Object '{obj.name}' needs a mesh with shape keys (a basis and at least one more) to be used as "
            "a model. Add shape keys in Object Data Properties > Shape Keys."
        )
    if not key.use_relative:
        raise errors.ModelFileError(
            f"The shape keys of '{obj.name}' are absolute (time-based); only relative shape keys form a "
            "linear model. Tick 'Relative' in its Shape Keys panel."
        )
    blocks = key.key_blocks
    base = key_coordinates(blocks[0])
    targets: dict[str, np.ndarray] = {}
    for block in blocks[1:]:
        offset = key_coordinates(block) - key_coordinates(block.relative_key)
        if block.vertex_group:
            offset *= vertex_group_weights(obj, block.vertex_group)[:, None]
        targets[block.name] = base + offset
    return models.model_from_shape_keys(
        name or obj.name,
        base,
        polygons_of(mesh),
        targets,
        info={"source": f"shape keys of Blender object '{obj.name}'"},
    )


def own_mesh_model(obj: bpy.types.Object) -> LinearMorphableModel:
    """The object's shape keys as the model 'Use My Mesh' recorded; refused (the engine's rule) when they
    changed since, because the object's mapper and sliders were made for the recorded model."""
    state = obj.semantify
    model = model_from_object(obj, name=state.model_name)
    import_engine("models.shape_keys").check_unchanged(model, state.model_checksum, obj.name, "'Use My Mesh'")
    return model


def key_coordinates(block: bpy.types.ShapeKey) -> np.ndarray:
    """A shape key's vertex positions as a float64 ``(V, 3)`` array (one bulk copy)."""
    coordinates = np.empty(len(block.data) * 3, dtype=np.float32)
    block.data.foreach_get("co", coordinates)
    return coordinates.reshape(-1, 3).astype(np.float64)


def polygons_of(mesh: bpy.types.Mesh) -> list[Sequence[int]]:
    """The mesh's polygons as vertex-index lists (the engine triangulates them as fans)."""
    corners = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", corners)
    starts = np.empty(len(mesh.polygons), dtype=np.int32)
    totals = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("loop_start", starts)
    mesh.polygons.foreach_get("loop_total", totals)
    return [corners[start : start + total].tolist() for start, total in zip(starts, totals, strict=True)]


def vertex_group_weights(obj: bpy.types.Object, group_name: str) -> np.ndarray:
    """Per-vertex weights ``(V,)`` of one vertex group (0 where a vertex is not in it)."""
    group = obj.vertex_groups.get(group_name)
    weights = np.zeros(len(obj.data.vertices), dtype=np.float64)
    if group is None:
        return weights
    index = group.index
    for vertex in obj.data.vertices:
        for element in vertex.groups:
            if element.group == index:
                weights[vertex.index] = element.weight
    return weights


def evaluated_vertices(obj: bpy.types.Object, depsgraph: Any) -> np.ndarray:
    """The object's evaluated vertex positions ``(V, 3)`` in object space (shape keys and modifiers)."""
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        coordinates = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", coordinates)
    finally:
        evaluated.to_mesh_clear()
    return coordinates.reshape(-1, 3)
