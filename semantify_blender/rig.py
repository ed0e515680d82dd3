"""Joints follow the shape: a rigged character's armature is kept on the shape its shape keys make.

Rigs are built by :mod:`.rig_build` (a model's skeleton, or a user's own rig) and read by
:mod:`.rig_layout`; this module holds what moves them and the state that needs: which objects wait for a
move, and what shape each was last moved to.

**Joints follow the shape.** Where each bone's two ends sit is linear in the shape-key weights
(:class:`semantify_engine.rig.bones.BoneLayout`, stored on the mesh as ID properties under
``object.semantify["rig"]``, so a saved .blend needs no model file to keep following). After a shape
change the layout gives the new ends, and they are written to the armature's *rest* pose (its edit bones):
the pose bones keep their local transforms, so the current pose is kept and the skin stays attached.

Blender offers no way to move a rest bone outside Edit Mode (``Bone.head_local`` is read only), so an
update enters Edit Mode on the armature, writes all ends in two ``foreach_set`` calls and leaves it again,
restoring the active object, the armature's mode (Object or Pose) and the selection
(:func:`.rig_edit.editing_bones`, which skips ``bpy.ops``' own depsgraph updates). For the bundled body's
104 bones that costs about 0.5 ms, and a slider move including Blender's evaluation of the skinned mesh
about 3 ms instead of 2 (measured in the tests), so it runs on every move, synchronously: no throttling is
needed.

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

from typing import TYPE_CHECKING, Any

import bpy
from bpy.app.handlers import persistent

from .engine import import_engine
from .rig_edit import editing_bones, write_bone_ends
from .rig_layout import (
    RIG_KEY,
    armature_of,
    is_rigged,
    mesh_to_armature,
    shape_weights,
    store_layout,
    stored_layout,
)

if TYPE_CHECKING:
    from semantify_engine.rig.bones import BoneLayout

RETRY_SECONDS = 0.25

_followed: dict[int, bytes] = {}  # mesh object pointer -> shape-key weights its joints were last moved to
_pending: set[str] = set()  # names of objects whose weights changed outside Semantify's own path
_updating = False


# ------------------------------------------------------------------------------------ joint update
def update_joints(context: Any, obj: bpy.types.Object) -> int:
    """Move the armature's rest joints to the current shape of ``obj``; the pose is kept. Returns bones moved.

    Raises a SemantifyError when ``obj`` has no rig to move, ``ModeBusy`` (a SemantifyError) when the mode
    forbids it now.
    """
    global _updating
    layout = stored_layout(obj)
    armature = armature_of(obj)
    if layout is None or armature is None:
        what = "no stored joints" if layout is None else "no Armature modifier with an armature"
        raise import_engine("errors").SemantifyError(
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
    errors = import_engine("errors")
    try:
        if bpy.app.is_job_running("RENDER"):  # no Edit Mode while a render job reads the scene
            raise errors.ModeBusy("a render is running")
        update_joints(context, obj)
    except errors.ModeBusy as busy:  # before SemantifyError, which it is
        _pending.add(obj.name)
        _schedule()  # the timer retries until the mode allows
        message = f"Joints will follow the shape when they can move ({busy})."
    except errors.SemantifyError as error:
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


# -------------------------------------------------------------------------------------- handlers
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


# ------------------------------------------------------------------------------------- new rigs
def start_following(obj: bpy.types.Object, layout: BoneLayout, source: str) -> None:
    """A newly built rig: store its layout on ``obj``, turn Follow Shape on, and note the shape it is on."""
    store_layout(obj, layout, source)
    obj.semantify.follow_shape = True
    _followed[obj.as_pointer()] = shape_weights(obj, layout.component_count).tobytes()
