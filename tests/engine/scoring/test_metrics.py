"""The metric scorer: measurements with a known truth (analytic shapes), continuity, and the anny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import ROOT

from semantify_engine.errors import SemantifyError
from semantify_engine.models import LinearMorphableModel, load
from semantify_engine.models.registry import bundled_model_paths
from semantify_engine.scoring import geometry, landmarks, measurements
from semantify_engine.scoring.measurements import BODY_DENSITY_KG_M3
from semantify_engine.scoring.metrics import MetricScorer

# =========================================================================== analytic test shapes


def grid_faces(rings: int, segments: int) -> list[list[int]]:
    """Triangles joining ``rings`` stacked loops of ``segments`` vertices (vertex = ring * segments + k)."""
    faces = []
    for ring in range(rings - 1):
        for k in range(segments):
            a, b = ring * segments + k, ring * segments + (k + 1) % segments
            faces += [[a, b, b + segments], [a, b + segments, a + segments]]
    return faces


def lids(first: int, last: int, segments: int, bottom_centre: int, top_centre: int) -> list[list[int]]:
    """Fans closing the first and the last loop, oriented outwards like the side faces."""
    faces = []
    for k in range(segments):
        faces.append([bottom_centre, first + (k + 1) % segments, first + k])
        faces.append([top_centre, last + k, last + (k + 1) % segments])
    return faces


def cylinder(radius: float, height: float, segments: int = 64, rings: int = 9, closed: bool = True):
    """Vertices and faces of a cylinder standing on z = 0 (closed with lids unless told otherwise)."""
    angles = np.arange(segments) * 2 * np.pi / segments
    loop = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    heights = np.linspace(0.0, height, rings)
    vertices = np.concatenate([np.column_stack([loop, np.full(segments, z)]) for z in heights])
    faces = grid_faces(rings, segments)
    if closed:
        count = len(vertices)
        vertices = np.concatenate([vertices, [[0, 0, 0], [0, 0, height]]])
        faces += lids(0, (rings - 1) * segments, segments, count, count + 1)
    return vertices, np.asarray(faces)


def polygon_perimeter(radius: float, segments: int) -> float:
    return 2 * segments * radius * np.sin(np.pi / segments)


def polygon_area(radius: float, segments: int) -> float:
    return 0.5 * segments * radius**2 * np.sin(2 * np.pi / segments)


def box(size: tuple[float, float, float]):
    """A closed box [0, a] x [0, b] x [0, c] made of 12 outward triangles."""
    a, b, c = size
    vertices = np.array([[x, y, z] for z in (0, c) for y in (0, b) for x in (0, a)], dtype=float)
    quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    faces = [[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads]
    return vertices, np.asarray(faces)


def sphere(radius: float, rings: int = 40, segments: int = 64):
    """A UV sphere centred on (0, 0, radius): loops between the poles plus two pole vertices."""
    polar = np.linspace(0, np.pi, rings + 2)[1:-1]  # bottom (z = 0) to top
    angles = np.arange(segments) * 2 * np.pi / segments
    vertices = [
        [radius * np.sin(p) * np.cos(a), radius * np.sin(p) * np.sin(a), radius - radius * np.cos(p)]
        for p in polar
        for a in angles
    ]
    count = len(vertices)
    vertices += [[0, 0, 0], [0, 0, 2 * radius]]
    faces = grid_faces(rings, segments) + lids(0, (rings - 1) * segments, segments, count, count + 1)
    return np.asarray(vertices), np.asarray(faces)


def as_model(vertices: np.ndarray, faces: np.ndarray, kind: str = "body", name: str = "shape"):
    """A one-component model around a fixed mesh (the scorer only needs its template and faces)."""
    basis = np.zeros((1, *vertices.shape))
    basis[0, :, 2] = vertices[:, 2]  # component 0 stretches the height: something to move
    return LinearMorphableModel(
        name=name,
        kind=kind,
        template=vertices,
        faces=faces,
        basis=basis,
        std=np.ones(1),
        component_names=("stretch",),
    )


def girths_at(vertices: np.ndarray, faces: np.ndarray, levels) -> np.ndarray:
    edges = geometry.unique_edges(faces)
    return geometry.section_girths(vertices[None].astype(np.float64), edges, np.asarray([levels], float))[0]


# ========================================================================== analytic truth


def test_closed_cylinder_height_volume_and_girth_at_any_level() -> None:
    radius, height, segments = 0.15, 1.7, 64
    vertices, faces = cylinder(radius, height, segments)
    scorer = MetricScorer.for_model(as_model(vertices, faces))  # no landmarks: generic body
    assert scorer.names == ("height", "mass")
    assert scorer.units == ("m", "kg")
    measured = scorer.measure(vertices)
    assert measured.dtype == np.float32 and measured.shape == (2,)
    np.testing.assert_allclose(measured[0], height, rtol=1e-6)
    volume = polygon_area(radius, segments) * height
    np.testing.assert_allclose(measured[1], volume * BODY_DENSITY_KG_M3, rtol=1e-5)
    np.testing.assert_allclose(volume, np.pi * radius**2 * height, rtol=2e-3)  # the mesh is a 64-gon prism
    levels = np.random.default_rng(0).uniform(0.001, height - 0.001, 25)
    # 3e-4: the support-function sum's worst case (a regular polygon aliasing with the 128 directions)
    np.testing.assert_allclose(
        girths_at(vertices, faces, levels), polygon_perimeter(radius, segments), rtol=3e-4
    )
    np.testing.assert_allclose(polygon_perimeter(radius, segments), 2 * np.pi * radius, rtol=5e-4)


def test_girth_is_zero_where_the_plane_misses_the_mesh() -> None:
    vertices, faces = cylinder(0.1, 1.0)
    np.testing.assert_array_equal(girths_at(vertices, faces, [-0.5, 1.5]), [0.0, 0.0])


def test_box_volume_height_and_girth() -> None:
    size = (0.3, 0.2, 0.5)
    vertices, faces = box(size)
    measured = MetricScorer.for_model(as_model(vertices, faces)).measure(vertices)
    np.testing.assert_allclose(measured, [0.5, np.prod(size) * BODY_DENSITY_KG_M3], rtol=1e-6)
    # sharp corners are the support-function sum's worst case: 2e-4 relative
    np.testing.assert_allclose(girths_at(vertices, faces, [0.1, 0.25, 0.4]), 2 * (0.3 + 0.2), rtol=3e-4)


def test_sphere_volume_and_girths_match_an_independent_convex_hull() -> None:
    spatial = pytest.importorskip("scipy.spatial")
    radius = 0.2
    vertices, faces = sphere(radius)
    volume = geometry.closed_volume(vertices[None], faces, geometry.hole_caps(faces, len(vertices)))[0]
    np.testing.assert_allclose(volume, spatial.ConvexHull(vertices).volume, rtol=1e-9)
    np.testing.assert_allclose(volume, 4 / 3 * np.pi * radius**3, rtol=1e-2)
    for level in (0.05, 0.2, 0.33):
        section = []  # the crossing points, one edge at a time
        for a, b in geometry.unique_edges(faces):
            za, zb = vertices[a, 2] - level, vertices[b, 2] - level
            if (za > 0) != (zb > 0):
                section.append(vertices[a, :2] + za / (za - zb) * (vertices[b, :2] - vertices[a, :2]))
        expected = spatial.ConvexHull(np.asarray(section)).area  # a 2-D hull's "area" is its perimeter
        np.testing.assert_allclose(girths_at(vertices, faces, [level]), expected, rtol=3e-4)


def test_holes_are_capped_so_an_open_cylinder_has_the_closed_ones_volume() -> None:
    radius, height, segments = 0.1, 0.8, 48
    vertices, faces = cylinder(radius, height, segments, closed=False)
    caps = geometry.hole_caps(faces, len(vertices))
    assert caps.count == 2
    volume = geometry.closed_volume(vertices[None], faces, caps)[0]
    np.testing.assert_allclose(volume, polygon_area(radius, segments) * height, rtol=1e-9)
    fraction = geometry.cap_area_fraction(vertices, faces, caps)
    np.testing.assert_allclose(
        fraction,
        2 * polygon_area(radius, segments) / (polygon_perimeter(radius, segments) * height),
        rtol=1e-9,
    )


def test_a_body_with_big_holes_gets_height_only_and_says_why(capsule) -> None:
    scorer = MetricScorer.for_model(capsule)  # an open tube: its lids would be 4 % of its surface
    assert scorer.names == ("height",)
    assert "no mass" in scorer.notes and "landmark" in scorer.notes
    np.testing.assert_allclose(scorer.measure(capsule.template), [1.7], rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    st.floats(0.05, 0.5),
    st.floats(0.3, 2.5),
    st.floats(0.3, 3.0),
    st.tuples(st.floats(-2, 2), st.floats(-2, 2), st.floats(-2, 2)),
)
def test_scaling_and_moving_a_cylinder(radius: float, height: float, scale: float, shift) -> None:
    """Height scales by s, mass by s³, girths by s; moving the mesh changes nothing."""
    vertices, faces = cylinder(radius, height, segments=32, rings=3)
    scorer = MetricScorer.for_model(as_model(vertices, faces))
    base = scorer.measure(vertices).astype(np.float64)
    moved = scorer.measure(vertices * scale + np.asarray(shift)).astype(np.float64)
    np.testing.assert_allclose(moved, base * [scale, scale**3], rtol=1e-4)
    level = height * 0.4
    np.testing.assert_allclose(
        girths_at(vertices * scale + shift, faces, [level * scale + shift[2]]),
        girths_at(vertices, faces, [level]) * scale,
        rtol=1e-9,
    )


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(1e-7, 1e-4))
def test_girth_and_volume_are_continuous_under_small_vertex_moves(seed: int, size: float) -> None:
    """No jumps: moving every vertex by at most ``size`` moves a girth by a small multiple of it, even
    with planes placed exactly on vertex rings (where crossing edges switch)."""
    vertices, faces = cylinder(0.15, 1.0, segments=24, rings=11)
    moved = vertices + np.random.default_rng(seed).uniform(-size, size, vertices.shape)
    levels = [0.1, 0.35, 0.5, 0.55]  # 0.1 and 0.5 lie exactly on rings of the unmoved mesh
    # a crossing point moves along its edge by at most edge length x (z move / edge's z extent):
    # 0.1 m rings, so 2 * size / 0.1 = 20 * size per coordinate, times a few hull edges
    assert np.abs(girths_at(moved, faces, levels) - girths_at(vertices, faces, levels)).max() < 200 * size
    caps = geometry.hole_caps(faces, len(vertices))
    change = geometry.closed_volume(moved[None], faces, caps) - geometry.closed_volume(
        vertices[None], faces, caps
    )
    assert abs(change[0]) < 10 * size  # surface area (~1.1 m²) x displacement, with margin


def test_girth_moves_continuously_when_the_plane_sweeps_across_vertices() -> None:
    vertices, faces = sphere(0.2, rings=12, segments=16)  # coarse: crossings switch often
    levels = np.linspace(0.01, 0.39, 4001)
    girths = girths_at(vertices, faces, levels)
    steps = np.abs(np.diff(girths))
    # the slope of a sphere's girth is bounded (2π · dr/dz); no step may exceed it
    assert steps.max() < 2 * np.pi * (levels[1] - levels[0]) * 8


def test_index_ranges_round_trip() -> None:
    indices = np.array([3, 4, 5, 9, 11, 12, 40])
    ranges = landmarks.indices_to_ranges(indices)
    assert ranges == [[3, 6], [9, 10], [11, 13], [40, 41]]
    np.testing.assert_array_equal(landmarks.ranges_to_indices(ranges), indices)


# ================================================================================ bad inputs


def test_wrong_vertex_counts_and_shapes_are_refused_naming_the_model() -> None:
    vertices, faces = box((1, 1, 1))
    scorer = MetricScorer.for_model(as_model(vertices, faces, name="my-box"))
    with pytest.raises(SemantifyError, match=r"my-box.*needs 8 vertices per mesh; got 7"):
        scorer.measure(vertices[:7])
    with pytest.raises(SemantifyError, match=r"my-box.*shape \(N, 8, 3\)"):
        scorer.measure(vertices[:, :2])
    with pytest.raises(SemantifyError, match="finite"):
        scorer.measure(np.full_like(vertices, np.nan))
    assert scorer.measure(np.zeros((0, 8, 3))).shape == (0, 2)  # an empty batch is not an error


def test_a_model_without_a_measurement_definition_is_refused_clearly() -> None:
    vertices, faces = sphere(0.1, rings=6, segments=8)
    with pytest.raises(SemantifyError, match=r"'a-ball'.*no measurement definition.*CLIP"):
        MetricScorer.for_model(as_model(vertices, faces, kind="head-shape", name="a-ball"))


def test_bad_definitions_are_refused() -> None:
    vertices, faces = box((1, 1, 1))
    model = as_model(vertices, faces)
    base = {"name": "test", "topology": {"vertex_count": 8}, "landmarks": {"top": [7]}}
    unknown = {**base, "measurements": [{"name": "x", "method": "telepathy"}]}
    with pytest.raises(SemantifyError, match="unknown measurement method 'telepathy'"):
        MetricScorer.from_definition(model, unknown)
    missing = {**base, "measurements": [{"name": "x", "method": "height_above_floor", "landmark": "nose"}]}
    with pytest.raises(SemantifyError, match="undefined landmark 'nose'"):
        MetricScorer.from_definition(model, missing)
    incomplete = {**base, "measurements": [{"name": "x", "method": "girth", "level": {"landmark": "top"}}]}
    with pytest.raises(SemantifyError, match="'x' lacks the key 'region'"):
        MetricScorer.from_definition(model, incomplete)
    with pytest.raises(SemantifyError, match="defines no measurements"):
        MetricScorer.from_definition(model, {**base, "measurements": []})
    with pytest.raises(SemantifyError, match="9 vertices"):
        MetricScorer.from_definition(model, {**base, "topology": {"vertex_count": 9}, "measurements": []})


def test_custom_definition_measures_a_box_and_describes_itself() -> None:
    vertices, faces = box((0.4, 0.2, 1.0))
    definition = {
        "name": "box-test",
        "landmarks": {"top": [4, 5, 6, 7], "bottom": [0, 1, 2, 3], "corner_a": [4], "corner_b": [7]},
        "regions": {"all": [[0, 8]]},
        "measurements": [
            {"name": "girth", "method": "girth", "region": "all", "level": {"landmark": "bottom"}},
            {
                "name": "widest",
                "method": "max_girth",
                "region": "all",
                "level": {"landmark": "bottom"},
                "level_high": {"landmark": "top"},
                "fractions": [0.25, 0.5],
            },
            {"name": "diagonal", "method": "distance", "pairs": [["corner_a", "corner_b"]]},
            {"name": "rise", "method": "vertical_gap", "pairs": [["top", "bottom"]]},
            {"name": "rise_change", "method": "vertical_gap_change", "pairs": [["top", "bottom"]]},
            {"name": "top", "method": "height_above_floor", "landmark": "top"},
        ],
    }
    scorer = MetricScorer.from_definition(as_model(vertices, faces), definition)
    stretched = vertices * [1, 1, 2]
    measured = scorer.measure(np.stack([vertices, stretched]))
    assert measured.shape == (2, 6)
    # a plane through the bottom face: its corners count as below the plane, so the vertical edges cross
    # it at their lower ends and the tape goes round the bottom face
    np.testing.assert_allclose(measured[:, 0], 1.2, rtol=3e-4)
    np.testing.assert_allclose(measured[:, 1], 1.2, rtol=3e-4)
    np.testing.assert_allclose(measured[:, 2], np.hypot(0.4, 0.2), rtol=1e-6)
    np.testing.assert_allclose(measured[:, 3], [1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(measured[:, 4], [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(measured[:, 5], [1.0, 2.0], rtol=1e-6)
    described = json.loads(json.dumps(scorer.to_json()))
    assert described["names"] == list(scorer.names) and described["definition"] == "box-test"
    assert [m["method"] for m in described["measurements"]] == [
        "girth",
        "max_girth",
        "distance",
        "vertical_gap",
        "vertical_gap_change",
        "height_above_floor",
    ]


# ============================================================================ the anny models


def bundled(name: str) -> LinearMorphableModel:
    assert name in bundled_model_paths(), f"bundled model {name} is missing from the package"
    return load(name)


@pytest.fixture(scope="module")
def body() -> LinearMorphableModel:
    return bundled("anny-body")


@pytest.fixture(scope="module")
def body_scorer(body) -> MetricScorer:
    return MetricScorer.for_model(body)


@pytest.fixture(scope="module")
def body_samples(body) -> np.ndarray:
    coefficients = np.random.default_rng(7).uniform(-2, 2, (60, 10)).astype(np.float32)
    return body.vertices(coefficients)


BODY_RANGES = {  # anny's adult range, generously: its source bodies include its extremes (1.22-2.44 m tall)
    "height": (1.2, 2.55),
    "mass": (18.0, 210.0),
    "chest": (0.6, 1.5),
    "waist": (0.5, 1.55),
    "hips": (0.65, 1.55),
    "shoulder_width": (0.2, 0.55),
    "leg_length": (0.45, 1.35),
}


@pytest.mark.parametrize("name", ["anny-body", "anny-body-male", "anny-body-female"])
def test_anny_bodies_are_measured_within_human_ranges(name: str) -> None:
    model = bundled(name)
    scorer = MetricScorer.for_model(model)
    assert scorer.names == tuple(BODY_RANGES) and scorer.definition == "anny-body"
    assert scorer.units == ("m", "kg", "m", "m", "m", "m", "m")
    rows = np.random.default_rng(1).choice(model.bank.size, 60, replace=False)
    measured = scorer.measure(
        np.concatenate([model.template[None], model.vertices(model.bank.coefficients[rows])])
    )
    for column, (low, high) in enumerate(BODY_RANGES.values()):
        assert low <= measured[:, column].min() and measured[:, column].max() <= high, scorer.names[column]
    template = dict(zip(scorer.names, measured[0], strict=True))
    assert template["hips"] > template["waist"] and template["chest"] > template["waist"]
    assert 0.4 < template["leg_length"] / template["height"] < 0.55


def test_anny_body_matches_annys_own_height_waist_and_volume_definitions(body, body_scorer) -> None:
    """Height is anny's definition exactly; our waist tape sits at the height of anny's waist loop and
    reads a little shorter than that loop's polyline (the tape bridges the navel and the small dents the
    loop follows)."""
    definition = landmarks.load_definition(landmarks.LANDMARK_DIR / "anny-body.json")
    loop = np.asarray(definition["landmarks"]["waist_loop"])
    template = body.template.astype(np.float64)
    measured = dict(zip(body_scorer.names, body_scorer.measure(template), strict=True))
    assert measured["height"] == pytest.approx(np.ptp(template[:, 2]), rel=1e-6)
    polyline = np.linalg.norm(template[loop] - np.roll(template[loop], 1, axis=0), axis=1).sum()
    assert 0.97 * polyline < measured["waist"] <= polyline
    volume = geometry.closed_volume(
        template[None], body.faces, geometry.hole_caps(body.faces, body.vertex_count)
    )
    assert measured["mass"] == pytest.approx(volume[0] * 985.0, rel=1e-5)


@settings(max_examples=15, deadline=None)
@given(st.floats(0.8, 1.25), st.floats(0.8, 1.25), st.floats(-1, 1))
def test_anny_body_measurements_scale_as_lengths_and_volumes(
    body, body_scorer, body_samples, scale: float, widen: float, lift: float
) -> None:
    """Scale by s: lengths by s, mass by s³. Widen x and y by w: girths by w, height and leg length stay.
    Lift the body: nothing changes."""
    vertices = body_samples[:4].astype(np.float64)
    base = body_scorer.measure(vertices).astype(np.float64)
    lengths = [0, 2, 3, 4, 5, 6]
    scaled = body_scorer.measure(vertices * scale + [0.0, 0.0, lift]).astype(np.float64)
    np.testing.assert_allclose(scaled[:, lengths], base[:, lengths] * scale, rtol=2e-4)
    np.testing.assert_allclose(scaled[:, 1], base[:, 1] * scale**3, rtol=2e-4)
    wide = body_scorer.measure(vertices * [widen, widen, 1.0]).astype(np.float64)
    np.testing.assert_allclose(wide[:, [2, 3, 4]], base[:, [2, 3, 4]] * widen, rtol=2e-4)
    np.testing.assert_allclose(wide[:, [0, 6]], base[:, [0, 6]], rtol=1e-6)


def test_anny_body_measurements_have_no_jumps_along_a_path_between_bodies(body, body_scorer) -> None:
    """Walk in 400 steps between two distant bodies: no measurement may jump (a plane switching vertices,
    a tape switching loops); each step's change stays within a few times the typical step."""
    ends = np.random.default_rng(3).uniform(-2.5, 2.5, (2, 10)).astype(np.float32)
    path = ends[0] + np.linspace(0.0, 1.0, 401)[:, None] * (ends[1] - ends[0])
    measured = body_scorer.measure(body.vertices(path)).astype(np.float64)
    steps = np.abs(np.diff(measured, axis=0))
    typical = np.median(steps, axis=0)
    assert np.all(steps.max(axis=0) <= 6 * typical + [1e-4, 1e-2, 1e-4, 1e-4, 1e-4, 1e-4, 1e-4])


@pytest.mark.parametrize("name", ["anny-body", "anny-body-male", "anny-body-female"])
def test_anny_trunk_tapes_never_cross_into_arms_head_or_lower_legs(name: str) -> None:
    """The trunk region has a seam where the arms, neck and knees leave it; a plane crossing that seam would
    lose section points there (a jump). The armpit ceiling keeps chest planes below it: check on bodies
    from a ±2.5 std box that no girth plane crosses an edge with one end outside the trunk."""
    model = bundled(name)
    scorer = MetricScorer.for_model(model)
    definition = landmarks.load_definition(landmarks.LANDMARK_DIR / "anny-body.json")
    trunk = np.zeros(model.vertex_count, dtype=bool)
    trunk[landmarks.ranges_to_indices(definition["regions"]["trunk"])] = True
    edges = geometry.unique_edges(model.faces)
    seam = edges[trunk[edges[:, 0]] != trunk[edges[:, 1]]]
    coefficients = np.random.default_rng(11).uniform(-2.5, 2.5, (150, 10)).astype(np.float32)
    vertices = model.vertices(coefficients).astype(np.float64)
    low = np.minimum(vertices[:, seam[:, 0], 2], vertices[:, seam[:, 1], 2])[:, None, :]
    high = np.maximum(vertices[:, seam[:, 0], 2], vertices[:, seam[:, 1], 2])[:, None, :]
    for girth in (m for m in scorer.measures if isinstance(m, measurements.Girth)):
        levels = girth.levels(vertices)[:, :, None]
        assert not np.any((low <= levels) & (high > levels)), girth.name


def test_anny_face_expressions_move_the_face_measurements_monotonically() -> None:
    model = bundled("anny-face-expression")
    scorer = MetricScorer.for_model(model)
    assert scorer.names[:4] == ("mouth_opening", "eye_opening", "brow_height", "jaw_drop")
    assert scorer.definition == "anny-head"
    neutral = scorer.measure(model.template)
    np.testing.assert_allclose(neutral[[0, 3]], 0.0, atol=5e-4)  # lips touch; jaw_drop is 0 by definition
    assert 0.005 < neutral[1] < 0.012 and 0.01 < neutral[2] < 0.03
    weights = np.linspace(0.0, 1.0, 11)

    def sweep(*names: str) -> np.ndarray:
        coefficients = np.zeros((len(weights), model.component_count), dtype=np.float32)
        for name in names:
            coefficients[:, model.component_names.index(name)] = weights
        return scorer.measure(model.vertices(coefficients))

    opened = sweep("jawOpen")
    assert np.all(np.diff(opened[:, 0]) > 0) and np.all(np.diff(opened[:, 3]) > 0)
    assert opened[-1, 0] > 0.02 and opened[-1, 3] > 0.015
    blinked = sweep("eyeBlinkLeft", "eyeBlinkRight")
    assert np.all(np.diff(blinked[:, 1]) < 0) and blinked[-1, 1] < 0.001
    raised = sweep("browInnerUp", "browOuterUpLeft", "browOuterUpRight")
    assert np.all(np.diff(raised[:, 2]) > 0)
    lowered = sweep("browDownLeft", "browDownRight")
    assert np.all(np.diff(lowered[:, 2]) < 0)


def test_anny_head_shapes_share_the_face_definition() -> None:
    model = bundled("anny-head-shape")
    scorer = MetricScorer.for_model(model)
    assert scorer.definition == "anny-head"
    measured = scorer.measure(model.vertices(np.random.default_rng(0).uniform(-2, 2, (30, 10))))
    assert np.all(np.abs(measured[:, 0]) < 0.002)  # neutral mouths stay closed whatever the identity
    assert np.all((measured[:, 1] > 0.004) & (measured[:, 2] > 0.008))


def test_anny_head_measurements_are_a_tape_measures_and_scale_with_the_head() -> None:
    model = bundled("anny-head-shape")
    scorer = MetricScorer.for_model(model).subset(["head_circumference", "face_height", "head_width"])
    template = model.template.astype(np.float64)
    circumference, face_height, width = scorer.measure(template)
    # adult anthropometry: head circumference 52-60 cm, nasion-menton 10-13 cm, head width with ears ~16-18
    assert 0.52 < circumference < 0.60 and 0.09 < face_height < 0.13 and 0.15 < width < 0.19
    shapes = model.vertices(np.random.default_rng(1).uniform(-2, 2, (40, 10)))
    measured = scorer.measure(shapes)
    assert np.all(measured.std(axis=0) > 0.002), "head shapes must move every head measurement"
    for scale in (0.9, 1.1):
        np.testing.assert_allclose(scorer.measure(shapes * scale), measured * scale, rtol=1e-4)


def test_bundled_landmark_files_fit_their_topologies() -> None:
    """Every landmark file names valid vertices, and each bundled anny model finds its file."""
    expected = {
        "anny-body": "anny-body",
        "anny-body-male": "anny-body",
        "anny-body-female": "anny-body",
        "anny-head-shape": "anny-head",
        "anny-face-expression": "anny-head",
    }
    paths = bundled_model_paths()
    for name, definition in expected.items():
        if name in paths:
            model = load(paths[name])
            assert landmarks.find_definition(model)["name"] == definition
    for path in sorted(landmarks.LANDMARK_DIR.glob("*.json")):
        data = landmarks.load_definition(path)
        count = data["topology"]["vertex_count"]
        for indices in data["landmarks"].values():
            assert all(0 <= i < count for i in indices)
        for ranges in data["regions"].values():
            assert all(0 <= a < b <= count for a, b in ranges)


def test_the_body_density_is_pinned_and_is_the_landmark_files() -> None:
    """985 kg/m³ (the README's figure); the bundled body's landmark file states the same number."""
    from semantify_engine.scoring.measurements import BODY_DENSITY_KG_M3

    landmarks = ROOT / "semantify_engine" / "data" / "landmarks"
    specs = json.loads((landmarks / "anny-body.json").read_text())
    stated = [spec["density_kg_m3"] for spec in specs["measurements"] if spec["method"] == "volume_mass"]
    assert BODY_DENSITY_KG_M3 == 985.0 and stated == [BODY_DENSITY_KG_M3]
