"""Rendering throughput: the product's packed renderer against the naive way, side by side.

The naive way is what a first script does: one mesh, and for every image set each vertex coordinate
from Python, turn the mesh to the view, call ``bpy.ops.render.render(write_still=True)`` into a PNG and
read it back. Both paths render the same samples with the same settings (bundled body by default,
224², Workbench, front and side views, same orthographic frame), taking turns a pass at a time and
keeping each one's best pass (``--rounds``), and the benchmark checks that their images agree before it
prints the ratio.

    .venv/bin/python benchmarks/bench_render.py [--model anny-body] [--samples 48] [--rounds 2] [--profile]

``--profile`` adds where a packed frame's time goes, each part timed on its own in turns (best of 5):
setting the shapes (``foreach_set``, and the triangle normals the quad meshes take), laying the tiles
out (their crops, from the vertices), the render call as a whole, the same call with every tile hidden
(what costs per pixel whatever is drawn: Workbench's full-screen passes, reading the frame back from the
GPU, colour management, writing the file) and with the tiles drawn into a 64² frame (what costs per
mesh: scene evaluation, draw buffers, vertex processing), and reading the file and cutting it into tiles.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="semantify-bench-blender-"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from semantify_engine.models import load
from semantify_engine.render.blender import TILE_ROTATION_MODE, BlenderRenderer, import_bpy, mesh_from_arrays
from semantify_engine.render.images import composite, to_uint8
from semantify_engine.render.settings import RenderSettings
from semantify_engine.render.views import NAMED_VIEWS


class NaiveRenderer:
    """One render call per image, coordinates set vertex by vertex: the baseline.

    The scene is built once, as a first script would, so that rendering in chunks (interleaved with the
    packed renderer, see :func:`main`) costs the naive way nothing extra.
    """

    def __init__(self, model, views, framing, settings) -> None:
        self.model, self.views, self.framing, self.settings = model, views, framing, settings
        bpy = self.bpy = import_bpy()
        scene = self.scene = bpy.data.scenes.new("naive")
        scene.render.engine = "BLENDER_WORKBENCH"
        scene.render.film_transparent = True
        scene.render.resolution_x = scene.render.resolution_y = settings.resolution
        scene.render.resolution_percentage = 100
        scene.render.dither_intensity = 0.0
        scene.view_settings.view_transform = "Standard"
        scene.display.render_aa = "OFF"
        shading = scene.display.shading
        shading.light, shading.color_type, shading.single_color = "STUDIO", "SINGLE", settings.colour
        camera_data = self.camera_data = bpy.data.cameras.new("naive")
        camera_data.type, camera_data.ortho_scale, camera_data.clip_end = "ORTHO", framing.side, 1000.0
        camera = self.camera = bpy.data.objects.new("naive", camera_data)
        camera.location, camera.rotation_euler = (0.0, -50.0, 0.0), (math.pi / 2, 0.0, 0.0)
        scene.collection.objects.link(camera)
        scene.camera = camera
        self.mesh = mesh_from_arrays(bpy, "naive", model.template, model.faces)
        self.body = bpy.data.objects.new("naive", self.mesh)
        scene.collection.objects.link(self.body)
        self.folder = Path(tempfile.mkdtemp(prefix="semantify-naive-"))
        scene.render.filepath = str(self.folder / "image")

    def render(self, coefficients) -> np.ndarray:
        from PIL import Image

        model, views, framing, size = self.model, self.views, self.framing, self.settings.resolution
        mesh, body = self.mesh, self.body
        images = np.empty((len(coefficients), len(views), size, size, 3), np.uint8)
        for sample, vertices in enumerate(model.vertices(coefficients)):
            for index, view in enumerate(views):
                for vertex, position in zip(mesh.vertices, vertices, strict=True):
                    vertex.co = position
                mesh.update()
                body.rotation_mode = TILE_ROTATION_MODE
                body.rotation_euler = (math.radians(view.elevation), 0.0, math.radians(view.azimuth))
                body.location = (-float(framing.centres[index][0]), 0.0, -float(framing.centres[index][1]))
                self.bpy.ops.render.render(write_still=True, scene=self.scene.name)
                with Image.open(self.folder / "image.png") as png:
                    rgba = np.asarray(png.convert("RGBA"))
                images[sample, index] = composite(rgba, self.settings.background)
        return images

    def close(self) -> None:
        bpy = self.bpy
        for collection, block in (
            (bpy.data.objects, self.body),
            (bpy.data.objects, self.camera),
            (bpy.data.meshes, self.mesh),
        ):
            collection.remove(block)
        bpy.data.cameras.remove(self.camera_data)
        bpy.data.scenes.remove(self.scene)
        shutil.rmtree(self.folder)


def profile(renderer: BlenderRenderer, coefficients: np.ndarray) -> None:
    """Time the parts of one full frame, each alone, in turns; print ms per frame and per image."""
    from semantify_engine.render import blender as packed

    tiles = renderer.tiles_per_frame
    views = len(renderer.views)
    batch = coefficients[: tiles // views]
    samples = len(batch)
    scene = renderer._scene
    jobs = [(sample, view) for sample in range(samples) for view in range(views)]
    vertices = renderer.model.vertices(batch)

    def set_shapes() -> None:
        for slot, shape in enumerate(vertices):
            renderer._set_shape(renderer._meshes[slot], shape)
            renderer._shapes[slot] = shape

    def whole_frame() -> None:
        renderer._render_frame(jobs)

    def lay_out() -> None:
        layouts.append(renderer._lay_out(jobs))

    def render_call() -> None:
        renderer._write_frame()

    def read_and_cut() -> None:
        renderer._cut(packed.read_tga(renderer._frame_base.with_suffix(".tga")), layouts[-1])

    def hidden(call: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            for tile in renderer._tiles:
                tile.hide_render = True
            call()
            for tile in renderer._tiles[: len(jobs)]:
                tile.hide_render = False

        return run

    def small_frame() -> None:
        render = scene.render
        size = render.resolution_x, render.resolution_y
        render.resolution_x = render.resolution_y = 64
        renderer._write_frame()
        render.resolution_x, render.resolution_y = size

    layouts: list = []
    parts = {
        "set the shapes (foreach_set, normals, mesh update)": set_shapes,
        "lay the tiles out (crops from the vertices)": lay_out,
        "render call (evaluate, draw, read back, write)": render_call,
        "read the file, cut into tiles": read_and_cut,  # the frame render_call just wrote
        "  render call, every tile hidden: per-pixel costs": hidden(render_call),
        "  render call, tiles in a 64² frame: per-mesh costs": small_frame,
        "whole frame as render() does it": whole_frame,
    }
    set_shapes()
    whole_frame()  # lays the tiles out
    lay_out()
    best = {name: float("inf") for name in parts}
    for _ in range(5):
        for name, part in parts.items():
            set_shapes()  # every render evaluates changed shapes, as in a build
            started = time.perf_counter()
            part()
            best[name] = min(best[name], time.perf_counter() - started)
    size = f"{scene.render.resolution_x}×{scene.render.resolution_y}"
    print(f"profile of one frame ({len(jobs)} tiles, {samples} samples × {views} views, {size}), best of 5:")
    for name, seconds in best.items():
        print(f"  {name:<50} {seconds * 1000:7.1f} ms/frame {seconds / len(jobs) * 1000:6.2f} ms/image")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="anny-body")
    parser.add_argument("--samples", type=int, default=48)
    parser.add_argument("--supersample", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="passes each way, taking turns; best counts")
    parser.add_argument("--profile", action="store_true", help="where a packed frame's time goes")
    arguments = parser.parse_args()

    model = load(arguments.model)
    views = (NAMED_VIEWS["front"], NAMED_VIEWS["side"])
    settings = RenderSettings(supersample=arguments.supersample)
    rng = np.random.default_rng(0)
    count = min(10, model.component_count)
    box = model.coefficient_box(2.0, count)
    coefficients = rng.uniform(box[:, 0], box[:, 1], size=(arguments.samples, count)).astype(np.float32)
    images = arguments.samples * len(views)

    # The two ways take turns, a whole pass each, and each keeps its best pass: on a shared machine a job
    # starting between two single passes would skew the ratio. Each pass starts with an untimed frame:
    # the first frame after the other scene rendered costs the packed renderer some 50 ms more, which a
    # dataset build, rendering frame after frame, never pays (so turns of one frame would not do either).
    with BlenderRenderer(model, views, settings, framing_components=count) as renderer:
        framing, tiles = renderer.framing, renderer.tiles_per_frame
        naive_renderer = NaiveRenderer(model, views, framing, RenderSettings(resolution=settings.tile_pixels))
        renderer.render(coefficients[:2])  # warm-up: GL context, first frame
        naive_renderer.render(coefficients[:1])
        ours_passes, naive_passes = [], []
        for _ in range(arguments.rounds):
            renderer.render(coefficients[: max(1, tiles // len(views))])
            started = time.perf_counter()
            ours = renderer.render(coefficients)
            ours_passes.append(time.perf_counter() - started)
            naive_renderer.render(coefficients[:1])
            started = time.perf_counter()
            naive = naive_renderer.render(coefficients)
            naive_passes.append(time.perf_counter() - started)
        naive_renderer.close()
        ours_seconds, naive_seconds = min(ours_passes), min(naive_passes)
        if arguments.profile:
            profile(renderer, coefficients)

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
    print(
        f"images agree: max difference {difference.max()} levels on {changed:.3%} of pixels "
        f"(mean {difference.mean():.4f} levels)"
    )
    for name, best, passes in (("naive", naive_seconds, naive_passes), ("packed", ours_seconds, ours_passes)):
        each = ", ".join(f"{seconds / images * 1000:.1f}" for seconds in passes)
        rate = f"{images / best:6.1f} images/s; passes {each}"
        print(f"{name:<7}: {best / images * 1000:7.1f} ms/image  ({rate})")
    print(f"speed-up packed / naive: {naive_seconds / ours_seconds:.2f}x")


if __name__ == "__main__":
    main()
