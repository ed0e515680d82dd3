"""The capsule: a small body-like model whose every coefficient has a known, analytic effect.

Tests use it where they need a mesh with a truth to check against; :func:`banked_capsule` adds a source
bank and an attribute regressor whose settings are known functions of the coefficients.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from semantify_engine.models import LinearMorphableModel
from semantify_engine.models.bank import Setting, SourceBank, fit_attribute_regressor
from semantify_engine.models.plausibility import BANK_METHOD, Plausibility, calibration


def make_capsule_model(rings: int = 48, levels: int = 40) -> LinearMorphableModel:
    """A small body-like model with known meaning: component 0 = height, 1 = width, 2 = depth.

    Tests use it where they need a mesh whose every coefficient has an analytic effect.
    """
    angles = np.linspace(0.0, 2.0 * np.pi, rings, endpoint=False)
    heights = np.linspace(0.0, 1.7, levels)
    profile = 0.12 + 0.08 * np.sin(np.pi * heights / 1.7)  # wider in the middle, like a torso
    x = (profile[:, None] * np.cos(angles)[None, :]).ravel()
    y = (0.7 * profile[:, None] * np.sin(angles)[None, :]).ravel()
    z = np.repeat(heights, rings)
    template = np.stack([x, y, z], axis=1)
    faces = []
    for level in range(levels - 1):
        for ring in range(rings):
            a = level * rings + ring
            b = level * rings + (ring + 1) % rings
            faces += [[a, b, b + rings], [a, b + rings, a + rings]]
    basis = np.zeros((3, len(template), 3))
    basis[0, :, 2] = template[:, 2] * 0.05  # +5 % height per unit
    basis[1, :, 0] = template[:, 0] * 0.10  # +10 % width per unit
    basis[2, :, 1] = template[:, 1] * 0.10  # +10 % depth per unit
    return LinearMorphableModel(
        name="test-capsule",
        kind="body",
        template=template,
        faces=np.asarray(faces),
        basis=basis,
        std=np.ones(3),
        component_names=("height", "width", "depth"),
        info={"licence": "CC0-1.0", "source": "tests"},
    )


# The capsule with a source bank: two sub-populations, and MakeHuman-like settings that are known quadratic
# functions of the coefficients, so attribute and plausibility code has a truth to be checked against.
NAMES = ("gender", "age", "muscle", "weight", "height", "proportions")
SETTINGS = tuple(Setting(n, "years" if n == "age" else "", 0.0, 90.0 if n == "age" else 1.0) for n in NAMES)


def population(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Capsule coefficients from two sub-populations, and settings that are known functions of them."""
    rng = np.random.default_rng(seed)
    coefficients = np.concatenate(
        [rng.normal(0, 1, (count // 2, 3)), rng.uniform(-2, 2, (count - count // 2, 3))]
    )
    a, b, c = coefficients.T
    settings_ = np.stack(
        [a * 0.2 + 0.5, 40 + 10 * b, 0.5 + 0.1 * c, 0.5 + 0.05 * a * b, 0.5 + 0.1 * a, 0.5 - 0.1 * c], 1
    )
    return coefficients.astype(np.float32), settings_.astype(np.float32)


def banked_capsule(count: int = 1200) -> LinearMorphableModel:
    """The capsule with a source bank (calibrated on a held-out population) and an attribute regressor."""
    capsule = make_capsule_model()
    coefficients, labels = population(count, 1)
    raw = Plausibility(method=BANK_METHOD, std=capsule.std.astype(np.float64), bank=coefficients)
    held, _ = population(600, 2)
    bank = SourceBank(
        coefficients=coefficients,
        settings=labels,
        setting_specs=SETTINGS,
        populations=np.repeat([0, 1], [count // 2, count - count // 2]),
        population_names=("normal", "uniform"),
        plausibility=calibration(raw, held),
        smooth=0.8 * coefficients,  # "without individual detail": any bodies other than the bank's own
    )
    regressor = fit_attribute_regressor(coefficients, labels, SETTINGS, quadratic_components=3)
    return replace(capsule, name="banked-capsule", bank=bank, attributes=regressor)
