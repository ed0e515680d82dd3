"""The Blender renderer, for real (headless bpy, isolated user folder from conftest)."""

from __future__ import annotations

import numpy as np
import pytest

from semantify_engine.cli.main import main as cli_main
from semantify_engine.errors import CoefficientError, RenderError
from semantify_engine.models import LinearMorphableModel, save_model
from semantify_engine.render.settings import RenderSettings
from semantify_engine.render.views import NAMED_VIEWS, compute_framing, parse_views

bpy = pytest.importorskip("bpy")
from semantify_engine.render.blender import BlenderRenderer, pair_triangles  # noqa: E402

pytestmark = pytest.mark.blender
FRONT, SIDE = NAMED_VIEWS["front"], NAMED_VIEWS["side"]


def foreground(image: np.ndarray, background: int = 0) -> np.ndarray:
    return np.any(np.abs(image.astype(int) - background) > 8, axis=-1)


def silhouette_extent(image: np.ndarray) -> tuple[int, int]:
    """(height, width) in pixels of the non-background region."""
    mask = foreground(image)
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(columns[-1] - columns[0] + 1)


def datablock_counts() -> dict[str, int]:
    kinds = ("scenes", "objects", "meshes", "cameras", "lights", "materials", "worlds", "images")
    return {kind: len(getattr(bpy.data, kind)) for kind in kinds}


def test_images_follow_coefficients_and_repeat_exactly(capsule: LinearMorphableModel) -> None:
    coefficients = np.array([[0, 0, 0], [2, 0, 0], [0, 0, 0]], np.float32)
    with BlenderRenderer(capsule, (FRONT, SIDE)) as renderer:
        images = renderer.render(coefficients)
        again = renderer.render(coefficients[:1])
    assert images.shape == (3, 2, 224, 224, 3) and images.dtype == np.uint8
    # Tiles sit at different places in the frame: rounding may move an edge pixel's shading a few
    # levels, never more, and only on a few pixels.
    for other in (images[2], again[0]):
        difference = np.abs(images[0].astype(int) - other)
        assert difference.max() <= 6 and np.any(difference, axis=-1).mean() < 0.002
    assert np.abs(images[0].astype(int) - images[1]).sum() > 1000, "a taller shape looks different"


def test_frame_is_fixed_so_sizes_compare_across_samples(capsule: LinearMorphableModel) -> None:
    with BlenderRenderer(capsule, (FRONT,)) as renderer:
        short, tall = renderer.render(np.array([[-2, 0, 0], [2, 0, 0]], np.float32))[:, 0]
    ratio = silhouette_extent(tall)[0] / silhouette_extent(short)[0]
    assert ratio == pytest.approx(1.1 / 0.9, abs=0.03)  # component 0 scales height by 1 + 0.05·c


def test_side_view_turns_the_character(capsule: LinearMorphableModel) -> None:
    with BlenderRenderer(capsule, (FRONT, SIDE)) as renderer:
        front, side = renderer.render(np.zeros((1, 3), np.float32))[0]
    # The capsule is 0.7 times as deep as it is wide: the side view must show the depth.
    assert silhouette_extent(side)[1] / silhouette_extent(front)[1] == pytest.approx(0.7, abs=0.06)


def test_packed_frames_equal_one_image_per_frame(capsule: LinearMorphableModel) -> None:
    coefficients = np.random.default_rng(3).uniform(-2, 2, size=(7, 3)).astype(np.float32)
    packed_settings = RenderSettings()
    single_settings = RenderSettings(max_tile_pixels=224)
    with BlenderRenderer(capsule, (FRONT, SIDE), packed_settings) as packed:
        assert packed.tiles_per_frame == 16
        many = packed.render(coefficients)
    with BlenderRenderer(capsule, (FRONT, SIDE), single_settings) as single:
        assert single.tiles_per_frame == 1
        one_by_one = single.render(coefficients)
    difference = np.abs(many.astype(int) - one_by_one)
    assert difference.max() <= 6, "packing tiles must not change what a tile shows"
    assert np.any(difference, axis=-1).mean() < 0.002


def drawn_triangles(corners: np.ndarray, starts: np.ndarray) -> list[tuple[int, ...]]:
    """The triangles Blender draws for faces of 3 and 4 corners (a quad is cut along corners 0-2), each
    rotated to start at its smallest vertex so that orientation is kept but the start does not matter."""
    ends = np.append(starts[1:], len(corners))
    triangles = []
    for start, end in zip(starts, ends, strict=True):
        face = corners[start:end].tolist()
        triangles += [face] if len(face) == 3 else [face[:3], [face[0], face[2], face[3]]]
    return sorted(tuple(t[t.index(min(t)) :] + t[: t.index(min(t))]) for t in triangles)


def test_paired_triangles_are_the_same_triangles(capsule: LinearMorphableModel) -> None:
    corners, starts = pair_triangles(capsule.faces, [capsule.template])
    sizes = np.diff(np.append(starts, len(corners)))
    assert (sizes == 4).all(), "the capsule's triangles come in quad pairs"
    assert drawn_triangles(corners, starts) == drawn_triangles(
        capsule.faces.ravel(), np.arange(0, capsule.faces.size, 3)
    )


def test_sharply_folded_or_misoriented_pairs_stay_triangles() -> None:
    square = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    folded = square.copy()
    folded[3] = [0.9, 0.2, 0.9]  # the second triangle folds back over the first (fold > 60°)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    corners, starts = pair_triangles(faces, [square])
    assert len(starts) == 1 and drawn_triangles(corners, starts) == drawn_triangles(
        faces.ravel(), np.array([0, 3])
    )
    assert len(pair_triangles(faces, [square, folded])[1]) == 2, (
        "one folded shape is enough to keep them apart"
    )
    flipped = np.array([[0, 1, 2], [0, 3, 2]])  # faces the other way: a quad would turn it
    assert len(pair_triangles(flipped, [square])[1]) == 2


def test_quads_draw_what_the_triangles_draw(capsule: LinearMorphableModel) -> None:
    coefficients = np.random.default_rng(4).uniform(-2, 2, size=(4, 3)).astype(np.float32)
    with BlenderRenderer(capsule, (FRONT, SIDE), quads=False) as triangles:
        expected = triangles.render(coefficients)
    with BlenderRenderer(capsule, (FRONT, SIDE)) as quads:
        assert len(quads._meshes[0].polygons) == len(capsule.faces) // 2, "drawn as quads"
        got = quads.render(coefficients)
    # The same triangles with the same normals: at most a rounding step on a few pixels.
    difference = np.abs(got.astype(int) - expected)
    assert difference.max() <= 1 and np.any(difference, axis=-1).mean() < 0.001


@pytest.mark.parametrize(
    "settings",
    [RenderSettings(), RenderSettings(resolution=64, supersample=2, background=(1.0, 0.5, 0.2))],
    ids=["default", "supersampled-coloured"],
)
def test_cropped_tiles_are_the_full_tiles(capsule: LinearMorphableModel, settings: RenderSettings) -> None:
    # Shapes up to 4 std: wider and taller than the frame was made for, so crops differ from frame to frame.
    coefficients = np.random.default_rng(6).uniform(-4, 4, size=(9, 3)).astype(np.float32)
    with BlenderRenderer(capsule, (FRONT, SIDE), settings, sigmas=4.0) as full:
        full._crop = False
        expected = full.render(coefficients)
    with BlenderRenderer(capsule, (FRONT, SIDE), settings, sigmas=4.0) as cropped:
        assert cropped._crop, "Workbench tiles are cropped"
        cropped.render(coefficients[:8])  # one full frame of 4 × 4 tiles
        assert cropped._scene.render.resolution_x < 0.7 * 4 * settings.tile_pixels, "columns are cropped"
        got = cropped.render(coefficients)
    # Tiles move by whole pixels: rounding may move an edge pixel's shading, never more (as when packing).
    difference = np.abs(got.astype(int) - expected)
    assert difference.max() <= 6 and np.any(difference, axis=-1).mean() < 0.002
    assert np.all(got[:, :, 0, 0] == expected[:, :, 0, 0]), "background where the crop left the tile"


def test_a_shape_wider_than_its_tile_stays_out_of_its_neighbours(capsule: LinearMorphableModel) -> None:
    # The frame is made for ±1 std; +40 std of width makes the capsule twice as wide as its tile.
    shapes = np.array([[0, 0, 0], [0, 40, 0], [0, 0, 0]], np.float32)
    with BlenderRenderer(capsule, (FRONT,), sigmas=1.0) as renderer:
        alone = renderer.render(shapes[:1])[0, 0]
        together = renderer.render(shapes)[:, 0]
    assert foreground(together[1]).all(axis=1).any(), "the wide one fills its tile from side to side"
    for neighbour in (together[0], together[2]):
        difference = np.abs(neighbour.astype(int) - alone)
        assert difference.max() <= 6 and np.any(difference, axis=-1).mean() < 0.002


@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_silhouettes_stay_inside_the_frame_at_three_std(capsule: LinearMorphableModel, sign: float) -> None:
    rng = np.random.default_rng(int(sign > 0))
    corners = sign * 3.0 * np.where(rng.random((6, 3)) < 0.5, -1.0, 1.0).astype(np.float32)
    corners[0] = 3.0 * sign
    views = parse_views("front,side,az45el10")
    with BlenderRenderer(capsule, views) as renderer:
        images = renderer.render(corners)
    for image in images.reshape(-1, 224, 224, 3):
        mask = foreground(image)
        assert mask.any()
        border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        assert not border.any(), "the silhouette touches the edge of the frame"


@pytest.mark.parametrize("text", ["az90el30", "az45el-20"])
def test_a_view_with_elevation_renders_what_its_projection_says(
    capsule: LinearMorphableModel, text: str
) -> None:
    # The frame is sized from View.project; Blender must turn the body the same way, or a body seen from
    # the side and above is rolled in the picture and leaves the frame's margins.
    shape = np.array([[2.0, -1.5, 1.0]], np.float32)
    (view,) = parse_views(text)
    with BlenderRenderer(capsule, (view,)) as renderer:
        image = renderer.render(shape)[0, 0]
        framing, pixels = renderer.framing, renderer.settings.resolution
    screen = (view.project(capsule.vertices(shape)[0]) - framing.centres[0]) / framing.side * pixels
    columns = screen[:, 0] + pixels / 2
    rows = pixels / 2 - screen[:, 1]
    mask = foreground(image)
    drawn_rows, drawn_columns = np.nonzero(mask)
    expected = (rows.min(), rows.max(), columns.min(), columns.max())
    drawn = (drawn_rows.min(), drawn_rows.max() + 1, drawn_columns.min(), drawn_columns.max() + 1)
    assert np.abs(np.subtract(drawn, expected)).max() <= 2.0, f"drawn {drawn}, projected {expected}"


def test_framing_covers_random_shapes_within_three_std(capsule: LinearMorphableModel) -> None:
    views = parse_views("front,side,az30el15")
    framing = compute_framing(capsule, views, sigmas=3.0)
    shapes = capsule.vertices(np.random.default_rng(0).uniform(-3, 3, size=(50, 3)))
    for index, view in enumerate(views):
        offsets = np.abs(view.project(shapes) - framing.centres[index])
        assert offsets.max() <= framing.side / 2


def test_supersampling_is_the_box_average_of_a_larger_render(capsule: LinearMorphableModel) -> None:
    coefficients = np.array([[1, -1, 0.5]], np.float32)
    with BlenderRenderer(capsule, (FRONT,), RenderSettings(resolution=64, supersample=2)) as renderer:
        smooth = renderer.render(coefficients)[0, 0].astype(float)
    with BlenderRenderer(capsule, (FRONT,), RenderSettings(resolution=128)) as renderer:
        large = renderer.render(coefficients)[0, 0].astype(float)
    averaged = large.reshape(64, 2, 64, 2, 3).mean(axis=(1, 3))
    assert np.abs(smooth - averaged).max() <= 1.0
    assert ((smooth > 5) & (smooth < 150)).any(), "edges are blended, not hard"


def test_background_and_vertex_colours(capsule: LinearMorphableModel) -> None:
    colours = np.tile([[1.0, 0.0, 0.0]], (capsule.vertex_count, 1))
    settings = RenderSettings(resolution=64, background=(1.0, 1.0, 1.0))
    with BlenderRenderer(capsule, (FRONT,), settings, vertex_colours=colours) as renderer:
        image = renderer.render(np.zeros((1, 3), np.float32))[0, 0].astype(int)
    assert np.all(image[0, 0] == 255) and np.all(image[-1, -1] == 255)
    centre = image[32, 32]
    assert centre[0] > 2 * max(centre[1], centre[2]), f"vertex colours are red, got {centre}"
    with pytest.raises(RenderError, match="Vertex colours"):
        BlenderRenderer(capsule, (FRONT,), settings, vertex_colours=colours[:10])


def test_cycles_renders_a_lit_shape(capsule: LinearMorphableModel) -> None:
    settings = RenderSettings(resolution=48, engine="cycles", samples=2)
    with BlenderRenderer(capsule, (FRONT,), settings) as renderer:
        image = renderer.render(np.zeros((1, 3), np.float32))[0, 0]
    assert image[24, 24].mean() > 60 and image[0, 0].mean() == 0


def test_bad_input_is_refused_clearly(capsule: LinearMorphableModel) -> None:
    with BlenderRenderer(capsule, (FRONT,), RenderSettings(resolution=32)) as renderer:
        with pytest.raises(CoefficientError, match="3 components but 4"):
            renderer.render(np.zeros((1, 4), np.float32))
        with pytest.raises(CoefficientError, match="must be finite"):
            renderer.render(np.array([[0.0, np.inf, 0.0]], np.float32))
    with pytest.raises(RenderError, match="Unknown render engine 'octane'"):
        RenderSettings(engine="octane")
    with pytest.raises(RenderError, match="Unknown view 'top'"):
        parse_views("front,top")


def test_the_scene_is_left_as_it_was(capsule: LinearMorphableModel) -> None:
    before = datablock_counts()
    scene_names = [scene.name for scene in bpy.data.scenes]
    with BlenderRenderer(capsule, (FRONT, SIDE), RenderSettings(resolution=32)) as renderer:
        renderer.render(np.zeros((2, 3), np.float32))
        with pytest.raises(CoefficientError):
            renderer.render(np.full((1, 3), np.nan, np.float32))
    with BlenderRenderer(capsule, (FRONT,), RenderSettings(resolution=32, engine="cycles", samples=1)):
        pass
    assert datablock_counts() == before
    assert [scene.name for scene in bpy.data.scenes] == scene_names


def test_preview_command_writes_png_and_refuses_bad_output(capsule, tmp_path, capsys) -> None:
    from PIL import Image

    model_path = save_model(capsule, tmp_path / "capsule.npz")
    out = tmp_path / "shots" / "preview.png"
    assert (
        cli_main(["preview", str(model_path), "--coeffs", "1,0,-1", "--out", str(out), "--resolution", "64"])
        == 0
    )
    with Image.open(out) as image:
        assert image.size == (64 * 2 + 4, 64)
    assert cli_main(["preview", str(model_path), "--out", str(tmp_path / "x.jpg")]) == 2
    assert "must end in .png" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli_main(["preview", str(model_path), "--out", str(blocker / "x.png")]) == 2
    assert "Cannot write" in capsys.readouterr().err
    assert cli_main(["preview", str(model_path), "--coeffs", "1,2,3,4", "--out", str(out)]) == 2
    assert "3 components but 4" in capsys.readouterr().err


def test_the_bundled_body_is_whole_centred_and_large_in_the_frame() -> None:
    from semantify_engine.models import load

    body = load("anny-body")
    rng = np.random.default_rng(5)
    corners = 3.0 * np.where(rng.random((5, 10)) < 0.5, -1.0, 1.0).astype(np.float32)
    shapes = np.concatenate([np.zeros((1, 10), np.float32), corners])
    with BlenderRenderer(
        body, parse_views("front,side,az45el10"), RenderSettings(resolution=128)
    ) as renderer:
        images = renderer.render(shapes)
    for image in images.reshape(-1, 128, 128, 3):
        mask = foreground(image)
        border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        assert not border.any(), "a body within ±3 std of the first 10 components leaves the frame"
    mean_front = images[0, 0]
    height, _ = silhouette_extent(mean_front)
    assert height > 0.5 * 128, "the mean body fills at least half the frame height"
    _, columns = np.nonzero(foreground(mean_front))
    assert abs(columns.mean() - 64) < 6, "centred left to right"
    assert mean_front[foreground(mean_front)].mean() > 60, "lit, not a dark silhouette"
