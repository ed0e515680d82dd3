"""``semantify build`` and ``semantify evaluate`` end to end, for real (Blender, open_clip, torch)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semantify_engine.cli.main import main as cli_main
from semantify_engine.mapper import check_model, load_mapper
from semantify_engine.models import load, save_model
from semantify_engine.scoring.metrics import MetricScorer


def test_word_build_with_a_small_clip_then_resume_and_evaluate(
    capsule, tiny_weights, tmp_path, capsys
) -> None:
    model_path = save_model(capsule, tmp_path / "capsule.npz")
    out = tmp_path / "build"
    command = [
        "build", "--model", str(model_path), "--out", str(out), "--samples", "64", "--chunk-size", "32",
        "--scorer", "both", "--clip", tiny_weights.stem, "--pretrained", str(tiny_weights),
        "--words", "fat,thin,tall,short,broad shoulders,muscular", "--resolution", "48",
        "--descriptors", "3", "--force", "tall", "--no-pictures",
    ]  # fmt: skip
    assert cli_main(command) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (
        summary["kind"] == "words" and len(summary["descriptors"]) == 3 and "tall" in summary["descriptors"]
    )
    mapper = load_mapper(out / "mapper.npz")
    check_model(mapper, capsule)
    assert [d.kind for d in mapper.descriptors] == ["word"] * 3
    assert mapper.metadata["scorers"]["clip"]["template"] == "a photo of a {} person"
    figures = json.loads((out / "evaluation" / "evaluation.json").read_text())
    assert 0.0 < figures["coverage"]["coverage"] <= 1.0
    assert [row["d"] for row in figures["sweep"]] == [2, 3, 5]  # the paper's d that fit, and the chosen
    assert "rank_correlation" in next(iter(figures["semantic"].values()))
    assert (out / "evaluation" / "report.md").read_text().startswith("# Mapper evaluation")
    selection = json.loads((out / "selection.json").read_text())
    assert selection["result"]["selected"] == summary["descriptors"]
    # `semantify select` is step 4 alone: the same choice, with its clusters, votes and correlations
    assert cli_main(["select", str(out / "dataset"), "--descriptors", "3", "--force", "tall", "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert alone["selected"] == summary["descriptors"] and alone["ranking"][0] in alone["selected"]
    assert sum(cluster["images"] for cluster in alone["clusters"]) == 64
    assert len(alone["correlations"]) == 3 and all(-1 <= r <= 1 for r in alone["correlations"].values())
    assert set(alone["filtered"]) == {"fat", "thin", "tall", "short", "broad shoulders", "muscular"} - set(
        alone["selected"]
    ), "every word left out says why"
    assert cli_main(["select", str(out / "dataset"), "--descriptors", "3", "--force", "tall"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"selected (words): {', '.join(summary['descriptors'])}") and "cluster 0" in text

    stamps = {path: path.stat().st_mtime_ns for path in (out / "mapper.npz", out / "selection.json")}
    assert cli_main(command) == 0, "a second run resumes: every stage is already done"
    capsys.readouterr()
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps


def test_measurement_build_hits_requested_heights(tmp_path, capsys) -> None:
    out = tmp_path / "body"
    # 600 samples teach 4 sliders (nine, the default with attributes, need the default 6000)
    command = ["build", "--out", str(out), "--samples", "600", "--scorer", "metric", "--no-sweep"]
    assert cli_main([*command, "--force", "height,chest,waist,hips", "--descriptors", "4"]) == 0
    note, printed = capsys.readouterr().out.split("\n", 1)
    summary = json.loads(printed)
    assert summary["descriptors"] == ["height", "chest", "waist", "hips"]
    assert "this build made sliders from measurements. Give weights with --pretrained" in note
    body = load("anny-body")
    mapper = load_mapper(out / "mapper.npz")
    index = mapper.descriptor_names.index("height")
    low, high = mapper.descriptors[index].low, mapper.descriptors[index].high
    requested = np.linspace(low, high, 7, dtype=np.float32)
    values = np.tile(mapper.defaults, (7, 1))
    values[:, index] = requested
    scorer = MetricScorer.for_model(body)
    achieved = scorer.measure(body.vertices(mapper.coefficients(values)))[:, scorer.names.index("height")]
    assert np.abs(achieved - requested).mean() < 0.010, "the height slider means metres"
    assert (out / "evaluation" / "gallery.png").is_file() and (out / "evaluation" / "coverage.png").is_file()
    evaluation = json.loads((out / "evaluation" / "evaluation.json").read_text())
    height = evaluation["metric_fidelity"]["height"]
    report = (out / "evaluation" / "report.md").read_text()
    table = report[report.index("| descriptor | mean abs error |") :]  # the fidelity table, not coverage's
    row = next(line for line in table.splitlines() if line.startswith("| height |"))
    mean, worst = height["mean_abs_error"] * 1000, height["max_abs_error"] * 1000
    assert row.startswith(f"| height | {mean:.4g} mm (") and f"| {worst:.4g} mm |" in row, (
        "metres reported in mm"
    )


def test_evaluate_refuses_a_mapper_for_another_model(capsule, tmp_path, capsys) -> None:
    """The shipped body mapper against a capsule dataset: refused by the model's name, exit status 2."""
    from semantify_engine.mapper.defaults import DEFAULT_MAPPER_DIR

    other = tmp_path / "other"
    assert cli_main(["dataset", "build", "--model", str(save_model(capsule, tmp_path / "c.npz")),
                     "--samples", "20", "--scorer", "metric", "--out", str(other)]) == 0  # fmt: skip
    capsys.readouterr()
    body_mapper = DEFAULT_MAPPER_DIR / "anny-body-measurements.npz"
    code = cli_main(
        ["evaluate", str(body_mapper), "--dataset", str(other), "--no-pictures", "--out", str(tmp_path / "e")]
    )
    assert code == 2
    assert "trained for model 'anny-body'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--samples", "0"], "--samples must be a whole number > 0"),
        (["--descriptors", "0"], "--descriptors must be at least 1"),
        (["--force", "wingspan"], "has no measurement sliders named wingspan"),
    ],
)
def test_build_bad_input(tmp_path, capsys, args, message) -> None:
    command = ["build", "--out", str(tmp_path / "x"), "--scorer", "metric", "--samples", "20", *args]
    assert cli_main(command) == 2
    assert message in capsys.readouterr().err


def test_a_model_with_nothing_to_measure_is_refused_by_name(capsule, tmp_path, capsys) -> None:
    """Without CLIP weights a build needs measurements; a hand of unknown topology has none."""
    from dataclasses import replace

    from semantify_engine.models.modelfile import save_model

    path = save_model(replace(capsule, name="mystery-hand", kind="hand"), tmp_path / "face.npz")
    command = ["build", "--out", str(tmp_path / "x"), "--scorer", "metric", "--samples", "20"]
    assert cli_main([*command, "--model", str(path)]) == 2
    error = capsys.readouterr().err
    assert "mystery-hand" in error and "no measurement definition" in error


def test_expressions_are_sampled_sparsely_over_every_blendshape_by_default() -> None:
    """The first 10 ARKit blendshapes move only jaw and mouth: a build samples all 52, a few at a time."""
    from semantify_engine.pipeline import default_build_components

    face = load("anny-face-expression")
    assert default_build_components(face) == face.component_count == 52
    assert default_build_components(face, "uniform") == 10
    body = load("anny-body")  # source bodies are whole bodies: all components; a coefficient box: 30
    assert default_build_components(body) == body.component_count
    assert default_build_components(body, "uniform") == 30
    assert default_build_components(load("anny-head-shape")) == 10
