"""The slider path: slider positions → mapper (numpy) → shape-key weights. Nothing else runs per move.

A slider move costs one ``foreach_get`` of the positions, one small MLP in numpy, one ``foreach_set`` of the
weights and the shape's plausibility (numpy, a fraction of a millisecond; the sidebar says when a shape
leaves the plausible region): no shape key is created, no torch. Mappers are read from their files
once and cached by path (and re-read only when the file changes on disk), so the first move after
opening a .blend loads the mapper and the others reuse it.

Keyframed sliders: Blender does not call property update callbacks when animation changes a value, so a
``frame_change_post`` handler re-applies the sliders of animated Semantify objects (skipping objects
whose positions did not change since the last application).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import bpy
import numpy as np
from bpy.app.handlers import persistent

from . import rig
from .engine import import_engine
from .model_objects import identity_of, plausibility_of
from .preferences import user_model_dir

if TYPE_CHECKING:
    from semantify_engine.mapper.mapper import Mapper

# absolute path -> ((mtime_ns, size), mapper, its checksum): the checksum hashes every array, once per load
_cache: dict[str, tuple[tuple[int, int], Mapper, str]] = {}
_last_applied: dict[int, bytes] = {}  # object pointer -> positions last written (animation handler)
_suspended = 0

DEFAULT_MAPPER_PREFIX = "default:"
"""``mapper_path`` of a shipped mapper: ``default:<name>``, resolved inside the installed extension, so a
.blend that uses one opens with working sliders on any machine, wherever the extension is installed."""


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """Setting many positions at once (load, reset, randomise): apply once at the end, not per slider."""
    global _suspended
    _suspended += 1
    try:
        yield
    finally:
        _suspended -= 1


def clear_cache() -> None:
    _cache.clear()
    _last_applied.clear()


def cached_mapper(path: str) -> tuple[Mapper, str]:
    """The mapper in ``path`` (absolute) and its checksum, from the cache unless the file changed on disk."""
    mapper_module = import_engine("mapper.mapper")
    try:
        stat = os.stat(path)
    except OSError as error:
        raise mapper_module.MapperError(
            f"Mapper file {path} cannot be read ({error.strerror}). Load a mapper again."
        ) from error
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1], cached[2]
    mapper = mapper_module.load_mapper(path)
    _cache[path] = (stamp, mapper, mapper.checksum())
    return mapper, _cache[path][2]


def mapper_file(reference: str) -> str:
    """The absolute file of a mapper reference: ``default:<name>`` (shipped) or a path (``//`` relative)."""
    if reference.startswith(DEFAULT_MAPPER_PREFIX):
        defaults = import_engine("mapper.defaults")
        return str(defaults.DEFAULT_MAPPER_DIR / f"{reference[len(DEFAULT_MAPPER_PREFIX) :]}.npz")
    return bpy.path.abspath(reference)


def mapper_label(reference: str) -> str:
    """How the sidebar names a mapper: a shipped one by its name, a file by its file name."""
    if reference.startswith(DEFAULT_MAPPER_PREFIX):
        return f"{reference[len(DEFAULT_MAPPER_PREFIX) :]} (shipped)"
    return bpy.path.basename(reference)


def load_onto(obj: bpy.types.Object, reference: str, keep_values: bool = False) -> Mapper:
    """Give ``obj`` one slider per descriptor of the mapper at ``reference`` and apply it.

    Everything that can fail (unreadable, damaged or foreign mapper, missing shape keys) fails before the
    object is touched. Sliders start at the mapper's defaults; with ``keep_values`` a descriptor the
    object already had keeps its value (a mapper grown by one word keeps the shape the artist made).
    """
    from .properties import set_range  # properties imports this module

    mapper_module = import_engine("mapper.mapper")
    mapper, checksum = cached_mapper(mapper_file(reference))
    check_object(obj, mapper)
    state = obj.semantify
    kept = {slider.name: slider.value for slider in state.sliders} if keep_values else {}
    with suspended():
        state.mapper_path = reference
        state.mapper_checksum = checksum
        state.status = ""
        state.sliders.clear()
        for descriptor in mapper.descriptors:
            item = state.sliders.add()
            item.name = descriptor.name
            item.kind = descriptor.kind
            item.unit = descriptor.unit
            data_low, data_high = mapper_module.data_range(mapper, descriptor.name) or (
                descriptor.low,
                descriptor.high,
            )
            set_range(
                item,
                low=descriptor.low,
                high=descriptor.high,
                default=descriptor.default,
                data_low=data_low,
                data_high=data_high,
            )
            item.value = kept.get(descriptor.name, descriptor.default)  # clamped to the range
    if not apply_reporting_status(obj):
        raise mapper_module.MapperError(state.status)
    return mapper


def mapper_of(obj: bpy.types.Object) -> Mapper:
    """The object's mapper, checked against the object's model and against the mapper it loaded."""
    mapper_module = import_engine("mapper.mapper")
    state = obj.semantify
    path = mapper_file(state.mapper_path)
    mapper, checksum = cached_mapper(path)
    if checksum != state.mapper_checksum:
        raise mapper_module.MapperError(
            f"Mapper file {path} changed since it was loaded onto '{obj.name}' (checksum {checksum}, "
            f"loaded {state.mapper_checksum}). Load it again to rebuild the sliders."
        )
    if len(state.sliders) != mapper.input_count:
        raise mapper_module.MapperError(
            f"'{obj.name}' has {len(state.sliders)} sliders but its mapper has {mapper.input_count} "
            "descriptors. Load the mapper again."
        )
    check_object(obj, mapper)
    return mapper


def check_object(obj: bpy.types.Object, mapper: Mapper) -> None:
    """Refuse a mapper made for another model, or an object that lost the shape keys it drives."""
    mapper_module = import_engine("mapper.mapper")
    mapper_module.check_model(mapper, identity_of(obj))
    key = obj.data.shape_keys
    keys = len(key.key_blocks) - 1 if key is not None else 0
    if keys < mapper.coefficient_count:
        raise mapper_module.MapperError(
            f"The mapper drives {mapper.coefficient_count} components but '{obj.name}' has {keys} component "
            "shape keys (key k + 1 is component k). Add the model again."
        )


def positions_of(obj: bpy.types.Object) -> np.ndarray:
    sliders = obj.semantify.sliders
    positions = np.empty(len(sliders), dtype=np.float32)
    sliders.foreach_get("position", positions)
    return positions


def write_positions(obj: bpy.types.Object, positions: np.ndarray) -> None:
    """Write all slider positions at once, then run the mapper once (not once per slider).

    Should running it fail (a SemantifyError, raised again), the old positions come back: a failed
    Reset, Random or fit moves no slider and no shape key.
    """
    errors = import_engine("errors")
    sliders = obj.semantify.sliders
    before = positions_of(obj)
    with suspended():
        sliders.foreach_set("position", positions)
    try:
        apply(obj)
    except errors.SemantifyError:
        with suspended():
            sliders.foreach_set("position", before)
        raise


def values_at(mapper: Mapper, positions: np.ndarray) -> np.ndarray:
    """Descriptor values for slider positions in [0, 1] (linear along each descriptor's range)."""
    return mapper.lows + positions * (mapper.highs - mapper.lows)


def apply(obj: bpy.types.Object) -> np.ndarray:
    """Run the mapper on the object's sliders and write the coefficients to its shape keys.

    Returns the coefficients. Raises :class:`MapperError` (a SemantifyError) when the mapper cannot be
    used; the shape keys are then untouched.
    """
    mapper = mapper_of(obj)
    positions = positions_of(obj)
    coefficients = mapper.coefficients(values_at(mapper, positions))
    write_weights(obj, coefficients)
    _last_applied[obj.as_pointer()] = positions.tobytes()
    record_plausibility(obj, coefficients)
    return coefficients


def record_plausibility(obj: bpy.types.Object, coefficients: np.ndarray) -> None:
    """Store the shape's population percentile on the object for the sidebar (-1 when unknown); written
    only when it changes, so a redraw is not asked for on every move."""
    errors = import_engine("errors")
    measure = plausibility_of(obj, user_model_dir())
    value = -1.0
    if measure is not None:
        try:
            value = float(measure.percentile(coefficients[None, :])[0])
        except errors.SemantifyError:
            value = -1.0
    if abs(obj.semantify.plausibility - value) > 0.05:
        obj.semantify.plausibility = value


def write_weights(obj: bpy.types.Object, coefficients: np.ndarray) -> None:
    """Set the weights of component keys 1..n (key ``k + 1`` is component ``k``) in one bulk copy.

    Components past the mapper's ``n`` keep their weights, so hand-set extra components survive. Every
    shape Semantify sets goes through here, so this is where a rigged character's joints follow it.
    """
    key = obj.data.shape_keys
    blocks = key.key_blocks
    weights = np.empty(len(blocks), dtype=np.float32)
    blocks.foreach_get("value", weights)
    weights[1 : 1 + len(coefficients)] = coefficients
    blocks.foreach_set("value", weights)
    key.update_tag()  # foreach_set sends no update: tell the depsgraph the shape changed
    rig.shape_changed(obj)  # a rigged character's joints follow every shape Semantify sets


def apply_from_update(obj: bpy.types.Object) -> None:
    """A slider's update callback: apply unless suspended; failures go to ``status`` (no exception)."""
    if _suspended or not obj.semantify.mapper_path:
        return
    apply_reporting_status(obj)


def apply_reporting_status(obj: bpy.types.Object) -> bool:
    """:func:`apply`, recording a user-fixable failure in the object's status instead of raising."""
    errors = import_engine("errors")
    state = obj.semantify
    try:
        apply(obj)
    except errors.SemantifyError as error:
        if state.status != str(error):
            state.status = str(error)
        return False
    if state.status:
        state.status = ""
    return True


@persistent
def on_frame_change(scene: bpy.types.Scene, depsgraph: Any = None) -> None:
    """Re-apply sliders that animation may have moved (update callbacks do not run for animation)."""
    for obj in scene.objects:
        state = getattr(obj, "semantify", None)
        if state is None or not state.mapper_path or obj.animation_data is None or not len(state.sliders):
            continue
        if _last_applied.get(obj.as_pointer()) == positions_of(obj).tobytes():
            continue
        apply_reporting_status(obj)


def register_handlers() -> None:
    if on_frame_change not in bpy.app.handlers.frame_change_post:
        bpy.app.handlers.frame_change_post.append(on_frame_change)


def unregister_handlers() -> None:
    handlers = bpy.app.handlers.frame_change_post
    for handler in [h for h in handlers if getattr(h, "__name__", "") == on_frame_change.__name__]:
        if getattr(handler, "__module__", "") == on_frame_change.__module__:
            handlers.remove(handler)
    clear_cache()
