"""The Blender extension, end to end and headless: build, validate, install offline, enable, use, disable.

The zip is built and validated by Blender's own tools (``blender_ext.py``, shipped inside the bpy wheel;
it is what ``blender -c extension build|validate`` runs), installed from the zip into the isolated user
folder conftest sets up, and enabled as ``bl_ext.user_default.semantify``. Import hygiene (no torch, no
open_clip, no engine module at registration) and the ``-c semantify`` command's registration are checked
in a fresh process, because this process has imported much more by the time it runs.

What cannot be tested without a real ``blender`` executable (the wheel has none): Blender dispatching
``blender -c semantify ...`` to the command (the test calls the registered callback itself and proves
the id is taken), and the UI pushing an undo step when a user clicks an operator (headless, operators
called from Python push no step; the tests check the UNDO flag on every scene-changing operator and that
Blender's undo restores the scene around them).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from semantify_engine.mapper import Descriptor, Mapper, model_identity, save_mapper
from semantify_engine.models import load, load_model

bpy = pytest.importorskip("bpy")

pytestmark = pytest.mark.blender

ROOT = Path(__file__).resolve().parent.parent
MODULE = "bl_ext.user_default.semantify"
SCENE_CHANGING = (
    "add_model",
    "add_model_file",
    "use_mesh",
    "load_mapper",
    "reset_sliders",
    "randomise_sliders",
    "keyframe_sliders",
    "remove_mapper",
)


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


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("extension")
    result = run_blender_ext("build", "--source-dir", str(ROOT), "--output-dir", str(output))
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = output.glob("semantify-*.zip")
    return path


@pytest.fixture(scope="module")
def installed(extension_zip: Path) -> Iterator[Path]:
    """The extension installed offline from the zip into the test user folder's default repository."""
    result = bpy.ops.extensions.package_install_files(
        filepath=str(extension_zip), repo="user_default", enable_on_install=False
    )
    assert result == {"FINISHED"}
    yield extension_zip
    bpy.ops.wm.read_factory_settings(use_empty=True)  # disables it: later test modules see plain bpy


@pytest.fixture
def glue(installed: Path):
    """An empty scene with the extension enabled; returns its ``semantify_blender`` package."""
    bpy.ops.wm.read_factory_settings(use_empty=True)  # also disables extensions
    assert bpy.ops.preferences.addon_enable(module=MODULE) == {"FINISHED"}
    package = sys.modules[f"{MODULE}.semantify_blender"]
    package.sliders.clear_cache()
    return package


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


@pytest.fixture(scope="module")
def head():
    return load("anny-head-shape")


@pytest.fixture(scope="module")
def head_mapper(head, tmp_path_factory: pytest.TempPathFactory) -> tuple[Mapper, Path]:
    path = tmp_path_factory.mktemp("mappers") / "head.npz"
    return make_mapper(head, path), path


def evaluated_vertices(obj) -> np.ndarray:
    """What Blender shows: the evaluated mesh (shape keys applied), object space."""
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    coordinates = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", coordinates)
    evaluated.to_mesh_clear()
    return coordinates.reshape(-1, 3)


def weights_of(obj) -> np.ndarray:
    blocks = obj.data.shape_keys.key_blocks
    weights = np.empty(len(blocks), dtype=np.float32)
    blocks.foreach_get("value", weights)
    return weights[1:]


def positions_of(obj) -> np.ndarray:
    return np.array([slider.position for slider in obj.semantify.sliders])


def add_head_with_mapper(mapper_path: Path):
    assert bpy.ops.semantify.add_model(model="anny-head-shape") == {"FINISHED"}
    obj = bpy.context.active_object
    assert bpy.ops.semantify.load_mapper(filepath=str(mapper_path)) == {"FINISHED"}
    return obj


# ------------------------------------------------------------------------------------------ package
def test_zip_passes_blenders_validator(extension_zip: Path) -> None:
    result = run_blender_ext("validate", str(extension_zip))
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"extension zip: {extension_zip.name}, {extension_zip.stat().st_size / 1e6:.1f} MB")


def test_zip_carries_glue_engine_and_bundled_models_and_nothing_for_development(extension_zip: Path) -> None:
    with zipfile.ZipFile(extension_zip) as archive:
        names = archive.namelist()
    top = {name.split("/")[0] for name in names}
    # A new top-level file or folder must be placed deliberately: shipped, or excluded in the manifest.
    assert top == {
        "__init__.py",
        "blender_manifest.toml",
        "LICENSE",
        "README.md",
        "semantify_blender",
        "semantify_engine",
    }
    for required in (
        "semantify_blender/__init__.py",
        "semantify_engine/models/registry.py",
        "semantify_engine/mapper/mapper.py",
        "semantify_engine/cli/main.py",
        "semantify_engine/data/models/anny-body.npz",
        "semantify_engine/data/models/LICENSE-anny.md",
    ):
        assert required in names
    data = ROOT / "semantify_engine" / "data"  # bundled models, landmarks, default mappers: all ship
    bundled = {path.relative_to(ROOT).as_posix() for path in data.rglob("*") if path.is_file()}
    assert bundled and bundled <= set(names)
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


ENABLE_IN_FRESH_PROCESS = r"""
import json, sys, time
import bpy
zip_path, module = sys.argv[1], sys.argv[2]
install = bpy.ops.extensions.package_install_files
assert install(filepath=zip_path, repo="user_default", enable_on_install=False) == {"FINISHED"}
start = time.perf_counter()
assert bpy.ops.preferences.addon_enable(module=module) == {"FINISHED"}
seconds = time.perf_counter() - start
report = {
    "seconds": seconds,
    "torch": "torch" in sys.modules,
    "open_clip": "open_clip" in sys.modules,
    "engine_modules": sorted(m for m in sys.modules if m.startswith(module + ".semantify_engine.")),
}
sys.stdout.flush()
# Registering the id again makes Blender warn on stderr that it is taken: proof that the add-on holds it.
print("probe: duplicate", file=sys.stderr, flush=True)
bpy.utils.unregister_cli_command(bpy.utils.register_cli_command("semantify", lambda argv: 0))
assert bpy.ops.preferences.addon_disable(module=module) == {"FINISHED"}
print("probe: after disable", file=sys.stderr, flush=True)
bpy.utils.unregister_cli_command(bpy.utils.register_cli_command("semantify", lambda argv: 0))
print(json.dumps(report))
"""


def test_enabling_imports_neither_torch_nor_open_clip_and_registers_the_command(
    extension_zip: Path, tmp_path: Path
) -> None:
    environment = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender")}
    result = subprocess.run(
        [sys.executable, "-c", ENABLE_IN_FRESH_PROCESS, str(extension_zip), MODULE],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    print(
        f"registration (addon_enable, first import from the installed zip): {report['seconds'] * 1e3:.1f} ms"
    )
    assert not report["torch"] and not report["open_clip"]
    assert report["engine_modules"] == []  # registration imports no engine module at all
    while_enabled, after_disable = result.stderr.split("probe: after disable")
    assert 'duplicate command "semantify"' in while_enabled.split("probe: duplicate")[1]
    assert "duplicate" not in after_disable


# -------------------------------------------------------------------------------------------- models
def test_added_body_has_one_named_shape_key_per_component_and_evaluates_like_the_model(glue) -> None:
    model = load("anny-body")
    engine_package = glue.engine.ENGINE_PACKAGE
    assert engine_package == MODULE + ".semantify_engine"  # the bundled engine, not the checkout's
    assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    obj = bpy.context.active_object
    blocks = obj.data.shape_keys.key_blocks
    assert [block.name for block in blocks] == ["Basis", *model.component_names]
    state = obj.semantify
    assert (state.model_name, state.model_checksum) == (model.name, model.checksum())
    assert (state.vertex_count, state.component_count) == (model.vertex_count, model.component_count)
    assert np.allclose(evaluated_vertices(obj), model.template, atol=1e-6)  # weights start at 0
    c = np.random.default_rng(1).normal(0.0, 1.5, size=model.component_count).astype(np.float32)
    blocks.foreach_set("value", np.concatenate([[1.0], c]).astype(np.float32))
    obj.data.shape_keys.update_tag()
    assert np.abs(evaluated_vertices(obj) - model.vertices(c)).max() < 1e-5


def test_scene_changing_operators_support_undo_and_undo_restores_the_scene(glue) -> None:
    for name in SCENE_CHANGING:
        operator_class = getattr(bpy.types, f"SEMANTIFY_OT_{name}")
        assert {"REGISTER", "UNDO"} <= set(operator_class.bl_options), name
    assert "UNDO" not in bpy.types.SEMANTIFY_OT_export_model.bl_options  # writes a file, changes nothing
    bpy.ops.ed.undo_push(message="before")  # headless, undo starts only on an explicit push
    assert bpy.ops.semantify.add_model(model="anny-face-expression") == {"FINISHED"}
    bpy.ops.ed.undo_push(message="after add")
    assert [obj.name for obj in bpy.data.objects] == ["anny-face-expression"]
    bpy.ops.ed.undo()
    assert len(bpy.data.objects) == 0 and len(bpy.data.meshes) == 0 and len(bpy.data.shape_keys) == 0
    bpy.ops.ed.redo()
    obj = bpy.data.objects["anny-face-expression"]
    assert len(obj.data.shape_keys.key_blocks) == 53 and obj.semantify.model_name == "anny-face-expression"


def test_unknown_model_file_is_reported_and_nothing_is_added(glue, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.semantify.add_model_file(filepath=str(tmp_path / "missing.npz"))
    assert len(bpy.data.objects) == 0


# -------------------------------------------------------------------------------------------- sliders
def test_mapper_gives_one_slider_per_descriptor_driving_the_shape_keys(glue, head, head_mapper) -> None:
    mapper, path = head_mapper
    obj = add_head_with_mapper(path)
    state = obj.semantify
    assert [slider.name for slider in state.sliders] == list(mapper.descriptor_names)
    stored = np.array([(s.low, s.high, s.default) for s in state.sliders])
    assert np.allclose(stored, [(d.low, d.high, d.default) for d in mapper.descriptors])
    assert [slider.value for slider in state.sliders] == pytest.approx(list(mapper.defaults), abs=1e-6)
    assert weights_of(obj)[:10] == pytest.approx(mapper.coefficients(mapper.defaults), abs=1e-5)
    state.sliders[1].position = 0.9  # a user's drag: the update callback runs the mapper
    state.sliders[2].value = 2.27  # descriptor units
    values = np.array([s.value for s in state.sliders], dtype=np.float32)
    assert values[1] == pytest.approx(1.1 + 0.9 * 0.2) and values[2] == pytest.approx(2.27, abs=1e-6)
    coefficients = mapper.coefficients(values)
    assert weights_of(obj)[:10] == pytest.approx(coefficients, abs=1e-5)
    assert np.all(weights_of(obj)[10:] == 0.0)  # components the mapper does not drive are left alone
    assert np.abs(evaluated_vertices(obj) - head.vertices(coefficients)).max() < 1e-5
    assert state.status == ""


def test_corrupt_or_foreign_mapper_is_reported_and_the_scene_is_unchanged(
    glue, head_mapper, capsule, tmp_path: Path
) -> None:
    _, path = head_mapper
    obj = add_head_with_mapper(path)
    state = obj.semantify
    state.sliders[0].position = 0.8
    before = (positions_of(obj), weights_of(obj).copy(), state.mapper_path, state.mapper_checksum)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(path.read_bytes()[:700])
    foreign = tmp_path / "foreign.npz"
    make_mapper(capsule, foreign, count=3)
    for bad, message in ((corrupt, "not a readable mapper"), (foreign, "trained for model 'test-capsule'")):
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.semantify.load_mapper(filepath=str(bad))
        after = (positions_of(obj), weights_of(obj), state.mapper_path, state.mapper_checksum)
        assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])
        assert before[2:] == after[2:]


def test_objects_are_independent(glue, head_mapper) -> None:
    mapper, path = head_mapper
    first = add_head_with_mapper(path)
    second = add_head_with_mapper(path)
    assert first.name != second.name and first.data.shape_keys != second.data.shape_keys
    second.semantify.sliders[0].position = 1.0
    assert first.semantify.sliders[0].position == pytest.approx((0.15 - 0.10) / 0.2)
    assert weights_of(first)[:10] == pytest.approx(mapper.coefficients(mapper.defaults), abs=1e-5)
    assert not np.allclose(weights_of(first), weights_of(second))


def test_reset_and_randomise(glue, head_mapper) -> None:
    mapper, path = head_mapper
    obj = add_head_with_mapper(path)
    assert bpy.ops.semantify.randomise_sliders(seed=7) == {"FINISHED"}
    random_positions = positions_of(obj)
    assert not np.allclose(random_positions, 0.25)  # 0.25 is every slider's default position here
    values = np.array([s.value for s in obj.semantify.sliders], dtype=np.float32)
    assert weights_of(obj)[:10] == pytest.approx(mapper.coefficients(values), abs=1e-5)
    bpy.ops.semantify.randomise_sliders(seed=7)
    assert np.allclose(positions_of(obj), random_positions)  # the seed replays the same shape
    assert bpy.ops.semantify.reset_sliders() == {"FINISHED"}
    assert [s.value for s in obj.semantify.sliders] == pytest.approx(list(mapper.defaults), abs=1e-6)
    assert weights_of(obj)[:10] == pytest.approx(mapper.coefficients(mapper.defaults), abs=1e-5)


def test_keyframed_sliders_animate_the_shape(glue, head_mapper) -> None:
    mapper, path = head_mapper
    obj = add_head_with_mapper(path)
    scene = bpy.context.scene
    scene.frame_set(1)
    assert bpy.ops.semantify.keyframe_sliders() == {"FINISHED"}
    scene.frame_set(11)
    obj.semantify.sliders[0].position = 1.0
    bpy.ops.semantify.keyframe_sliders()
    for frame in (1, 6, 11):
        scene.frame_set(frame)  # animation moves positions without update callbacks: the handler applies
        values = np.array([s.value for s in obj.semantify.sliders], dtype=np.float32)
        assert weights_of(obj)[:10] == pytest.approx(mapper.coefficients(values), abs=1e-5)
    scene.frame_set(6)
    assert 0.25 < obj.semantify.sliders[0].position < 1.0


def test_save_and_reload_keeps_sliders_identity_and_shape(glue, head_mapper, tmp_path: Path) -> None:
    mapper, path = head_mapper
    obj = add_head_with_mapper(path)
    bpy.ops.semantify.randomise_sliders(seed=3)
    saved = (positions_of(obj), weights_of(obj).copy(), obj.semantify.model_checksum, obj.name)
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module=MODULE)
    glue.sliders.clear_cache()
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    obj = bpy.data.objects[saved[3]]
    assert np.allclose(positions_of(obj), saved[0]) and np.allclose(weights_of(obj), saved[1])
    assert obj.semantify.model_checksum == saved[2]
    assert obj.semantify.mapper_path == str(path)
    obj.semantify.sliders[2].position = 0.0  # the mapper is read again from its file on the first move
    values = np.array([s.value for s in obj.semantify.sliders], dtype=np.float32)
    assert weights_of(obj)[:10] == pytest.approx(mapper.coefficients(values), abs=1e-5)
    assert obj.semantify.status == ""


# ------------------------------------------------------------------------------------- use my mesh
def make_mesh_with_shape_keys():
    """A 3×3 grid of quads with three keys: plain, relative to another key, and limited by a vertex group."""
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


def test_use_my_mesh_makes_its_shape_keys_the_basis_and_exports_a_model_file(glue, tmp_path: Path) -> None:
    obj = make_mesh_with_shape_keys()
    assert bpy.ops.semantify.use_mesh() == {"FINISHED"}
    state = obj.semantify
    assert (state.model_name, state.model_source, state.component_count) == ("My Character", "shape keys", 3)
    exported = tmp_path / "my_character.npz"
    assert bpy.ops.semantify.export_model(filepath=str(exported)) == {"FINISHED"}
    model = load_model(exported)
    assert model.checksum() == state.model_checksum and model.component_names == ("lift", "twist", "bulge")
    c = np.array([0.7, 0.4, 0.9], dtype=np.float32)
    obj.data.shape_keys.key_blocks.foreach_set("value", np.concatenate([[1.0], c]).astype(np.float32))
    obj.data.shape_keys.update_tag()
    # Relative keys and vertex groups included, the model reproduces Blender's own shape-key evaluation.
    assert np.abs(evaluated_vertices(obj) - model.vertices(c)).max() < 1e-5
    mapper_path = tmp_path / "mine.npz"
    make_mapper(model, mapper_path, names=("tall", "wide"), count=3)
    assert bpy.ops.semantify.load_mapper(filepath=str(mapper_path)) == {"FINISHED"}
    assert len(state.sliders) == 2


def test_export_refuses_shape_keys_changed_since_use_my_mesh(glue, tmp_path: Path) -> None:
    obj = make_mesh_with_shape_keys()
    bpy.ops.semantify.use_mesh()
    obj.data.shape_keys.key_blocks["lift"].data[0].co.z += 0.5
    with pytest.raises(RuntimeError, match="changed since 'Use My Mesh'"):
        bpy.ops.semantify.export_model(filepath=str(tmp_path / "stale.npz"))
    assert not (tmp_path / "stale.npz").exists()


# ---------------------------------------------------------------------- preferences, command, disable
def test_preferences_and_the_command_callback(glue, capsys: pytest.CaptureFixture[str]) -> None:
    preferences = bpy.context.preferences.addons[MODULE].preferences
    assert {"model_dir", "clip_model", "clip_pretrained", "cache_dir"} <= set(
        preferences.bl_rna.properties.keys()
    )
    assert glue.cli_command.execute(["models", "--json"]) == 0
    listed = {entry["name"] for entry in json.loads(capsys.readouterr().out)}
    assert {"anny-body", "anny-head-shape", "anny-face-expression"} <= listed
    assert glue.cli_command.execute(["models", "--no-such-option"]) == 2  # argparse usage error
    assert glue.cli_command.execute(["preview", "no-such-model", "--out", "x.png"]) == 2


def test_disable_leaves_no_class_property_or_handler_behind(glue) -> None:
    classes = glue.CLASSES
    assert all(cls.is_registered for cls in classes)
    assert bpy.ops.preferences.addon_disable(module=MODULE) == {"FINISHED"}
    assert not hasattr(bpy.types.Object, "semantify")
    assert not [name for name in dir(bpy.types) if name.startswith("SEMANTIFY")]
    assert not any(cls.is_registered for cls in classes)
    assert glue.sliders.on_frame_change not in bpy.app.handlers.frame_change_post
