"""Datasets: deterministic sampling, the resumable chunk store, shards, and bad input."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.clip import capsule_clip_request, capsule_metric_request
from support.models import make_capsule_model

from semantify_engine.cli.main import main as cli_main
from semantify_engine.dataset.builder import DatasetRequest, build_dataset
from semantify_engine.dataset.sampling import SamplingPlan, bank_rows, sample_coefficients
from semantify_engine.dataset.store import DatasetError, DatasetFolder, Shard, merge_datasets
from semantify_engine.errors import SemantifyError
from semantify_engine.models import LinearMorphableModel, save_model

WORDS = ("fat", "thin", "tall")


# ------------------------------------------------------------------------------------- sampling
@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**31),
    st.lists(st.integers(0, 5000), min_size=1, max_size=20),
    st.sampled_from(["uniform", "reference", "normal", "sparse"]),
)
def test_a_sample_depends_only_on_seed_and_index(capsule, seed: int, indices: list[int], scheme: str) -> None:
    plan = SamplingPlan(seed=seed, components=3, scheme=scheme)
    together = sample_coefficients(capsule, plan, indices)
    alone = np.concatenate([sample_coefficients(capsule, plan, [index]) for index in indices])
    np.testing.assert_array_equal(together, alone)
    first = range(64)  # enough that even sparse draws (most components off) differ between seeds
    assert not np.array_equal(
        sample_coefficients(capsule, plan, first),
        sample_coefficients(capsule, SamplingPlan(seed + 1, components=3, scheme=scheme), first),
    )


def test_schemes_respect_their_ranges(capsule) -> None:
    indices = range(400)
    uniform = sample_coefficients(capsule, SamplingPlan(scheme="uniform", sigmas=2.0, components=3), indices)
    assert (
        uniform.min() >= -2.0 and uniform.max() <= 2.0 and uniform.std() > 0.9
    )  # uniform on ±2 has std 1.15
    reference = sample_coefficients(capsule, SamplingPlan(scheme="reference", components=3), range(2000))
    # randint(-2, 2) per coefficient: each is zero with probability 1/4 (randint(-2, 3) would give 1/5), and
    # its variance is E[m²] = (4 + 1 + 0 + 1) / 4 = 1.5 std² (2.0 for randint(-2, 3)); 6000 draws.
    assert 0.235 < (reference == 0).mean() < 0.265
    assert 1.4 < (reference**2).mean() < 1.6
    assert np.all(reference == 0, axis=1).mean() < 0.03, "one multiplier per sample zeroed a quarter of rows"
    sizes = np.abs(reference)
    coupling = np.corrcoef(sizes[:, 0], sizes[:, 1])[0, 1]
    assert abs(coupling) < 0.1, f"coefficient sizes are independent within a sample (r = {coupling:.3f})"
    bounded = LinearMorphableModel(
        **{
            **capsule.__dict__,
            "kind": "face-expression",
            "coefficient_bounds": np.tile([0.0, 1.0], (3, 1)),
            "std": np.full(3, 0.25),
        }
    )
    plan = SamplingPlan.for_model(bounded)
    assert plan.sigmas == 4.0 and plan.scheme == "sparse"
    for scheme in ("uniform", "reference", "normal", "sparse"):
        draws = sample_coefficients(bounded, SamplingPlan(scheme=scheme, sigmas=4.0, components=3), indices)
        assert draws.min() >= 0.0 and draws.max() <= 1.0


def test_sparse_samples_pull_a_few_components_at_a_time(capsule) -> None:
    from semantify_engine.dataset.sampling import SPARSE_ACTIVE

    plan = SamplingPlan(scheme="sparse", sigmas=2.0, components=3)
    draws = sample_coefficients(capsule, plan, range(4000))
    active = draws != 0.0
    assert abs(active.mean() - SPARSE_ACTIVE) < 0.02
    assert draws[active].min() >= -2.0 and draws[active].max() <= 2.0 and draws[active].std() > 0.9
    assert SamplingPlan.for_model(capsule).scheme == "uniform", "shapes keep the paper's scheme"


def test_sampling_plan_refuses_bad_values(capsule) -> None:
    with pytest.raises(SemantifyError, match="scheme"):
        SamplingPlan(scheme="gaussian")
    with pytest.raises(SemantifyError, match="has 3 components; cannot sample 10"):
        SamplingPlan.for_model(capsule, components=10)


# -------------------------------------------------------------------------------- building
def clip_request(
    capsule: LinearMorphableModel, tiny_spec, samples: int = 12, chunk: int = 4
) -> DatasetRequest:
    return capsule_clip_request(capsule, tiny_spec, WORDS, samples=samples, chunk_size=chunk)


@pytest.fixture(scope="module")
def reference_build(capsule, tiny_spec, tmp_path_factory) -> dict[str, np.ndarray]:
    folder = DatasetFolder(tmp_path_factory.mktemp("reference") / "data")
    report = build_dataset(folder, clip_request(capsule, tiny_spec))
    assert (report.built_chunks, report.built_samples) == (3, 12)
    return folder.load()


def test_a_build_holds_every_sample_once_with_per_view_embeddings(
    reference_build, capsule, tiny_spec
) -> None:
    data = reference_build
    np.testing.assert_array_equal(data["indices"], np.arange(12))
    np.testing.assert_array_equal(
        data["coefficients"], sample_coefficients(capsule, SamplingPlan(seed=7, components=3), range(12))
    )
    assert data["embeddings"].shape == (12, 2, 32) and data["embeddings"].dtype == np.float16
    assert data["scores"].shape == (12, len(WORDS))
    from semantify_engine.scoring.clip import average_view_scores, get_scorer, prompts

    text = get_scorer(tiny_spec).encode_texts(prompts(WORDS, "a photo of a {} person"))
    rescored = average_view_scores(data["embeddings"].astype(np.float32), text)
    np.testing.assert_allclose(data["scores"], rescored, atol=1e-6)  # new words score from the cache alike
    assert not np.allclose(data["embeddings"][0], data["embeddings"][1]), "different shapes, different images"


def test_running_again_builds_nothing_and_changes_nothing(capsule, tiny_spec, tmp_path) -> None:
    folder = DatasetFolder(tmp_path / "data")
    build_dataset(folder, clip_request(capsule, tiny_spec, samples=4))
    before = {path.name: path.stat().st_mtime_ns for path in folder.chunk_folder.iterdir()}
    report = build_dataset(folder, clip_request(capsule, tiny_spec, samples=4))
    assert (report.built_chunks, report.skipped_chunks) == (0, 1)
    assert {path.name: path.stat().st_mtime_ns for path in folder.chunk_folder.iterdir()} == before


def test_shards_merge_into_the_single_build(reference_build, capsule, tiny_spec, tmp_path) -> None:
    shards = []
    for index in range(2):
        folder = DatasetFolder(tmp_path / f"shard{index}")
        build_dataset(folder, clip_request(capsule, tiny_spec), shard=Shard(index, 2))
        assert folder.missing_chunks(), "a shard alone is incomplete"
        shards.append(folder.folder)
    merged = merge_datasets(tmp_path / "merged", shards).load()
    np.testing.assert_array_equal(merged["coefficients"], reference_build["coefficients"])
    np.testing.assert_array_equal(merged["embeddings"], reference_build["embeddings"])
    np.testing.assert_array_equal(merged["scores"], reference_build["scores"])


def test_other_settings_are_refused_not_mixed(capsule, tiny_spec, tmp_path) -> None:
    folder = DatasetFolder(tmp_path / "data")
    build_dataset(folder, clip_request(capsule, tiny_spec, samples=4))
    other = clip_request(capsule, tiny_spec, samples=4)
    other = DatasetRequest(**{**other.__dict__, "plan": SamplingPlan(seed=8, components=3)})
    with pytest.raises(DatasetError, match=r"other settings \(sampling.seed: 7 -> 8\)"):
        build_dataset(folder, other)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty and is not a dataset"):
        build_dataset(DatasetFolder(tmp_path / "junk"), clip_request(capsule, tiny_spec, samples=4))
    with pytest.raises(SemantifyError, match="samples must be a whole number > 0"):
        clip_request(capsule, tiny_spec, samples=0)


def test_elevated_views_record_how_they_are_turned_and_level_views_keep_their_record(
    capsule, tiny_spec
) -> None:
    # Elevated views once rendered tipped before turned (rolled from the side): a dataset begun that way
    # must not resume with the corrected renders, while front/side datasets resume as before.
    level = capsule_clip_request(capsule, tiny_spec, WORDS, views="front,side").settings()["views"]
    assert level == [
        {"name": "front", "azimuth": 0.0, "elevation": 0.0},
        {"name": "side", "azimuth": 90.0, "elevation": 0.0},
    ]
    elevated = capsule_clip_request(capsule, tiny_spec, WORDS, views="front,az90el30").settings()["views"]
    assert "turn" not in elevated[0] and elevated[1]["turn"] == "azimuth, then elevation"


def test_a_full_disk_leaves_no_torn_chunk_and_the_build_resumes(
    reference_build, capsule, tiny_spec, tmp_path, monkeypatch
) -> None:
    import contextlib

    import semantify_engine.dataset.store as store

    real_output, calls = store.atomic_output, {"count": 0}

    class FillingDisk:
        """The chunk file's stream on a disk that fills up half-way through the second chunk."""

        def __init__(self, stream) -> None:
            self.stream = stream

        def write(self, data) -> int:
            self.stream.write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    @contextlib.contextmanager
    def output_until_the_disk_fills(path, mode="wb"):
        calls["count"] += Path(path).name.startswith("chunk-")  # the manifest's writes do not count
        with real_output(path, mode) as stream:
            yield FillingDisk(stream) if calls["count"] == 2 else stream  # chunk 0 fits, chunk 1 does not

    monkeypatch.setattr(store, "atomic_output", output_until_the_disk_fills)
    folder = DatasetFolder(tmp_path / "data")
    with pytest.raises(SemantifyError, match="No space left on device.*free some space"):
        build_dataset(folder, clip_request(capsule, tiny_spec))
    assert folder.present_chunks() == [0]
    assert not list(folder.chunk_folder.glob("*.partial")), "no half-written file is left"
    folder.read_chunk(0)
    monkeypatch.setattr(store, "atomic_output", real_output)
    build_dataset(folder, clip_request(capsule, tiny_spec))
    resumed = folder.load()
    np.testing.assert_array_equal(resumed["embeddings"], reference_build["embeddings"])
    np.testing.assert_array_equal(resumed["scores"], reference_build["scores"])


def test_kill_nine_at_random_moments_then_resume_equals_an_uninterrupted_build(
    capsule, tiny_weights, tmp_path
) -> None:
    model_path = save_model(capsule, tmp_path / "capsule.npz")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}

    def command(out: Path) -> list[str]:
        return [
            sys.executable, "-m", "semantify_engine.cli.main", "dataset", "build", "--model", str(model_path),
            "--samples", "96", "--chunk-size", "3", "--out", str(out), "--scorer", "clip", "--clip",
            tiny_weights.stem, "--pretrained", str(tiny_weights), "--words", ",".join(WORDS),
            "--resolution", "48", "--components", "3", "--seed", "3",
        ]  # fmt: skip

    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    subprocess.run(command(reference), env=env, check=True, capture_output=True, timeout=300)
    rng = random.Random(1)
    kills = 0
    for _ in range(3):
        process = subprocess.Popen(
            command(interrupted), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        chunks_before = len(list((interrupted / "chunks").glob("chunk-*.npz"))) if interrupted.exists() else 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            chunks = len(list((interrupted / "chunks").glob("chunk-*.npz"))) if interrupted.exists() else 0
            if chunks > chunks_before:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.15))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 2, "the build finished before it could be interrupted: make it longer"
    partial = DatasetFolder(interrupted)
    assert 0 < len(partial.present_chunks()) < 32
    for chunk in partial.present_chunks():
        partial.read_chunk(chunk)  # every chunk present is whole
    subprocess.run(command(interrupted), env=env, check=True, capture_output=True, timeout=300)
    expected, resumed = DatasetFolder(reference).load(), partial.load()
    np.testing.assert_array_equal(resumed["indices"], np.arange(96))
    np.testing.assert_array_equal(resumed["coefficients"], expected["coefficients"])
    np.testing.assert_allclose(resumed["embeddings"], expected["embeddings"], atol=1e-3)
    np.testing.assert_allclose(resumed["scores"], expected["scores"], atol=1e-4)
    info = []
    for folder in (reference, interrupted):
        shell = [sys.executable, "-m", "semantify_engine.cli.main", "dataset", "info", str(folder), "--json"]
        result = subprocess.run(shell, env=env, check=True, capture_output=True, text=True)
        info.append(json.loads(result.stdout))
    assert info[0]["samples"] == info[1]["samples"] == 96
    assert info[0]["coefficients_checksum"] == info[1]["coefficients_checksum"]


def test_command_line_bad_input(capsule, tmp_path, capsys) -> None:
    model_path = save_model(capsule, tmp_path / "capsule.npz")
    base = ["dataset", "build", "--samples", "4", "--out", str(tmp_path / "d")]
    assert cli_main([*base, "--model", "no-such-model"]) == 2
    assert "Unknown model 'no-such-model'" in capsys.readouterr().err
    assert (
        cli_main([*base[:2], "--samples", "0", "--out", str(tmp_path / "d"), "--model", str(model_path)]) == 2
    )
    assert "--samples must be a whole number > 0" in capsys.readouterr().err
    assert cli_main([*base, "--model", str(model_path), "--shard", "3/2"]) == 2
    assert "need 0 ≤ I < N" in capsys.readouterr().err
    code = cli_main([*base, "--model", str(model_path), "--scorer", "clip", "--pretrained", "openai"])
    error = capsys.readouterr().err
    assert code == 2 and "ViT-B-32" in error and "SEMANTIFY_CLIP_PRETRAINED" in error
    assert not (tmp_path / "d" / "chunks").exists(), "nothing is built without the weights"
    assert cli_main(["dataset", "info", str(tmp_path / "nothing-here")]) == 2
    assert "is not a dataset" in capsys.readouterr().err


def test_a_metric_only_build_measures_every_sample_without_rendering(capsule, tmp_path, capsys) -> None:
    from semantify_engine.scoring.metrics import MetricScorer

    model_path = save_model(capsule, tmp_path / "capsule.npz")
    out = tmp_path / "metric"
    code = cli_main(["dataset", "build", "--model", str(model_path), "--samples", "10", "--out", str(out),
                     "--chunk-size", "4", "--scorer", "auto", "--pretrained", "openai"])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert "building without CLIP scores" in captured.err and "scorers: metric" in captured.out
    data = DatasetFolder(out).load()
    assert "embeddings" not in data and "scores" not in data
    scorer = MetricScorer.for_model(capsule)
    np.testing.assert_allclose(
        data["metrics"], scorer.measure(capsule.vertices(data["coefficients"])), rtol=1e-6
    )
    heights = data["metrics"][:, scorer.names.index("height")]
    np.testing.assert_allclose(heights, 1.7 * (1 + 0.05 * data["coefficients"][:, 0]), rtol=1e-4)


@settings(max_examples=200, deadline=None)
@given(
    samples=st.integers(1, 5000),
    chunk_size=st.integers(1, 300),
    count=st.integers(1, 9),
    index=st.integers(0, 8),
)
def test_a_shards_sample_count_is_counted_without_a_loop_and_matches_its_chunks(
    samples: int, chunk_size: int, count: int, index: int
) -> None:
    from semantify_engine.dataset.store import Shard, chunk_count, chunk_indices, shard_samples

    index %= count
    layout = {"samples": samples, "chunk_size": chunk_size}
    shard = Shard(index, count)
    looped = sum(len(chunk_indices(layout, c)) for c in range(chunk_count(layout)) if shard.owns(c))
    assert shard_samples(layout, shard) == looped


def test_a_huge_sample_count_is_refused_at_once_with_the_limit(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "semantify_engine.cli.main", "dataset", "build", "--model", "anny-body"]
    command += ["--samples", "10000000000", "--scorer", "metric", "--out", str(tmp_path / "x")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)  # it hung
    assert (
        result.returncode == 2 and "10,000,000 at most" in result.stderr and "Traceback" not in result.stderr
    )
    assert not (tmp_path / "x").exists()


# -------------------------------------------------------------------------------- chunks prove it
def metric_request(capsule, samples: int = 12, chunk: int = 4, seed: int = 7) -> DatasetRequest:
    return capsule_metric_request(capsule, samples=samples, chunk_size=chunk, seed=seed)


def test_a_manifest_copied_over_other_chunks_makes_every_reader_refuse_them(capsule, tmp_path) -> None:
    body = DatasetFolder(tmp_path / "body")
    build_dataset(body, metric_request(capsule, samples=12, chunk=4))
    other = DatasetFolder(tmp_path / "other")
    build_dataset(other, metric_request(capsule, samples=8, chunk=8, seed=1))
    body.manifest_path.write_text(other.manifest_path.read_text())  # the manifest of another dataset
    problems = body.problems()
    assert len(problems) == 3 and all(
        "does not match the manifest" in line or "past" in line for line in problems
    )
    with pytest.raises(DatasetError, match="belong|past its last chunk"):
        body.load()
    result = subprocess.run(
        [sys.executable, "-m", "semantify_engine.cli.main", "dataset", "info", str(body.folder), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and json.loads(result.stdout)["problems"] == problems
    assert "warning: chunk-000000.npz" in result.stderr
    command = [sys.executable, "-m", "semantify_engine.cli.main", "mapper", "train", str(body.folder)]
    command += ["--descriptors", "height", "--out", str(tmp_path / "m.npz")]
    train = subprocess.run(command, capture_output=True, text=True, check=False)
    assert train.returncode == 2 and (
        "does not belong" in train.stderr or "past its last chunk" in train.stderr
    )
    assert not (tmp_path / "m.npz").exists()


def test_a_chunk_holding_another_chunks_samples_is_rebuilt_not_counted(capsule, tmp_path) -> None:
    reference = DatasetFolder(tmp_path / "reference")
    build_dataset(reference, metric_request(capsule))
    folder = DatasetFolder(tmp_path / "data")
    build_dataset(folder, metric_request(capsule))
    folder.chunk_path(2).write_bytes(folder.chunk_path(1).read_bytes())  # chunk 1's samples under 2's name
    folder.chunk_path(0).write_bytes(folder.chunk_path(0).read_bytes()[:200])  # cut short
    assert folder.present_chunks() == [1] and set(folder.damaged_chunks()) == {0, 2}
    report = build_dataset(folder, metric_request(capsule))
    assert (report.built_chunks, report.skipped_chunks) == (2, 1)
    assert folder.problems() == []
    for key, value in reference.load().items():
        np.testing.assert_array_equal(folder.load()[key], value)


def test_a_stray_chunk_past_the_end_is_refused_by_readers_and_named_by_info(capsule, tmp_path) -> None:
    folder = DatasetFolder(tmp_path / "data")
    build_dataset(folder, metric_request(capsule))
    folder.chunk_path(99).write_bytes(folder.chunk_path(0).read_bytes())
    with pytest.raises(DatasetError, match=r"chunk-000099.npz, past its last chunk \(2\)"):
        folder.load()
    assert folder.problems() == ["chunk-000099.npz: past the last chunk (2)"]


def test_merge_refuses_other_settings_damaged_chunks_and_conflicting_copies(capsule, tmp_path) -> None:
    shards = [DatasetFolder(tmp_path / f"shard{i}") for i in range(2)]
    for index, shard in enumerate(shards):
        build_dataset(shard, metric_request(capsule), Shard(index, 2))
    other_seed = DatasetFolder(tmp_path / "seed")
    build_dataset(other_seed, metric_request(capsule, seed=8), Shard(1, 2))
    with pytest.raises(DatasetError, match=r"other settings.*seed"):
        merge_datasets(tmp_path / "m1", [shards[0].folder, other_seed.folder])
    duplicate = DatasetFolder(tmp_path / "duplicate")
    build_dataset(duplicate, metric_request(capsule), Shard(0, 2))
    arrays = duplicate.read_chunk(0)
    arrays["metrics"] = arrays["metrics"] + 0.01  # a copy of chunk 0 that disagrees
    duplicate.write_chunk(0, arrays)
    with pytest.raises(DatasetError, match="two different copies of chunk 0"):
        merge_datasets(tmp_path / "m2", [shards[0].folder, duplicate.folder, shards[1].folder])
    shards[1].chunk_path(1).write_bytes(b"not a chunk")
    with pytest.raises(DatasetError, match=r"chunk-000001.npz cannot be merged.*Rebuild that shard"):
        merge_datasets(tmp_path / "m3", [shards[0].folder, shards[1].folder])
    assert not (tmp_path / "m3").exists() and not (tmp_path / "m2").exists()
    build_dataset(shards[1], metric_request(capsule), Shard(1, 2))  # rebuilds the damaged chunk
    merged = merge_datasets(tmp_path / "m4", [shards[0].folder, shards[1].folder, shards[0].folder])
    assert merged.missing_chunks() == [] and merged.problems() == []


@pytest.mark.parametrize(
    "manifest",
    ['["a", "list"]', '{"format": "semantify-dataset", "format_version": "abc"}', "null",
     '{"format": "semantify-dataset", "format_version": 1, "settings": {"samples": -3, "chunk_size": 4}}'],
)  # fmt: skip
def test_a_manifest_of_the_wrong_shape_is_refused_in_one_line(tmp_path, manifest: str) -> None:
    folder = DatasetFolder(tmp_path / "data")
    folder.folder.mkdir()
    folder.manifest_path.write_text(manifest)
    with pytest.raises(DatasetError) as caught:
        folder.read_manifest()
    assert str(folder.manifest_path) in str(caught.value) and "\n" not in str(caught.value)


def test_an_out_folder_that_is_a_file_is_refused(capsule, tmp_path) -> None:
    (tmp_path / "taken").write_text("")
    with pytest.raises(DatasetError, match="is a file, not a folder"):
        build_dataset(DatasetFolder(tmp_path / "taken"), metric_request(capsule))
    with pytest.raises(SemantifyError):
        merge_datasets(tmp_path / "taken", [tmp_path / "none"])


def test_bank_samples_are_source_bodies_with_their_exact_settings(tmp_path) -> None:
    """--scheme bank draws source bodies as they are: coefficients and the shape settings anny made them
    from, not the regressor's reading of them (which is off by its error, 0.85-0.997 R² on the bodies)."""
    from support.models import banked_capsule

    model = banked_capsule()
    plan = SamplingPlan.for_model(model, seed=4, scheme="bank")
    request = DatasetRequest(model_spec="banked", model=model, samples=40, plan=plan, views=(), chunk_size=16)
    folder = DatasetFolder(tmp_path / "bank")
    build_dataset(folder, request)
    data = folder.load()
    rows = bank_rows(model, plan, range(40))
    np.testing.assert_array_equal(data["coefficients"], model.bank.coefficients[rows].astype(np.float32))
    columns = [model.bank.setting_names.index(name) for name in request.attribute_settings()["names"]]
    exact = model.bank.settings[rows][:, columns]
    np.testing.assert_allclose(data["attributes"], exact, rtol=0, atol=1e-6)
    names = request.attribute_settings()["names"]
    read = model.attributes.predict(data["coefficients"])[:, [model.attributes.names.index(n) for n in names]]
    assert np.abs(read - data["attributes"]).max() > 1e-3, "the regressor alone differs: the test can tell"
    assert folder.read_manifest()["settings"]["attributes"]["source"] == "the bank's exact shape settings"


def test_settings_samples_are_the_bank_bodies_without_detail_with_the_same_exact_settings(tmp_path) -> None:
    from support.models import banked_capsule

    model = banked_capsule()
    bank_plan = SamplingPlan.for_model(model, seed=4, scheme="bank")
    settings_plan = SamplingPlan.for_model(model, seed=4, scheme="settings")
    assert settings_plan.components == model.component_count
    request = DatasetRequest(
        model_spec="banked", model=model, samples=24, plan=settings_plan, views=(), chunk_size=16
    )
    folder = DatasetFolder(tmp_path / "settings")
    build_dataset(folder, request)
    data = folder.load()
    rows = bank_rows(model, settings_plan, range(24))
    np.testing.assert_array_equal(rows, bank_rows(model, bank_plan, range(24)))
    np.testing.assert_array_equal(data["coefficients"], model.bank.smooth[rows])
    assert not np.allclose(data["coefficients"], model.bank.coefficients[rows])
    columns = [model.bank.setting_names.index(name) for name in request.attribute_settings()["names"]]
    np.testing.assert_allclose(data["attributes"], model.bank.settings[rows][:, columns], rtol=0, atol=1e-6)
    assert folder.read_manifest()["settings"]["attributes"]["source"] == "the bank's exact shape settings"
    without = replace(model, bank=replace(model.bank, smooth=None))
    with pytest.raises(SemantifyError, match="no smooth bank bodies"):
        SamplingPlan.for_model(without, scheme="settings")


def test_a_build_samples_smooth_bodies_for_attribute_sliders_alone() -> None:
    from support.models import banked_capsule

    from semantify_engine.dataset.sampling import scheme_for_build

    model = banked_capsule()
    assert scheme_for_build(model, words=False) == "settings"
    assert scheme_for_build(model, words=False, forced=("gender", "height")) == "settings"
    assert scheme_for_build(model, words=True) == "bank", "renders for words keep the bodies' detail"
    assert scheme_for_build(model, words=False, forced=("height", "waist")) == "bank", "girths need detail"
    assert scheme_for_build(replace(model, bank=replace(model.bank, smooth=None)), words=False) == "bank"
    assert scheme_for_build(make_capsule_model(), words=False) == "uniform"


def test_a_chunk_proof_binds_its_index(capsule, tmp_path) -> None:
    """A chunk whose arrays are right for index 0 but whose proof was made for index 1 does not belong:
    the proof is a digest of the settings *and* the index, not of the settings alone."""
    from semantify_engine.dataset.store import PROOF, chunk_proof

    folder = DatasetFolder(tmp_path / "data")
    build_dataset(folder, metric_request(capsule))
    settings = folder.read_manifest()["settings"]
    arrays = folder.read_chunk(0)
    assert chunk_proof(settings, 0) != chunk_proof(settings, 1)
    np.savez(folder.chunk_path(0), **arrays, **{PROOF: np.array(chunk_proof(settings, 1))})
    assert list(folder.damaged_chunks(settings)) == [0]
    with pytest.raises(DatasetError, match="chunk-000000.npz"):
        folder.load()
