"""Dataset builds on a local Ray cluster: the same folder as a local build, through killed workers and a
killed driver; a worker with another model file is refused by name.

Each test starts a real Ray instance on this machine (2 CPUs) and real workers that import Blender's
module, render and run the tiny random CLIP, so these are the slowest dataset tests (about 15 s each).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

import contextlib

from semantify_engine.cli.main import main as cli_main
from semantify_engine.dataset.builder import ClipScoring, DatasetRequest, build_dataset
from semantify_engine.dataset.ray_build import RayOptions, build_dataset_on_ray
from semantify_engine.dataset.sampling import SamplingPlan
from semantify_engine.dataset.store import DatasetError, DatasetFolder
from semantify_engine.models import load, save_model
from semantify_engine.render.views import parse_views

WORDS = ("tall", "short", "wide")
SAMPLES, CHUNK = 64, 8
TWO_WORKERS = RayOptions(workers=2)


@pytest.fixture(scope="module")
def model_file(capsule, tmp_path_factory) -> Path:
    return save_model(capsule, tmp_path_factory.mktemp("ray-model") / "capsule.npz")


def request_for(model_file: Path, tiny_spec, engine: str = "auto") -> DatasetRequest:
    """What ``dataset build --seed 3 --components 3`` asks for (the driver-kill test runs the command)."""
    model = load(model_file)
    return DatasetRequest(
        model_spec=str(model_file),
        model=model,
        samples=SAMPLES,
        plan=SamplingPlan.for_model(model, seed=3, components=3),
        views=parse_views("front,side"),
        clip=ClipScoring(spec=tiny_spec, template="a photo of a {} person", words=WORDS, engine=engine),
        metrics=True,
        chunk_size=CHUNK,
    )


@pytest.fixture(scope="module")
def local_build(model_file, tiny_spec, tmp_path_factory) -> DatasetFolder:
    """The single-machine build every Ray build must equal."""
    folder = DatasetFolder(tmp_path_factory.mktemp("ray-local") / "data")
    build_dataset(folder, request_for(model_file, tiny_spec))
    return folder


def info(folder: DatasetFolder) -> dict:
    """``semantify dataset info --json`` in its own process, as a user compares datasets from the shell."""
    shell = [
        sys.executable,
        "-m",
        "semantify_engine.cli.main",
        "dataset",
        "info",
        str(folder.folder),
        "--json",
    ]
    return json.loads(subprocess.run(shell, check=True, capture_output=True, text=True).stdout)


def same_dataset(built: DatasetFolder, reference: DatasetFolder) -> None:
    ours, theirs = info(built), info(reference)
    for key in ("samples", "chunks", "coefficients_checksum", "scores_checksum", "clip_engine"):
        assert ours[key] == theirs[key], key
    assert ours["problems"] == []
    for name in ("embeddings", "metrics", "coefficients"):
        np.testing.assert_array_equal(built.load()[name], reference.load()[name])


def test_a_ray_build_writes_the_folder_a_local_build_writes(local_build, model_file, tiny_spec, tmp_path):
    folder = DatasetFolder(tmp_path / "ray")
    seen: list[int] = []
    report = build_dataset_on_ray(
        folder, request_for(model_file, tiny_spec), TWO_WORKERS, progress=seen.append
    )
    assert (report.built_chunks, report.built_samples, sum(seen)) == (SAMPLES // CHUNK, SAMPLES, SAMPLES)
    same_dataset(folder, local_build)
    chosen = local_build.read_manifest()["settings"]["clip"].get("engine", "torch")
    checks = folder.read_manifest()["records"]["clip_engine"]
    assert [(check["requested"], check["engine"]) for check in checks] == [
        ("auto", chosen),
        (chosen, chosen),
    ], "the first worker chooses the engine as a local build does; the other checks that same engine"
    assert checks[0]["worker"] != checks[1]["worker"]


def test_tasks_mode_writes_the_same_folder(local_build, model_file, tiny_spec, tmp_path) -> None:
    folder = DatasetFolder(tmp_path / "tasks")
    build_dataset_on_ray(folder, request_for(model_file, tiny_spec), RayOptions(workers=2, mode="tasks"))
    same_dataset(folder, local_build)


def test_a_worker_killed_mid_build_changes_nothing(local_build, model_file, tiny_spec, tmp_path) -> None:
    folder = DatasetFolder(tmp_path / "killed-worker")
    workers: list[int] = []
    killed: list[int] = []

    def kill_a_busy_worker(samples: int) -> None:
        if not killed:  # one chunk is written; the second worker is mid-chunk with another queued
            os.kill(workers[1], signal.SIGKILL)
            killed.append(workers[1])

    build_dataset_on_ray(
        folder,
        request_for(model_file, tiny_spec),
        TWO_WORKERS,
        progress=kill_a_busy_worker,
        on_workers=workers.extend,
    )
    assert killed and not _alive(killed[0])
    same_dataset(folder, local_build)


def test_a_killed_driver_resumes_to_the_same_folder(local_build, model_file, tiny_weights, tmp_path) -> None:
    out = tmp_path / "killed-driver"
    command = [
        sys.executable, "-m", "semantify_engine.cli.main", "dataset", "build", "--model", str(model_file),
        "--samples", str(SAMPLES), "--chunk-size", str(CHUNK), "--seed", "3", "--components", "3",
        "--scorer", "both", "--clip", tiny_weights.stem, "--pretrained", str(tiny_weights),
        "--words", ",".join(WORDS), "--template", "a photo of a {} person", "--out", str(out),
        "--ray", "--ray-workers", "2",
    ]  # fmt: skip
    driver = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 180
        while len(list((out / "chunks").glob("chunk-*.npz"))) < 2:
            assert driver.poll() is None, "the driver ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        _end_group(driver.pid)
    written = len(list((out / "chunks").glob("chunk-*.npz")))
    assert written < SAMPLES // CHUNK, "killed mid-build"
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{written} chunks already there" in rerun.stdout
    same_dataset(DatasetFolder(out), local_build)


def test_a_worker_with_another_model_file_is_refused_by_name(capsule, tiny_spec, tmp_path) -> None:
    from dataclasses import replace

    path = save_model(capsule, tmp_path / "capsule.npz")
    request = request_for(path, tiny_spec)
    other = replace(capsule, template=capsule.template * 1.01)  # what another node has under that name
    save_model(other, path)
    folder = DatasetFolder(tmp_path / "data")
    for scored in (request, replace(request, clip=None)):  # with CLIP, and measurements only
        with pytest.raises(DatasetError, match=r"Ray worker on .*capsule\.npz.* checksum .*not the driver's"):
            build_dataset_on_ray(folder, scored, RayOptions(workers=1))
        assert not folder.exists(), "nothing was written"


def test_ray_options_refuse_bad_values_in_one_line(tmp_path) -> None:
    from support.models import make_capsule_model

    from semantify_engine.errors import SemantifyError
    from semantify_engine.scoring.clip import ClipSpec

    with pytest.raises(SemantifyError, match="ray_workers must be a whole number > 0, got 0"):
        RayOptions(workers=0)
    with pytest.raises(SemantifyError, match="Ray mode must be one of actors, tasks"):
        RayOptions(mode="threads")
    assert cli_main(["dataset", "build", "--samples", "8", "--out", "x", "--ray-workers", "2"]) == 2
    path = save_model(make_capsule_model(), tmp_path / "capsule.npz")
    random = request_for(path, ClipSpec(pretrained=None))  # random weights: every process draws its own
    with pytest.raises(DatasetError, match=r"random weights \(none\) would be drawn anew in every worker"):
        build_dataset_on_ray(DatasetFolder(tmp_path / "data"), random, TWO_WORKERS)
    assert not (tmp_path / "data").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _end_group(pid: int) -> None:
    """The killed driver's Ray instance (its own processes) goes too, as it would with its machine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
