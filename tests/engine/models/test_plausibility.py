"""Plausibility: the source bank, its calibration, the Gaussian prior, the model file, the bundled bodies."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.models import SETTINGS, banked_capsule, make_capsule_model, population

from semantify_engine.errors import CoefficientError, ModelFileError
from semantify_engine.models import load, load_model, save_model
from semantify_engine.models.bank import ATTRIBUTE_SETTINGS, attribute_values
from semantify_engine.models.plausibility import REGION, chi_cdf, chi_quantile

BODIES = ("anny-body", "anny-body-male", "anny-body-female")


# ------------------------------------------------------------------------------------ chi prior
@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 60), x=st.floats(0.0, 20.0))
def test_the_chi_cdf_matches_scipy(k: int, x: float) -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    np.testing.assert_allclose(chi_cdf(np.array([x]), k), scipy_stats.chi.cdf(x, k), atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 60), p=st.floats(0.01, 0.999))
def test_the_chi_quantile_inverts_the_cdf(k: int, p: float) -> None:
    assert abs(float(chi_cdf(np.array([chi_quantile(p, k)]), k)[0]) - p) < 1e-9


def test_a_gaussian_model_judges_shapes_by_their_norm() -> None:
    capsule = make_capsule_model()
    rng = np.random.default_rng(0)
    draws = rng.normal(0, 1, (20000, 3)).astype(np.float32)
    percentiles = capsule.plausibility(draws)
    assert abs(np.mean(percentiles > REGION) - 0.01) < 0.003, "1 % of the prior lies outside its 99 % region"
    norms = np.linalg.norm(draws.astype(np.float64), axis=1)
    order = np.argsort(norms)
    assert np.all(np.diff(percentiles[order]) >= -1e-9), "a larger norm is never more plausible"


def test_expressions_and_custom_models_have_no_plausibility() -> None:
    capsule = make_capsule_model()
    bounded = replace(capsule, name="blends", coefficient_bounds=np.tile([0.0, 1.0], (3, 1)))
    assert bounded.plausibility_measure is None
    assert replace(capsule, kind="custom").plausibility_measure is None
    with pytest.raises(CoefficientError, match="no source population"):
        bounded.plausibility(np.zeros(3))


# ---------------------------------------------------------------------------------------- the bank
def test_held_out_bodies_of_the_population_fill_the_region_as_calibrated() -> None:
    model = banked_capsule()
    fresh, _ = population(4000, 3)
    outside = np.mean(model.plausibility(fresh) > REGION)
    assert 0.002 < outside < 0.03, f"{outside:.2%} of fresh population bodies outside the 99 % region"
    far = np.array([[8.0, 0.0, 0.0], [0.0, -7.0, 3.0]], np.float32)
    assert np.all(model.plausibility(far) == 100.0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-4, 4), min_size=3, max_size=3), st.floats(1.1, 3.0))
def test_the_score_moves_no_faster_than_the_shape_and_far_shapes_are_outside(
    point: list[float], factor: float
) -> None:
    model = banked_capsule()
    measure = model.plausibility_measure
    assert measure is not None
    near = np.array([point], np.float32)
    # the score is a mean distance to the nearest bank bodies: 1-Lipschitz in the coefficients
    moved = near * factor
    assert measure.score(moved)[0] <= measure.score(near)[0] + np.linalg.norm(moved - near) + 1e-9
    if np.linalg.norm(near) > 1.0:  # far beyond the population (|c| > 10): outside the region
        assert model.plausibility(near * 10)[0] > REGION


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_the_torch_score_equals_the_numpy_score(data) -> None:
    torch = pytest.importorskip("torch")
    measure = banked_capsule().plausibility_measure
    assert measure is not None
    rows = data.draw(st.integers(1, 6))
    values = np.array(data.draw(st.lists(st.floats(-5, 5), min_size=rows * 3, max_size=rows * 3)), np.float32)
    points = values.reshape(rows, 3)
    tensor = torch.from_numpy(points).requires_grad_(True)
    score = measure.torch_score(tensor)
    score.sum().backward()
    np.testing.assert_allclose(score.detach().numpy(), measure.score(points), rtol=1e-5, atol=1e-5)
    assert torch.all(torch.isfinite(tensor.grad))


def test_the_attribute_regressor_reads_back_settings_it_was_fitted_on() -> None:
    model = banked_capsule()
    fresh, truth = population(500, 4)
    predicted = model.attributes.predict(fresh)
    spans = np.array([spec.high - spec.low for spec in SETTINGS])
    # the settings are quadratic in the coefficients: only the ridge's slight shrinkage is left
    assert np.abs((predicted - truth) / spans).max() < 1e-3
    rows = np.array([3, 0, 7])
    exact = attribute_values(model.bank, model.attributes, model.bank.coefficients[rows], rows)
    columns = [model.bank.setting_names.index(name) for name in ATTRIBUTE_SETTINGS]
    np.testing.assert_array_equal(exact, model.bank.settings[rows][:, columns])


def test_a_model_file_keeps_its_bank_and_regressor_and_refuses_an_edited_bank(tmp_path) -> None:
    model = banked_capsule()
    path = save_model(model, tmp_path / "banked.npz")
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.bank.coefficients, model.bank.coefficients)
    np.testing.assert_array_equal(loaded.bank.settings, model.bank.settings)
    np.testing.assert_array_equal(loaded.bank.smooth, model.bank.smooth)
    assert loaded.bank.setting_specs == model.bank.setting_specs
    np.testing.assert_allclose(loaded.attributes.weights, model.attributes.weights)
    probe = np.random.default_rng(5).normal(0, 2, (50, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded.plausibility(probe), model.plausibility(probe))
    arrays = dict(np.load(path, allow_pickle=False))
    arrays["bank_settings"] = arrays["bank_settings"] + 1
    np.savez(tmp_path / "edited.npz", **arrays)
    with pytest.raises(ModelFileError, match="source bank does not match its checksum"):
        load_model(tmp_path / "edited.npz")
    arrays = dict(np.load(path, allow_pickle=False))
    arrays["bank_smooth"] = arrays["bank_smooth"] * 1.01
    np.savez(tmp_path / "edited-smooth.npz", **arrays)
    with pytest.raises(ModelFileError, match="source bank does not match its checksum"):
        load_model(tmp_path / "edited-smooth.npz")
    misshapen = replace(model.bank, smooth=model.bank.smooth[:-1])
    with pytest.raises(ModelFileError, match="smooth bodies"):
        misshapen.check(model.component_count, "banked.npz")


def test_a_basis_of_float16_numbers_is_stored_as_float16_and_loads_as_float32(tmp_path) -> None:
    model = make_capsule_model()
    rounded = replace(model, basis=model.basis.astype(np.float16).astype(np.float32))
    path = save_model(rounded, tmp_path / "half.npz")
    with np.load(path, allow_pickle=False) as archive:
        assert archive["basis"].dtype == np.float16 and archive["template"].dtype == np.float32
    loaded = load_model(path)
    assert loaded.basis.dtype == np.float32 and loaded.checksum() == rounded.checksum()


# ----------------------------------------------------------------------------------- bundled bodies
@pytest.mark.parametrize("name", BODIES)
def test_bundled_bodies_ship_their_source_bodies_with_exact_settings(name: str) -> None:
    model = load(name)
    bank = model.bank
    assert bank is not None and bank.size >= 4000 and bank.coefficients.shape[1] == model.component_count
    assert set(bank.population_names) == {"realistic", "uniform"}
    assert np.bincount(bank.populations).min() == bank.size // 2, "as many uniform as realistic bodies"
    for spec in bank.setting_specs:
        values = bank.setting(spec.name)
        assert spec.low - 1e-6 <= values.min() and values.max() <= spec.high + 1e-6, spec
    age = bank.setting("age")
    assert age.min() >= 18.0 and age.max() <= 90.0, "adults, in years"
    uniform = bank.populations == bank.population_names.index("uniform")
    assert np.percentile(bank.setting("height")[uniform], 99) > 0.95, "uniform settings reach anny's extremes"
    assert bank.smooth is not None and bank.smooth.shape == bank.coefficients.shape
    detail = np.abs(bank.smooth - bank.coefficients).mean()
    assert 0.3 < detail < 2.0, f"smooth bodies differ by their local changes only ({detail:.2f} std)"
    percentiles = model.plausibility(bank.coefficients[:200])
    assert np.all(percentiles < 50), "a bank body is at distance 0 from itself: typical"
    assert 0.003 < model.info["bank_heldout"]["realistic"]["outside_region_fraction"] < 0.03
