"""Word sliders in a stock Blender: the platform extension's install, and Build Mapper against the CLI.

Printed side by side in one run, on the bundled body, 300 samples, front and side views, a randomly
initialised open_clip model (``--clip ViT-B-32`` by default: a real ViT-B/32's compute; ``tiny`` for a
quick run):

- the platform zip's size, its install from disk and the first enable (Blender unpacks the wheels) in
  a stock-Blender environment (only ``bpy`` and ``numpy``; ``tests/support/stock_env.py``);
- the time from pressing Build Mapper (words) to word sliders on the object in that environment, the
  job running in a background process of the stock Blender with the extension's CLIP engine;
- the same build by ``semantify build`` in the project's ``.venv``, and the ratio of the two;
- the peak memory (max RSS) of each job's process.

    .venv/bin/python benchmarks/bench_stock_blender.py [--samples 300] [--clip ViT-B-32|tiny]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.clip import TINY_CLIP_NAME, save_tiny_clip  # noqa: E402
from support.stock_env import WORDS, build_platform_zip, drive, stock_python  # noqa: E402

PEAK_OF_CHILD = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)
"""Runs a command and prints its peak RSS (KB), measured apart from every other process of this run."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument(
        "--clip", default="ViT-B-32", help="an open_clip architecture (random weights) or tiny"
    )
    arguments = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="semantify-bench-stock-"))
    if arguments.clip == "tiny":
        clip = {"clip_model": TINY_CLIP_NAME, "clip_pretrained": str(save_tiny_clip(folder))}
    else:
        clip = {"clip_model": arguments.clip, "clip_pretrained": "none"}  # random weights: compute only

    started = time.perf_counter()
    platform_zip = build_platform_zip(folder / "dist")
    built_s = time.perf_counter() - started
    stock = SimpleNamespace(python=stock_python(), user=folder / "user", zip=platform_zip)
    stock.user.mkdir()
    install = drive(stock, "install", zip=str(platform_zip))

    record = drive(
        stock,
        "words",
        **clip,
        cache_dir=str(folder / "cache"),
        samples=arguments.samples,
        scorer="clip",
        words=WORDS,
        more=False,
    )
    build = record["build"]
    assert build["outcome"] == "FINISHED", build["message"]

    out = folder / "cli"
    command = [str(ROOT / ".venv" / "bin" / "semantify"), "build", "--model", "anny-body"]
    command += ["--samples", str(arguments.samples), "--scorer", "clip", "--words", WORDS, "--no-evaluate"]
    command += ["--clip", clip["clip_model"], "--pretrained", clip["clip_pretrained"], "--out", str(out)]
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", PEAK_OF_CHILD, *command], check=True, capture_output=True, text=True
    )
    cli_s = time.perf_counter() - started
    cli_peak_mb = float(result.stdout.strip().splitlines()[-1]) / 1024

    print(
        f"platform zip: {platform_zip.name} {platform_zip.stat().st_size / 1e6:.1f} MB "
        f"(built in {built_s:.0f} s)"
    )
    print(
        f"install from disk {install['install_s']:.1f} s, first enable (wheels unpacked) "
        f"{install['enable_s']:.1f} s, fresh process in all {install['wall_s']:.1f} s"
    )
    print(f"Build Mapper with words, {arguments.samples} samples, random {clip['clip_model']}:")
    print(
        f"  stock Blender, sidebar to sliders: {build['seconds']:.1f} s, "
        f"job peak {build['peak_child_mb']:.0f} MB"
    )
    print(f"  semantify build in .venv:          {cli_s:.1f} s, job peak {cli_peak_mb:.0f} MB")
    print(
        f"  ratio stock / .venv: {build['seconds'] / cli_s:.2f}; sliders: {[n for n, _ in build['sliders']]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
