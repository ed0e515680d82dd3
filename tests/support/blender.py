"""Blender helpers shared by the Blender test modules: the extension tool, and what the scene shows.

Imported only where bpy is (every function imports it itself, so that importing this module does not).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

from semantify_engine.mapper import Descriptor, Mapper, model_identity, save_mapper

MODULE = "bl_ext.user_default.semantify"  # the extension as Blender names it once installed


# ------------------------------------------------------------------------------ the Blender extension
def blender_ext_tools() -> tuple[Path, Path]:
    """Blender's extension builder/validator and its list of valid tags, from inside the bpy wheel."""
    spec = importlib.util.find_spec("bpy")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    script = next(root.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    tags = next(root.glob("*/scripts/modules/_bpy_internal/extensions/tags.py"))
    return script, tags


def run_blender_ext(*arguments: str) -> subprocess.CompletedProcess[str]:
    script, tags = blender_ext_tools()
    command = [sys.executable, str(script), arguments[0], "--valid-tags", str(tags), *arguments[1:]]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def evaluated_vertices(obj) -> np.ndarray:
    """What Blender shows: the evaluated mesh (shape keys and modifiers applied), object space."""
    import bpy

    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    coordinates = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", coordinates)
    evaluated.to_mesh_clear()
    return coordinates.reshape(-1, 3)


def weights_of(obj) -> np.ndarray:
    """The weights of the shape keys after the basis (component ``k`` is key ``k + 1``)."""
    blocks = obj.data.shape_keys.key_blocks
    weights = np.empty(len(blocks), dtype=np.float32)
    blocks.foreach_get("value", weights)
    return weights[1:]


def positions_of(obj) -> np.ndarray:
    return np.array([slider.position for slider in obj.semantify.sliders])


def add_body_with_default_mapper():
    import bpy

    assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    obj = bpy.context.active_object
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-body-measurements") == {"FINISHED"}
    return obj


class OperatorStandIn:
    """Stands in for the running modal operator, whose instance Blender keeps to itself."""

    def __init__(self) -> None:
        self.reports: list[tuple[set[str], str]] = []

    def report(self, level: set[str], message: str) -> None:
        self.reports.append((level, message))


def make_mapper(model, path: Path, names=("round", "long", "wide"), count: int = 10, seed: int = 0) -> Mapper:
    """A small random mapper for ``model``'s first ``count`` components, saved to ``path``."""
    rng = np.random.default_rng(seed)
    d = len(names)
    mapper = Mapper(
        descriptors=tuple(
            Descriptor(name=name, kind="word", unit="cosine", low=0.10 + i, high=0.30 + i, default=0.15 + i)
            for i, name in enumerate(names)
        ),
        input_mean=np.array([0.2 + i for i in range(d)]),
        input_std=np.full(d, 0.05),
        output_mean=np.zeros(count),
        output_std=np.ones(count),
        weights=(
            (rng.normal(size=(d, 16)), rng.normal(size=16)),
            (0.3 * rng.normal(size=(16, count)), np.zeros(count)),
        ),
        metadata={"model": model_identity(model, count)},
    )
    save_mapper(mapper, path)
    return mapper


def make_mesh_with_shape_keys():
    """A 3×3 grid of quads with three keys: plain, relative to another key, and limited by a vertex group."""
    import bpy

    xs, ys = np.meshgrid(np.linspace(-1, 1, 4), np.linspace(-1, 1, 4))
    vertices = np.stack([xs.ravel(), ys.ravel(), np.zeros(16)], axis=1)
    faces = [(r * 4 + c, r * 4 + c + 1, r * 4 + c + 5, r * 4 + c + 4) for r in range(3) for c in range(3)]
    mesh = bpy.data.meshes.new("grid")
    mesh.from_pydata(vertices.tolist(), [], faces)
    obj = bpy.data.objects.new("My Character", mesh)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.shape_key_add(name="Basis")
    rng = np.random.default_rng(5)
    lift = obj.shape_key_add(name="lift", from_mix=False)
    lift.data.foreach_set("co", (vertices + rng.normal(0, 0.1, vertices.shape)).ravel())
    twist = obj.shape_key_add(name="twist", from_mix=False)
    twist.data.foreach_set("co", (vertices + rng.normal(0, 0.1, vertices.shape)).ravel())
    twist.relative_key = lift
    group = obj.vertex_groups.new(name="left")
    group.add(list(range(8)), 0.5, "REPLACE")
    bulge = obj.shape_key_add(name="bulge", from_mix=False)
    bulge.data.foreach_set("co", (vertices + rng.normal(0, 0.1, vertices.shape)).ravel())
    bulge.vertex_group = "left"
    return obj
