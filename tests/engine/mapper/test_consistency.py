"""Measurement consistency: the surrogate fit, and the training term that keeps metric sliders apart."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semantify_engine.mapper import MapperError
from semantify_engine.mapper.consistency import fit_surrogate, quadratic_features

torch = pytest.importorskip("torch")

from semantify_engine.evaluation.fidelity import sweep_values  # noqa: E402
from semantify_engine.mapper.settings import TrainingSettings  # noqa: E402
from semantify_engine.mapper.train import descriptors_from_data, train_mapper  # noqa: E402


# ------------------------------------------------------------------------------------------ surrogate
@settings(max_examples=25, deadline=None)
@given(
    components=st.integers(1, 6),
    outputs=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_a_quadratic_function_is_recovered(components: int, outputs: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    coefficients = rng.uniform(-2, 2, (400, components))
    truth = rng.normal(0, 1, (quadratic_features(coefficients[:1], components).shape[1], outputs))
    values = quadratic_features(coefficients, components) @ truth
    surrogate = fit_surrogate(coefficients, values)
    assert surrogate.quadratic_components == components
    fresh = rng.uniform(-2, 2, (50, components))
    expected = quadratic_features(fresh, components) @ truth
    scale = np.abs(values).max()
    np.testing.assert_allclose(surrogate.predict(fresh), expected, atol=0.02 * scale)
    module = surrogate.torch_module()
    with torch.no_grad():
        from_torch = module(torch.from_numpy(fresh.astype(np.float32))).numpy()
    np.testing.assert_allclose(from_torch, surrogate.predict(fresh), rtol=1e-4, atol=1e-4 * scale)


def test_rows_of_zero_weight_do_not_count() -> None:
    rng = np.random.default_rng(0)
    coefficients = rng.uniform(-1, 1, (600, 3))
    values = (coefficients[:, :1] ** 2 - coefficients[:, 1:2]) * 0.5
    garbage = values + rng.normal(0, 5, values.shape)
    weights = np.r_[np.ones(300), np.zeros(300)]
    clean = fit_surrogate(coefficients, np.r_[values[:300], garbage[300:]], weights)
    np.testing.assert_allclose(clean.predict(coefficients), values, atol=0.01)
    unweighted = fit_surrogate(coefficients, np.r_[values[:300], garbage[300:]])
    assert np.abs(unweighted.predict(coefficients) - values).max() > 0.1


def test_the_incremental_fit_equals_one_fit_of_every_row_weighted() -> None:
    """Training keeps normal equations and adds measured rows as they come: same answer as stacking them."""
    from semantify_engine.mapper.consistency import REFRESH_WEIGHT, SurrogateFit

    rng = np.random.default_rng(3)
    data = rng.uniform(-1, 1, (500, 4))
    batches = [rng.uniform(-2, 2, (64, 4)) for _ in range(3)]

    def truth(c: np.ndarray) -> np.ndarray:
        return np.stack([np.sin(c[:, 0]) + c[:, 1] * c[:, 2], np.abs(c[:, 3])], axis=1)

    fit = SurrogateFit(data, truth(data))
    for batch in batches:
        fit.add(batch, truth(batch))
    measured = sum(len(batch) for batch in batches)
    weights = np.r_[np.ones(len(data)), np.full(measured, REFRESH_WEIGHT * len(data) / measured)]
    stacked = np.vstack([data, *batches])
    expected = fit_surrogate(stacked, truth(stacked), weights)
    np.testing.assert_allclose(fit.solve().weights, expected.weights, rtol=1e-8, atol=1e-10)
    only_data = SurrogateFit(data, truth(data)).solve()
    np.testing.assert_allclose(only_data.weights, fit_surrogate(data, truth(data)).weights, atol=1e-12)


def test_cross_terms_are_limited_to_what_the_rows_can_fit() -> None:
    rng = np.random.default_rng(1)
    surrogate = fit_surrogate(rng.normal(size=(200, 30)), rng.normal(size=(200, 2)))
    kept = surrogate.quadratic_components
    assert kept * (kept + 1) / 2 <= 200 / 4 < (kept + 1) * (kept + 2) / 2


# ---------------------------------------------------------------------------------- the training term
def _correlated_problem(samples: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Two coefficients that move together in the data (r ≈ 0.98), each mostly read by one measurement.

    Asking for "first measurement high, second at its median" is a body the data never holds but the model
    can make: exactly the waist-vs-hips situation of the bundled body, in two dimensions.
    """
    rng = np.random.default_rng(5)
    common = rng.uniform(-1, 1, samples)
    coefficients = np.stack(
        [common + 0.15 * rng.uniform(-1, 1, samples), common + 0.15 * rng.uniform(-1, 1, samples)], axis=1
    )
    return coefficients.astype(np.float32), measure(coefficients)


def measure(coefficients: np.ndarray) -> np.ndarray:
    c1, c2 = coefficients[:, 0], coefficients[:, 1]
    return np.stack([c1 + 0.2 * c1 * c2, c2 - 0.1 * c1**2], axis=1).astype(np.float32)


def _cross_talk(consistency: float) -> tuple[float, dict]:
    """Sweep the first slider with the second at its default: the second measurement's movement / range."""
    coefficients, values = _correlated_problem()
    found = descriptors_from_data(["first", "second"], ["metric"] * 2, ["m"] * 2, values)
    mapper, figures = train_mapper(
        values,
        coefficients,
        found,
        TrainingSettings(hidden=(64, 64), epochs=20, lr=1e-3, consistency=consistency),
        read_measured=measure,
    )
    achieved = measure(mapper.coefficients(sweep_values(mapper, 0, 21)))
    span = found[1].high - found[1].low
    return float(np.ptp(achieved[:, 1]) / span), figures


def test_consistency_holds_the_other_measurement_where_the_data_alone_does_not() -> None:
    without, figures_without = _cross_talk(0.0)
    with_term, figures = _cross_talk(1.0)
    assert without > 0.1, "the problem must show cross-talk for the data term alone"
    assert with_term < min(0.03, without / 4)
    assert "measurement_surrogate" not in figures_without
    surrogate = figures["measurement_surrogate"]
    assert set(surrogate["validation_mean_abs_error"]) == {"first", "second"}
    assert len(surrogate["answer_error_per_refresh"]) == 9  # every 2 epochs of 20, not after the last


def test_word_descriptors_or_no_measure_leave_training_as_it_was() -> None:
    coefficients, values = _correlated_problem(400)
    words = descriptors_from_data(["a", "b"], ["word"] * 2, ["cosine"] * 2, values)
    metrics = descriptors_from_data(["a", "b"], ["metric"] * 2, ["m"] * 2, values)
    plain, _ = train_mapper(
        values, coefficients, words, TrainingSettings(hidden=(8,), epochs=2, consistency=0.0)
    )
    for found, measured in ((words, measure), (metrics, None)):
        mapper, figures = train_mapper(
            values,
            coefficients,
            found,
            TrainingSettings(hidden=(8,), epochs=2, consistency=1.0),
            read_measured=measured,
        )
        assert "measurement_surrogate" not in figures
        for (weight, bias), (plain_weight, plain_bias) in zip(mapper.weights, plain.weights, strict=True):
            np.testing.assert_array_equal(weight, plain_weight)
            np.testing.assert_array_equal(bias, plain_bias)


def test_answers_respect_a_models_hard_bounds() -> None:
    """Blendshape weights live in [0, 1]: the range penalty must not invite answers outside them."""

    rng = np.random.default_rng(2)
    coefficients = rng.uniform(-1, 1, (300, 2))
    bounds = np.array([[-0.5, 0.5], [-2.0, 2.0]])
    term = two_slider_term(coefficients, measure, coefficient_bounds=bounds)
    assert term.coefficient_low[0] == pytest.approx(-0.5) and term.coefficient_high[0] == pytest.approx(0.5)
    assert term.coefficient_low[1] < -1.0 < 1.0 < term.coefficient_high[1] <= 2.0


def test_a_refresh_makes_the_loss_exact_where_the_network_answers() -> None:
    """After a refresh, surrogate + offset at each anchor equals the real measurement of the answer there,
    even for a measurement no quadratic fits (which is why the refresh exists)."""
    from semantify_engine.mapper.consistency import ANCHORS

    def bumpy(coefficients: np.ndarray) -> np.ndarray:
        return np.stack([np.abs(coefficients[:, 0]) ** 3, np.sin(3 * coefficients[:, 1])], axis=1)

    rng = np.random.default_rng(4)
    coefficients = rng.uniform(-1, 1, (500, 2))
    term = two_slider_term(coefficients, bumpy)
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    before = term.surrogate
    error = term.refresh(network)
    assert term.anchors.shape == (ANCHORS, 2)
    with torch.no_grad():
        answers = network(term.anchors)
        corrected = (term.surrogate_module(answers) + term.offsets).numpy()
    real = bumpy(answers.numpy().astype(np.float64))
    np.testing.assert_allclose(corrected, real, atol=1e-4)
    assert error == pytest.approx(np.abs(before.predict(answers.numpy()) - real).mean(), rel=1e-4)
    assert error > 0.01  # the data-only fit was off there: the test exercises a real correction


def test_sweep_anchors_move_one_slider_and_weigh_its_own_miss_less() -> None:
    from semantify_engine.mapper.consistency import ANCHORS, OWN_WEIGHT, SWEEP_FRACTION, ConsistencyTerm

    rng = np.random.default_rng(6)
    coefficients = rng.uniform(-1, 1, (300, 2))
    low, high, default = np.array([-1.0, -2.0, 0.0]), np.array([1.0, 2.0, 3.0]), np.array([0.1, -0.2, 1.5])
    term = ConsistencyTerm(
        coefficients,
        measure(coefficients),
        np.array([0, 2]),  # descriptor 1 is a word: its slider moves, it is never measured
        slider_low=low,
        slider_high=high,
        slider_default=default,
        read_measured=measure,
        units=_IdentityUnits(3, 2),
        weight=1.0,
        seed=3,
    )
    anchors, weights = term.anchors.numpy(), term.residual_weights.numpy()
    assert np.all((anchors >= low - 1e-6) & (anchors <= high + 1e-6))
    at_default = np.isclose(anchors, default)
    sweeps = at_default.sum(axis=1) == 2
    assert abs(sweeps.mean() - SWEEP_FRACTION) < 0.1
    assert np.all(weights[~sweeps] == 1.0)
    for row in np.flatnonzero(sweeps):
        moved = int(np.flatnonzero(~at_default[row])[0])
        expected = [OWN_WEIGHT if column == moved else 1.0 for column in (0, 2)]
        np.testing.assert_array_equal(weights[row], expected)
    assert anchors.shape == (ANCHORS, 3) and weights.shape == (ANCHORS, 2)


def test_a_sweep_holds_the_measured_sliders_of_its_own_kind_and_frees_the_others() -> None:
    """Measurements and attributes: a weight sweep holds gender but lets the waist grow, and back."""
    from semantify_engine.mapper.consistency import OWN_WEIGHT, ConsistencyTerm

    rng = np.random.default_rng(7)
    coefficients = rng.uniform(-1, 1, (300, 2))

    def four(c: np.ndarray) -> np.ndarray:
        return np.concatenate([measure(c), -measure(c)], axis=1)

    low, high, default = -np.ones(4), np.ones(4), np.zeros(4)
    groups = np.array([1, 1, 2, 2])  # two measurements, two attributes
    term = ConsistencyTerm(
        coefficients,
        four(coefficients),
        np.arange(4),
        slider_low=low,
        slider_high=high,
        slider_default=default,
        read_measured=four,
        units=_IdentityUnits(4, 2),
        weight=1.0,
        seed=4,
        column_groups=groups,
    )
    anchors, weights = term.anchors.numpy(), term.residual_weights.numpy()
    sweeps = np.flatnonzero(np.isclose(anchors, default).sum(axis=1) == 3)
    assert len(sweeps) > 20
    for row in sweeps:
        moved = int(np.flatnonzero(~np.isclose(anchors[row], default))[0])
        expected = [
            OWN_WEIGHT if c == moved else (1.0 if groups[c] == groups[moved] else 0.0) for c in range(4)
        ]
        np.testing.assert_array_equal(weights[row], expected)


def two_slider_term(coefficients: np.ndarray, measured_by, **options):
    """A term for two measured sliders over [-1, 1] (defaults 0), in units that need no conversion."""
    from semantify_engine.mapper.consistency import ConsistencyTerm

    return ConsistencyTerm(
        coefficients,
        measured_by(coefficients),
        np.array([0, 1]),
        slider_low=np.array([-1.0, -1.0]),
        slider_high=np.array([1.0, 1.0]),
        slider_default=np.array([0.0, 0.0]),
        read_measured=measured_by,
        units=_IdentityUnits(2, 2),
        weight=1.0,
        seed=0,
        **options,
    )


class _IdentityUnits:
    def __init__(self, inputs: int, outputs: int) -> None:
        self.input_mean, self.input_std = np.zeros(inputs), np.ones(inputs)
        self.output_mean, self.output_std = np.zeros(outputs), np.ones(outputs)


# ------------------------------------------------------------------------------------------- settings
def test_the_weight_is_recorded_and_checked() -> None:
    assert TrainingSettings.from_json(TrainingSettings(consistency=0.25).to_json()).consistency == 0.25
    assert TrainingSettings.from_json({}).consistency == TrainingSettings().consistency
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(MapperError, match="^consistency must be a number ≥ 0") as caught:
            TrainingSettings(consistency=bad)
        assert caught.value.parameters == ("consistency",)


def test_the_weight_scales_the_term_and_reaches_training() -> None:
    """A weight that is ignored (only 0 and 1 were tried) would pass every other test here."""
    rng = np.random.default_rng(5)
    coefficients = rng.uniform(-1, 1, (300, 2))
    torch.manual_seed(0)
    answers = torch.from_numpy(rng.uniform(-1.5, 1.5, (64, 2)).astype(np.float32))
    losses = {}
    for weight in (0.25, 1.0):
        term = two_slider_term(coefficients, measure)
        term.weight = weight
        rows, _ = term.batch(64, torch.Generator().manual_seed(1))
        losses[weight] = float(term.loss(rows, answers))
    assert losses[1.0] > 0 and losses[0.25] == pytest.approx(0.25 * losses[1.0], rel=1e-6)
    light, _ = _cross_talk(0.02)
    full, _ = _cross_talk(1.0)
    assert light > full * 1.3, f"a lighter term holds the other measurement less ({light:.4f} vs {full:.4f})"


@pytest.mark.parametrize("scheme", ["settings", "uniform"])
def test_attributes_with_exact_labels_are_not_held_to_the_regressors_reading(scheme: str, tmp_path) -> None:
    """Bank and settings samples carry the exact shape settings; the regressor only estimates them, so the
    term holds the height alone there. Samples drawn otherwise are labelled by the regressor itself, and
    holding its reading is the term's job."""
    from support.models import banked_capsule

    from semantify_engine.dataset.builder import DatasetRequest, build_dataset
    from semantify_engine.dataset.sampling import SamplingPlan
    from semantify_engine.dataset.store import DatasetFolder
    from semantify_engine.mapper.from_dataset import train_from_dataset, trusted_kinds

    model = banked_capsule()
    plan = SamplingPlan.for_model(model, seed=2, scheme=scheme)
    request = DatasetRequest(
        model_spec="banked", model=model, samples=96, plan=plan, views=(), chunk_size=48, metrics=True
    )
    folder = DatasetFolder(tmp_path / scheme)
    build_dataset(folder, request)
    held = trusted_kinds(folder.read_manifest()["settings"])
    assert held == (("metric",) if scheme == "settings" else ("metric", "attribute"))
    small = TrainingSettings(epochs=4, hidden=(16, 16), batch_size=16)
    _, figures = train_from_dataset(folder.folder, ["gender", "height"], model=model, settings=small)
    surrogate = figures["measurement_surrogate"]["validation_mean_abs_error"]
    assert set(surrogate) == ({"height"} if scheme == "settings" else {"gender", "height"})
