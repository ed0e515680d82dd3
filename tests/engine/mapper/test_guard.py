"""The plausibility guard: merged exactly, quiet where bodies are plausible, firm elsewhere."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.models import make_capsule_model

from semantify_engine.evaluation.plausibility import box_corners
from semantify_engine.mapper.guard import TRAINING_REGION, merge
from semantify_engine.models import LinearMorphableModel
from semantify_engine.models.bank import Setting, SourceBank
from semantify_engine.models.plausibility import BANK_METHOD, REGION, Plausibility, calibration


def forward(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    for index, (weight, bias) in enumerate(layers):
        x = x @ weight + bias
        if index < len(layers) - 1:
            x = np.maximum(x, 0.0)
    return x


@settings(max_examples=40, deadline=None)
@given(
    depth=st.integers(1, 3),
    widths=st.lists(st.integers(1, 6), min_size=4, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_the_merged_network_computes_the_sum_of_both(depth: int, widths: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    inputs, outputs = widths[0], widths[1]

    def network(hidden: int) -> list[tuple[np.ndarray, np.ndarray]]:
        sizes = [inputs, *[hidden] * (depth - 1), outputs]
        return [(rng.normal(size=(a, b)), rng.normal(size=b)) for a, b in itertools.pairwise(sizes)]

    first, second = network(widths[2]), network(widths[3])
    x = rng.normal(size=(7, inputs))
    merged = merge(first, second)
    np.testing.assert_allclose(
        forward(merged, x), forward(first, x) + forward(second, x), rtol=1e-4, atol=1e-4
    )


def ridge_model() -> LinearMorphableModel:
    """A capsule whose source bodies lie on a ridge (component 1 follows component 0), so that sliders set
    against each other (the box corner with 0 high and 1 low) ask for a shape no source body is near."""

    def bodies(count: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        t = rng.uniform(-2, 2, count)
        return np.stack([t, t + rng.normal(0, 0.15, count), rng.normal(0, 0.15, count)], 1).astype(np.float32)

    capsule = make_capsule_model()
    bank_bodies = bodies(1500, 0)
    raw = Plausibility(method=BANK_METHOD, std=np.ones(3), bank=bank_bodies)
    bank = SourceBank(
        coefficients=bank_bodies,
        settings=bank_bodies[:, :1],
        setting_specs=(Setting("ridge", "", -2.0, 2.0),),
        populations=np.zeros(len(bank_bodies)),
        population_names=("ridge",),
        plausibility=calibration(raw, bodies(800, 1)),
    )
    return replace(capsule, name="ridge", bank=bank)


@pytest.fixture(scope="module")
def guarded_and_plain():
    pytest.importorskip("torch")
    from semantify_engine.mapper.settings import TrainingSettings
    from semantify_engine.mapper.train import descriptors_from_data, train_mapper

    model = ridge_model()
    targets = model.bank.coefficients
    rng = np.random.default_rng(2)
    values = (targets[:, :2] + rng.normal(0, 0.02, (len(targets), 2))).astype(np.float32)
    found = descriptors_from_data(["a", "b"], ["metric"] * 2, ["m"] * 2, values)
    options = TrainingSettings(hidden=(32, 32), epochs=15, lr=1e-3, validation_fraction=0.2)
    plain, _ = train_mapper(values, targets, found, options)
    guarded, _ = train_mapper(values, targets, found, options, plausibility=model.plausibility_measure)
    return model, values, plain, guarded


def test_the_problem_has_implausible_corners_that_the_guard_brings_inside(guarded_and_plain) -> None:
    model, _, plain, guarded = guarded_and_plain
    corners = box_corners(plain, 64)
    assert model.plausibility(plain.coefficients(corners)).max() > REGION, "the corners set a against b"
    assert model.plausibility(guarded.coefficients(corners)).max() <= REGION
    grid = np.stack(np.meshgrid(*[np.linspace(d.low, d.high, 15) for d in guarded.descriptors]), -1)
    assert model.plausibility(guarded.coefficients(grid.reshape(-1, 2))).max() <= REGION + 0.5


def test_the_guard_leaves_plausible_answers_alone(guarded_and_plain) -> None:
    model, values, plain, guarded = guarded_and_plain
    inside = plain.evaluate(values)
    keep = model.plausibility(inside) < TRAINING_REGION  # plausible by the guard's own limit
    moved = np.abs(guarded.evaluate(values[keep]) - inside[keep]).mean()
    assert keep.mean() > 0.8 and moved < 0.05, f"the data's own answers moved by {moved:.3f}"
    training = guarded.metadata["training"]
    assert (
        training["plausibility_guard"]["region"] < REGION
        and "plausibility_guard" not in plain.metadata["training"]
    )
    assert [w.shape[1] for w, _ in guarded.weights[:-1]] == [w.shape[1] + 128 for w, _ in plain.weights[:-1]]
