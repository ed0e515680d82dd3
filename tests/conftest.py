"""Fixtures for every test. Blender and the model hub are isolated before anything imports them.

Helpers that are not fixtures live in :mod:`support` (``tests/support/``); the Blender-only fixtures and
the ``blender`` marker are in ``tests/blender/conftest.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# bpy writes preferences and caches under the user's home unless told otherwise; tests never need the
# network, and open_clip must not wait on a model hub.
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="semantify-test-blender-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

# The helpers assert too (the extension tool, the scene helpers): pytest explains their failures as it
# does the tests' own, which it only does for modules registered before they are imported.
pytest.register_assert_rewrite("support")

from support.clip import TINY_CLIP_NAME, save_tiny_clip  # noqa: E402
from support.models import make_capsule_model  # noqa: E402

from semantify_engine.models import LinearMorphableModel  # noqa: E402


@pytest.fixture(scope="session")
def capsule() -> LinearMorphableModel:
    return make_capsule_model()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny CLIP saved as ``<name>.bin`` with its open_clip config ``<name>.json`` beside it.

    No pretrained weights can be had on test machines: this exercises the real open_clip loading path
    (a user's local weights file) for mechanics; meaning comes from the metric scorer.
    """
    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_spec(tiny_weights: Path):
    from semantify_engine.scoring.clip import ClipSpec

    return ClipSpec(model=TINY_CLIP_NAME, pretrained=str(tiny_weights))
