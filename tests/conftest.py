"""Shared fixtures. Blender and the model hub are isolated before anything imports them."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

# bpy writes preferences and caches under the user's home unless told otherwise; tests never need the
# network, and open_clip must not wait on a model hub.
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="semantify-test-blender-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from semantify_engine.models import LinearMorphableModel
from semantify_engine.models.bank import Setting, SourceBank, fit_attribute_regressor
from semantify_engine.models.plausibility import BANK_METHOD, Plausibility, calibration

ROOT = Path(__file__).resolve().parent.parent
MODULE = "bl_ext.user_default.semantify"  # the extension as Blender names it once installed


def make_capsule_model(rings: int = 48, levels: int = 40) -> LinearMorphableModel:
    """A small body-like model with known meaning: component 0 = height, 1 = width, 2 = depth.

    Tests use it where they need a mesh whose every coefficient has an analytic effect.
    """
    angles = np.linspace(0.0, 2.0 * np.pi, rings, endpoint=False)
    heights = np.linspace(0.0, 1.7, levels)
    profile = 0.12 + 0.08 * np.sin(np.pi * heights / 1.7)  # wider in the middle, like a torso
    x = (profile[:, None] * np.cos(angles)[None, :]).ravel()
    y = (0.7 * profile[:, None] * np.sin(angles)[None, :]).ravel()
    z = np.repeat(heights, rings)
    template = np.stack([x, y, z], axis=1)
    faces = []
    for level in range(levels - 1):
        for ring in range(rings):
            a = level * rings + ring
            b = level * rings + (ring + 1) % rings
            faces += [[a, b, b + rings], [a, b + rings, a + rings]]
    basis = np.zeros((3, len(template), 3))
    basis[0, :, 2] = template[:, 2] * 0.05  # +5 % height per unit
    basis[1, :, 0] = template[:, 0] * 0.10  # +10 % width per unit
    basis[2, :, 1] = template[:, 1] * 0.10  # +10 % depth per unit
    return LinearMorphableModel(
        name="test-capsule",
        kind="body",
        template=template,
        faces=np.asarray(faces),
        basis=basis,
        std=np.ones(3),
        component_names=("height", "width", "depth"),
        info={"licence": "CC0-1.0", "source": "tests"},
    )


@pytest.fixture(scope="session")
def capsule() -> LinearMorphableModel:
    return make_capsule_model()


# The capsule with a source bank: two sub-populations, and MakeHuman-like settings that are known quadratic
# functions of the coefficients, so attribute and plausibility code has a truth to be checked against.
NAMES = ("gender", "age", "muscle", "weight", "height", "proportions")
SETTINGS = tuple(Setting(n, "years" if n == "age" else "", 0.0, 90.0 if n == "age" else 1.0) for n in NAMES)


def population(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Capsule coefficients from two sub-populations, and settings that are known functions of them."""
    rng = np.random.default_rng(seed)
    coefficients = np.concatenate(
        [rng.normal(0, 1, (count // 2, 3)), rng.uniform(-2, 2, (count - count // 2, 3))]
    )
    a, b, c = coefficients.T
    settings_ = np.stack(
        [a * 0.2 + 0.5, 40 + 10 * b, 0.5 + 0.1 * c, 0.5 + 0.05 * a * b, 0.5 + 0.1 * a, 0.5 - 0.1 * c], 1
    )
    return coefficients.astype(np.float32), settings_.astype(np.float32)


def banked_capsule(count: int = 1200) -> LinearMorphableModel:
    """The capsule with a source bank (calibrated on a held-out population) and an attribute regressor."""
    capsule = make_capsule_model()
    coefficients, labels = population(count, 1)
    raw = Plausibility(method=BANK_METHOD, std=capsule.std.astype(np.float64), bank=coefficients)
    held, _ = population(600, 2)
    bank = SourceBank(
        coefficients=coefficients,
        settings=labels,
        setting_specs=SETTINGS,
        populations=np.repeat([0, 1], [count // 2, count - count // 2]),
        population_names=("normal", "uniform"),
        plausibility=calibration(raw, held),
        smooth=0.8 * coefficients,  # "without individual detail": any bodies other than the bank's own
    )
    regressor = fit_attribute_regressor(coefficients, labels, SETTINGS, quadratic_components=3)
    return replace(capsule, name="banked-capsule", bank=bank, attributes=regressor)


TINY_CLIP_NAME = "semantify-tiny-test-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny CLIP saved as ``<name>.bin`` with its open_clip config ``<name>.json`` beside it.

    No pretrained weights can be had on test machines: this exercises the real open_clip loading path
    (a user's local weights file) for mechanics; meaning comes from the metric scorer.
    """
    from semantify_engine.compat.torchvision_ops import ensure_torchvision_importable

    ensure_torchvision_importable()
    import open_clip
    import torch

    folder = tmp_path_factory.mktemp("tiny-clip")
    config = folder / f"{TINY_CLIP_NAME}.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP_NAME, pretrained=None)
    weights = folder / f"{TINY_CLIP_NAME}.bin"
    torch.save(model.state_dict(), weights)
    return weights


@pytest.fixture(scope="session")
def tiny_spec(tiny_weights: Path):
    from semantify_engine.scoring.clip import ClipSpec

    return ClipSpec(model=TINY_CLIP_NAME, pretrained=str(tiny_weights))


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


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extension zip, built once per test session by Blender's own tool."""
    output = tmp_path_factory.mktemp("extension")
    result = run_blender_ext("build", "--source-dir", str(ROOT), "--output-dir", str(output))
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = output.glob("semantify-*.zip")
    return path


@pytest.fixture(scope="module")
def installed(extension_zip: Path) -> Iterator[Path]:
    """The extension installed offline from the zip into the test user folder's default repository."""
    bpy = pytest.importorskip("bpy")
    result = bpy.ops.extensions.package_install_files(
        filepath=str(extension_zip), repo="user_default", enable_on_install=False
    )
    assert result == {"FINISHED"}
    yield extension_zip
    bpy.ops.wm.read_factory_settings(use_empty=True)  # disables it: later test modules see plain bpy


@pytest.fixture
def glue(installed: Path):
    """An empty scene with the extension enabled; returns its ``semantify_blender`` package."""
    bpy = pytest.importorskip("bpy")
    bpy.ops.wm.read_factory_settings(use_empty=True)  # also disables extensions
    assert bpy.ops.preferences.addon_enable(module=MODULE) == {"FINISHED"}
    package = sys.modules[f"{MODULE}.semantify_blender"]
    package.sliders.clear_cache()
    return package


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


def capsule_clip_request(
    capsule: LinearMorphableModel,
    spec,
    words: tuple[str, ...],
    *,
    samples: int = 24,
    chunk_size: int = 8,
    metrics: bool = False,
    template: str = "a photo of a {} person",
    views: str = "front,side",
    engine: str = "auto",
):
    """A small real dataset request: capsules rendered front and side at 64², scored by the tiny CLIP.

    Shared by the dataset, mapper and fitting tests so they all exercise the same build path (``engine``
    ``auto``: the fastest CLIP image engine that passes its fidelity check, as for users).
    """
    from semantify_engine.dataset.builder import ClipScoring, DatasetRequest
    from semantify_engine.dataset.sampling import SamplingPlan
    from semantify_engine.render.settings import RenderSettings
    from semantify_engine.render.views import parse_views

    return DatasetRequest(
        model_spec="capsule",
        model=capsule,
        samples=samples,
        plan=SamplingPlan(seed=7, components=3),
        views=parse_views(views),
        render=RenderSettings(resolution=64),
        clip=ClipScoring(spec=spec, template=template, words=tuple(words), engine=engine),
        metrics=metrics,
        chunk_size=chunk_size,
    )
