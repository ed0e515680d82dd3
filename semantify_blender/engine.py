"""Where the engine is: bundled inside the extension, or the top-level package of a development checkout.

Inside Blender the extension root is imported as ``bl_ext.<repository>.semantify`` and the engine is its
sub-package ``bl_ext.<repository>.semantify.semantify_engine`` (the zip carries it: "the bundled engine").
Importing ``semantify_engine`` by its top-level name there would pick up whatever another add-on or a
``pip install`` put on ``sys.path``, or fail. In a development checkout (``pip install -e .``, the test
suite's unit imports) ``semantify_blender`` is itself top-level and the engine is ``semantify_engine``.

Engine modules are imported on first use (:func:`import_engine`), never at registration: registering must
stay fast and must not import numpy-heavy modules, let alone torch.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType


def _engine_package() -> str:
    """The engine's absolute package name next to this package, found without importing the engine."""
    parent = __package__.rpartition(".")[0] if __package__ else ""
    if parent:
        bundled = f"{parent}.semantify_engine"
        if importlib.util.find_spec(bundled) is not None:
            return bundled
    return "semantify_engine"


ENGINE_PACKAGE = _engine_package()


def import_engine(module: str = "") -> ModuleType:
    """Import ``semantify_engine.<module>`` from the engine that ships with this add-on."""
    return importlib.import_module(f"{ENGINE_PACKAGE}.{module}" if module else ENGINE_PACKAGE)
