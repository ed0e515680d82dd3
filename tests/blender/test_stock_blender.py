"""Word sliders, photo fits and CLIP weights in a stock Blender, with the platform extension installed.

Where the artist is: a virtual environment holding only what Blender ships (``bpy==5.0.1``, ``numpy<2``;
:mod:`stock_env`), never the project's ``.venv``. The platform zip is built by the project's own tool
(``tools/platform_extension.py``, Blender's builder and validator), installed from disk into that
environment's Blender and enabled; then ``stock_blender_driver.py`` does in it what an artist does in the
sidebar and the preferences, and these tests check what it saw. CLIP is a small randomly initialised
open_clip model given the way a user gives a local weights file (mechanics only: no pretrained weights
can be had here).

What stands in for what cannot be had here:
- a Blender executable: ``tests/fake-blender`` takes the arguments a job passes to Blender and runs the
  script with the stock environment's Python in a fresh, empty Blender user folder (no extension
  enabled, no wheel folder on the path, ``PYTHONPATH`` ignored), as a freshly started Blender would;
  it exercises the Blender-child branch (``$SEMANTIFY_BLENDER``), which an artist's Blender takes with
  ``bpy.app.binary_path``;
- the Hugging Face Hub: :mod:`fake_hub` on 127.0.0.1 (``HF_ENDPOINT``), serving the tiny model as an
  ``hf-hub:`` repository, for Download's success, cancel and failure paths.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from support import SUPPORT
from support.blender import run_blender_ext
from support.clip import TINY_CLIP_CONFIG, TINY_CLIP_NAME
from support.fake_hub import fake_hub
from support.stock_env import WORDS, build_platform_zip, drive, stock_python

from semantify_engine.mapper import load_mapper

pytestmark = pytest.mark.slow

FAKE_BLENDER = SUPPORT / "fake-blender"
MODULE_DIR = ("extensions", "user_default", "semantify")
HUB_REPO = "semantify-test/tiny-clip"


@pytest.fixture(scope="session")
def stock(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The stock environment with the platform zip installed from disk into a fresh user folder."""
    python = stock_python()
    platform_zip = build_platform_zip(tmp_path_factory.mktemp("platform"))
    state = SimpleNamespace(python=python, zip=platform_zip, user=tmp_path_factory.mktemp("stock-user"))
    state.install = drive(state, "install", zip=str(platform_zip))
    return state


@pytest.fixture(scope="session")
def tiny_hub_files(tiny_weights: Path) -> dict[str, dict[str, bytes]]:
    """The tiny model as an ``hf-hub:`` repository: open_clip's config file and the weights."""
    config = {"model_cfg": TINY_CLIP_CONFIG, "preprocess_cfg": {}}
    return {
        HUB_REPO: {
            "open_clip_config.json": json.dumps(config).encode(),
            "open_clip_pytorch_model.bin": tiny_weights.read_bytes(),
        }
    }


def tiny_preferences(tiny_weights: Path) -> dict[str, str]:
    """The preferences a user sets for a local weights file (the config lies beside it)."""
    return {"clip_model": TINY_CLIP_NAME, "clip_pretrained": str(tiny_weights)}


def photo(path: Path) -> Path:
    from support.fitting import photo_pixels, write_png

    return write_png(path, photo_pixels(height=96, width=64))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


def cache_files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


# ------------------------------------------------------------------------------------------ the zip
def test_the_platform_zip_passes_blenders_validator_and_carries_the_clip_engine_but_not_numpy(stock) -> None:
    result = run_blender_ext("validate", str(stock.zip))
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(stock.zip) as archive:
        names = archive.namelist()
        manifest = archive.read("blender_manifest.toml").decode()
    wheels = [name.split("/")[-1] for name in names if name.startswith("wheels/")]
    distributions = {wheel.split("-")[0].lower() for wheel in wheels}
    assert {"torch", "torchvision", "open_clip_torch", "scikit_learn", "scipy", "pillow"} <= distributions
    assert "numpy" not in distributions  # Blender ships it; a second one would shadow Blender's
    assert any(wheel.startswith("torch-2.13.0+cpu-") for wheel in wheels)  # the CPU build, not CUDA
    assert 'platforms = ["linux-x64"]' in manifest
    assert 'blender_version_max = "5.1.0"' in manifest  # its cp311 wheels load in Blender 4.2 to 5.0
    for wheel in wheels:  # every wheel the zip carries is listed for Blender to install
        assert f"./wheels/{wheel}" in manifest
    assert "semantify_engine/cli/blender_job.py" in names
    print(f"platform zip {stock.zip.name}: {stock.zip.stat().st_size / 1e6:.1f} MB, {len(wheels)} wheels")


def test_it_installs_offline_from_disk_and_enabling_imports_no_torch(stock) -> None:
    assert stock.install["result"] == ["FINISHED"]
    assert stock.install["heavy_at_enable"] == []  # the slider path stays numpy-only
    install = stock.install
    print(
        f"platform zip: install from disk {install['install_s']:.1f} s, first enable (wheels unpacked) "
        f"{install['enable_s']:.1f} s, whole fresh process {install['wall_s']:.1f} s"
    )


def test_torch_open_clip_and_sklearn_import_in_the_stock_blender_from_the_extensions_wheels(stock) -> None:
    record = drive(stock, "imports")
    wheel_dir = record["wheel_dir"]
    assert Path(wheel_dir).is_relative_to(stock.user)
    for name, file in record["files"].items():
        assert Path(file).is_relative_to(wheel_dir), (name, file)
    assert Path(record["engine"]).is_relative_to(stock.user / Path(*MODULE_DIR))  # the bundled engine
    assert record["engine_missing"] == [] and record["heavy_at_enable"] == []
    assert "this Python: Blender runs as a Python module" in record["worker"]


# ------------------------------------------------------------------------- what a new user meets
def test_the_plain_zip_gives_measurement_sliders_and_the_panel_names_the_missing_clip_engine(
    stock, extension_zip, tmp_path
) -> None:
    plain = SimpleNamespace(python=stock.python, user=tmp_path / "user")
    plain.user.mkdir()
    assert drive(plain, "install", zip=str(extension_zip))["result"] == ["FINISHED"]
    record = drive(plain, "what_is_missing", cache_dir=str(tmp_path / "cache"), metric_build=True)
    assert record["slider_moves_the_shape"]
    assert {"torch", "open_clip", "sklearn"} <= set(record["engine_missing"])
    panel = record["build_panel"]
    assert "extensions.package_install_files" in panel["operators"]  # Blender's own Install from Disk
    assert "Word sliders need the CLIP engine" in panel["labels"]
    assert "semantify.download_weights" not in panel["operators"]  # one thing at a time: the engine first
    words = record["words"]
    assert words["outcome"] == "ERROR" and "semantify-0.1.0-linux_x64.zip" in words["message"]
    assert "Install from Disk" in words["message"] and "needs numpy, torch, and" not in words["message"]
    metric = record["metric"]  # the shipped measurement sliders work; training new ones is torch's work
    assert metric["outcome"] == "ERROR" and "semantify-0.1.0-linux_x64.zip" in metric["message"]
    assert [name for name, _ in metric["sliders"]] == ["height", "chest", "waist", "hips"]  # still there


def test_with_the_clip_engine_the_panel_offers_download_and_a_local_file_for_missing_weights(
    stock, tmp_path
) -> None:
    record = drive(stock, "what_is_missing", cache_dir=str(tmp_path / "cache"))  # openai tag, offline
    assert record["engine_missing"] == [] and record["weights"]["present"] is False
    panel = record["build_panel"]
    assert {"semantify.download_weights", "semantify.use_local_weights"} <= set(panel["operators"])
    assert "extensions.package_install_files" not in panel["operators"]
    words = record["words"]
    assert words["outcome"] == "ERROR" and "No weights for CLIP model 'ViT-B-32'" in words["message"]


# -------------------------------------------------------------------------------- word features
def test_build_mapper_with_words_add_word_fit_text_and_photo_in_a_stock_blender(
    stock, tiny_weights, tmp_path
) -> None:
    """``binary_path`` is empty in Blender as a module: the jobs run this (stock) Python."""
    record = drive(
        stock,
        "words",
        **tiny_preferences(tiny_weights),
        cache_dir=str(tmp_path / "cache"),
        samples=64,
        scorer="clip",
        words=WORDS,
        photo=str(photo(tmp_path / "person.png")),
    )
    assert record["needs"]["ready"] and record["needs"]["weights"]["kind"] == "file"
    build = record["build"]
    assert build["outcome"] == "FINISHED", build["message"]
    assert build["sliders"] and all(kind == "word" for _, kind in build["sliders"])
    assert {name for name, _ in build["sliders"]} <= set(WORDS.split(","))
    assert build["worker"]["kind"] == "python" and build["worker"]["executable"] == str(stock.python)
    mapper = load_mapper(build["mapper"])
    assert mapper.metadata["scorers"]["clip"]["pretrained"] == str(tiny_weights)
    assert mapper.metadata["dataset"]["samples"] == 64
    add = record["add_word"]
    assert add["outcome"] == "FINISHED", add["message"]
    assert [name for name, _ in add["sliders"]] == [name for name, _ in build["sliders"]] + [
        "broad shoulders"
    ]
    assert add["kept"]  # the artist's shape is kept
    text = record["fit_text"]  # ranks the build's own cached renders against the prompt
    assert text["outcome"] == "FINISHED", text["message"]
    assert text["after"] != text["before"]
    fit = record["fit_photo"]
    assert fit["outcome"] == "FINISHED", fit["message"]
    assert fit["after"] != fit["before"] and "crop" in fit["notes"]
    print(f"Build Mapper, 64 samples, words, stock Blender: {build['seconds']:.1f} s")


def test_jobs_run_in_a_headless_blender_child_started_like_a_real_blender(
    stock, tiny_weights, tmp_path
) -> None:
    """The Blender-child branch, through the stand-in: nothing is prepared in the child but bpy."""
    log = tmp_path / "blender-arguments.txt"
    environment = {
        "SEMANTIFY_BLENDER": str(FAKE_BLENDER),
        "SEMANTIFY_STANDIN_PYTHON": str(stock.python),
        "SEMANTIFY_STANDIN_LOG": str(log),
    }
    record = drive(
        stock,
        "words",
        environment,
        **tiny_preferences(tiny_weights),
        cache_dir=str(tmp_path / "cache"),
        samples=64,
        scorer="clip",
        words=WORDS,
        more=False,
    )
    build = record["build"]
    assert build["outcome"] == "FINISHED", build["message"]
    assert build["sliders"] and all(kind == "word" for _, kind in build["sliders"])
    assert build["worker"]["kind"] == "blender" and build["worker"]["executable"] == str(FAKE_BLENDER)
    assert "$SEMANTIFY_BLENDER" in build["worker"]["describe"]
    arguments = log.read_text().splitlines()[1:]
    script = arguments[arguments.index("--python") + 1]
    assert Path(script).is_relative_to(stock.user / Path(*MODULE_DIR))  # the installed extension's engine
    assert arguments[:3] == ["--background", "--factory-startup", "-noaudio"]
    assert arguments[arguments.index("--") + 1] == "build" and "--scorer" in arguments


def test_blender_c_semantify_build_scores_with_clip_inside_the_stock_blender(
    stock, tiny_weights, tmp_path
) -> None:
    out = tmp_path / "out"
    clip = ["--clip", TINY_CLIP_NAME, "--pretrained", str(tiny_weights)]
    build = ["build", "--model", "anny-body", "--samples", "32", "--scorer", "clip", "--words", WORDS]
    record = drive(stock, "cli", commands=[[*build, *clip, "--no-evaluate", "--out", str(out)]])
    assert record["codes"] == [0]
    assert Path(record["torch_loaded_from"]).is_relative_to(stock.user)  # the extension's wheels
    mapper = load_mapper(out / "mapper.npz")
    assert mapper.descriptors and all(descriptor.kind == "word" for descriptor in mapper.descriptors)


# -------------------------------------------------------------------------------------- CLIP weights
def test_use_a_local_file_checks_it_loads_and_refuses_bad_files_keeping_the_preferences(
    stock, tiny_weights, tmp_path
) -> None:
    data = tiny_weights.read_bytes()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(data[: len(data) // 3])
    corrupt = tmp_path / "corrupt.bin"
    corrupt.write_bytes(os.urandom(4096))
    shutil.copy(tiny_weights.with_suffix(".json"), tmp_path / f"{TINY_CLIP_NAME}.json")  # config beside
    steps = [
        {"operator": "use_local_weights", "filepath": str(truncated), "architecture": TINY_CLIP_NAME},
        {"operator": "use_local_weights", "filepath": str(corrupt), "architecture": TINY_CLIP_NAME},
        {"operator": "use_local_weights", "filepath": str(tiny_weights), "architecture": "RN50"},
        {"operator": "use_local_weights", "filepath": str(tmp_path / "missing.bin"), "architecture": "RN50"},
        {"operator": "use_local_weights", "filepath": str(tiny_weights), "architecture": TINY_CLIP_NAME},
        {"operator": "check_weights"},
    ]
    record = drive(stock, "weights", steps=steps)
    truncated_step, corrupt_step, other_step, missing_step, good, check = record["steps"]
    for step in (truncated_step, corrupt_step, other_step, missing_step):
        assert step["outcome"] == "ERROR"
        assert (step["clip_model"], step["clip_pretrained"]) == ("ViT-B-32", "openai")  # unchanged
    assert "Could not load" in truncated_step["message"] and "Could not load" in corrupt_step["message"]
    assert "another architecture" in other_step["message"]
    assert "is not a file" in missing_step["message"]
    assert good["outcome"] == "FINISHED", good["message"]
    assert (good["clip_model"], good["clip_pretrained"]) == (TINY_CLIP_NAME, str(tiny_weights))
    assert good["status"]["present"] and good["status"]["location"] == str(tiny_weights)
    assert check["outcome"] == "FINISHED", check["message"]


def test_download_needs_online_access_and_says_so_when_the_network_fails(stock, tmp_path) -> None:
    cache = tmp_path / "cache"
    base = {"clip_model": "ViT-B-32", "clip_pretrained": f"hf-hub:{HUB_REPO}", "cache_dir": str(cache)}
    offline = drive(stock, "weights", **base, online=False, steps=[{"operator": "download_weights"}])
    (step,) = offline["steps"]
    assert not offline["online_access"] and step["outcome"] == "ERROR"
    assert "Allow Online Access" in step["message"] and "Use a Local File" in step["message"]
    unreachable = {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}", "HF_HUB_OFFLINE": None}
    record = drive(
        stock, "weights", unreachable, **base, online=True, steps=[{"operator": "download_weights"}]
    )
    (step,) = record["steps"]
    assert record["online_access"] and step["outcome"] == "ERROR"
    assert "cannot be reached" in step["message"]
    assert not step["status"]["present"] and step["status"]["downloadable"]
    assert cache_files(cache) == []  # nothing half-written


def test_download_fetches_the_weights_into_the_cache_all_or_nothing(stock, tiny_hub_files, tmp_path) -> None:
    def download(cache: Path, steps: list[dict], **hub_options) -> tuple[dict, list[str]]:
        with fake_hub(tiny_hub_files, **hub_options) as (endpoint, requests):
            record = drive(
                stock,
                "weights",
                {"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": None},
                clip_model="ViT-B-32",
                clip_pretrained=f"hf-hub:{HUB_REPO}",
                cache_dir=str(cache),
                online=True,
                steps=steps,
            )
        return record, requests

    broken_cache = tmp_path / "broken"
    record, _ = download(broken_cache, [{"operator": "download_weights"}], fail_after=256 * 1024)
    (step,) = record["steps"]
    assert step["outcome"] == "ERROR" and "nothing was kept" in step["message"]
    assert not [name for name in cache_files(broken_cache) if "blobs" in name or name.endswith(".bin")]
    cache = tmp_path / "cache"
    record, requests = download(cache, [{"operator": "download_weights"}, {"operator": "check_weights"}])
    download_step, check = record["steps"]
    assert download_step["outcome"] == "FINISHED", download_step["message"]
    assert download_step["status"]["present"]
    assert Path(download_step["status"]["location"]).is_relative_to(cache)
    assert check["outcome"] == "FINISHED", check["message"]
    assert any(request.startswith("GET ") and request.endswith(".bin") for request in requests)
    assert not [name for name in cache_files(cache) if ".semantify-download-" in name or "incomplete" in name]


def test_a_cancelled_download_leaves_nothing_in_the_cache(stock, tiny_hub_files, tmp_path) -> None:
    cache = tmp_path / "cache"
    # huggingface_hub reports progress per 10 MiB read: the body stalls just before its end, after the
    # first report and before the download can finish, however slow the machine is.
    weights = tiny_hub_files[HUB_REPO]["open_clip_pytorch_model.bin"]
    assert len(weights) > 10 * 2**20 + 256 * 1024, "too small for a progress report before the stall"
    with fake_hub(tiny_hub_files, stall_after=len(weights) - 256 * 1024) as (endpoint, _):
        record = drive(
            stock,
            "cancel_download",
            {"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": None},
            clip_model="ViT-B-32",
            clip_pretrained=f"hf-hub:{HUB_REPO}",
            cache_dir=str(cache),
        )
    assert record["result"] == ["CANCELLED"] and "bytes" in record["seen"]
    assert not [name for name in record["files"] if "blobs" in name or name.endswith(".bin")], record


# --------------------------------------------------------------------------------------- bad endings
def test_a_killed_or_crashing_worker_is_reported_and_the_scene_is_unchanged(stock, tmp_path) -> None:
    killed = drive(stock, "child_dies", kill=True, cache_dir=str(tmp_path / "cache"))
    assert killed["result"] == ["CANCELLED"] and killed["unchanged"]
    assert any("SIGKILL" in message and "ERROR" in message for message in killed["messages"]), killed
    crashing = tmp_path / "crashing-blender"
    crashing.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crashing.chmod(0o755)
    crashed = drive(stock, "child_dies", {"SEMANTIFY_BLENDER": str(crashing)}, cache_dir=str(tmp_path / "c2"))
    assert crashed["result"] == ["CANCELLED"] and crashed["unchanged"]
    assert any("SIGSEGV" in message for message in crashed["messages"]), crashed


def rewritten_zip(source: Path, target: Path, **manifest: str) -> Path:
    """``source`` with manifest keys replaced (``platforms = [...]``, ``blender_version_min = ...``)."""
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as out:
        for item in archive.infolist():
            data = archive.read(item)
            if item.filename == "blender_manifest.toml":
                lines = data.decode().splitlines()
                for key, value in manifest.items():
                    lines = [line for line in lines if not line.startswith(f"{key} =")]
                    lines.insert(1, f"{key} = {value}")
                data = "\n".join(lines).encode()
            out.writestr(item, data)
    return target


def test_a_zip_for_another_platform_or_a_newer_blender_is_refused(stock, extension_zip, tmp_path) -> None:
    """What the manifest's platforms and minimum version make Blender do (Blender 4.2+ reads both).

    Blender refuses with an error line and leaves the installed extension as it was, though its install
    operator still returns FINISHED; a Blender older than 4.2 has no extension system at all.
    """
    other = rewritten_zip(extension_zip, tmp_path / "semantify-windows_x64.zip", platforms='["windows-x64"]')
    newer = rewritten_zip(extension_zip, tmp_path / "semantify-newer.zip", blender_version_min='"9.0.0"')
    for path, refusal in (
        (other, "This platform (linux-x64) isn't one of (windows-x64)"),
        (newer, "doesn't meet the minimum supported version (9.0.0)"),
    ):
        record = drive(stock, "refuse", zip=str(path))
        assert refusal in record["output"] + record["message"], record["output"][-2000:]
        assert record["unchanged"]  # the installed platform extension is untouched
