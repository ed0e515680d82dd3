"""The Blender tests: every test under ``tests/blender/`` is marked ``blender``, and the extension's fixtures.

The mark is given here, once, by folder (``-m "not blender"`` leaves the folder out); a module still binds
``bpy = pytest.importorskip("bpy")`` for its own use, which skips it where bpy is missing. The extension
zip is built once per session by Blender's own tool and installed offline into the isolated user folder
that the root ``conftest.py`` sets up.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ROOT
from support.blender import MODULE, make_mapper, run_blender_ext

from semantify_engine.mapper import Mapper
from semantify_engine.models import load

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of this folder ``blender``: pytest calls this hook with every collected test."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.blender)


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


# The head and a small random mapper for it: the sliders' tests and others add it to a scene.
@pytest.fixture(scope="module")
def head():
    return load("anny-head-shape")


@pytest.fixture(scope="module")
def head_mapper(head, tmp_path_factory: pytest.TempPathFactory) -> tuple[Mapper, Path]:
    path = tmp_path_factory.mktemp("mappers") / "head.npz"
    return make_mapper(head, path), path
