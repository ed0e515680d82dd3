"""The mapper: numpy forward vs torch, training, determinism, the file, the input policy, add-word."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.clip import capsule_clip_request

from semantify_engine.errors import SemantifyError
from semantify_engine.mapper import (
    Descriptor,
    Mapper,
    MapperError,
    check_model,
    load_mapper,
    model_identity,
    read_mapper_header,
    save_mapper,
)
from semantify_engine.models import LinearMorphableModel


# ----------------------------------------------------------------------------------------- helpers
def descriptors(count: int, low: float = -1.0, high: float = 1.0) -> tuple[Descriptor, ...]:
    return tuple(Descriptor(f"d{i}", "metric", "m", low, high, (low + high) / 2) for i in range(count))


def random_mapper(
    d: int = 3, n: int = 4, hidden: tuple[int, ...] = (16, 8), seed: int = 0, metadata: dict | None = None
) -> Mapper:
    """A mapper with random weights, built without torch (the numpy side must stand on its own)."""
    rng = np.random.default_rng(seed)
    widths = [d, *hidden, n]
    weights = tuple(
        (rng.normal(0, 1 / np.sqrt(a), (a, b)), rng.normal(0, 0.1, b)) for a, b in itertools.pairwise(widths)
    )
    return Mapper(
        descriptors=descriptors(d),
        input_mean=rng.normal(0, 0.1, d),
        input_std=rng.uniform(0.5, 2.0, d),
        output_mean=rng.normal(0, 0.1, n),
        output_std=rng.uniform(0.5, 2.0, n),
        weights=weights,
        metadata=metadata or {},
    )


def bounded_model(capsule: LinearMorphableModel) -> LinearMorphableModel:
    return replace(capsule, name="bounded-capsule", coefficient_bounds=np.tile([0.0, 1.0], (3, 1)))


@pytest.fixture(scope="module")
def linear_problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs with a known linear relation to the targets: what the MLP must learn almost exactly."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-2, 2, (600, 3)).astype(np.float32)
    a = rng.normal(0, 1, (3, 5)).astype(np.float32)
    return x, x @ a + 0.5, a


@pytest.fixture(scope="module")
def trained(linear_problem):
    pytest.importorskip("torch")
    from semantify_engine.mapper.settings import TrainingSettings
    from semantify_engine.mapper.train import descriptors_from_data, train_mapper

    x, y, _ = linear_problem
    found = descriptors_from_data(["a", "b", "c"], ["metric"] * 3, ["m"] * 3, x)
    return train_mapper(x, y, found, TrainingSettings(batch_size=32))


# ------------------------------------------------------------------------------------ numpy vs torch
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_numpy_forward_equals_torch_forward(trained, data) -> None:
    import torch

    from semantify_engine.mapper.train import to_torch

    mapper, _ = trained
    rows = data.draw(st.integers(1, 8))
    unit = data.draw(st.lists(st.floats(0, 1), min_size=rows * 3, max_size=rows * 3))
    values = (mapper.lows + np.reshape(unit, (rows, 3)) * (mapper.highs - mapper.lows)).astype(np.float32)
    expected = to_torch(mapper)(torch.from_numpy(values)).detach().numpy()
    np.testing.assert_allclose(mapper.coefficients(values), expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(mapper.coefficients(values[0]), expected[0], rtol=0, atol=1e-5)


def test_importing_the_mapper_does_not_import_torch() -> None:
    code = (
        "import sys, semantify_engine.mapper, semantify_engine.mapper.add_word;print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------ training
def test_training_learns_a_known_linear_relation(trained, linear_problem) -> None:
    mapper, figures = trained
    x, y, _ = linear_problem
    assert figures["validation_coefficient_rmse"] < 0.05 * figures["validation_baseline_rmse"]
    assert figures["validation_mse"] < 0.005
    assert len(figures["train_mse_per_epoch"]) == 50 == len(figures["validation_mse_per_epoch"])
    assert figures["train_mse_per_epoch"][-1] < 0.1 * figures["train_mse_per_epoch"][0]
    assert (figures["train_samples"], figures["validation_samples"]) == (480, 120)
    inside = x[(x > mapper.lows).all(1) & (x < mapper.highs).all(1)]
    predicted = mapper.coefficients(inside)
    assert np.abs(predicted - (y[(x > mapper.lows).all(1) & (x < mapper.highs).all(1)])).mean() < 0.05
    training = mapper.metadata["training"]
    assert training["hidden"] == [800, 500] and training["epochs"] == 50 and training["lr"] == 1e-4
    assert [w.shape for w, _ in mapper.weights] == [(3, 800), (800, 500), (500, 5)]


def test_descriptor_ranges_are_percentiles_and_defaults_medians(linear_problem) -> None:
    pytest.importorskip("torch")
    from semantify_engine.mapper.train import descriptors_from_data

    x, _, _ = linear_problem
    found = descriptors_from_data(["a", "b", "c"], ["metric", "word", "metric"], ["m", "cosine", "kg"], x)
    for column, descriptor in enumerate(found):
        assert descriptor.low == pytest.approx(np.percentile(x[:, column], 2), rel=1e-6)
        assert descriptor.high == pytest.approx(np.percentile(x[:, column], 98), rel=1e-6)
        assert descriptor.default == pytest.approx(np.median(x[:, column]), rel=1e-6)
    assert [d.kind for d in found] == ["metric", "word", "metric"]


def test_same_seed_same_weights_other_seed_other_weights(linear_problem) -> None:
    pytest.importorskip("torch")
    import torch

    from semantify_engine.mapper.settings import TrainingSettings
    from semantify_engine.mapper.train import train_mapper

    x, y, _ = linear_problem
    state = torch.random.get_rng_state()
    settings = [TrainingSettings(epochs=3, hidden=(32, 16), seed=s) for s in (5, 5, 6)]
    runs = [train_mapper(x, y, descriptors(3), each)[0] for each in settings]
    assert torch.equal(torch.random.get_rng_state(), state), "the caller's RNG is left alone"
    for (a, b), (c, e) in zip(runs[0].weights, runs[1].weights, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, e)
    assert runs[0].checksum() == runs[1].checksum() != runs[2].checksum()


def test_bad_training_input_is_refused(linear_problem) -> None:
    pytest.importorskip("torch")
    from semantify_engine.mapper.settings import TrainingSettings
    from semantify_engine.mapper.train import descriptors_from_data, train_mapper

    x, y, _ = linear_problem
    with pytest.raises(MapperError, match="at least one descriptor"):
        train_mapper(x[:, :0], y, ())
    with pytest.raises(MapperError, match="at least one descriptor"):
        descriptors_from_data([], [], [], x[:, :0])
    with pytest.raises(MapperError, match="at least one descriptor"):
        Mapper(descriptors=(), **{k: np.zeros(0) for k in ("input_mean", "input_std")},
               output_mean=np.zeros(1), output_std=np.ones(1), weights=())  # fmt: skip
    constant = x.copy()
    constant[:, 1] = 0.3
    with pytest.raises(MapperError, match="'d1' has the same value in every training sample"):
        train_mapper(constant, y, descriptors(3), TrainingSettings(epochs=1))
    broken = x.copy()
    broken[7, 2] = np.nan
    with pytest.raises(MapperError, match="'d2' has a non-finite value"):
        train_mapper(broken, y, descriptors(3), TrainingSettings(epochs=1))
    with pytest.raises(MapperError, match="must be \\(N, 3\\)"):
        train_mapper(x[:, :2], y, descriptors(3))
    with pytest.raises(MapperError, match="^batch_size must be a whole number") as caught:
        TrainingSettings(batch_size=0)
    assert caught.value.parameters == ("batch_size",)
    with pytest.raises(MapperError, match=r"^hidden widths must be whole numbers from 1 to 8192 .*100000000"):
        TrainingSettings(hidden=(100_000_000,))  # refused before torch allocates 40 PB
    with pytest.raises(MapperError, match=r"diverged at lr 1e\+10: .* smaller learning rate") as caught:
        train_mapper(x, y, descriptors(3), TrainingSettings(epochs=3, lr=1e10, hidden=(32, 16)))
    assert caught.value.render({"lr": "--lr"}.get).startswith("Training diverged at --lr 1e+10")


def test_the_cli_names_the_training_option_that_is_wrong(capsys, tmp_path) -> None:
    from semantify_engine.cli.main import main

    for option, value, message in (
        ("--hidden", "abc", "--hidden takes comma-separated numbers such as 800,500; got 'abc'"),
        ("--hidden", "100000000", "--hidden widths must be whole numbers from 1 to 8192"),
        ("--lr", "-1", "--lr must be a number > 0"),
    ):
        command = [
            "mapper",
            "train",
            "no-such-dataset",
            "--descriptors",
            "height",
            "--out",
            str(tmp_path / "m.npz"),
        ]
        assert main([*command, f"{option}={value}"]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error


def test_a_mapper_whose_sliders_give_no_shape_is_refused_on_load(tmp_path) -> None:
    """A checksum proves a file unaltered, not sane: weights of 1e30 made a 5.8e28 cm body."""
    mapper = random_mapper()
    assert load_mapper(save_mapper(mapper, tmp_path / "fine.npz")).checksum() == mapper.checksum()
    huge = replace(mapper, weights=tuple((w * 1e30, b) for w, b in mapper.weights))  # finite, valid checksum
    with pytest.raises(MapperError, match=r"huge\.npz: its sliders give NaN or infinite coefficients"):
        load_mapper(save_mapper(huge, tmp_path / "huge.npz"))
    far = replace(
        mapper, weights=(*mapper.weights[:-1], (mapper.weights[-1][0] * 1e4, mapper.weights[-1][1]))
    )
    with pytest.raises(MapperError, match=r"standard deviations from its training data .* train it again"):
        load_mapper(save_mapper(far, tmp_path / "far.npz"))


# -------------------------------------------------------------------------------------- input policy
def test_nan_is_refused_naming_the_descriptor() -> None:
    mapper = random_mapper()
    with pytest.raises(MapperError, match="descriptor 'd1' is NaN"):
        mapper.coefficients([0.0, np.nan, 0.0])
    with pytest.raises(MapperError, match=r"takes 3 values \(d0, d1, d2\).*shape \(2,\)"):
        mapper.coefficients([0.0, 0.0])
    with pytest.raises(MapperError, match="must be numbers"):
        mapper.coefficients(["tall", 1, 2])


def test_out_of_range_values_are_clamped_or_refused() -> None:
    mapper = random_mapper()
    at_bounds = np.array([[1.0, -1.0, 0.5], [-1.0, 1.0, 1.0]], dtype=np.float32)
    beyond = np.array([[7.0, -3.0, 0.5], [-np.inf, np.inf, 1e30]], dtype=np.float32)
    np.testing.assert_array_equal(mapper.coefficients(beyond), mapper.coefficients(at_bounds))
    untouched = beyond.copy()
    mapper.coefficients(beyond)
    np.testing.assert_array_equal(beyond, untouched)  # the caller's array is not clamped in place
    with pytest.raises(MapperError, match="Value 7 for descriptor 'd0'.*outside its range \\[-1, 1\\]"):
        mapper.coefficients(beyond, clamp=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a slider path prints nothing, even for 1e300
        np.testing.assert_array_equal(
            mapper.coefficients([1e300, -1e300, 0.5]), mapper.coefficients(at_bounds[0])
        )


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=True, width=32) | st.sampled_from([1e38, -1e38]),
        min_size=3,
        max_size=3,
    )
)
def test_never_nan_vertices_and_bounds_respected(capsule, values: list[float]) -> None:
    model = bounded_model(capsule)
    mapper = random_mapper(n=3, metadata={"model": model_identity(model, 3)})
    coefficients = mapper.coefficients(values)
    assert np.all(np.isfinite(coefficients))
    assert coefficients.min() >= 0.0 and coefficients.max() <= 1.0
    assert np.all(np.isfinite(model.vertices(coefficients)))


def test_answers_past_either_bound_are_held_at_that_bound(capsule) -> None:
    """The random mapper above stays inside [0, 1]: these answer past each end on every input."""
    model = bounded_model(capsule)
    metadata = {"model": model_identity(model, 3)}
    values = np.linspace(-1.0, 1.0, 9)[:, None].repeat(3, axis=1)
    for mean, bound in ((5.0, 1.0), (-5.0, 0.0)):
        shifted = replace(random_mapper(n=3, metadata=metadata), output_mean=np.full(3, mean))
        np.testing.assert_array_equal(shifted.coefficients(values), np.full((9, 3), bound, np.float32))
        np.testing.assert_array_equal(shifted.evaluate(values), np.full((9, 3), bound, np.float32))


# ---------------------------------------------------------------------------------------------- file
def test_save_load_round_trip(tmp_path: Path, capsule) -> None:
    mapper = random_mapper(metadata={"model": model_identity(capsule, 4), "figures": {"wall_s": 1.5}})
    path = save_mapper(mapper, tmp_path / "m.npz")
    loaded = load_mapper(path)
    assert loaded.descriptors == mapper.descriptors
    assert loaded.metadata == mapper.metadata
    assert loaded.checksum() == mapper.checksum() == read_mapper_header(path)["checksum"]
    values = np.random.default_rng(1).uniform(-1, 1, (10, 3))
    np.testing.assert_array_equal(loaded.coefficients(values), mapper.coefficients(values))
    with np.load(path, allow_pickle=False) as archive:  # plain arrays: any numpy can read the file
        assert archive["weight_0"].shape == (3, 16)
        assert json.loads(str(archive["header"]))["descriptors"][0]["name"] == "d0"


def test_corrupt_truncated_and_foreign_files_are_named(tmp_path: Path, capsule) -> None:
    path = save_mapper(random_mapper(), tmp_path / "m.npz")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    for broken in (truncated, garbage, tmp_path / "missing.npz"):
        with pytest.raises(MapperError, match=str(broken.name)):
            load_mapper(broken)
    altered = tmp_path / "altered.npz"
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["weight_1"] = arrays["weight_1"] + 1e-3
    np.savez(altered, **arrays)
    with pytest.raises(MapperError, match="altered.npz does not match its own checksum"):
        load_mapper(altered)
    from semantify_engine.models import save_model

    model_file = save_model(capsule, tmp_path / "capsule.npz")
    with pytest.raises(MapperError, match="capsule.npz is not a semantify mapper file"):
        load_mapper(model_file)
    arrays.pop("bias_0")
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(MapperError, match="partial.npz lacks the arrays bias_0"):
        load_mapper(tmp_path / "partial.npz")
    with zipfile.ZipFile(path) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())


def test_a_mapper_for_another_model_is_refused(capsule) -> None:
    mapper = random_mapper(n=3, metadata={"model": model_identity(capsule, 3)})
    check_model(mapper, capsule)
    other = bounded_model(capsule)
    other = replace(other, template=other.template * 1.01)
    with pytest.raises(MapperError) as caught:
        check_model(mapper, other)
    message = str(caught.value)
    for text in ("test-capsule", "bounded-capsule", capsule.checksum(), other.checksum(), "1920 vertices"):
        assert text in message
    assert isinstance(caught.value, SemantifyError)


# ------------------------------------------------------------------------------------------ add-word
@pytest.fixture(scope="module")
def clip_dataset(capsule, tiny_spec, tmp_path_factory) -> Path:
    from semantify_engine.dataset.builder import build_dataset
    from semantify_engine.dataset.store import DatasetFolder

    folder = DatasetFolder(tmp_path_factory.mktemp("mapper-data") / "data")
    request = capsule_clip_request(capsule, tiny_spec, ("fat", "tall"))
    build_dataset(folder, request)
    return folder.folder


SMALL = {"epochs": 3, "hidden": (32, 16), "batch_size": 8}


@pytest.fixture
def word_mapper(clip_dataset, capsule, tmp_path) -> Path:
    from semantify_engine.mapper.from_dataset import train_from_dataset
    from semantify_engine.mapper.settings import TrainingSettings

    mapper, _ = train_from_dataset(
        clip_dataset, ["fat", "tall"], model=capsule, settings=TrainingSettings(**SMALL)
    )
    return save_mapper(mapper, tmp_path / "words.npz")


@pytest.mark.blender
def test_add_word_scores_cached_embeddings_and_retrains(
    word_mapper, clip_dataset, tiny_spec, tmp_path
) -> None:
    from semantify_engine.dataset.store import DatasetFolder
    from semantify_engine.mapper.add_word import add_word
    from semantify_engine.mapper.train import descriptors_from_data
    from semantify_engine.scoring.clip import average_view_scores, get_scorer, prompts

    before = load_mapper(word_mapper)
    out, mapper, figures = add_word(word_mapper, None, "  broad   shoulders ", tmp_path / "more.npz")
    assert out == tmp_path / "more.npz" and load_mapper(word_mapper).checksum() == before.checksum()
    assert mapper.descriptor_names == ("fat", "tall", "broad shoulders")
    assert [d.kind for d in mapper.descriptors] == ["word"] * 3 and mapper.descriptors[2].unit == "cosine"
    data = DatasetFolder(clip_dataset).load()
    text = get_scorer(tiny_spec).encode_texts(prompts(["broad shoulders"], "a photo of a {} person"))
    expected = average_view_scores(data["embeddings"].astype(np.float32), text)[:, 0]
    (recomputed,) = descriptors_from_data(["broad shoulders"], ["word"], ["cosine"], expected[:, None])
    assert mapper.descriptors[2] == recomputed
    assert mapper.descriptors[:2] == before.descriptors, "old sliders keep their ranges"
    saved = load_mapper(out)
    assert saved.metadata["training"]["epochs"] == 3 and saved.metadata["training"]["hidden"] == [32, 16]
    assert saved.metadata["added_words"] == ["broad shoulders"]
    assert saved.metadata["scorers"]["clip"]["template"] == "a photo of a {} person"
    assert len(figures["train_mse_per_epoch"]) == 3
    assert saved.coefficients(saved.defaults).shape == (3,)


@pytest.mark.blender
def test_add_word_refusals(word_mapper, clip_dataset, capsule, tmp_path) -> None:
    from semantify_engine.dataset.builder import DatasetRequest, build_dataset
    from semantify_engine.dataset.sampling import SamplingPlan
    from semantify_engine.dataset.store import DatasetFolder
    from semantify_engine.mapper.add_word import add_word
    from semantify_engine.render.views import parse_views

    for word, message in (
        ("   ", "empty"),
        ("?!", "no letters"),
        ("tall", "already has the descriptor 'tall'"),
    ):
        with pytest.raises(MapperError, match=message):
            add_word(word_mapper, None, word)
    foreign = load_mapper(word_mapper)
    identity = {**foreign.model_info, "name": "other-body", "checksum": "0123456789abcdef"}
    foreign_path = save_mapper(
        replace(foreign, metadata={**foreign.metadata, "model": identity}), tmp_path / "f.npz"
    )
    with pytest.raises(MapperError, match="built for model 'test-capsule'.*mapper is for 'other-body'"):
        add_word(foreign_path, None, "strong")
    metric_only = DatasetFolder(tmp_path / "metric")
    build_dataset(
        metric_only,
        DatasetRequest(
            model_spec="capsule",
            model=capsule,
            samples=6,
            plan=SamplingPlan(seed=7, components=3),
            views=parse_views("front"),
            metrics=True,
        ),
    )
    with pytest.raises(MapperError, match="without CLIP .scorer metric.*built with scorer clip") as caught:
        add_word(word_mapper, metric_only.folder, "strong")
    assert caught.value.parameters == ("scorer",)
    moved = load_mapper(word_mapper)
    gone = {**moved.metadata["dataset"], "folder": str(tmp_path / "nowhere")}
    moved_path = save_mapper(replace(moved, metadata={**moved.metadata, "dataset": gone}), tmp_path / "m.npz")
    with pytest.raises(MapperError, match="no longer there.*folder with dataset") as caught:
        add_word(moved_path, None, "strong")
    assert caught.value.parameters == ("dataset",)
    path, mapper, _ = add_word(moved_path, clip_dataset, "strong")  # an explicit dataset is accepted
    assert path == moved_path and mapper.descriptor_names[-1] == "strong"
    changed = {**moved.metadata["dataset"], "checksum": "ffffffffffffffff"}
    stale = save_mapper(replace(moved, metadata={**moved.metadata, "dataset": changed}), tmp_path / "s.npz")
    with pytest.raises(MapperError, match="has changed since the mapper was trained"):
        add_word(stale, None, "strong")


@pytest.mark.blender
def test_train_from_a_dataset_records_model_scorer_and_dataset(word_mapper, clip_dataset, capsule) -> None:
    mapper = load_mapper(word_mapper)
    assert mapper.model_info == model_identity(capsule, 3)
    check_model(mapper, capsule)
    assert mapper.metadata["dataset"]["folder"] == str(clip_dataset.resolve())
    assert mapper.metadata["dataset"]["samples"] == 24
    clip = mapper.metadata["scorers"]["clip"]
    assert clip["model"] == "semantify-tiny-test-clip" and clip["pretrained"].endswith(".bin")
    assert "metric" not in mapper.metadata["scorers"]


@pytest.mark.blender
def test_add_word_keeps_measurement_sliders_consistent_when_it_can_load_the_model(
    capsule, tiny_spec, tmp_path
) -> None:
    """A mapper mixing a measurement and a word: add-word loads the dataset's model to measure bodies while
    it retrains; where the model cannot be loaded, it retrains without the term and says so."""
    from semantify_engine.dataset.builder import build_dataset
    from semantify_engine.dataset.store import DatasetFolder
    from semantify_engine.mapper.add_word import add_word
    from semantify_engine.mapper.from_dataset import train_from_dataset
    from semantify_engine.mapper.settings import TrainingSettings
    from semantify_engine.models.modelfile import save_model

    model_file = save_model(capsule, tmp_path / "capsule.npz")
    for spec, consistent in ((str(model_file), True), ("capsule", False)):
        folder = DatasetFolder(tmp_path / f"data-{consistent}")
        request = replace(capsule_clip_request(capsule, tiny_spec, ("fat",), metrics=True), model_spec=spec)
        build_dataset(folder, request)
        mapper, figures = train_from_dataset(
            folder.folder, ["height", "fat"], model=capsule, settings=TrainingSettings(**SMALL)
        )
        assert "measurement_surrogate" in figures  # the model was at hand: the term was on
        path = save_mapper(mapper, tmp_path / f"mixed-{consistent}.npz")
        _, grown, figures = add_word(path, None, "tall")
        assert grown.descriptor_names == ("height", "fat", "tall")
        assert ("measurement_surrogate" in figures) is consistent
        notes = " ".join(figures.get("notes", []))
        assert ("measurement consistency off" in notes and "'capsule'" in notes) is not consistent
