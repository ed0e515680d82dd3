"""Rendering throughput: the product's packed renderer against the naive way, side by side.

The naive way is what a first script does: one mesh, and for every image set each vertex coordinate
from Python, turn the mesh to the view, call ``bpy.ops.render.render(write_still=True)`` into a PNG and
read it back. Both paths render the same samples with the same settings (bundled body by default,
224², Workbench, front and side views, same orthographic frame), and the benchmark checks that their
images agree before it prints the ratio.

    .venv/bin/python benchmarks/bench_render.py [--model anny-body] [--samples 48]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="semantify-bench-blender-"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from semantify_engine.models import load
from semantify_engine.render.blender import BlenderRenderer, import_bpy, mesh_from_arrays
from semantify_engine.render.images import composite, to_uint8
from semantify_engine.render.settings import RenderSettings
from semantify_engine.render.views import NAMED_VIEWS


def render_naive(model, views, framing, settings, coefficients) -> np.ndarray:
    """One render call per image, coordinates set vertex by vertex: the baseline."""
    from PIL import Image

    bpy = import_bpy()
    scene = bpy.data.scenes.new("naive")
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.film_transparent = True
    scene.render.resolution_x = scene.render.resolution_y = settings.resolution
    scene.render.resolution_percentage = 100
    scene.render.dither_intensity = 0.0
    scene.view_settings.view_transform = "Standard"
    scene.display.render_aa = "OFF"
    shading = scene.display.shading
    shading.light, shading.color_type, shading.single_color = "STUDIO", "SINGLE", settings.colour
    camera_data = bpy.data.cameras.new("naive")
    camera_data.type, camera_data.ortho_scale, camera_data.clip_end = "ORTHO", framing.side, 1000.0
    camera = bpy.data.objects.new("naive", camera_data)
    camera.location, camera.rotation_euler = (0.0, -50.0, 0.0), (math.pi / 2, 0.0, 0.0)
    scene.collection.objects.link(camera)
    scene.camera = camera
    mesh = mesh_from_arrays(bpy, "naive", model.template, model.faces)
    body = bpy.data.objects.new("naive", mesh)
    scene.collection.objects.link(body)
    folder = Path(tempfile.mkdtemp(prefix="semantify-naive-"))
    scene.render.filepath = str(folder / "image")
    images = np.empty((len(coefficients), len(views), settings.resolution, settings.resolution, 3), np.uint8)
    for sample, vertices in enumerate(model.vertices(coefficients)):
        for index, view in enumerate(views):
            for vertex, position in zip(mesh.vertices, vertices, strict=True):
                vertex.co = position
            mesh.update()
            body.rotation_euler = (math.radians(view.elevation), 0.0, math.radians(view.azimuth))
            body.location = (-float(framing.centres[index][0]), 0.0, -float(framing.centres[index][1]))
            bpy.ops.render.render(write_still=True, scene=scene.name)
            with Image.open(folder / "image.png") as png:
                rgba = np.asarray(png.convert("RGBA"))
            images[sample, index] = composite(rgba, settings.background)
    for collection, block in ((bpy.data.objects, body), (bpy.data.objects, camera), (bpy.data.meshes, mesh)):
        collection.remove(block)
    bpy.data.cameras.remove(camera_data)
    bpy.data.scenes.remove(scene)
    shutil.rmtree(folder)
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="anny-body")
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--supersample", type=int, default=1)
    arguments = parser.parse_args()

    model = load(arguments.model)
    views = (NAMED_VIEWS["front"], NAMED_VIEWS["side"])
    settings = RenderSettings(supersample=arguments.supersample)
    rng = np.random.default_rng(0)
    count = min(10, model.component_count)
    box = model.coefficient_box(2.0, count)
    coefficients = rng.uniform(box[:, 0], box[:, 1], size=(arguments.samples, count)).astype(np.float32)
    images = arguments.samples * len(views)

    with BlenderRenderer(model, views, settings, framing_components=count) as renderer:
        renderer.render(coefficients[:2])  # warm-up: GL context, first frame
        started = time.perf_counter()
        ours = renderer.render(coefficients)
        ours_seconds = time.perf_counter() - started
        framing, tiles = renderer.framing, renderer.tiles_per_frame

    naive_settings = RenderSettings(resolution=settings.tile_pixels)
    render_naive(model, views, framing, naive_settings, coefficients[:1])  # warm-up
    started = time.perf_counter()
    naive = render_naive(model, views, framing, naive_settings, coefficients)
    naive_seconds = time.perf_counter() - started
    if arguments.supersample > 1:
        factor = arguments.supersample
        naive = naive.reshape(*naive.shape[:2], settings.resolution, factor, settings.resolution, factor, 3)
        naive = to_uint8(naive.mean(axis=(3, 5)))

    difference = np.abs(ours.astype(int) - naive)
    print(
        f"model {model.name}: {model.vertex_count} vertices; {arguments.samples} samples, {len(views)} views"
    )
    print(
        f"settings: {settings.resolution}² Workbench, supersample {settings.supersample}, {tiles} tiles/frame"
    )
    changed = np.any(difference, -1).mean()
    print(f"images agree: max difference {difference.max()} levels on {changed:.3%} of pixels")
    print(f"naive  : {naive_seconds / images * 1000:7.1f} ms/image  ({images / naive_seconds:6.1f} images/s)")
    print(f"packed : {ours_seconds / images * 1000:7.1f} ms/image  ({images / ours_seconds:6.1f} images/s)")
    print(f"speed-up packed / naive: {naive_seconds / ours_seconds:.2f}x")


if __name__ == "__main__":
    main()
