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
Blender's undo restores the scene around them), and Blender's event loop feeding timer events to the
modal Build Mapper / Add Word operator (the tests deliver the events themselves; the background process,
its progress, cancel and result are real).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import conftest
import numpy as np
import pytest
from conftest import MODULE, ROOT, capsule_clip_request, evaluated_vertices, run_blender_ext, weights_of
from recording_layout import RecordingLayout

from semantify_engine.mapper import Descriptor, Mapper, load_mapper, model_identity, save_mapper
from semantify_engine.models import load, load_model
from semantify_engine.pipeline import DEFAULT_ATTRIBUTE_SLIDERS

bpy = pytest.importorskip("bpy")

pytestmark = pytest.mark.blender

# The extension's fixtures live in conftest, shared by every Blender test module; the names stay here too
# for modules that import them from this one.
extension_zip, installed, glue = conftest.extension_zip, conftest.installed, conftest.glue

SCENE_CHANGING = (
    "add_model",
    "add_model_file",
    "use_mesh",
    "load_mapper",
    "load_default_mapper",
    "reset_sliders",
    "randomise_sliders",
    "keyframe_sliders",
    "remove_mapper",
    "bake_shape_key",
    "apply_shape",
    "build_mapper",
    "add_word",
)
SHIPPED = ROOT / "semantify_engine" / "data" / "mappers"


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
        assert "UNDO" in operator_class.bl_options, name
        # Background jobs offer no redo panel: redoing would run the whole build again.
        assert ("REGISTER" in operator_class.bl_options) != (name in ("build_mapper", "add_word")), name
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


def test_a_failed_reset_or_random_changes_no_slider_and_no_shape(glue, head, tmp_path: Path) -> None:
    path = tmp_path / "doomed.npz"
    make_mapper(head, path)
    obj = add_head_with_mapper(path)
    obj.semantify.sliders[0].position = 0.9
    before = (positions_of(obj), weights_of(obj).copy())
    path.unlink()  # the mapper file is gone
    for operator in (bpy.ops.semantify.reset_sliders, bpy.ops.semantify.randomise_sliders):
        with pytest.raises(RuntimeError, match="cannot be read"):
            operator()
        assert np.array_equal(positions_of(obj), before[0]) and np.array_equal(weights_of(obj), before[1])
    make_mapper(head, path)
    obj.shape_key_clear()  # the shape keys deleted by hand
    positions = positions_of(obj)
    with pytest.raises(RuntimeError, match="shape keys"):
        bpy.ops.semantify.reset_sliders()
    assert np.array_equal(positions_of(obj), positions)


def test_use_my_mesh_with_only_a_basis_key_says_why(glue) -> None:
    bpy.ops.mesh.primitive_cube_add()
    bpy.context.active_object.shape_key_add(name="Basis")
    with pytest.raises(RuntimeError, match="has only its Basis shape key: add one shape key per way"):
        bpy.ops.semantify.use_mesh()


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


# ---------------------------------------------------------------------------- shipped default mapper
def add_body_with_default_mapper():
    assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    obj = bpy.context.active_object
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-body-measurements") == {"FINISHED"}
    return obj


def test_default_mapper_gives_the_bundled_body_measurement_sliders_with_zero_setup(glue) -> None:
    """Add the bundled body, load its shipped mapper, set sliders: the evaluated mesh is the engine's."""
    model = load("anny-body")
    mapper = load_mapper(SHIPPED / "anny-body-measurements.npz")
    make_mesh_with_shape_keys()
    assert bpy.ops.semantify.use_mesh() == {"FINISHED"}
    assert not bpy.ops.semantify.load_default_mapper.poll()  # nothing ships for a user's mesh: not offered
    assert bpy.ops.semantify.add_model(model="anny-head-shape") == {"FINISHED"}
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-head-shape-measurements") == {"FINISHED"}
    head = [slider.name for slider in bpy.context.active_object.semantify.sliders]
    assert head == ["head_circumference", "face_height", "head_width"]
    obj = add_body_with_default_mapper()
    state = obj.semantify
    assert state.mapper_path == "default:anny-body-measurements"  # found in any installed extension
    assert [slider.name for slider in state.sliders] == ["height", "chest", "waist", "hips"]
    assert [slider.unit for slider in state.sliders] == ["m"] * 4
    state.sliders["height"].value = 1.85  # metres
    state.sliders["waist"].position = 0.2
    values = np.array([slider.value for slider in state.sliders], dtype=np.float32)
    assert values[0] == pytest.approx(1.85, abs=1e-5)
    expected = model.vertices(mapper.coefficients(values))
    assert np.abs(evaluated_vertices(obj) - expected).max() < 1e-5
    assert state.status == ""
    assert 0.0 <= state.plausibility <= 99.0, "the shipped sliders stay inside the plausible region"
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-body-attributes") == {"FINISHED"}
    assert tuple(slider.name for slider in state.sliders) == DEFAULT_ATTRIBUTE_SLIDERS
    units = {slider.name: slider.unit for slider in state.sliders}
    assert units["height"] == "m" and units["age"] == "years" and units["muscle"] == ""
    state.sliders["age"].value = 30.0  # years
    attributes = load_mapper(SHIPPED / "anny-body-attributes.npz")
    values = np.array([slider.value for slider in state.sliders], dtype=np.float32)
    assert np.abs(evaluated_vertices(obj) - model.vertices(attributes.coefficients(values))).max() < 1e-5


def test_the_sidebar_says_when_a_shape_leaves_the_plausible_region(glue, tmp_path: Path) -> None:
    """A mapper that pushes one component 12 std out: the object's plausibility follows the slider."""
    model = load("anny-body")
    weight = np.zeros((1, model.component_count), np.float32)
    weight[0, 30] = 12.0  # a detail component (the first ones, height and build, reach far in the bank)
    push = Mapper(
        descriptors=(Descriptor("push", "metric", "m", 0.0, 1.0, 0.0),),
        input_mean=np.zeros(1),
        input_std=np.ones(1),
        output_mean=np.zeros(model.component_count),
        output_std=np.ones(model.component_count),
        weights=((weight, np.zeros(model.component_count, np.float32)),),
        metadata={"model": model_identity(model, model.component_count)},
    )
    path = save_mapper(push, tmp_path / "push.npz")
    assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    assert bpy.ops.semantify.load_mapper(filepath=str(path)) == {"FINISHED"}
    state = bpy.context.active_object.semantify
    assert 0.0 <= state.plausibility <= 99.0, "the mean body is typical"
    state.sliders["push"].position = 1.0
    assert state.plausibility > 99.0, "12 std along one component: outside"
    assert state.plausibility == pytest.approx(float(model.plausibility(push.coefficients([1.0])[None])[0]))
    assert sidebar_notes(glue) == [
        f"Outside the plausible region: rarer than {state.plausibility:.1f} % of source bodies"
    ]
    state.sliders["push"].position = 0.0
    assert state.plausibility <= 99.0
    assert sidebar_notes(glue) == [], "a typical body draws no line"
    shipped = add_body_with_default_mapper().semantify.sliders["waist"]
    reach = glue.panels.reach_text(shipped)  # the waist is cut to its plausible reach: the sidebar says so
    assert shipped.data_low == pytest.approx(shipped.low) and shipped.high < shipped.data_high - 0.05
    assert reach == f"    plausible up to {shipped.high * 100:.4g} cm (data to {shipped.data_high * 100:.4g})"
    assert glue.panels.reach_text(add_body_with_default_mapper().semantify.sliders["chest"]) == ""


def test_the_gender_slider_says_which_end_is_which(glue) -> None:
    """anny's gender 0 is male: the bundled male body's source bodies all lie below 1/3, the female's above
    2/3, so the words under the slider follow the data, not a guess."""
    for name, inside in (
        ("anny-body-male", lambda g: g <= 1 / 3 + 1e-6),
        ("anny-body-female", lambda g: g >= 2 / 3 - 1e-6),
    ):
        bank = load(name).bank
        assert np.all(inside(bank.settings[:, bank.setting_names.index("gender")])), name
    assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-body-attributes") == {"FINISHED"}
    calls: list[tuple[str, tuple, dict]] = []
    glue.panels.SEMANTIFY_PT_sliders.draw(SimpleNamespace(layout=RecordingLayout(calls)), bpy.context)
    labels = [keywords.get("text", "") for name, _, keywords in calls if name == "label"]
    assert [text for text in labels if "→" in text] == ["    ← male  ·  female →"], labels


def sidebar_notes(glue) -> list[str]:
    """The plausibility lines the Sliders panel draws for the active object."""
    calls: list[tuple[str, tuple, dict]] = []
    glue.panels.SEMANTIFY_PT_sliders.draw(SimpleNamespace(layout=RecordingLayout(calls)), bpy.context)
    texts = [keywords.get("text", "") for name, _, keywords in calls if name == "label"]
    return [text for text in texts if "plausible region" in text]


def test_slider_undo_restores_positions_and_shape(glue) -> None:
    obj = add_body_with_default_mapper()
    name = obj.name
    bpy.ops.ed.undo_push(message="loaded")
    before = (positions_of(obj), weights_of(obj).copy(), evaluated_vertices(obj))
    obj.semantify.sliders["hips"].position = 0.95
    bpy.ops.ed.undo_push(message="slider")
    assert not np.allclose(evaluated_vertices(obj), before[2], atol=1e-4)
    bpy.ops.ed.undo()
    obj = bpy.data.objects[name]  # undo rebuilt the data: old references are gone
    assert np.array_equal(positions_of(obj), before[0]) and np.array_equal(weights_of(obj), before[1])
    assert np.abs(evaluated_vertices(obj) - before[2]).max() < 1e-6


def test_save_and_reload_with_a_default_mapper(glue, tmp_path: Path) -> None:
    obj = add_body_with_default_mapper()
    obj.semantify.sliders["chest"].position = 0.7
    saved = (positions_of(obj), evaluated_vertices(obj), obj.name)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "body.blend"))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module=MODULE)
    glue.sliders.clear_cache()
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "body.blend"))
    obj = bpy.data.objects[saved[2]]
    assert np.allclose(positions_of(obj), saved[0])
    assert np.abs(evaluated_vertices(obj) - saved[1]).max() < 1e-6
    obj.semantify.sliders["chest"].position = 0.3  # the shipped mapper is found again by reference
    assert obj.semantify.status == "" and not np.allclose(evaluated_vertices(obj), saved[1], atol=1e-4)


def test_positions_and_ranges_are_checked_where_they_are_stored(glue, tmp_path: Path) -> None:
    """A NaN position used to be stored, saved and keyed; a NaN value sent the slider to its low end; a
    range typed by hand (low = inf) showed 2.4e38 m. Now the slider keeps its place and ranges are the
    mapper's alone, before and after a save."""
    obj = add_body_with_default_mapper()
    waist = obj.semantify.sliders["waist"]
    waist.position = 0.25
    shown = evaluated_vertices(obj)
    ranges = (waist.low, waist.high, waist.default, waist.data_low, waist.data_high)
    for attribute in ("position", "value"):
        setattr(waist, attribute, float("nan"))  # Blender prints the setter's ValueError and keeps the old
        assert waist.position == pytest.approx(0.25), attribute
    waist.value = 1e9  # past the end: held at the end, as a typed value is
    assert waist.position == 1.0
    waist.position = 0.25
    for name in ("low", "high", "default", "data_low", "data_high"):
        with pytest.raises(AttributeError, match="read-only"):
            setattr(waist, name, float("inf"))
    assert (waist.low, waist.high, waist.default, waist.data_low, waist.data_high) == ranges
    assert np.abs(evaluated_vertices(obj) - shown).max() < 1e-6
    name = obj.name
    obj.keyframe_insert(data_path='semantify.sliders["waist"].position', frame=1)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "checked.blend"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "checked.blend"))
    reopened = bpy.data.objects[name].semantify.sliders["waist"]
    assert reopened.position == pytest.approx(0.25)
    assert (reopened.low, reopened.high, reopened.default, reopened.data_low, reopened.data_high) == ranges


# ----------------------------------------------------------------------------------- keep the shape
def test_bake_shape_key_holds_the_evaluated_shape(glue) -> None:
    obj = add_body_with_default_mapper()
    obj.semantify.sliders["height"].position = 0.9
    shown = evaluated_vertices(obj)
    assert bpy.ops.semantify.bake_shape_key() == {"FINISHED"}
    blocks = obj.data.shape_keys.key_blocks
    baked = blocks[-1]
    assert len(blocks) == 1 + obj.semantify.component_count + 1  # after the components: key k+1 is still k
    height = obj.semantify.sliders["height"]
    assert baked.name.startswith(f"height={height.low + 0.9 * (height.high - height.low):.3g} ")
    assert "hips=" in baked.name and baked.value == 0.0
    coordinates = np.empty(len(baked.data) * 3, dtype=np.float32)
    baked.data.foreach_get("co", coordinates)
    assert np.abs(coordinates.reshape(-1, 3) - shown).max() < 1e-5
    assert np.abs(evaluated_vertices(obj) - shown).max() < 1e-6  # baking changes nothing on screen


def test_apply_shape_keeps_the_shape_and_removes_semantify_and_undo_restores(glue) -> None:
    obj = add_body_with_default_mapper()
    name = obj.name
    obj.semantify.sliders["waist"].position = 0.8
    bpy.ops.semantify.keyframe_sliders()
    shown = evaluated_vertices(obj)
    bpy.ops.ed.undo_push(message="before apply")
    assert bpy.ops.semantify.apply_shape() == {"FINISHED"}
    bpy.ops.ed.undo_push(message="after apply")
    assert obj.data.shape_keys is None
    assert not obj.semantify.is_model and not len(obj.semantify.sliders) and obj.semantify.mapper_path == ""
    assert np.abs(evaluated_vertices(obj) - shown).max() < 1e-5
    coordinates = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
    obj.data.vertices.foreach_get("co", coordinates)
    assert np.abs(coordinates.reshape(-1, 3) - shown).max() < 1e-5  # the mesh itself holds the shape
    from bpy_extras import anim_utils

    curves = anim_utils.animdata_get_channelbag_for_assigned_slot(obj.animation_data).fcurves
    assert not [curve for curve in curves if curve.data_path.startswith("semantify.")]
    bpy.ops.ed.undo()
    obj = bpy.data.objects[name]
    assert len(obj.data.shape_keys.key_blocks) == 1 + obj.semantify.component_count == 51
    assert len(obj.semantify.sliders) == 4
    assert np.abs(evaluated_vertices(obj) - shown).max() < 1e-6


def test_apply_shape_keeps_other_keys_as_offsets_on_the_applied_shape(glue) -> None:
    obj = add_body_with_default_mapper()
    obj.semantify.sliders["height"].position = 0.1
    bpy.ops.semantify.bake_shape_key()
    extra = obj.shape_key_add(name="nose", from_mix=False)
    offset = np.zeros((len(obj.data.vertices), 3), dtype=np.float32)
    offset[:50, 1] = -0.01
    basis = np.empty(offset.size, dtype=np.float32)
    obj.data.shape_keys.key_blocks[0].data.foreach_get("co", basis)
    extra.data.foreach_set("co", (basis.reshape(-1, 3) + offset).ravel())
    extra.value = 0.0
    obj.data.shape_keys.update_tag()
    shown = evaluated_vertices(obj)
    bpy.ops.semantify.apply_shape()
    assert [block.name for block in obj.data.shape_keys.key_blocks][1:] == [
        obj.data.shape_keys.key_blocks[1].name,
        "nose",
    ]
    assert np.abs(evaluated_vertices(obj) - shown).max() < 1e-5
    obj.data.shape_keys.key_blocks["nose"].value = 1.0
    obj.data.shape_keys.update_tag()
    assert np.abs(evaluated_vertices(obj) - (shown + offset)).max() < 1e-5


# ------------------------------------------------------------------------------------ background jobs
def test_build_mapper_runs_in_a_background_process_and_loads_its_sliders(glue) -> None:
    """Headless there is no event loop for the modal operator: it waits for the same process instead."""
    obj = add_body_with_default_mapper()
    assert bpy.ops.semantify.build_mapper(samples=128, scorer="metric") == {"FINISHED"}
    state = obj.semantify
    # a body with a source bank builds MakeHuman's shape settings with the height in metres by default
    assert [slider.name for slider in state.sliders] == [
        "gender",
        "age",
        "muscle",
        "weight",
        "height",
        "proportions",
    ]
    path = Path(state.mapper_path)
    assert path.name == "mapper.npz" and path.parent.parent.name == "builds"  # in the cache, not the zip
    mapper = load_mapper(path)
    assert mapper.metadata["dataset"]["samples"] == 128 and state.status == ""
    values = np.array([slider.value for slider in state.sliders], dtype=np.float32)
    expected = load("anny-body").vertices(mapper.coefficients(values))
    assert np.abs(evaluated_vertices(obj) - expected).max() < 1e-5
    assert glue.jobs.active_job() is None and not bpy.ops.semantify.cancel_job.poll()


class OperatorStandIn:
    """Stands in for the running modal operator, whose instance Blender keeps to itself."""

    def __init__(self) -> None:
        self.reports: list[tuple[set[str], str]] = []

    def report(self, level: set[str], message: str) -> None:
        self.reports.append((level, message))


def tick(glue, event_type: str = "TIMER") -> set[str]:
    """One event delivered to the modal operator, as Blender's event loop would (headless has none)."""
    event = SimpleNamespace(type=event_type, value="PRESS" if event_type == "ESC" else "NOTHING")
    return glue.jobs.SEMANTIFY_OT_build_mapper.modal(OperatorStandIn(), bpy.context, event)


def test_modal_build_shows_progress_on_timer_ticks_and_cancel_ends_the_process(glue, monkeypatch) -> None:
    obj = add_body_with_default_mapper()
    monkeypatch.setattr(glue.jobs, "has_event_loop", lambda context: True)
    assert bpy.ops.semantify.build_mapper(samples=50000, scorer="metric") == {"RUNNING_MODAL"}
    state = glue.jobs.active_job()
    assert state is not None and state.timer is not None
    assert (
        not bpy.ops.semantify.build_mapper.poll() and not bpy.ops.semantify.add_word.poll()
    )  # one at a time
    shown = bpy.context.window_manager.semantify_job
    deadline = time.monotonic() + 60
    while not (shown.known and shown.fraction > 0):
        assert tick(glue) == {"PASS_THROUGH"} and time.monotonic() < deadline
        time.sleep(0.05)
    assert shown.running and shown.label == "Build mapper for anny-body" and "dataset" in shown.message
    assert tick(glue, "MOUSEMOVE") == {"PASS_THROUGH"}  # other events go on to Blender
    assert bpy.ops.semantify.cancel_job() == {"FINISHED"}  # the sidebar's Cancel asks; the next tick ends it
    assert tick(glue) == {"CANCELLED"}
    assert not state.job.running and glue.jobs.active_job() is None and not shown.running
    with pytest.raises(ProcessLookupError):
        os.killpg(state.job.process.pid, 0)
    assert obj.semantify.mapper_path == "default:anny-body-measurements"  # the scene is as it was


def test_disabling_the_add_on_ends_a_running_job(glue, monkeypatch) -> None:
    add_body_with_default_mapper()
    monkeypatch.setattr(glue.jobs, "has_event_loop", lambda context: True)
    assert bpy.ops.semantify.build_mapper(samples=50000, scorer="metric") == {"RUNNING_MODAL"}
    state = glue.jobs.active_job()
    assert bpy.ops.preferences.addon_disable(module=MODULE) == {"FINISHED"}
    assert not state.job.running and glue.jobs.active_job() is None
    with pytest.raises(ProcessLookupError):
        os.killpg(state.job.process.pid, 0)


def test_modal_build_loads_the_new_sliders_when_the_process_finishes(glue, monkeypatch) -> None:
    obj = add_body_with_default_mapper()
    obj.semantify.sliders["height"].position = 0.9
    monkeypatch.setattr(glue.jobs, "has_event_loop", lambda context: True)
    assert bpy.ops.semantify.build_mapper(samples=128, scorer="metric") == {"RUNNING_MODAL"}
    deadline = time.monotonic() + 120
    while (result := tick(glue)) == {"PASS_THROUGH"}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert result == {"FINISHED"} and glue.jobs.active_job() is None
    assert Path(obj.semantify.mapper_path).name == "mapper.npz"
    height = obj.semantify.sliders["height"]  # a new mapper: its defaults, not the old position
    assert height.position == pytest.approx(
        (height.default - height.low) / (height.high - height.low), abs=1e-3
    )


@pytest.fixture(scope="module")
def capsule_words(capsule, tiny_spec, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A capsule model file and a two-word mapper for it, trained on a tiny CLIP dataset (mechanics only)."""
    from semantify_engine.dataset.builder import build_dataset
    from semantify_engine.dataset.store import DatasetFolder
    from semantify_engine.mapper.train import TrainingSettings, train_from_dataset
    from semantify_engine.models import save_model

    folder = tmp_path_factory.mktemp("capsule-words")
    dataset = DatasetFolder(folder / "data")
    build_dataset(
        dataset,
        capsule_clip_request(capsule, tiny_spec, ("fat", "tall"), samples=16, views="front"),
    )
    settings = TrainingSettings(epochs=3, hidden=(16,), batch_size=8)
    mapper, _ = train_from_dataset(dataset.folder, ["fat", "tall"], model=capsule, settings=settings)
    return save_model(capsule, folder / "capsule.npz"), save_mapper(mapper, folder / "words.npz")


def test_add_word_from_the_sidebar_keeps_the_other_sliders_values(glue, capsule_words) -> None:
    model_path, mapper_path = capsule_words
    assert bpy.ops.semantify.add_model_file(filepath=str(model_path)) == {"FINISHED"}
    obj = bpy.context.active_object
    assert bpy.ops.semantify.load_mapper(filepath=str(mapper_path)) == {"FINISHED"}
    obj.semantify.sliders["tall"].position = 0.8
    tall = obj.semantify.sliders["tall"].value
    assert bpy.ops.semantify.add_word(word="broad shoulders") == {"FINISHED"}  # a real background process
    state = obj.semantify
    assert [slider.name for slider in state.sliders] == ["fat", "tall", "broad shoulders"]
    assert state.sliders["tall"].value == pytest.approx(tall, abs=1e-6)  # the artist's shape is kept
    assert Path(state.mapper_path).name == "words+broad_shoulders.npz" and state.status == ""
    assert load_mapper(mapper_path).descriptor_names == ("fat", "tall")  # the original is untouched


def test_build_mapper_renders_with_the_engines_the_renderer_knows(glue) -> None:
    from semantify_engine.render.settings import ENGINES

    items = bpy.ops.semantify.build_mapper.get_rna_type().properties["render_engine"].enum_items
    assert {item.identifier for item in items} == set(ENGINES)
    obj = add_body_with_default_mapper()
    job = glue.jobs.build_job(bpy.context, obj, 128, "clip", "tall,fat", 0, "cycles")
    assert job.arguments[job.arguments.index("--engine") + 1] == "cycles"
    metric = glue.jobs.build_job(bpy.context, obj, 128, "metric", "", 0, "cycles")
    assert "--engine" not in metric.arguments  # measurements render nothing


def test_missing_torch_or_open_clip_is_reported_with_how_to_fix_it(glue, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    preferences = bpy.context.preferences.addons[MODULE].preferences
    obj = add_body_with_default_mapper()
    before = (positions_of(obj), obj.semantify.mapper_path)
    preferences.python = str(bare / "bin" / "python")
    with pytest.raises(RuntimeError) as caught:
        bpy.ops.semantify.add_word(word="muscular")
    message = str(caught.value)
    for text in (
        "lacks numpy, torch, torchvision, open_clip",
        "Python with semantify installed",
        "-m pip install",
    ):
        assert text in message
    preferences.python = str(tmp_path / "no-such-python")
    with pytest.raises(RuntimeError, match="cannot be run.*Python with semantify installed"):
        bpy.ops.semantify.build_mapper(samples=128, scorer="metric")
    assert np.array_equal(positions_of(obj), before[0]) and obj.semantify.mapper_path == before[1]
    preferences.python = ""


def test_add_word_on_a_shipped_mapper_reports_that_its_dataset_must_be_made(glue) -> None:
    obj = add_body_with_default_mapper()
    with pytest.raises(RuntimeError, match="without its dataset.*--scorer both"):
        bpy.ops.semantify.add_word(word="muscular")
    assert obj.semantify.mapper_path == "default:anny-body-measurements"


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


def test_background_builds_name_the_model_by_bundled_name_or_an_exported_file(glue) -> None:
    obj = make_mesh_with_shape_keys()
    bpy.ops.semantify.use_mesh()
    options = glue.jobs.model_options(bpy.context, obj)
    path = options["model"]
    assert list(options) == ["model"] and Path(path).is_file()  # the worker process cannot see this mesh
    assert load_model(path).checksum() == obj.semantify.model_checksum
    assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    assert glue.jobs.model_options(bpy.context, bpy.context.active_object) == {"model": "anny-body"}


def test_export_refuses_shape_keys_changed_since_use_my_mesh(glue, tmp_path: Path) -> None:
    obj = make_mesh_with_shape_keys()
    bpy.ops.semantify.use_mesh()
    obj.data.shape_keys.key_blocks["lift"].data[0].co.z += 0.5
    with pytest.raises(RuntimeError, match="changed since 'Use My Mesh'"):
        bpy.ops.semantify.export_model(filepath=str(tmp_path / "stale.npz"))
    assert not (tmp_path / "stale.npz").exists()


def test_panels_draw_registered_operators_valid_icons_and_existing_properties(glue, monkeypatch) -> None:
    icons = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())
    obj = add_body_with_default_mapper()
    calls: list[tuple[str, tuple, dict]] = []
    panels = [getattr(glue.panels, name) for name in dir(glue.panels) if name.startswith("SEMANTIFY_PT_")]
    shown = bpy.context.window_manager.semantify_job
    shown.known, shown.fraction, shown.label, shown.message = True, 0.3, "Build", "dataset: 64/3000 samples"
    for running in (False, True):
        monkeypatch.setattr(glue.jobs, "active_job", lambda running=running: object() if running else None)
        for panel in panels:
            if not hasattr(panel, "poll") or panel.poll(bpy.context):
                panel.draw(SimpleNamespace(layout=RecordingLayout(calls)), bpy.context)
    operators = {args[0] for name, args, _ in calls if name in ("operator", "operator_menu_enum")}
    for idname in operators:
        group, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, group), name), idname
    assert {"semantify.load_default_mapper", "semantify.bake_shape_key", "semantify.apply_shape"} <= operators
    assert {"semantify.build_mapper", "semantify.add_word", "semantify.cancel_job"} <= operators
    used = {keywords["icon"] for _, _, keywords in calls if "icon" in keywords}
    assert used <= icons, used - icons
    for name, args, _ in calls:
        if name == "prop":
            assert args[1] in args[0].bl_rna.properties, args[1]
        if name == "menu":
            assert hasattr(bpy.types, args[0]), args[0]
    assert any(name == "progress" for name, _, _ in calls)  # the running job's progress bar
    assert obj.semantify.is_model


# ---------------------------------------------------------------------- preferences, command, disable
def test_preferences_and_the_command_callback(glue, capsys: pytest.CaptureFixture[str]) -> None:
    preferences = bpy.context.preferences.addons[MODULE].preferences
    assert {"model_dir", "clip_model", "clip_pretrained", "clip_engine", "cache_dir", "python"} <= set(
        preferences.bl_rna.properties.keys()
    )
    from semantify_engine.scoring.engines import ENGINE_CHOICES, ENV_ENGINE

    items = [item.identifier for item in preferences.bl_rna.properties["clip_engine"].enum_items]
    assert items == list(ENGINE_CHOICES), "the preference offers exactly the engine's choices"
    preferences.clip_engine = "onnx-int8"
    assert glue.preferences.engine_environment()[ENV_ENGINE] == "onnx-int8"  # jobs get it
    preferences.clip_engine = "auto"
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
    assert not hasattr(bpy.types.WindowManager, "semantify_job")
    assert not [name for name in dir(bpy.types) if name.startswith("SEMANTIFY")]
    assert not any(cls.is_registered for cls in classes)
    assert glue.sliders.on_frame_change not in bpy.app.handlers.frame_change_post
