"""CLIP weights on disk: status, download (all or nothing) and check, through ``semantify clip``.

The hub is :mod:`fake_hub` on 127.0.0.1 (``HF_ENDPOINT``): the real huggingface_hub download code runs
against it, serving the tests' tiny random model as an ``hf-hub:`` repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.clip import TINY_CLIP_CONFIG, TINY_CLIP_NAME
from support.fake_hub import fake_hub

REPO = "semantify-test/tiny-clip"


@pytest.fixture(scope="module")
def hub_files(tiny_weights: Path) -> dict[str, dict[str, bytes]]:
    config = {"model_cfg": TINY_CLIP_CONFIG, "preprocess_cfg": {}}
    weights = tiny_weights.read_bytes()
    return {
        REPO: {"open_clip_config.json": json.dumps(config).encode(), "open_clip_pytorch_model.bin": weights}
    }


def clip(*arguments: str, endpoint: str | None = None, cache: Path | None = None, **environment: str):
    env = {
        name: value for name, value in os.environ.items() if not name.startswith(("SEMANTIFY_CLIP", "HF_"))
    }
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    else:
        env["HF_HUB_OFFLINE"] = "1"
    if cache:
        env["SEMANTIFY_CLIP_CACHE_DIR"] = str(cache)
    env.update(environment)
    command = [sys.executable, "-m", "semantify_engine.cli.main", "clip", *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)


def files_in(folder: Path) -> list[str]:
    return sorted(
        str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file() or path.is_symlink()
    )


def test_download_puts_the_weights_where_open_clip_loads_them_offline(hub_files, tmp_path) -> None:
    cache = tmp_path / "cache"
    hub = f"hf-hub:{REPO}"
    with fake_hub(hub_files) as (endpoint, requests):
        before = clip("status", "--json", "--pretrained", hub, endpoint=endpoint, cache=cache)
        assert before.returncode == 0, before.stderr
        status = json.loads(before.stdout)
        assert not status["present"] and status["downloadable"] and REPO in status["source"]
        downloaded = clip("download", "--json", "--pretrained", hub, endpoint=endpoint, cache=cache)
        assert downloaded.returncode == 0, downloaded.stderr
        fetched = [request for request in requests if request.startswith("GET ")]
        again = clip("download", "--pretrained", hub, endpoint=endpoint, cache=cache)
        assert again.returncode == 0 and "present" in again.stdout
        assert [request for request in requests if request.startswith("GET ")] == fetched  # nothing again
    status = json.loads(downloaded.stdout)
    assert (
        status["present"]
        and Path(status["location"]).read_bytes() == hub_files[REPO]["open_clip_pytorch_model.bin"]
    )
    assert not [
        name for name in files_in(cache) if ".semantify-download-" in name or name.endswith(".incomplete")
    ]
    checked = clip("check", "--json", "--pretrained", hub, cache=cache)  # offline now: from the cache
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["embedding_width"] == TINY_CLIP_CONFIG["embed_dim"]


def test_a_dropped_connection_keeps_nothing_and_says_what_to_do(hub_files, tmp_path) -> None:
    cache = tmp_path / "cache"
    with fake_hub(hub_files, fail_after=128 * 1024) as (endpoint, _):
        result = clip("download", "--pretrained", f"hf-hub:{REPO}", endpoint=endpoint, cache=cache)
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if line.startswith("semantify: error:")]
    assert error and "nothing was kept" in error[0] and "Traceback" not in result.stderr
    assert not [name for name in files_in(cache) if "blobs" in name or "snapshots" in name], files_in(cache)


def test_a_download_killed_outright_leaves_a_staging_folder_the_next_one_removes(hub_files, tmp_path) -> None:
    cache = tmp_path / "cache"
    stale = cache / ".semantify-download-killed" / "models--x" / "blobs"
    stale.mkdir(parents=True)
    (stale / "abc.incomplete").write_bytes(b"half")
    with fake_hub(hub_files) as (endpoint, _):
        result = clip("download", "--pretrained", f"hf-hub:{REPO}", endpoint=endpoint, cache=cache)
    assert result.returncode == 0, result.stderr
    assert not (cache / ".semantify-download-killed").exists()


def test_offline_or_unreachable_downloads_stop_at_once_with_the_ways_to_provide_weights(tmp_path) -> None:
    offline = clip("download", cache=tmp_path)
    assert offline.returncode == 2 and "HF_HUB_OFFLINE is set" in offline.stderr
    assert "Use a local weights file" in offline.stderr and "Traceback" not in offline.stderr
    unreachable = clip(
        "download", "--pretrained", f"hf-hub:{REPO}", endpoint="http://127.0.0.1:9", cache=tmp_path
    )
    assert unreachable.returncode == 2 and "cannot be reached" in unreachable.stderr
    assert files_in(tmp_path) == []


def test_status_names_what_is_wrong_with_a_spec_in_one_line(tiny_weights, tmp_path) -> None:
    unknown = json.loads(clip("status", "--json", "--pretrained", "no-such-tag").stdout)
    assert not unknown["present"] and "known tags" in unknown["problem"] and not unknown["downloadable"]
    missing = json.loads(clip("status", "--json", "--pretrained", str(tmp_path / "gone.bin")).stdout)
    assert "does not exist" in missing["problem"]
    local = json.loads(
        clip("status", "--json", "--clip", TINY_CLIP_NAME, "--pretrained", str(tiny_weights)).stdout
    )
    assert local["present"] and local["kind"] == "file" and local["location"] == str(tiny_weights)
    truncated = tmp_path / f"{TINY_CLIP_NAME}.bin"
    truncated.write_bytes(tiny_weights.read_bytes()[:1000])
    (tmp_path / f"{TINY_CLIP_NAME}.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    checked = clip("check", "--clip", TINY_CLIP_NAME, "--pretrained", str(truncated))
    assert (
        checked.returncode == 2
        and "Could not load" in checked.stderr
        and "downloaded again" in checked.stderr
    )
