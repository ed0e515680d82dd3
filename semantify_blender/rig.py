"""Rigged characters: an armature whose joints follow the shape, skinning the mesh with linear blending.

A rigged character is the model's mesh (shape keys = components, :mod:`.model_objects`) parented to an
armature with one bone per skeleton joint, one vertex group per bone holding the model's non-zero skin
weights, and an Armature modifier using vertex groups only with *linear* blending (not Preserve Volume),
which is exactly the engine's linear blend skinning (:mod:`semantify_engine.rig.skinning`).

**Joints follow the shape.** Where each bone's two ends sit is linear in the shape-key weights
(:class:`semantify_engine.rig.bones.BoneLayout`, stored on the mesh as ID properties under
``object.semantify["rig"]``, so a saved .blend needs no model file to keep following). After a shape
change the layout gives the new ends, and they are written to the armature's *rest* pose (its edit bones):
the pose bones keep their local transforms, so the current pose is kept and the skin stays attached.

Blender offers no way to move a rest bone outside Edit Mode (``Bone.head_local`` is read only), so an
update enters Edit Mode on the armature, writes all ends in two ``foreach_set`` calls and leaves it again,
restoring the active object, the armature's mode (Object or Pose) and the selection (:func:`_set_mode`
skips ``bpy.ops``' own depsgraph updates). For the bundled body's 104 bones that costs about 0.5 ms, and
a slider move including Blender's evaluation of the skinned mesh about 3 ms instead of 2 (measured in
the tests), so it runs on every move, synchronously: no throttling is needed.

**What triggers it** (when the object's *Follow Shape* is on):

- everything Semantify does to the weights goes through :func:`.sliders.write_weights`, which calls
  :func:`shape_changed`: slider moves, reset, randomise, loading a mapper, keyframed sliders, and any
  fitting (photo, text, measurements) that ends in shape-key weights;
- weights changed by anything else (Blender's own Shape Keys panel, a script) are noticed by a
  ``depsgraph_update_post`` handler. Entering Edit Mode inside that handler would evaluate the depsgraph
  again from within its own evaluation (it recurses), so the handler only notes the object and a one-shot
  timer moves its joints on the next turn of Blender's event loop (:func:`follow_pending`);
- shape keys animated directly are followed on frame change.

Joints are not moved while another object is in Edit, Sculpt or Paint mode (entering the armature's Edit
Mode would take the user out of theirs); the object stays pending and follows when they leave it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import bpy
import numpy as np
from bpy.app.handlers import persistent

from . import model_objects
from .engine import import_engine

if TYPE_CHECKING:
    from semantify_engine.models.linear import LinearMorphableModel
    from semantify_engine.rig.bones import BoneLayout

RIG_KEY = "rig"  # object.semantify[RIG_KEY]: the stored bone layout
SKELETON_SOURCE = "skeleton"  # bones from the model's own skeleton (bundled, SMPL family)
VERTICES_SOURCE = "vertices"  # a user's rig whose bone ends follow the vertices around them
MAX_NAME_BYTES = 63
RETRY_SECONDS = 0.25

_followed: dict[int, bytes] = {}  # mesh object pointer -> shape-key weights its joints were last moved to
_pending: set[str] = set()  # names of objects whose weights changed outside Semantify's own path
_updating = False


def _errors() -> Any:
    return import_engine("errors")


class ModeBusy(Exception):
    """Joints cannot move in the current mode (another object in Edit or Paint Mode, a render running).

    Not a SemantifyError (registration imports no engine module, so it cannot derive from one): the
    object stays pending and follows once the mode allows.
    """


# ------------------------------------------------------------------------------------------ queries
def armature_of(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The armature deforming ``obj``: the object of its first Armature modifier that has one."""
    if obj is None or obj.type != "MESH":
        return None
    for modifier in obj.modifiers:
        if modifier.type == "ARMATURE" and modifier.object is not None:
            return modifier.object
    return None


def is_rigged(obj: bpy.types.Object | None) -> bool:
    """True for a mesh whose joints Semantify can move: a stored layout and an armature to move."""
    return (
        obj is not None and obj.type == "MESH" and RIG_KEY in obj.semantify and armature_of(obj) is not None
    )


def rigged_mesh_of(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The rigged mesh for the sidebar: ``obj`` itself, or for an armature a mesh that it deforms."""
    if obj is None:
        return None
    if obj.type == "MESH":
        return obj if is_rigged(obj) else None
    if obj.type == "ARMATURE":
        for child in obj.children:
            if is_rigged(child) and armature_of(child) == obj:
                return child
    return None


def can_follow_own_rig(obj: bpy.types.Object | None) -> bool:
    """A user's rigged mesh: shape keys (a basis and one more) and an Armature modifier with an armature."""
    if obj is None or obj.type != "MESH" or armature_of(obj) is None:
        return False
    key = obj.data.shape_keys
    return key is not None and len(key.key_blocks) >= 2


# ---------------------------------------------------------------------------------- stored layout
def store_layout(obj: bpy.types.Object, layout: BoneLayout, source: str) -> None:
    """Keep the layout on the object (saved in the .blend, restored by undo)."""
    obj.semantify[RIG_KEY] = {
        "source": source,
        "names": list(layout.names),
        "parents": layout.parents.astype(np.int32),
        "head_template": np.ascontiguousarray(layout.head_template).ravel(),
        "head_basis": np.ascontiguousarray(layout.head_basis).ravel(),
        "tail_template": np.ascontiguousarray(layout.tail_template).ravel(),
        "tail_basis": np.ascontiguousarray(layout.tail_basis).ravel(),
    }


def stored_layout(obj: bpy.types.Object) -> BoneLayout | None:
    """The layout stored on ``obj`` (None if it has none)."""
    group = obj.semantify.get(RIG_KEY)
    if group is None:
        return None
    bones = import_engine("rig.bones")
    return bones.BoneLayout(
        names=tuple(group["names"]),
        parents=np.asarray(group["parents"]),
        head_template=np.asarray(group["head_template"]),
        head_basis=np.asarray(group["head_basis"]),
        tail_template=np.asarray(group["tail_template"]),
        tail_basis=np.asarray(group["tail_basis"]),
    )


# ------------------------------------------------------------------------------------- edit bones
@contextlib.contextmanager
def editing_bones(context: Any, armature: bpy.types.Object) -> Iterator[bpy.types.ArmatureEditBones]:
    """The armature's edit bones, entering and leaving Edit Mode around the block if it is not in it.

    ``mode_set`` acts on the view layer's active object (a context override alone is not enough), and
    entering Edit Mode takes every *selected* armature along (multi-object editing). So the armature is
    made active, other selected armatures are deselected, and all of it is put back afterwards, together
    with the armature's own mode (Object or Pose) and its viewport visibility.
    """
    if armature.mode == "EDIT":
        yield armature.data.edit_bones
        return
    view_layer = context.view_layer
    active = view_layer.objects.active
    if context.mode not in ("OBJECT", "POSE") or (context.mode == "POSE" and active != armature):
        raise ModeBusy(f"joints move in Object or Pose Mode; '{active.name}' is in {context.mode}")
    if view_layer.objects.get(armature.name) is None:
        raise _errors().SemantifyError(
            f"The armature '{armature.name}' is not in the view layer '{view_layer.name}' (its collection is "
            "excluded or unlinked), so its joints cannot be moved. Include it, then press Update Joints."
        )
    previous_mode = armature.mode
    others = [obj for obj in view_layer.objects.selected if obj.type == "ARMATURE" and obj != armature]
    hidden = armature.hide_viewport
    for other in others:
        other.select_set(False)
    if hidden:  # only when needed: changing it rebuilds the depsgraph's relations
        armature.hide_viewport = False
    view_layer.objects.active = armature
    try:
        _set_mode("EDIT")
        try:
            yield armature.data.edit_bones
        finally:
            _set_mode(previous_mode)
    finally:
        view_layer.objects.active = active
        if hidden:
            armature.hide_viewport = True
        for other in others:
            other.select_set(True)


def _set_mode(mode: str) -> None:
    """``bpy.ops.object.mode_set`` on the active object, without ``bpy.ops``' two depsgraph updates.

    ``bpy.ops`` evaluates the view layer before and after every operator. Around a joint update that
    means evaluating the skinned mesh twice more (once with the new shape and the old bones, once with
    both), about 6 ms of the bundled body's 9; calling the operator directly leaves one evaluation, of
    the final state, to Blender's next redraw. Falls back to ``bpy.ops`` if the direct call is gone.
    """
    call = getattr(getattr(_bpy_module(), "ops", None), "call", None)
    try:
        result = call("object.mode_set", {"mode": mode}) if call else bpy.ops.object.mode_set(mode=mode)
    except RuntimeError as error:  # the operator's poll refused (a linked or hidden armature, say)
        result = {"CANCELLED"}
        reason = str(error).strip()
    else:
        reason = ""
    if "FINISHED" not in result:
        raise _errors().SemantifyError(
            f"Blender refused to switch the armature to {mode.title()} Mode{': ' + reason if reason else ''}."
        )


def _bpy_module() -> Any:
    try:
        import _bpy
    except ImportError:  # not inside Blender's Python
        return None
    return _bpy


def write_bone_ends(edit_bones: Any, names: tuple[str, ...], heads: np.ndarray, tails: np.ndarray) -> int:
    """Set the ends of the bones named ``names`` (others keep theirs); returns how many were found."""
    order = {bone.name: index for index, bone in enumerate(edit_bones)}
    rows = np.array([order.get(name, -1) for name in names], dtype=np.int64)
    found = rows >= 0
    for attribute, values in (("head", heads), ("tail", tails)):
        current = np.empty(len(order) * 3, dtype=np.float32)
        edit_bones.foreach_get(attribute, current)
        current = current.reshape(-1, 3)
        current[rows[found]] = values[found]
        edit_bones.foreach_set(attribute, current.ravel())
    return int(found.sum())


# ------------------------------------------------------------------------------------ joint update
def shape_weights(obj: bpy.types.Object, count: int) -> np.ndarray:
    """The weights of component keys 1..count as Blender uses them (a muted key counts as 0)."""
    key = obj.data.shape_keys
    weights = np.zeros(count, dtype=np.float64)
    if key is None:
        return weights
    blocks = key.key_blocks
    values = np.empty(len(blocks), dtype=np.float32)
    muted = np.empty(len(blocks), dtype=bool)
    blocks.foreach_get("value", values)
    blocks.foreach_get("mute", muted)
    values[muted] = 0.0
    used = min(count, len(blocks) - 1)
    weights[:used] = values[1 : 1 + used]
    return weights


def mesh_to_armature(obj: bpy.types.Object, armature: bpy.types.Object) -> np.ndarray:
    """The 4×4 map from the mesh's object space to the armature's (where edit bones live).

    For a mesh parented to its armature this is read from the parenting alone, so it is right even
    before the depsgraph has updated ``matrix_world`` (a script that parents and shapes in one go).
    """
    if obj.parent == armature and obj.parent_type == "OBJECT":
        matrix = obj.matrix_parent_inverse @ obj.matrix_basis
    else:
        matrix = armature.matrix_world.inverted() @ obj.matrix_world
    return np.array(matrix, dtype=np.float64)


def update_joints(context: Any, obj: bpy.types.Object) -> int:
    """Move the armature's rest joints to the current shape of ``obj``; the pose is kept. Returns bones moved.

    Raises a SemantifyError when ``obj`` has no rig to move, ``ModeBusy`` when the mode forbids it now.
    """
    global _updating
    layout = stored_layout(obj)
    armature = armature_of(obj)
    if layout is None or armature is None:
        what = "no stored joints" if layout is None else "no Armature modifier with an armature"
        raise _errors().SemantifyError(
            f"'{obj.name}' has {what}, so there are no joints to move. Use Add Rigged Character, or Follow "
            "My Rig on a mesh with shape keys and an Armature modifier."
        )
    weights = shape_weights(obj, layout.component_count)
    to_armature = mesh_to_armature(obj, armature)
    rotation, shift = to_armature[:3, :3], to_armature[:3, 3]
    heads = layout.heads(weights) @ rotation.T + shift
    tails = layout.tails(weights) @ rotation.T + shift
    _updating = True
    try:
        with editing_bones(context, armature) as edit_bones:
            moved = write_bone_ends(edit_bones, layout.names, heads, tails)
    finally:
        _updating = False
    _followed[obj.as_pointer()] = weights.tobytes()
    _pending.discard(obj.name)
    return moved


def follow(context: Any, obj: bpy.types.Object) -> bool:
    """:func:`update_joints`, with failures kept in ``rig_status`` (a busy mode leaves the object pending)."""
    state = obj.semantify
    try:
        if bpy.app.is_job_running("RENDER"):  # no Edit Mode while a render job reads the scene
            raise ModeBusy("a render is running")
        update_joints(context, obj)
    except ModeBusy as busy:
        _pending.add(obj.name)
        _schedule()  # the timer retries until the mode allows
        message = f"Joints will follow the shape when they can move ({busy})."
    except _errors().SemantifyError as error:
        message = str(error)
    else:
        message = ""
    if state.rig_status != message:
        state.rig_status = message
    return not message


def shape_changed(obj: bpy.types.Object) -> None:
    """Semantify just wrote ``obj``'s shape-key weights: move its joints if it follows the shape."""
    if _updating or not obj.semantify.follow_shape or RIG_KEY not in obj.semantify:
        return
    follow(bpy.context, obj)


def follow_pending() -> float | None:
    """Move the joints of objects whose weights changed outside Semantify's path (the timer's body).

    Headless there is no event loop to run timers; tests call this themselves, as the loop would.
    """
    for name in sorted(_pending):
        obj = bpy.data.objects.get(name)
        if obj is None or not obj.semantify.follow_shape or not is_rigged(obj):
            _pending.discard(name)
            continue
        count = stored_layout(obj).component_count
        if _followed.get(obj.as_pointer()) == shape_weights(obj, count).tobytes():
            _pending.discard(name)
            continue
        if follow(bpy.context, obj):
            _pending.discard(name)
    return RETRY_SECONDS if _pending else None


def _schedule() -> None:
    if _pending and not bpy.app.timers.is_registered(follow_pending):
        bpy.app.timers.register(follow_pending, first_interval=0.0)


@persistent
def on_depsgraph_update(scene: bpy.types.Scene, depsgraph: Any) -> None:
    """Note rigged objects whose shape keys changed; the timer moves their joints outside evaluation."""
    if _updating or not depsgraph.id_type_updated("KEY"):
        return
    changed = {
        update.id.original.as_pointer()
        for update in depsgraph.updates
        if isinstance(update.id, bpy.types.Key)
    }
    for obj in scene.objects:
        if obj.type != "MESH" or obj.data.shape_keys is None:
            continue
        if (
            obj.data.shape_keys.as_pointer() in changed
            and obj.semantify.follow_shape
            and RIG_KEY in obj.semantify
        ):
            _pending.add(obj.name)
    _schedule()


@persistent
def on_frame_change(scene: bpy.types.Scene, depsgraph: Any = None) -> None:
    """Follow shape keys animated directly (slider animation already follows through the slider path)."""
    if _updating:
        return
    for obj in scene.objects:
        key = obj.data.shape_keys if obj.type == "MESH" else None
        if key is None or key.animation_data is None or not obj.semantify.follow_shape:
            continue
        if RIG_KEY in obj.semantify:
            _pending.add(obj.name)
    if _pending:
        follow_pending()


def register_handlers() -> None:
    if on_depsgraph_update not in bpy.app.handlers.depsgraph_update_post:
        bpy.app.handlers.depsgraph_update_post.append(on_depsgraph_update)
    if on_frame_change not in bpy.app.handlers.frame_change_post:
        bpy.app.handlers.frame_change_post.append(on_frame_change)


def unregister_handlers() -> None:
    for handlers, handler in (
        (bpy.app.handlers.depsgraph_update_post, on_depsgraph_update),
        (bpy.app.handlers.frame_change_post, on_frame_change),
    ):
        for registered in [h for h in handlers if getattr(h, "__name__", "") == handler.__name__]:
            if getattr(registered, "__module__", "") == handler.__module__:
                handlers.remove(registered)
    if bpy.app.timers.is_registered(follow_pending):
        bpy.app.timers.unregister(follow_pending)
    _followed.clear()
    _pending.clear()


# ------------------------------------------------------------------------------ building the rig
def check_riggable(model: LinearMorphableModel) -> BoneLayout:
    """The model's bone layout, or a clear error before anything in the scene is touched."""
    if model.skeleton is None:
        raise _errors().ModelFileError(
            f"Model '{model.name}' has no skeleton, so it cannot be rigged. Rigged characters need a model "
            "with joints and skin weights: the bundled bodies (anny-body, anny-body-male, anny-body-female) "
            "or an SMPL-family model. Use Add Model for this one."
        )
    long = [name for name in model.skeleton.names if len(name.encode("utf-8")) > MAX_NAME_BYTES]
    if long or len(set(model.skeleton.names)) != len(model.skeleton.names):
        raise _errors().ModelFileError(
            f"Model '{model.name}' has joint names Blender cannot use as bone names (duplicated, or longer "
            f"than {MAX_NAME_BYTES} bytes: {', '.join(long[:3])})."
        )
    return import_engine("rig.bones").layout_from_skeleton(model.skeleton)


def create_rigged_character(
    context: Any, model: LinearMorphableModel, source: str, influences: int = 0
) -> tuple[bpy.types.Object, bpy.types.Object]:
    """The model's mesh (shape keys) skinned to a new armature with its skeleton; the mesh is made active.

    ``influences`` > 0 keeps at most that many bones per vertex (game-ready: 4), renormalised.
    """
    layout = check_riggable(model)
    weights = model.skeleton.skin_weights
    if influences > 0:
        weights = import_engine("rig.skinning").limit_influences(weights, influences)
    obj = model_objects.create_model_object(context, model, source)
    armature = build_armature(context, f"{model.name} rig", layout, obj.users_collection[0])
    armature.location = obj.location
    obj.parent = armature
    obj.matrix_parent_inverse.identity()
    obj.location = (0.0, 0.0, 0.0)
    add_skin(obj, armature, layout.names, weights)
    store_layout(obj, layout, SKELETON_SOURCE)
    obj.semantify.follow_shape = True
    _followed[obj.as_pointer()] = shape_weights(obj, layout.component_count).tobytes()
    context.view_layer.objects.active = obj
    return obj, armature


def build_armature(
    context: Any, name: str, layout: BoneLayout, collection: bpy.types.Collection
) -> bpy.types.Object:
    """An armature object with one bone per layout bone at the template's ends (roll 0, not connected)."""
    data = bpy.data.armatures.new(name)
    data.display_type = "STICK"  # thin enough to see the body through, shown in front of it
    armature = bpy.data.objects.new(name, data)
    armature.show_in_front = True
    collection.objects.link(armature)
    with editing_bones(context, armature) as edit_bones:
        created = [edit_bones.new(bone_name) for bone_name in layout.names]
        for bone, parent in zip(created, layout.parents.tolist(), strict=True):
            bone.use_connect = False
            bone.parent = created[parent] if parent >= 0 else None
        heads = layout.head_template
        write_bone_ends(edit_bones, layout.names, heads, layout.tails(np.zeros(layout.component_count)))
    return armature


def add_skin(
    obj: bpy.types.Object, armature: bpy.types.Object, names: tuple[str, ...], weights: np.ndarray
) -> None:
    """One vertex group per bone with its non-zero skin weights, and a linear-blending Armature modifier."""
    for column, name in enumerate(names):
        group = obj.vertex_groups.new(name=name)
        rows = np.flatnonzero(weights[:, column] > 0)
        values, which = np.unique(weights[rows, column], return_inverse=True)
        for value_index, value in enumerate(values.tolist()):  # one call per distinct weight
            group.add(rows[which == value_index].tolist(), value, "REPLACE")
    modifier = obj.modifiers.new(name="Armature", type="ARMATURE")
    modifier.object = armature
    modifier.use_vertex_groups = True
    modifier.use_bone_envelopes = False
    modifier.use_deform_preserve_volume = False  # linear blending: the engine's skinning
    modifier.use_multi_modifier = False
    if len(obj.modifiers) > 1:  # first in the stack, right after the shape keys
        obj.modifiers.move(len(obj.modifiers) - 1, 0)


# --------------------------------------------------------------------------------- a user's own rig
def follow_own_rig(obj: bpy.types.Object) -> tuple[BoneLayout, float]:
    """Make the bones of ``obj``'s armature follow its shape keys; returns the layout and its largest misfit.

    Each bone end becomes a fixed combination of the vertices around it, computed at rest: the current
    shape (what the bones were placed on) and the current bone ends, both in the mesh's space.
    """
    regressor = import_engine("rig.regressor")
    bones = import_engine("rig.bones")
    armature = armature_of(obj)
    model = model_objects.model_from_object(obj)
    rest = model.vertices(shape_weights(obj, model.component_count).astype(np.float32)).astype(np.float64)
    to_mesh = np.linalg.inv(mesh_to_armature(obj, armature))
    armature_bones = list(armature.data.bones)
    names = tuple(bone.name for bone in armature_bones)
    index = {name: position for position, name in enumerate(names)}
    parents = np.array([index[b.parent.name] if b.parent else -1 for b in armature_bones], dtype=np.int64)
    ends = np.array([[b.head_local, b.tail_local] for b in armature_bones], dtype=np.float64).reshape(-1, 3)
    ends = (ends @ to_mesh[:3, :3].T + to_mesh[:3, 3]).reshape(-1, 2, 3)
    skin = bone_weights(obj, names)
    heads, tails = regressor.bone_end_regressors(rest, skin, ends[:, 0], ends[:, 1])
    layout = bones.layout_from_regressors(names, parents, model, heads, tails)
    store_layout(obj, layout, VERTICES_SOURCE)
    obj.semantify.follow_shape = True
    _followed[obj.as_pointer()] = shape_weights(obj, layout.component_count).tobytes()
    return layout, max(heads.max_offset, tails.max_offset)


def bone_weights(obj: bpy.types.Object, names: tuple[str, ...]) -> np.ndarray:
    """``(V, B)`` weights of the vertex groups named after the bones (0 for a bone without a group)."""
    column_of_group = {
        group.index: names.index(group.name) for group in obj.vertex_groups if group.name in names
    }
    weights = np.zeros((len(obj.data.vertices), len(names)))
    for vertex in obj.data.vertices:
        for element in vertex.groups:
            column = column_of_group.get(element.group)
            if column is not None:
                weights[vertex.index, column] = element.weight
    return weights
