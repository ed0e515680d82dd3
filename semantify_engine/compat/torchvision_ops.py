"""Let ``import torchvision`` (and therefore ``import open_clip``) work next to a CPU-only torch.

Why this exists: the torchvision 0.28.0 wheel on the package registry is a CUDA build. Next to the CPU
build of torch 2.13 its C++ extension (``torchvision/_C.so``) cannot be loaded; torchvision swallows that
failure, but then ``torchvision._meta_registrations`` registers fake kernels for ``torchvision::nms`` and
``torchvision::qnms`` and the import dies with ``RuntimeError: operator torchvision::nms does not exist``.

open_clip only uses torchvision's pure-Python parts (image transforms, ``FrozenBatchNorm2d``), so it is
enough to *declare* the two operator schemas before torchvision is imported. Calling the declared ops
would fail (there is no kernel), which is fine: nothing in Semantify calls detection ops.

This is the only place in the project that does this. Call :func:`ensure_torchvision_importable` before
anything imports ``open_clip`` or ``torchvision``. It is idempotent, and a no-op when torchvision's own
extension loads (a matching CPU torchvision, or a CUDA torch), so it can be dropped once the registries
ship a matching CPU wheel.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}

# torch drops the operator definitions when its Library object is garbage collected, so the object
# must live as long as the process does.
_LIBRARY: Any = None


def _op_defined(name: str) -> bool:
    """True when ``torch.ops.torchvision.<name>`` exists (from torchvision's extension or from us)."""
    import torch

    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def _try_load_native_extension() -> None:
    """Load torchvision's own ``_C`` extension if it is compatible, without importing torchvision.

    Importing torchvision to find out would leave a half-imported package behind when it fails; loading
    the shared library directly is what torchvision itself does first, and a failure registers nothing.
    """
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    for folder in spec.submodule_search_locations:
        for candidate in sorted(Path(folder).glob("_C*.so")) + sorted(Path(folder).glob("_C*.pyd")):
            try:
                torch.ops.load_library(str(candidate))
                return
            except (ImportError, OSError):
                continue


def ensure_torchvision_importable() -> bool:
    """Declare the missing ``torchvision::nms`` / ``qnms`` schemas when torchvision's ops cannot load.

    Returns True when this call (or an earlier one) had to declare them, False when torchvision's own
    operators are available and nothing was done.
    """
    global _LIBRARY
    if _LIBRARY is not None:
        return True
    if all(_op_defined(name) for name in _SCHEMAS):
        return False
    if "torchvision" not in sys.modules:
        _try_load_native_extension()
        if all(_op_defined(name) for name in _SCHEMAS):
            return False

    import torch

    # FRAGMENT rather than DEF: it coexists with any other definer of the namespace in the process.
    library = torch.library.Library("torchvision", "FRAGMENT")
    for name, schema in _SCHEMAS.items():
        if not _op_defined(name):
            library.define(schema)
    _LIBRARY = library
    return True
