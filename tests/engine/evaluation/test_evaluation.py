"""Evaluation figures on shapes whose answer is known analytically."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from semantify_engine.evaluation.coverage import coverage_and_overlap, slider_extremes
from semantify_engine.evaluation.expressiveness import best_slider_values, expressiveness


@dataclass(frozen=True)
class Slider:
    name: str
    low: float
    high: float
    default: float


class LinearSliders:
    """A mapper whose sliders are the model's coefficients times ``gain``: the simplest exact mapper."""

    def __init__(self, names: list[str], gain: float = 1.0) -> None:
        self.descriptors = [Slider(name, -2.0, 2.0, 0.0) for name in names]
        self.gain = gain

    def coefficients(self, values: np.ndarray) -> np.ndarray:
        return np.atleast_2d(np.asarray(values, np.float32)) * self.gain


def test_coverage_of_height_and_width_matches_the_geometry(capsule) -> None:
    result = coverage_and_overlap(capsule, LinearSliders(["height", "width", "depth"]), theta=0.3)
    z, x, y = capsule.template[:, 2], np.abs(capsule.template[:, 0]), np.abs(capsule.template[:, 1])
    # height scales z: displacement ∝ z; width scales x: ∝ |x|; depth scales y: ∝ |y|.
    expected = {"height": z / z.max() > 0.3, "width": x / x.max() > 0.3, "depth": y / y.max() > 0.3}
    for name, covered in expected.items():
        assert result.per_descriptor_coverage[name] == pytest.approx(covered.mean(), abs=1e-6)
    union = expected["height"] | expected["width"] | expected["depth"]
    assert result.coverage == pytest.approx(union.mean(), abs=1e-6)
    total = sum(c.sum() for c in expected.values())
    assert result.overlap == pytest.approx(1 - union.sum() / total, abs=1e-6)
    assert result.displacement.shape == (3, capsule.vertex_count) and result.displacement.max() == 1.0


def test_identical_descriptors_overlap_completely(capsule) -> None:
    result = coverage_and_overlap(capsule, LinearSliders(["a"]), theta=0.3)

    class Twice(LinearSliders):
        def coefficients(self, values: np.ndarray) -> np.ndarray:
            values = np.atleast_2d(values)
            return np.stack([values[:, 0] + values[:, 1], 0 * values[:, 0]], axis=1)

    twice = coverage_and_overlap(capsule, Twice(["a", "b"]), theta=0.3)
    assert twice.mean_pairwise_iou == pytest.approx(1.0)
    assert twice.overlap == pytest.approx(0.5)  # 1 − 1/d with d = 2 identical sets
    assert twice.coverage == pytest.approx(result.coverage)


def test_slider_extremes_move_one_descriptor_at_a_time() -> None:
    rows = slider_extremes(LinearSliders(["a", "b"]))
    np.testing.assert_array_equal(rows, [[-2, 0], [2, 0], [0, -2], [0, 2]])


def test_expressiveness_finds_reachable_shapes_and_beats_fewer_raw_sliders(capsule) -> None:
    mapper = LinearSliders(["height", "width", "depth"], gain=0.5)  # sliders reach ±1 in coefficients
    target = np.array([0.5, -0.25, 0.75], np.float32)
    np.testing.assert_allclose(best_slider_values(mapper, target), target / 0.5, atol=1e-3)
    targets = np.random.default_rng(0).uniform(-1, 1, size=(8, 3)).astype(np.float32)
    figures = expressiveness(capsule, mapper, targets)
    assert figures["semantic_sliders_mm_mean"] < 0.05
    assert figures["raw_pca_sliders_mm_mean"] == pytest.approx(0.0, abs=1e-3)  # d = all 3 components

    class NoDepth(LinearSliders):
        def coefficients(self, values: np.ndarray) -> np.ndarray:
            values = np.atleast_2d(values) * self.gain
            return np.concatenate([values, np.zeros((len(values), 1), np.float32)], axis=1)

    two = NoDepth(["height", "width"], gain=0.5)
    fewer = expressiveness(capsule, two, targets)
    assert fewer["semantic_sliders_mm_mean"] > 1.0, "without a depth slider the depth cannot be reached"


def test_coverage_counts_only_vertices_strictly_past_theta(capsule) -> None:
    """δ is normalised to a peak of 1: θ = 1 covers nothing, θ just below it the peak vertices only."""
    sliders = LinearSliders(["height"])
    assert coverage_and_overlap(capsule, sliders, theta=1.0).per_descriptor_coverage["height"] == 0.0
    top = capsule.template[:, 2] == capsule.template[:, 2].max()
    just_below = coverage_and_overlap(capsule, sliders, theta=1.0 - 1e-6).per_descriptor_coverage["height"]
    assert just_below == pytest.approx(top.mean())


# ------------------------------------------------------------------- attributes, plausibility, words
@dataclass(frozen=True)
class KindSlider(Slider):
    kind: str = "attribute"
    unit: str = ""


class KindSliders(LinearSliders):
    def __init__(self, names: list[str], kinds: list[str], gain: float = 1.0) -> None:
        self.descriptors = [KindSlider(n, -2.0, 2.0, 0.0, k) for n, k in zip(names, kinds, strict=True)]
        self.gain = gain


def test_attribute_fidelity_and_word_agreement_read_the_models_regressor() -> None:
    """The banked capsule's settings are known functions of its coefficients: gender = 0.5 + 0.2 c0."""
    from support.models import banked_capsule

    from semantify_engine.evaluation.fidelity import DescriptorReader, descriptor_fidelity
    from semantify_engine.evaluation.semantic import word_attribute_agreement

    model = banked_capsule()
    mapper = KindSliders(["c0", "c1", "c2"], ["word", "word", "word"])
    agreement = word_attribute_agreement(model, mapper)
    assert agreement["c0"]["gender"]["rank_correlation"] == pytest.approx(1.0)
    assert agreement["c0"]["gender"]["change"] == pytest.approx(0.8, abs=0.01)  # 0.2 * 4 over a range of 1
    assert abs(agreement["c0"]["muscle"]["change"]) < 0.01, "muscle follows c2, not c0"
    assert agreement["c2"]["muscle"]["rank_correlation"] == pytest.approx(1.0)

    class Gender(KindSliders):  # one attribute slider whose value is gender: c0 = (gender - 0.5) / 0.2
        def coefficients(self, values: np.ndarray) -> np.ndarray:
            values = np.atleast_2d(np.asarray(values, np.float32))
            return np.hstack([(values - 0.5) / 0.2, np.zeros((len(values), 2), np.float32)])

    gender = Gender(["gender"], ["attribute"])
    gender.descriptors = [KindSlider("gender", 0.2, 0.8, 0.5)]
    figures = descriptor_fidelity(model, gender, DescriptorReader(model), kinds=("attribute",))["gender"]
    assert figures["mean_abs_error"] < 1e-3 and figures["achieved_range"] == pytest.approx(
        [0.2, 0.8], abs=1e-3
    )


def test_a_shipped_mapper_is_evaluated_without_its_dataset(tmp_path) -> None:
    """Shipped mappers record no dataset: every figure that needs none, and a note for the others."""
    from semantify_engine.evaluation.evaluate import evaluate_mapper
    from semantify_engine.mapper.defaults import DEFAULT_MAPPER_DIR
    from semantify_engine.models.plausibility import REGION

    figures = evaluate_mapper(
        DEFAULT_MAPPER_DIR / "anny-body-attributes.npz", tmp_path, pictures=False, say=lambda _: None
    )
    assert (
        "held_out" not in figures and "sweep" not in figures and "pass the dataset DIR" in figures["notes"][0]
    )
    plausibility = figures["plausibility"]
    assert plausibility["corners"]["count"] == 2 ** len(figures["descriptors"])
    assert plausibility["inside"] and plausibility["worst"] <= REGION, "shipped sliders stay plausible"
    attributes = figures["attribute_fidelity"]
    assert set(attributes) == {"gender", "age", "muscle", "weight", "proportions"}
    assert attributes["age"]["unit"] == "years" and attributes["age"]["mean_abs_error"] < 6.0
    assert figures["metric_fidelity"]["height"]["mean_abs_error"] < 0.010
    report = (tmp_path / "report.md").read_text()
    assert "## Plausibility" in report and "## Attribute fidelity" in report and "Note: no dataset" in report


@pytest.mark.parametrize("name", ["anny-body-measurements", "anny-body-male-measurements"])
def test_shipped_measurement_sliders_do_what_they_say_at_both_ends(name) -> None:
    """Every position of a shipped measurement slider gives a body that measures what it asks (within the
    cutting tolerance, a fraction of the range the slider was cut from), and a slider widened back to its
    data's range is cut again to where it was."""
    from dataclasses import replace

    from semantify_engine.evaluation.fidelity import DescriptorReader, descriptor_fidelity
    from semantify_engine.mapper.defaults import DEFAULT_MAPPER_DIR
    from semantify_engine.mapper.mapper import data_range, load_mapper
    from semantify_engine.mapper.reach import REACH_TOLERANCE, narrow_to_reach
    from semantify_engine.models.registry import load
    from semantify_engine.scoring.metrics import MetricScorer

    mapper = load_mapper(DEFAULT_MAPPER_DIR / f"{name}.npz")
    model = load(mapper.metadata["model"]["name"])
    fidelity = descriptor_fidelity(model, mapper, DescriptorReader(model, MetricScorer.for_model(model)), 11)
    for descriptor in mapper.descriptors:
        row = fidelity[descriptor.name]
        miss = np.abs(np.asarray(row["achieved"]) - np.asarray(row["requested"]))
        cut_from = data_range(mapper, descriptor.name) or (descriptor.low, descriptor.high)
        # positions between the ones the cut was decided on may miss a little more: 10 % slack
        assert miss.max() <= REACH_TOLERANCE * (cut_from[1] - cut_from[0]) * 1.1, descriptor.name
    widened = data_range(mapper, "waist")
    assert widened is not None, "the waist's data reaches past any plausible body: it was cut"
    index = [d.name for d in mapper.descriptors].index("waist")
    cut = mapper.descriptors[index]
    descriptors = list(mapper.descriptors)
    descriptors[index] = replace(cut, low=widened[0], high=widened[1])
    again, narrowed = narrow_to_reach(replace(mapper, descriptors=tuple(descriptors)), model)
    assert set(narrowed) == {"waist"}
    assert again.descriptors[index].high == pytest.approx(cut.high, abs=1e-6)


@pytest.mark.parametrize("body", ["anny-body", "anny-body-male", "anny-body-female"])
def test_shipped_attribute_sliders_are_cut_by_the_tape_alone(body) -> None:
    """Learned from the bank's exact settings, an attribute slider keeps its whole data range: the
    regressor, which only estimates settings, neither held it in training nor cut it (it would have cut
    anny-body's proportions at 0.78, where anny itself read the bodies up to 0.97)."""
    from semantify_engine.mapper.defaults import DEFAULT_MAPPER_DIR
    from semantify_engine.mapper.from_dataset import trusted_kinds
    from semantify_engine.mapper.mapper import data_range, load_mapper
    from semantify_engine.mapper.reach import narrow_to_reach
    from semantify_engine.models.registry import load

    mapper = load_mapper(DEFAULT_MAPPER_DIR / f"{body}-attributes.npz")
    kinds = trusted_kinds(mapper.metadata["dataset"])
    assert kinds == ("metric",), "the bank's settings are exact labels"
    assert "measurement_surrogate" in mapper.metadata["figures"], "the height is still held"
    assert set(mapper.metadata["figures"]["measurement_surrogate"]["validation_mean_abs_error"]) == {"height"}
    for descriptor in mapper.descriptors:
        assert data_range(mapper, descriptor.name) is None, descriptor.name
    assert narrow_to_reach(mapper, load(body), kinds)[1] == {}


def test_an_unwritable_report_folder_is_refused_before_any_work(tmp_path, capsys) -> None:
    """Read-only places cannot be made for root (tests run as root): a path through a file fails alike."""
    from semantify_engine.cli.main import main
    from semantify_engine.mapper.defaults import DEFAULT_MAPPER_DIR

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    mapper = str(DEFAULT_MAPPER_DIR / "anny-head-shape-measurements.npz")
    for out, message in (
        (blocker / "report", f"Cannot write into {blocker / 'report'}: Not a directory"),
        (blocker, f"Cannot write into {blocker}: it is a file, not a folder"),
    ):
        assert main(["evaluate", mapper, "--out", str(out), "--no-pictures"]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
        assert "coverage" not in error, "refused before the first stage"
