"""Background jobs: real ``semantify`` processes followed without blocking, cancelled, and their results.

This is what the Blender add-on's Build Mapper and Add Word run (their modal operator only adds a timer
around it, which needs Blender's event loop): so the process handling is tested here for real, with real
subprocesses, outside Blender.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support.clip import capsule_clip_request

from semantify_engine.cli.background import BackgroundJob, JobCancelled, JobError, missing_modules
from semantify_engine.cli.progress import JSON_PREFIX, parse_progress_line, progress_bar
from semantify_engine.cli.worker import Worker
from semantify_engine.mapper import load_mapper, save_mapper
from semantify_engine.mapper.defaults import DEFAULT_MAPPER_DIR, default_mappers, default_mappers_for
from semantify_engine.models import load
from semantify_engine.pipeline import DEFAULT_ATTRIBUTE_SLIDERS

PYTHON = sys.executable
WORKER = Worker("python", PYTHON, "the test's Python")


def metric_build(samples: int, out: Path) -> list[str]:
    options = ["--scorer", "metric", "--samples", str(samples), "--no-evaluate", "--out", str(out)]
    return ["build", "--model", "anny-body", *options]


def follow(job: BackgroundJob, timeout: float = 120.0) -> list:
    """Poll like the add-on's timer does, collecting every distinct progress seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        progress = job.poll()
        if not seen or progress != seen[-1]:
            seen.append(progress)
        if not progress.running:
            return seen
        assert time.monotonic() < deadline, f"job still running after {timeout} s: {seen[-1]}"
        time.sleep(0.05)


# ------------------------------------------------------------------------------------ progress lines
def test_json_progress_lines_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMANTIFY_PROGRESS", "json")
    stream = io.StringIO()
    with contextlib.redirect_stderr(stream), progress_bar(10, "training mapper", unit="epoch") as bar:
        for _ in range(10):
            bar.set_postfix({"train_mse": "0.5"}, refresh=False)
            bar.update(1)
    records = [parse_progress_line(line) for line in stream.getvalue().splitlines()]
    assert records and all(record is not None for record in records)
    assert records[-1].done == 10 and records[-1].total == 10 and records[-1].fraction == 1.0
    assert records[0].task == "training mapper" and records[0].unit == "epoch"
    for line in ("", "1/4 dataset", JSON_PREFIX + "{not json", JSON_PREFIX + '{"task": "x"}'):
        assert parse_progress_line(line) is None


def test_plain_progress_takes_a_postfix_like_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blender's Python has no tqdm; the epoch bar's set_postfix must work on the plain fallback too."""
    from semantify_engine.cli.progress import _PlainProgress

    bar = _PlainProgress(3, "training mapper", "epoch")
    bar.set_postfix({"train_mse": "0.1000"}, refresh=False)
    stream = io.StringIO()
    with contextlib.redirect_stderr(stream):
        bar.update(3)
    assert "3/3 epochs" in stream.getvalue() and "train_mse=0.1000" in stream.getvalue()


# ------------------------------------------------------------------------------------- modules check
def test_missing_modules_are_found_without_importing_them(tmp_path: Path) -> None:
    assert missing_modules(PYTHON, ("numpy", "semantify_no_such_module")) == ["semantify_no_such_module"]
    with pytest.raises(JobError, match="cannot be run"):
        missing_modules(str(tmp_path / "no-python"), ("numpy",))


# --------------------------------------------------------------------------------------- real jobs
def test_build_job_shows_progress_and_finishes_with_a_mapper(tmp_path: Path) -> None:
    out = tmp_path / "build"
    job = BackgroundJob(
        WORKER,
        metric_build(128, out),
        out / "mapper.npz",
        label="build",
    )
    with pytest.raises(JobError, match="not started"):
        job.result()
    job.start()
    seen = follow(job)
    fractions = [p.fraction for p in seen if p.fraction is not None]
    assert fractions == sorted(fractions), "progress never goes back"
    messages = " | ".join(p.message for p in seen)
    assert "dataset anny-body" in messages and "training mapper" in messages
    assert any(0.0 < f < 1.0 for f in fractions) and seen[-1].fraction == 1.0
    assert seen[-1].message == "finished" and job.returncode == 0
    path = job.result()
    assert path == out / "mapper.npz"
    assert load_mapper(path).descriptor_names == DEFAULT_ATTRIBUTE_SLIDERS
    assert job.summary()["mapper"] == str(path)


@pytest.fixture(params=["sigint-default", "sigint-ignored"])
def parent_sigint(request):
    """The test process as a worker's parent: as started from a terminal, or with SIGINT ignored.

    A process started from a shell's ``&``, ``nohup`` or some desktop launchers ignores SIGINT and its
    children inherit that; the worker must still hear the cancel (else it is killed after the grace time
    and its temporary file stays).
    """
    before = signal.getsignal(signal.SIGINT)
    if request.param == "sigint-ignored":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    yield request.param
    signal.signal(signal.SIGINT, before)


def test_cancel_ends_the_process_group_and_leaves_no_torn_file(tmp_path: Path, parent_sigint) -> None:
    out = tmp_path / "build"
    job = BackgroundJob(
        WORKER,
        metric_build(50000, out),
        out / "mapper.npz",
        label="build",
    )
    job.start()
    deadline = time.monotonic() + 60
    while not (job.poll().fraction or 0.0) > 0.0:  # cancel in the middle of the dataset stage
        assert job.running and time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    job.cancel()
    assert time.monotonic() - started < 6.0
    assert not job.running
    assert job.returncode == 130, "the command unwound from the interrupt (it was not killed)"
    with pytest.raises(ProcessLookupError):
        os.killpg(job.process.pid, 0)  # neither the child nor anything it started is left
    assert job.poll().message == "cancelled"
    with pytest.raises(JobCancelled):
        job.result()
    assert not (out / "mapper.npz").exists()
    assert not list(out.rglob("*.partial")), "an interrupted atomic write removes its temporary file"
    assert list((out / "dataset").glob("**/*.npz")), "finished chunks stay: building again resumes them"


def test_a_failing_command_reports_its_own_error_line(tmp_path: Path) -> None:
    job = BackgroundJob(
        WORKER, ["mapper", "add-word", str(tmp_path / "none.npz"), "tall"], tmp_path / "out.npz", label="x"
    )
    job.start()
    assert job.wait(60) == 2
    with pytest.raises(JobError, match=r"Mapper file .*none.npz does not exist\.$"):
        job.result()
    with pytest.raises(JobError, match="Could not start"):
        BackgroundJob(
            Worker("python", str(tmp_path / "no-python"), "a test"), ["models"], tmp_path / "x"
        ).start()


@pytest.mark.blender
def test_add_word_job_retrains_with_the_word_in_a_real_process(capsule, tiny_spec, tmp_path: Path) -> None:
    """add-word on a tiny CLIP dataset (random tiny CLIP: mechanics only), then refusals say how to fix."""
    pytest.importorskip("open_clip")
    from semantify_engine.dataset.builder import build_dataset
    from semantify_engine.dataset.store import DatasetFolder
    from semantify_engine.mapper.from_dataset import train_from_dataset
    from semantify_engine.mapper.settings import TrainingSettings

    folder = DatasetFolder(tmp_path / "data")
    build_dataset(
        folder,
        capsule_clip_request(capsule, tiny_spec, ("fat", "tall"), samples=16, views="front"),
    )
    settings = TrainingSettings(epochs=3, hidden=(16,), batch_size=8)
    mapper, _ = train_from_dataset(folder.folder, ["fat", "tall"], model=capsule, settings=settings)
    source = save_mapper(mapper, tmp_path / "words.npz")
    out = tmp_path / "more.npz"
    job = BackgroundJob(
        WORKER,
        ["mapper", "add-word", str(source), "broad shoulders", "--out", str(out)],
        out,
        environment={"HF_HUB_OFFLINE": "1"},
        label="add word",
    )
    job.start()
    seen = follow(job)
    assert seen[-1].message == "finished", job.error_message()
    assert any("retraining mapper" in p.message for p in seen)
    grown = load_mapper(job.result())
    assert grown.descriptor_names == ("fat", "tall", "broad shoulders")
    assert grown.descriptors[:2] == mapper.descriptors  # the old sliders keep their ranges


# ---------------------------------------------------------------------------------- default mappers
def test_shipped_mappers_match_the_bundled_models_and_record_no_dataset_folder() -> None:
    shipped = {entry.name: entry for entry in default_mappers()}
    bodies = ("anny-body", "anny-body-male", "anny-body-female")
    assert {f"{body}-{kind}" for body in bodies for kind in ("attributes", "measurements")} <= set(shipped)
    for entry in shipped.values():
        model = load(entry.model_name)
        assert entry in default_mappers_for(model.checksum())
        mapper = load_mapper(entry.path)  # a complete file: its own checksum holds
        assert mapper.model_info["checksum"] == model.checksum()
        dataset = mapper.metadata["dataset"]
        assert (
            dataset["folder"] is None and dataset["shipped"] is True and "--scorer both" in dataset["rebuild"]
        )
        assert entry.path.stat().st_size < 2_000_000
        values = mapper.defaults
        assert np.all(np.isfinite(model.vertices(mapper.coefficients(values))))
    body = shipped["anny-body-measurements"]
    assert body.descriptors == ("height", "chest", "waist", "hips") and body.kind == "measurements"
    attributes = shipped["anny-body-attributes"]
    assert (
        attributes.descriptors == DEFAULT_ATTRIBUTE_SLIDERS
        and attributes.kind == "attributes and measurements"
    )
    assert default_mappers_for("anny-body") == [attributes, body]  # a person may type the name
    assert default_mappers_for("0000000000000000") == []
    assert DEFAULT_MAPPER_DIR.name == "mappers"


def test_add_word_on_a_shipped_mapper_says_how_to_get_its_dataset(tmp_path: Path) -> None:
    from semantify_engine.mapper import MapperError
    from semantify_engine.mapper.add_word import add_word

    shipped = DEFAULT_MAPPER_DIR / "anny-body-measurements.npz"
    with pytest.raises(MapperError, match=r"without its dataset.*semantify dataset build --model anny-body"):
        add_word(shipped, None, "muscular", tmp_path / "out.npz")
