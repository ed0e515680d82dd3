"""The Blender extension's own costs: registration, adding a model, and one slider move.

- Registration is timed in fresh processes (the first import of the installed extension, what a user's
  Blender pays at start-up) and warm (disable / enable in one process). The budget is 0.2 s.
- A slider move (mapper in numpy → K shape-key weights with one ``foreach_set`` → Blender evaluates the
  keys) is compared side by side with the naive way without shape keys: evaluate the model in numpy and
  write every vertex coordinate. Both include the depsgraph evaluation that makes the shape visible.

    .venv/bin/python benchmarks/bench_extension.py [--model anny-body] [--runs 5] [--moves 200]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="semantify-bench-blender-"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODULE = "bl_ext.user_default.semantify"

FRESH_PROCESS = r"""
import json, sys, time
import bpy
install = bpy.ops.extensions.package_install_files
assert install(filepath=sys.argv[1], repo="user_default", enable_on_install=False) == {"FINISHED"}
start = time.perf_counter()
assert bpy.ops.preferences.addon_enable(module=sys.argv[2]) == {"FINISHED"}
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, **{name: name in sys.modules for name in ("torch", "open_clip")}}))
"""


def build_zip(folder: Path) -> Path:
    """Build the extension with Blender's own tool (as `make extension` does)."""
    spec = importlib.util.find_spec("bpy")
    assert spec is not None and spec.submodule_search_locations, "bpy is not installed"
    bpy_root = Path(next(iter(spec.submodule_search_locations)))
    script = next(bpy_root.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    command = [sys.executable, str(script), "build", "--source-dir", str(ROOT), "--output-dir", str(folder)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return next(folder.glob("semantify-*.zip"))


def fresh_registration(zip_path: Path, runs: int) -> list[dict]:
    reports = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="semantify-bench-user-") as user:
            result = subprocess.run(
                [sys.executable, "-c", FRESH_PROCESS, str(zip_path), MODULE],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "BLENDER_USER_RESOURCES": user},
            )
        reports.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return reports


def make_mapper(model, count: int, path: Path):
    """A random mapper of the size the paper uses (a few descriptors, two hidden layers)."""
    from semantify_engine.mapper import Descriptor, Mapper, model_identity, save_mapper

    rng = np.random.default_rng(0)
    names = ("muscular", "tall", "thin", "broad shoulders", "short")
    d = len(names)
    sizes = [d, 300, 300, count]
    layers = itertools.pairwise(sizes)
    weights = tuple((rng.normal(0, 1 / np.sqrt(a), size=(a, b)), np.zeros(b)) for a, b in layers)
    mapper = Mapper(
        descriptors=tuple(Descriptor(n, "word", "cosine", 0.15, 0.30, 0.22) for n in names),
        input_mean=np.full(d, 0.22),
        input_std=np.full(d, 0.03),
        output_mean=np.zeros(count),
        output_std=np.ones(count),
        weights=weights,
        metadata={"model": model_identity(model, count)},
    )
    save_mapper(mapper, path)
    return mapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="anny-body")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes for cold registration")
    parser.add_argument("--moves", type=int, default=200, help="slider moves timed")
    arguments = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="semantify-bench-ext-"))
    zip_path = build_zip(folder)
    print(f"extension zip: {zip_path.name}, {zip_path.stat().st_size / 1e6:.1f} MB")

    reports = fresh_registration(zip_path, arguments.runs)
    cold = [r["seconds"] * 1e3 for r in reports]
    print(
        f"registration, fresh process (first import): median {statistics.median(cold):.1f} ms, "
        f"max {max(cold):.1f} ms over {len(cold)} runs (budget 200 ms); "
        f"torch imported: {any(r['torch'] for r in reports)}, "
        f"open_clip imported: {any(r['open_clip'] for r in reports)}"
    )

    import bpy

    from semantify_engine.models import load

    install = bpy.ops.extensions.package_install_files
    assert install(filepath=str(zip_path), repo="user_default") == {"FINISHED"}
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.preferences.addon_enable(module=MODULE)
    warm = []
    for _ in range(20):
        bpy.ops.preferences.addon_disable(module=MODULE)
        start = time.perf_counter()
        bpy.ops.preferences.addon_enable(module=MODULE)
        warm.append((time.perf_counter() - start) * 1e3)
    print(f"registration, warm (disable/enable): median {statistics.median(warm):.2f} ms")

    model = load(arguments.model)
    start = time.perf_counter()
    bpy.ops.semantify.add_model(model=arguments.model)
    added = time.perf_counter() - start
    obj = bpy.context.active_object
    shape = f"{model.vertex_count} vertices, {model.component_count} shape keys"
    print(f"add {model.name} ({shape}): {added:.2f} s")

    count = min(10, model.component_count)
    mapper = make_mapper(model, count, folder / "mapper.npz")
    bpy.ops.semantify.load_mapper(filepath=str(folder / "mapper.npz"))
    sliders = obj.semantify.sliders
    positions = np.random.default_rng(1).uniform(0, 1, size=(arguments.moves, len(sliders)))

    def slider_moves() -> float:
        start = time.perf_counter()
        for row in positions:
            sliders[int(row[0] * len(sliders)) % len(sliders)].position = float(row[1])
            bpy.context.evaluated_depsgraph_get()  # Blender evaluates the shape keys, as a redraw would
        return (time.perf_counter() - start) / len(positions)

    plain = bpy.data.meshes.new("naive")
    plain.from_pydata(model.template.tolist(), [], model.faces.tolist())
    naive_obj = bpy.data.objects.new("naive", plain)
    bpy.context.scene.collection.objects.link(naive_obj)

    def naive_moves() -> float:
        start = time.perf_counter()
        values = mapper.defaults.copy()
        for row in positions:
            values[int(row[0] * len(values)) % len(values)] = mapper.lows[0] + row[1] * (
                mapper.highs[0] - mapper.lows[0]
            )
            vertices = model.vertices(mapper.coefficients(values))
            plain.vertices.foreach_set("co", vertices.ravel())
            plain.update()
            bpy.context.evaluated_depsgraph_get()
        return (time.perf_counter() - start) / len(positions)

    product, naive = slider_moves(), naive_moves()
    print(
        f"slider move, mapper → shape-key weights + evaluation: {product * 1e3:.2f} ms; "
        f"naive (numpy vertices + write all coordinates): {naive * 1e3:.2f} ms; ratio {naive / product:.1f}×"
    )


if __name__ == "__main__":
    main()
