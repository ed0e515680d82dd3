"""A stock-Blender environment for the tests, the platform extension zip to install into it, and the driver.

An artist's Blender has numpy and nothing else the product needs, and its Python cannot ``import bpy``
(Blender runs it); Blender as a Python module is the nearest thing that installs here. So the stock
environment is a fresh virtual environment holding only ``bpy==5.0.1`` and ``numpy<2`` (and what the
bpy wheel itself requires), never the project's ``.venv``: torch, open_clip and scikit-learn can only
come from the extension's own wheels. It lives in ``build/stock-blender`` (ignored), is made once by
pip from the registry's pinned wheels (pip's cache makes it about 15 s), and is checked for being
stock every time.

``python tests/support/stock_env.py`` makes it from the shell (``make stock-blender`` does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
STOCK = ROOT / "build" / "stock-blender"
REQUIREMENTS = ("bpy==5.0.1", "numpy<2")
STAMP = STOCK / "semantify-stock.json"
DRIVER = Path(__file__).resolve().parent / "stock_blender_driver.py"
"""Runs one scenario inside the stock environment's Blender (:func:`drive`); it imports nothing of ours."""
WORDS = "tall,short,fat,thin,muscular,skinny"
"""The words the stock-Blender tests and benchmark build sliders for."""
FORBIDDEN = ("torch", "torchvision", "open_clip", "sklearn", "scipy", "PIL", "semantify_engine")
"""What a stock Blender's Python does not have: finding any of these means the environment is not stock."""


def stock_python() -> Path:
    """The stock environment's Python, made when missing; raises when it is not stock."""
    python = STOCK / "bin" / "python"
    if not (STAMP.is_file() and json.loads(STAMP.read_text()) == list(REQUIREMENTS) and python.is_file()):
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--clear", str(STOCK)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
        STAMP.write_text(json.dumps(list(REQUIREMENTS)))
    probe = (
        "import importlib.util, json, sys\n"
        "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m)]))"
    )
    found = json.loads(
        subprocess.run(
            [str(python), "-I", "-c", probe, *FORBIDDEN], capture_output=True, text=True, check=True
        ).stdout
    )
    if found:
        raise RuntimeError(
            f"{STOCK} is not a stock Blender environment: it has {', '.join(found)}; delete it."
        )
    return python


def build_platform_zip(out: Path) -> Path:
    """``dist``-style ``semantify-<version>-linux_x64.zip`` built by the project's own tool into ``out``."""
    tool = ROOT / "tools" / "platform_extension.py"
    result = subprocess.run(
        [sys.executable, str(tool), "--platform", "linux_x64", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"tools/platform_extension.py failed:\n{result.stdout}{result.stderr}")
    (path,) = out.glob("semantify-*-linux_x64.zip")
    return path


def drive(stock: SimpleNamespace, scenario: str, environment: dict[str, str] | None = None, **params) -> dict:
    """Run one driver scenario in the stock environment; its RESULT record."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SEMANTIFY_", "PYTHON", "VIRTUAL_ENV", "HF_"))
    }
    env.update({"BLENDER_USER_RESOURCES": str(stock.user), "HF_HUB_OFFLINE": "1", **(environment or {})})
    env = {name: value for name, value in env.items() if value is not None}
    started = time.perf_counter()
    result = subprocess.run(
        [str(stock.python), str(DRIVER), scenario, json.dumps(params)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=stock.user,  # not the checkout: nothing of the project may be importable from the cwd
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, (
        f"{scenario}: no result (exit {result.returncode})\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    record = json.loads(lines[-1][len("RESULT ") :])
    assert "exception" not in record, record["exception"] + result.stderr[-3000:]
    record["wall_s"] = time.perf_counter() - started
    record["output"] = result.stdout + result.stderr
    return record


if __name__ == "__main__":
    print(stock_python())
