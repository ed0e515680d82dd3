"""What the tests share that is not a fixture: helpers, stand-ins and scripts, imported as ``support.*``.

Fixtures live in the ``conftest.py`` files (the root one for every test, ``tests/blender/conftest.py`` for
the Blender ones); everything a test module imports from elsewhere comes from this package, so that no
test module imports another one or a ``conftest``. ``tests/`` is on the import path through pytest's
``pythonpath`` setting; scripts that run by path (the stock-Blender driver, ``stock_env.py``) import only
what lies beside them.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository root: the extension's source folder and where the engine's data lives."""
SUPPORT = Path(__file__).resolve().parent
"""This folder: the scripts and stand-ins that run by path (the stock-Blender driver, fake-blender)."""
