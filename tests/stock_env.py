"""A stock-Blender environment for the tests, and the platform extension zip to install into it.

An artist's Blender has numpy and nothing else the product needs, and its Python cannot ``import bpy``
(Blender runs it); Blender as a Python module is the nearest thing that installs here. So the stock
environment is a fresh virtual environment holding only ``bpy==5.0.1`` and ``numpy<2`` (and what the
bpy wheel itself requires), never the project's ``.venv``: torch, open_clip and scikit-learn can only
come from the extension's own wheels. It lives in ``build/stock-blender`` (ignored), is made once by
pip from the registry's pinned wheels (pip's cache makes it about 15 s), and is checked for being
stock every time.

``python tests/stock_env.py`` makes it from the shell (``make stock-blender`` does).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOCK = ROOT / "build" / "stock-blender"
REQUIREMENTS = ("bpy==5.0.1", "numpy<2")
STAMP = STOCK / "semantify-stock.json"
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


if __name__ == "__main__":
    print(stock_python())
