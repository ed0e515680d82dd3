"""User-owned models (SMPL family through smplx, SMAL) and models from shape-key OBJ files.

The owners' files cannot be had here, so the tests write synthetic files in the official key layouts
(real key names, dtypes and array layouts; a few hundred vertices) and check the loaded models against
smplx's own forward pass. Old .pkl files hold chumpy objects and scipy sparse matrices from module paths
that no longer exist; the tests write such pickles through stand-in modules that exist only while
writing, so loading proves that neither chumpy nor those paths are imported.
"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from support.owner_files import (
    UNSIGNED_MINUS_ONE,
    Ch,
    ChAdd,
    CscMatrix,
    OldCscMatrix,
    as_chumpy,
    body_arrays,
    write_pickle,
)

from semantify_engine.errors import ModelFileError
from semantify_engine.models import list_models, load, load_model, save_model
from semantify_engine.models.shape_keys import load_shape_key_objs, model_from_shape_keys, triangulate
from semantify_engine.models.user_models import USER_MODEL_NAMES, list_user_models, load_user_model

torch = pytest.importorskip("torch")
smplx = pytest.importorskip("smplx")

betas_strategy = arrays(np.float32, 10, elements=st.floats(-3, 3, width=32))


def hand_pca(rng: np.random.Generator, suffix: str = "") -> dict[str, np.ndarray]:
    return {
        f"hands_components{suffix}": rng.normal(size=(45, 45)),
        f"hands_mean{suffix}": rng.normal(size=45),
    }


def smplx_arrays(seed: int = 1, vertices: int = 300) -> dict[str, np.ndarray]:
    """SMPL-X v1.1 npz layout: 300 shape + 100 expression directions, landmarks, hand PCA, objects."""
    rng = np.random.default_rng(seed)
    content = body_arrays(seed, vertices, joints=55, shape_dirs=400)
    content.update(hand_pca(rng, "l"), **hand_pca(rng, "r"))
    faces = len(content["f"])
    content.update(
        lmk_faces_idx=rng.integers(0, faces, size=51).astype(np.int64),
        lmk_bary_coords=rng.dirichlet([1, 1, 1], size=51),
        dynamic_lmk_faces_idx=rng.integers(0, faces, size=(79, 17)).astype(np.int64),
        dynamic_lmk_bary_coords=rng.dirichlet([1, 1, 1], size=(79, 17)),
        vt=rng.random((vertices + 20, 2)),
        ft=content["f"].copy(),
        joint2num=np.array({"pelvis": 0, "left_hip": 1}, dtype=object),  # object arrays, as in the real file
        part2num=np.array({"global": 0}, dtype=object),
    )
    content.pop("J")
    return content


def legacy_body_pickle(arrays_: dict) -> dict:
    """A Python-2-era .pkl: chumpy arrays, a sparse J_regressor, strings beside the arrays."""
    content = as_chumpy(arrays_, ("v_template", "shapedirs", "posedirs", "weights", "J"))
    content["J_regressor"] = CscMatrix(arrays_["J_regressor"])
    content.update(bs_style="lbs", bs_type="lrotmin")
    return content


@pytest.fixture(scope="module")
def owner_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's model folder holding every family, in the owners' formats."""
    root = tmp_path_factory.mktemp("owner")
    (root / "smplx").mkdir()
    np.savez(root / "smplx" / "SMPLX_NEUTRAL.npz", **smplx_arrays())
    write_pickle(root / "smplx" / "SMPLX_MALE.pkl", smplx_arrays())

    smpl = body_arrays(2, vertices=250, joints=24, shape_dirs=10)
    write_pickle(root / "smpl" / "SMPL_NEUTRAL.pkl", legacy_body_pickle(smpl), protocol=2)
    male = legacy_body_pickle(smpl)
    male["J_regressor"] = OldCscMatrix(smpl["J_regressor"])
    write_pickle(root / "smpl" / "basicmodel_m_lbs_10_207_0_v1.1.0.pkl", male, protocol=0)

    smplh = body_arrays(3, vertices=200, joints=52, shape_dirs=16)
    rng = np.random.default_rng(3)
    write_pickle(
        root / "smplh" / "SMPLH_female.pkl",
        {**legacy_body_pickle(smplh), **hand_pca(rng, "l"), **hand_pca(rng, "r")},
    )
    (root / "smplh" / "neutral").mkdir()
    np.savez(root / "smplh" / "neutral" / "model.npz", **smplh)  # AMASS layout: no hand PCA at all

    mano = body_arrays(4, vertices=120, joints=16, shape_dirs=10)
    mano_pickle = {
        **legacy_body_pickle(mano),
        **hand_pca(np.random.default_rng(4)),
        "hands_coeffs": np.zeros((5, 45)),
    }
    write_pickle(root / "mano" / "MANO_RIGHT.pkl", mano_pickle)
    write_pickle(root / "mano" / "MANO_LEFT.pkl", mano_pickle)

    flame = body_arrays(5, vertices=220, joints=5, shape_dirs=400)
    write_pickle(root / "flame" / "FLAME_NEUTRAL.pkl", legacy_body_pickle(flame))

    write_pickle(root / "smal" / "smal_CVPR2017.pkl", smal_pickle(smal_arrays(head_towards_plus_x=True)))
    return root


@pytest.fixture(scope="module")
def reference_folder(owner_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same models without chumpy, plus the landmark file, so that smplx itself can load them."""
    root = tmp_path_factory.mktemp("reference")
    (root / "smplx").mkdir()
    np.savez(root / "smplx" / "SMPLX_NEUTRAL.npz", **smplx_arrays())
    for family, name, seed, vertices, joints, shape_dirs in (
        ("smpl", "SMPL_NEUTRAL.pkl", 2, 250, 24, 10),
        ("mano", "MANO_RIGHT.pkl", 4, 120, 16, 10),
        ("flame", "FLAME_NEUTRAL.pkl", 5, 220, 5, 400),
        ("smplh", "SMPLH_FEMALE.pkl", 3, 200, 52, 16),
    ):
        content = body_arrays(seed, vertices, joints, shape_dirs)
        rng = np.random.default_rng(seed)
        content.update(hand_pca(rng) if family == "mano" else {**hand_pca(rng, "l"), **hand_pca(rng, "r")})
        write_pickle(root / family / name, content)
    faces = 2 * 220
    landmarks = {"lmk_face_idx": np.arange(51) % faces, "lmk_b_coords": np.full((51, 3), 1 / 3)}
    write_pickle(root / "flame" / "flame_static_embedding.pkl", landmarks)
    return root


def reference_body(folder: Path, model_type: str, **kwargs) -> torch.nn.Module:
    """smplx's own model, posed flat (zero pose, flat hands) and without vertex-picked extra joints.

    The extra joints index fixed vertices of the 10,475/6,890-vertex official meshes; the synthetic
    meshes are smaller, and only the first J (regressed) joints are compared.
    """
    body = smplx.create(str(folder), model_type=model_type, flat_hand_mean=True, **kwargs)
    body.vertex_joint_selector.extra_joints_idxs = torch.zeros(0, dtype=torch.long)
    return body


def canonical(points: np.ndarray) -> np.ndarray:
    """Y up, facing +Z -> Z up, facing -Y."""
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)


def forward(body: torch.nn.Module, joints: int, **coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tensors = {key: torch.tensor(value, dtype=torch.float32)[None] for key, value in coefficients.items()}
    with torch.no_grad():
        output = body(**tensors)
    return canonical(output.vertices[0].numpy()), canonical(output.joints[0, :joints].numpy())


# ------------------------------------------------------------------------ against smplx itself
@pytest.fixture(scope="module")
def smplx_pair(owner_folder: Path, reference_folder: Path):
    return load_user_model("smplx-neutral", owner_folder), reference_body(
        reference_folder, "smplx", gender="neutral", ext="npz", num_betas=10
    )


@settings(max_examples=25, deadline=None)
@given(betas=betas_strategy)
def test_smplx_vertices_and_joints_equal_smplx_forward(smplx_pair, betas: np.ndarray) -> None:
    model, body = smplx_pair
    vertices, joints = forward(body, 55, betas=betas)
    np.testing.assert_allclose(model.vertices(betas), vertices, atol=1e-5)
    np.testing.assert_allclose(model.skeleton.joints(betas), joints, atol=1e-5)


def test_smplx_model_describes_itself(smplx_pair) -> None:
    model, _ = smplx_pair
    assert model.kind == "body" and model.component_count == 10 and model.vertex_count == 300
    assert model.component_names[0] == "Shape000"
    assert model.skeleton.names[:3] == ("pelvis", "left_hip", "right_hip") and len(model.skeleton.names) == 55
    assert model.info["licence"] == "non-commercial (owner's licence)"
    assert model.info["source"] == "smpl-x.is.tue.mpg.de"
    np.testing.assert_allclose(model.skeleton.skin_weights.sum(axis=1), 1.0, atol=1e-5)


def test_smplx_pkl_is_accepted_like_the_npz(owner_folder: Path, smplx_pair) -> None:
    from_pkl = load_user_model("smplx-male", owner_folder)
    np.testing.assert_array_equal(from_pkl.basis, smplx_pair[0].basis)


def test_more_components_follow_the_file(owner_folder: Path) -> None:
    assert load_user_model("smplx-neutral", owner_folder, components=16).component_count == 16
    assert load_user_model("smpl-neutral", owner_folder, components=16).component_count == 10  # v1.0: 10
    with pytest.raises(ModelFileError, match="at least 1"):
        load_user_model("smplx-neutral", owner_folder, components=0)


@pytest.fixture(scope="module")
def smpl_pair(owner_folder: Path, reference_folder: Path):
    assert importlib.util.find_spec("chumpy") is None, "these tests prove loading *without* chumpy"
    return load_user_model("smpl-neutral", owner_folder), reference_body(
        reference_folder, "smpl", num_betas=10
    )


@settings(max_examples=15, deadline=None)
@given(betas=betas_strategy)
def test_smpl_pickle_with_chumpy_objects_equals_smplx(smpl_pair, betas: np.ndarray) -> None:
    model, body = smpl_pair
    vertices, joints = forward(body, 24, betas=betas)
    np.testing.assert_allclose(model.vertices(betas), vertices, atol=1e-5)
    np.testing.assert_allclose(model.skeleton.joints(betas), joints, atol=1e-5)


def test_python2_style_pickle_with_old_scipy_path_loads(owner_folder: Path, smpl_pair) -> None:
    """Protocol 0 (copy_reg / __builtin__ names) and scipy.sparse.csc, found under the owner's name."""
    assert "chumpy" not in sys.modules
    male = load_user_model("smpl-male", owner_folder)
    assert male.info["file"].endswith("basicmodel_m_lbs_10_207_0_v1.1.0.pkl")
    np.testing.assert_allclose(male.template, smpl_pair[0].template, atol=1e-7)
    np.testing.assert_allclose(male.skeleton.joint_basis, smpl_pair[0].skeleton.joint_basis, atol=1e-7)


@pytest.fixture(scope="module")
def flame_trio(owner_folder: Path, reference_folder: Path) -> tuple:
    return (
        load_user_model("flame-shape", owner_folder),
        load_user_model("flame-expression", owner_folder),
        reference_body(reference_folder, "flame", gender="neutral", num_betas=10, num_expression_coeffs=10),
    )


@settings(max_examples=10, deadline=None)
@given(shape=betas_strategy, expression=betas_strategy)
def test_flame_shape_and_expression_equal_smplx(flame_trio, shape, expression) -> None:
    shape_model, expression_model, body = flame_trio
    vertices, joints = forward(body, 5, betas=shape, expression=np.zeros(10, np.float32))
    np.testing.assert_allclose(shape_model.vertices(shape), vertices, atol=1e-5)
    np.testing.assert_allclose(shape_model.skeleton.joints(shape), joints, atol=1e-5)
    vertices, joints = forward(body, 5, betas=np.zeros(10, np.float32), expression=expression)
    np.testing.assert_allclose(expression_model.vertices(expression), vertices, atol=1e-5)
    np.testing.assert_allclose(expression_model.skeleton.joints(expression), joints, atol=1e-5)


def test_flame_kinds_and_names(flame_trio) -> None:
    shape_model, expression_model, _ = flame_trio
    assert (shape_model.kind, expression_model.kind) == ("head-shape", "face-expression")
    assert expression_model.component_names[0] == "Exp000"
    np.testing.assert_array_equal(shape_model.template, expression_model.template)  # neutral shape


def test_flame_accepts_the_flame2020_file_name(owner_folder: Path, tmp_path: Path) -> None:
    (tmp_path / "flame").mkdir()
    (tmp_path / "flame" / "generic_model.pkl").write_bytes(
        (owner_folder / "flame" / "FLAME_NEUTRAL.pkl").read_bytes()
    )
    assert load_user_model("flame-expression", tmp_path, components=4).component_count == 4


def test_mano_equals_smplx(owner_folder: Path, reference_folder: Path) -> None:
    model = load_user_model("mano-right", owner_folder)
    body = reference_body(reference_folder, "mano", is_rhand=True, num_betas=10)
    betas = np.linspace(-2, 2, 10).astype(np.float32)
    vertices, joints = forward(body, 16, betas=betas)
    np.testing.assert_allclose(model.vertices(betas), vertices, atol=1e-5)
    np.testing.assert_allclose(model.skeleton.joints(betas), joints, atol=1e-5)
    assert model.kind == "hand" and model.skeleton.names[0] == "wrist"
    assert load_user_model("mano-left", owner_folder).vertex_count == model.vertex_count


def test_smplh_from_mano_download_and_from_amass_layout(owner_folder: Path, reference_folder: Path) -> None:
    female = load_user_model("smplh-female", owner_folder)  # SMPLH_female.pkl: owner's spelling
    body = reference_body(reference_folder, "smplh", gender="female", num_betas=10)
    betas = np.linspace(1, -1, 10).astype(np.float32)
    vertices, joints = forward(body, 52, betas=betas)
    np.testing.assert_allclose(female.vertices(betas), vertices, atol=1e-5)
    np.testing.assert_allclose(female.skeleton.joints(betas), joints, atol=1e-5)
    neutral = load_user_model("smplh-neutral", owner_folder)  # no hand PCA in the file: still loads
    np.testing.assert_allclose(neutral.basis, female.basis, atol=1e-7)


# ------------------------------------------------------------------------------------- SMAL
def smal_arrays(head_towards_plus_x: bool, vertices: int = 160, joints: int = 35) -> dict[str, np.ndarray]:
    """smal_CVPR2017.pkl layout: Z up, body along X, 41 shape directions, 35 joints."""
    rng = np.random.default_rng(7)
    template = rng.uniform([-0.5, -0.2, 0.0], [0.5, 0.2, 0.6], size=(vertices, 3))
    regressor = np.zeros((joints, vertices))
    for joint in range(joints):
        regressor[joint, 4 * joint : 4 * joint + 4] = 0.25
    sign = 1.0 if head_towards_plus_x else -1.0
    template[4 * 16 : 4 * 16 + 4, 0] = 0.45 * sign  # neck
    template[4 * 25 : 4 * 25 + 4, 0] = -0.45 * sign  # tail root
    weights = rng.random((vertices, joints))
    kintree = np.stack([np.r_[UNSIGNED_MINUS_ONE, np.arange(joints - 1)], np.arange(joints)]).astype(np.int64)
    return {
        "v_template": template,
        "f": rng.integers(0, vertices, size=(300, 3)).astype(np.uint32),
        "shapedirs": rng.normal(scale=0.02, size=(vertices, 3, 41)),
        "posedirs": rng.normal(scale=0.01, size=(vertices, 3, 9 * (joints - 1))),
        "J_regressor": regressor,
        "weights": weights / weights.sum(axis=1, keepdims=True),
        "kintree_table": kintree,
    }


def smal_pickle(arrays_: dict) -> dict:
    """Chumpy arrays (v_template as a chumpy sum, as some releases store it) and an old-scipy regressor."""
    content = as_chumpy(arrays_, ("shapedirs", "posedirs", "weights"))
    half = arrays_["v_template"] / 2
    content["v_template"] = ChAdd(Ch(half), Ch(arrays_["v_template"] - half))
    content["J_regressor"] = OldCscMatrix(arrays_["J_regressor"])
    return content


@pytest.mark.parametrize("head_towards_plus_x", [True, False])
def test_smal_faces_minus_y_and_follows_its_formula(tmp_path: Path, head_towards_plus_x: bool) -> None:
    raw = smal_arrays(head_towards_plus_x)
    write_pickle(tmp_path / "smal" / "smal_CVPR2017.pkl", smal_pickle(raw))
    model = load_user_model("smal", tmp_path, components=12)
    assert model.kind == "animal" and model.component_count == 12
    betas = np.linspace(-1.5, 1.5, 12)
    shaped = raw["v_template"] + raw["shapedirs"][:, :, :12] @ betas
    expected_joints = raw["J_regressor"] @ shaped
    turn = (
        np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]])
        if head_towards_plus_x
        else np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    )
    np.testing.assert_allclose(model.vertices(betas), shaped @ turn.T, atol=1e-5)
    joints = model.skeleton.joints(betas)
    np.testing.assert_allclose(joints, expected_joints @ turn.T, atol=1e-5)
    assert joints[16, 1] < joints[25, 1]  # head towards -Y, the canonical front
    np.testing.assert_allclose(joints[:, 2], expected_joints[:, 2], atol=1e-5)  # up stays up


# ----------------------------------------------------------------------------------- errors
def test_no_folder_says_what_to_get_and_where(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError) as caught:
        load_user_model("smplx-neutral", None)
    message = str(caught.value)
    assert "SMPLX_NEUTRAL.npz" in message and "https://smpl-x.is.tue.mpg.de" in message
    assert "model_dir" in message and "SEMANTIFY_MODEL_DIR" in message


def test_missing_folder_and_missing_file_name_the_exact_path(tmp_path: Path) -> None:
    absent = tmp_path / "nowhere"
    with pytest.raises(ModelFileError, match="does not exist") as caught:
        load_user_model("flame-shape", absent)
    assert str(absent) in str(caught.value) and "FLAME_NEUTRAL.pkl" in str(caught.value)
    with pytest.raises(ModelFileError) as caught:
        load_user_model("smal", tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "smal" / "smal_CVPR2017.pkl") in message and "https://smal.is.tue.mpg.de" in message


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda a: a.pop("shapedirs"), "shapedirs"),
        (lambda a: a.update(J_regressor=a["J_regressor"][:, :10]), "J_regressor"),
        (lambda a: a.update(shapedirs=a["shapedirs"][:, :, 0]), "shapedirs"),
        (lambda a: a.update(weights=np.array([{"not": "numbers"}], dtype=object)), "weights"),
        (lambda a: a.update(f=a["f"] + 10_000), "'f'"),
    ],
)
def test_wrong_key_layout_names_the_file_and_key(tmp_path: Path, change, key: str) -> None:
    content = smplx_arrays()
    change(content)
    np.savez(tmp_path / "SMPLX_FEMALE.npz", **content)
    (tmp_path / "smplx").mkdir()
    (tmp_path / "SMPLX_FEMALE.npz").rename(tmp_path / "smplx" / "SMPLX_FEMALE.npz")
    with pytest.raises(ModelFileError) as caught:
        load_user_model("smplx-female", tmp_path)
    assert str(tmp_path / "smplx" / "SMPLX_FEMALE.npz") in str(caught.value) and key in str(caught.value)


class Payload:
    def __reduce__(self):
        return (os.getpid, ())


def test_a_pickle_asking_for_other_classes_is_refused(tmp_path: Path) -> None:
    path = write_pickle(tmp_path / "mano" / "MANO_RIGHT.pkl", {"v_template": Payload()})
    with pytest.raises(ModelFileError, match=r"refused.*posix\.getpid"):
        load_user_model("mano-right", tmp_path)
    assert path.exists()


def test_damaged_files_are_named(owner_folder: Path, tmp_path: Path) -> None:
    (tmp_path / "smpl").mkdir()
    (tmp_path / "smpl" / "SMPL_FEMALE.pkl").write_bytes(
        (owner_folder / "smpl" / "SMPL_NEUTRAL.pkl").read_bytes()[:5000]
    )
    with pytest.raises(ModelFileError, match="SMPL_FEMALE.pkl.*download it again"):
        load_user_model("smpl-female", tmp_path)


def test_unknown_user_model_lists_the_names() -> None:
    with pytest.raises(ModelFileError, match="smplx-neutral"):
        load_user_model("smplz", None)


# ---------------------------------------------------------------------------------- listing
def test_listing_marks_what_is_present(owner_folder: Path, tmp_path: Path) -> None:
    entries = {entry.name: entry for entry in list_user_models(owner_folder)}
    assert tuple(entries) == USER_MODEL_NAMES
    assert entries["smplx-neutral"].available
    assert entries["smplx-neutral"].location == str(owner_folder / "smplx" / "SMPLX_NEUTRAL.npz")
    assert entries["smpl-male"].location.endswith("basicmodel_m_lbs_10_207_0_v1.1.0.pkl")
    assert not entries["smpl-female"].available
    assert entries["smpl-female"].location == f"missing: {owner_folder / 'smpl' / 'SMPL_FEMALE.pkl'}"
    assert all(entry.licence == "non-commercial (owner's licence)" for entry in entries.values())
    assert not any(entry.available for entry in list_user_models(None))
    assert not any(entry.available for entry in list_user_models(tmp_path / "absent"))


def test_registry_finds_user_models(owner_folder: Path, tmp_path: Path) -> None:
    model = load("mano-right", model_dir=owner_folder)
    assert any(entry.name == "mano-right" and entry.available for entry in list_models(owner_folder))
    saved = load_model(save_model(model, tmp_path / "mano.npz"))  # the info survives the model file
    assert saved.checksum() == model.checksum() and saved.info["family"] == "MANO"


# ------------------------------------------------------------------------------- shape keys
def write_obj(path: Path, vertices: np.ndarray, faces: list[list[int]]) -> Path:
    lines = ["# exported", "mtllib none.mtl", "o Body"]
    lines += [f"v {x:.9f} {y:.9f} {z:.9f}" for x, y, z in vertices]
    lines += ["vt 0.5 0.5", "vn 0 0 1", "s off"]
    lines += ["f " + " ".join(f"{index + 1}/1/1" for index in face) for face in faces]
    path.write_text("\n".join(lines) + "\n")
    return path


GRID_QUADS = [[0, 1, 4, 3], [1, 2, 5, 4], [3, 4, 7, 6], [4, 5, 8, 7]]


@settings(max_examples=25, deadline=None)
@given(
    offsets=arrays(np.float64, (2, 9, 3), elements=st.floats(-0.5, 0.5)),
    weights=arrays(np.float32, 2, elements=st.floats(0, 1, width=32)),
)
def test_shape_key_objs_round_trip(tmp_path_factory: pytest.TempPathFactory, offsets, weights) -> None:
    folder = tmp_path_factory.mktemp("keys")
    base = np.array([[x, 0.1 * x * y, y] for y in range(3) for x in range(3)], dtype=np.float64)
    write_obj(folder / "base.obj", base, GRID_QUADS)
    paths = [
        write_obj(folder / f"{name}.obj", base + offset, GRID_QUADS)
        for name, offset in zip(("tall", "wide"), offsets, strict=True)
    ]
    model = load_shape_key_objs(folder / "base.obj", paths, up_axis="Y")
    expected = base + np.tensordot(weights.astype(np.float64), offsets, axes=1)
    np.testing.assert_allclose(model.vertices(weights), canonical(expected), atol=1e-5)
    assert model.component_names == ("tall", "wide") and model.kind == "custom"
    assert model.faces.shape == (8, 3)  # four quads, two triangles each


def test_shape_key_bounds_std_and_z_up(tmp_path: Path) -> None:
    base = np.eye(3)
    write_obj(tmp_path / "base.obj", base, [[0, 1, 2]])
    write_obj(tmp_path / "smile.obj", base * 2, [[0, 1, 2]])
    model = load_shape_key_objs(tmp_path / "base.obj", {"Smile": tmp_path / "smile.obj"}, up_axis="z")
    np.testing.assert_allclose(model.vertices([1.0]), base * 2, atol=1e-6)
    np.testing.assert_allclose(model.coefficient_bounds, [[0.0, 1.0]])
    np.testing.assert_allclose(model.coefficient_box(3.0), [[0.0, 1.0]], atol=1e-6)  # ±3 std = all of [0, 1]
    with pytest.raises(ModelFileError, match="up axis"):
        load_shape_key_objs(tmp_path / "base.obj", [tmp_path / "smile.obj"], up_axis="X")


def test_shape_key_with_another_vertex_count_is_refused(tmp_path: Path) -> None:
    base = np.eye(3)
    write_obj(tmp_path / "base.obj", base, [[0, 1, 2]])
    bad = write_obj(tmp_path / "frown.obj", np.vstack([base, [[1.0, 1.0, 1.0]]]), [[0, 1, 2]])
    with pytest.raises(ModelFileError, match=r"frown\.obj has 4 vertices but the base .*base\.obj has 3"):
        load_shape_key_objs(tmp_path / "base.obj", [bad])
    with pytest.raises(ModelFileError, match="does not exist"):
        load_shape_key_objs(tmp_path / "base.obj", [tmp_path / "absent.obj"])


def test_obj_relative_indices_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "relative.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nf -4 -3 -1 -2\n")
    model = load_shape_key_objs(path, {"same": path}, up_axis="Z")
    np.testing.assert_array_equal(model.faces, [[0, 1, 3], [0, 3, 2]])
    broken = tmp_path / "broken.obj"
    broken.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n")
    with pytest.raises(ModelFileError, match=r"broken\.obj.*vertex 9"):
        load_shape_key_objs(broken, [])


def test_model_from_shape_keys_arrays() -> None:
    base = np.eye(3)
    with pytest.raises(ModelFileError, match="no shape keys"):
        model_from_shape_keys("empty", base, [[0, 1, 2]], {})
    with pytest.raises(ModelFileError, match="'wide' of 'bad' has 4 vertices but the base has 3"):
        model_from_shape_keys("bad", base, [[0, 1, 2]], {"wide": np.eye(4, 3)})
    with pytest.raises(ModelFileError, match=r"'tall' of 'bad' must be a \(V, 3\) array"):
        model_from_shape_keys("bad", base, [[0, 1, 2]], {"tall": np.eye(3)[:2]})
    np.testing.assert_array_equal(triangulate([[0, 1, 2, 3, 4]]), [[0, 1, 2], [0, 2, 3], [0, 3, 4]])


# --------------------------------------------------------------------------------- hostile files
BOUNDED_LOAD = r"""
import resource, sys
limit = 1_500_000_000  # 1.5 GB of address space: a bomb that is not caught dies here instead of the machine
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from semantify_engine.errors import ModelFileError
from semantify_engine.models.user_models import load_user_model
try:
    load_user_model(sys.argv[2], sys.argv[1])
except ModelFileError as error:
    print("refused:", str(error).splitlines()[0])
    print("lines:", len(str(error).splitlines()))
print("finished")
"""


def load_bounded(folder: Path, name: str) -> str:
    """Load a user model in a child whose memory is capped, so a bomb cannot take the test machine."""
    result = subprocess.run(
        [sys.executable, "-c", BOUNDED_LOAD, str(folder), name], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]  # no MemoryError, no RecursionError traceback
    return result.stdout


def doubled(times: int) -> list:
    value: list = [0.5]
    for _ in range(times):
        value = [value, value]  # each level shares the one below: pickle writes it once
    return value


def test_a_list_that_repeats_itself_is_refused_at_once_within_bounded_memory(tmp_path: Path) -> None:
    path = write_pickle(tmp_path / "mano" / "MANO_RIGHT.pkl", {"v_template": doubled(34)})
    assert path.stat().st_size < 2000  # a tiny file standing for 17 billion numbers
    output = load_bounded(tmp_path, "mano-right")
    assert "refused" in output and "expands to 17,179,869,184 numbers" in output and "lines: 1" in output


def test_a_sparse_matrix_claiming_a_huge_shape_is_refused_before_it_is_made(tmp_path: Path) -> None:
    content = body_arrays(0, 40, 3, 2)
    claim = OldCscMatrix(np.eye(2))
    claim.__dict__["_shape"] = (2_000_000, 2_000_000)  # 4e12 numbers, 32 TB dense
    content["J_regressor"] = claim
    write_pickle(tmp_path / "mano" / "MANO_RIGHT.pkl", content)
    output = load_bounded(tmp_path, "mano-right")
    assert "claims a (2000000, 2000000) matrix" in output


def test_a_deep_or_self_sharing_chumpy_expression_is_refused_not_recursed_into(tmp_path: Path) -> None:
    deep = Ch(np.ones(3))
    for _ in range(3000):
        deep = ChAdd(deep, Ch(np.ones(3)))
    depth = sys.getrecursionlimit()
    sys.setrecursionlimit(30000)  # Python's own pickler recurses once per level while writing
    try:
        write_pickle(tmp_path / "mano" / "MANO_RIGHT.pkl", {"v_template": deep})
    finally:
        sys.setrecursionlimit(depth)
    assert "nests deeper than 64 levels" in load_bounded(tmp_path, "mano-right")
    shared = Ch(np.ones(3))
    for _ in range(60):  # 2**60 evaluations if each shared term were evaluated again
        shared = ChAdd(shared, shared)
    write_pickle(tmp_path / "mano" / "MANO_RIGHT.pkl", {"v_template": shared})
    output = load_bounded(tmp_path, "mano-right")
    assert "finished" in output  # evaluated once per term: 2**60 evaluations would never end
    crossed = ChAdd(Ch(np.ones((20000, 1))), Ch(np.ones((1, 20000))))  # broadcasting: 400 million numbers
    write_pickle(tmp_path / "mano" / "MANO_RIGHT.pkl", {"v_template": crossed})
    assert "expands to 400,000,000 numbers" in load_bounded(tmp_path, "mano-right")


def test_the_unpickler_allows_exactly_numpy_arrays_and_inert_python_pieces() -> None:
    from semantify_engine.models import restricted_pickle

    allowed = set(restricted_pickle._ALLOWED_GLOBALS)
    expected = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
    for core in ("numpy.core", "numpy._core"):
        expected |= {(f"{core}.multiarray", "_reconstruct"), (f"{core}.multiarray", "scalar")}
        expected |= {(f"{core}.numeric", "_frombuffer")}
    for builtins in ("builtins", "__builtin__"):
        expected |= {(builtins, "set"), (builtins, "frozenset"), (builtins, "object")}
    expected |= {("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor")}
    assert allowed == expected
    unpickler = restricted_pickle._OwnerFileUnpickler(io.BytesIO(b""))
    for module, name in (
        ("builtins", "getattr"),
        ("builtins", "eval"),
        ("builtins", "__import__"),
        ("os", "system"),
        ("posix", "system"),
        ("subprocess", "Popen"),
        ("numpy", "load"),
        ("scipy.sparse", "load_npz"),
    ):
        with pytest.raises(restricted_pickle._RefusedClass):
            unpickler.find_class(module, name)


@pytest.mark.parametrize("key", ["J_regressor", "weights", "posedirs", "shapedirs", "v_template"])
def test_nan_in_any_array_a_model_uses_is_refused(tmp_path: Path, key: str) -> None:
    content = smplx_arrays()
    content[key] = content[key].astype(np.float64)
    content[key].flat[7] = np.nan
    (tmp_path / "smplx").mkdir()
    np.savez(tmp_path / "smplx" / "SMPLX_FEMALE.npz", **content)
    with pytest.raises(ModelFileError, match=rf"'{key}' holds NaN or infinite values"):
        load_user_model("smplx-female", tmp_path)
