"""CLIP scoring layer: real open_clip, a tiny randomly initialised model, no network.

No pretrained weights exist on the test machines, so the tests check mechanics (shapes, normalisation,
batching, caching, score algebra, weight resolution and its errors) with a tiny random CLIP that is saved
to a file and loaded back through the product's normal path, exactly as a user's weights file would be.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from support import ROOT
from support.clip import TINY_CLIP_CONFIG as TINY_CONFIG
from support.clip import TINY_CLIP_NAME as TINY_NAME

from semantify_engine.errors import ClipError, ClipModelError, ClipWeightsError, SemantifyError
from semantify_engine.scoring import clip, clip_cache, clip_loading, clip_network
from semantify_engine.scoring.clip import (
    ClipScorer,
    ClipSpec,
    average_view_scores,
    cosine_similarity,
    get_scorer,
    logits_from_cosine,
    prompts,
    template_for,
)

WORDS = ["fat", "thin", "tall", "muscular"]
BODY = "a photo of a {} person"


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scorer(tiny_spec: ClipSpec) -> ClipScorer:
    clip.clear_scorers()
    return get_scorer(tiny_spec)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Five distinct RGB images, not of the model's input size (the model's preprocess must resize)."""
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(5, 80, 96, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------
# Images
# ------------------------------------------------------------------------------------------------


def test_image_embeddings_have_embed_dim_and_unit_norm(scorer: ClipScorer, images: np.ndarray) -> None:
    emb = scorer.encode_images(images)
    assert emb.shape == (5, TINY_CONFIG["embed_dim"])
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert scorer.embed_dim == TINY_CONFIG["embed_dim"]


def test_same_image_same_embedding_different_images_differ(scorer: ClipScorer, images: np.ndarray) -> None:
    twice = scorer.encode_images(np.stack([images[0], images[0], images[1]]))
    np.testing.assert_array_equal(twice[0], twice[1])
    assert np.abs(twice[0] - twice[2]).max() > 1e-4


def test_batched_encoding_equals_one_at_a_time(scorer: ClipScorer, images: np.ndarray) -> None:
    batched = scorer.encode_images(images, batch_size=3)
    single = np.concatenate([scorer.encode_images(images[i : i + 1]) for i in range(len(images))])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_image_preprocess_is_the_models_own(scorer: ClipScorer) -> None:
    """A solid image encodes like the same image at another size: the model's transform resizes."""
    small = np.full((1, 64, 64, 3), (200, 30, 90), dtype=np.uint8)
    large = np.full((1, 160, 128, 3), (200, 30, 90), dtype=np.uint8)
    np.testing.assert_allclose(scorer.encode_images(small), scorer.encode_images(large), atol=1e-5)


def test_empty_and_malformed_image_batches(scorer: ClipScorer) -> None:
    assert scorer.encode_images(np.zeros((0, 64, 64, 3), np.uint8)).shape == (0, scorer.embed_dim)
    with pytest.raises(ClipError, match="uint8"):
        scorer.encode_images(np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(ClipError, match=r"\(N, H, W, 3\)"):
        scorer.encode_images(np.zeros((64, 64, 3), np.uint8))


# ------------------------------------------------------------------------------------------------
# Texts and the text cache
# ------------------------------------------------------------------------------------------------


def test_text_embeddings_cached_and_not_re_encoded(scorer: ClipScorer) -> None:
    texts = ["cache probe one", "cache probe two", "cache probe one"]
    before_count, before_size = scorer.texts_encoded, scorer.text_cache_size
    first = scorer.encode_texts(texts)
    assert scorer.texts_encoded == before_count + 2  # the duplicate is encoded once
    assert scorer.text_cache_size == before_size + 2
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)

    first[0] += 1.0  # the caller's array is its own: the cache must not change
    again = scorer.encode_texts(texts)
    assert scorer.texts_encoded == before_count + 2
    np.testing.assert_array_equal(again[1], first[1])
    np.testing.assert_allclose(np.linalg.norm(again[0]), 1.0, atol=1e-5)


def test_cached_text_embeddings_match_a_fresh_model(scorer: ClipScorer, tiny_spec: ClipSpec) -> None:
    """Cache hits and batch composition do not change an embedding (fresh load, one string at a time)."""
    cached = scorer.encode_texts(["a photo of a fat person", "a photo of a thin person"])
    fresh = ClipScorer.load(tiny_spec)
    assert fresh is not scorer and fresh.texts_encoded == 0
    alone = fresh.encode_texts(["a photo of a thin person"])
    np.testing.assert_array_equal(cached[1], alone[0])
    assert not np.allclose(cached[0], cached[1], atol=1e-4)


WORD_POOL = ("fat", "thin", "tall", "short", "broad shoulders", "muscular", "wide", "curvy", "slim")


@settings(max_examples=8, deadline=None)
@given(
    words=st.lists(st.sampled_from(WORD_POOL), min_size=1, max_size=len(WORD_POOL), unique=True),
    company=st.lists(st.sampled_from(WORD_POOL), max_size=len(WORD_POOL), unique=True),
)
def test_a_words_embedding_does_not_depend_on_the_words_encoded_with_it(
    tiny_spec: ClipSpec, words: list[str], company: list[str]
) -> None:
    """Bit for bit: a dataset's scores must not depend on what the process encoded earlier.

    (A batched forward pass added its sums in a batch-size-dependent order, so a Ray worker's scores
    differed from a local build's after another build in the same process had cached other words.)
    """
    alone = ClipScorer.load(tiny_spec).encode_texts(prompts(words, "a photo of a {} person"))
    among = ClipScorer.load(tiny_spec)
    mixed = list(dict.fromkeys([*company, *words]))
    among.encode_texts(prompts(mixed, "a photo of a {} person"))
    np.testing.assert_array_equal(among.encode_texts(prompts(words, "a photo of a {} person")), alone)


def test_encode_texts_rejects_a_bare_string(scorer: ClipScorer) -> None:
    with pytest.raises(ClipError, match="list of strings"):
        scorer.encode_texts("fat")


# ------------------------------------------------------------------------------------------------
# Scores
# ------------------------------------------------------------------------------------------------


def test_scores_are_manual_cosine_and_logits_are_100x(scorer: ClipScorer, images: np.ndarray) -> None:
    emb = scorer.encode_images(images)
    texts = scorer.encode_texts([BODY.format(word) for word in WORDS])
    manual = np.array([[float(i @ t) / (np.linalg.norm(i) * np.linalg.norm(t)) for t in texts] for i in emb])
    scores = scorer.scores(emb, WORDS, BODY)
    assert scores.shape == (len(images), len(WORDS))
    np.testing.assert_allclose(scores, manual, atol=1e-5)
    np.testing.assert_allclose(scorer.logits(emb, WORDS, BODY), 100.0 * manual, atol=1e-3)


def test_multiview_scores_average_per_view_scores(scorer: ClipScorer, images: np.ndarray) -> None:
    views = scorer.encode_images(images[:4]).reshape(2, 2, -1)  # 2 shapes x (front, side)
    front = scorer.scores(views[:, 0], WORDS, BODY)
    side = scorer.scores(views[:, 1], WORDS, BODY)
    averaged = scorer.multiview_scores(views, WORDS, BODY)
    np.testing.assert_allclose(averaged, (front + side) / 2, atol=1e-6)
    np.testing.assert_allclose(
        scorer.multiview_scores(views, WORDS, BODY, as_logits=True), 50.0 * (front + side), atol=1e-3
    )
    with pytest.raises(ClipError, match="views"):
        scorer.multiview_scores(views[:, 0], WORDS, BODY)


_FLOATS = st.floats(-10, 10, allow_nan=False, width=32)


def _embeddings(rows: int, dim: int) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float32, (rows, dim), elements=_FLOATS).filter(
        lambda a: bool(np.all(np.linalg.norm(a.astype(np.float64), axis=1) > 1e-2))
    )


@st.composite
def _embedding_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    dim = draw(st.integers(1, 16))
    return draw(_embeddings(draw(st.integers(1, 5)), dim)), draw(_embeddings(draw(st.integers(1, 5)), dim))


@settings(max_examples=60, deadline=None)
@given(_embedding_pairs(), st.floats(0.1, 50))
def test_cosine_and_logit_properties(pair: tuple[np.ndarray, np.ndarray], scale: float) -> None:
    a, b = pair
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    manual = (a64 @ b64.T) / np.outer(np.linalg.norm(a64, axis=1), np.linalg.norm(b64, axis=1))
    cos = cosine_similarity(a, b)
    assert cos.shape == (len(a), len(b))
    np.testing.assert_allclose(cos, manual, atol=1e-5)
    assert np.all(np.abs(cos) <= 1 + 1e-5)
    np.testing.assert_allclose(cosine_similarity(a * np.float32(scale), b), cos, atol=1e-5)
    np.testing.assert_allclose(logits_from_cosine(cos), 100.0 * cos, rtol=1e-6, atol=1e-5)
    views = np.stack([a, a[::-1]], axis=1)  # (N, 2 views, D)
    expected = (manual + manual[::-1]) / 2
    np.testing.assert_allclose(average_view_scores(views, b), expected, atol=1e-5)


def test_cosine_rejects_mismatched_sizes() -> None:
    with pytest.raises(ClipError, match="sizes differ"):
        cosine_similarity(np.ones((2, 3)), np.ones((2, 4)))


# ------------------------------------------------------------------------------------------------
# Prompts
# ------------------------------------------------------------------------------------------------


def test_prompts_and_templates() -> None:
    from semantify_engine.models import MODEL_KINDS

    assert prompts(["fat", "long neck"], template_for("body")) == [
        "a photo of a fat person",
        "a photo of a long neck person",
    ]
    assert all(template_for(kind).count("{}") == 1 for kind in MODEL_KINDS)
    assert template_for("head-shape") == "a photo of a {} face"
    assert template_for("body", {"body": "a render of a {} body"}) == "a render of a {} body"
    assert prompts(["a{b}"], "x {} y") == ["x a{b} y"]
    with pytest.raises(ClipError, match="exactly one"):
        prompts(["fat"], "no slot")
    with pytest.raises(ClipError, match="no prompt template"):
        template_for("robot")
    with pytest.raises(ClipError, match="list of strings"):
        prompts("fat", BODY)


# ------------------------------------------------------------------------------------------------
# Loading: once per process, weight resolution and its errors
# ------------------------------------------------------------------------------------------------


def test_scorer_loaded_once_per_spec(
    scorer: ClipScorer, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert get_scorer(ClipSpec(model=TINY_NAME, pretrained=str(tiny_weights))) is scorer
    monkeypatch.chdir(tiny_weights.parent)
    assert get_scorer(ClipSpec(model=TINY_NAME, pretrained=f"./{tiny_weights.name}")) is scorer


def test_spec_from_env() -> None:
    assert ClipSpec.from_env({}) == ClipSpec("ViT-B-32", "openai", "cpu", None)
    env = {"SEMANTIFY_CLIP_MODEL": "ViT-L-14", "SEMANTIFY_CLIP_PRETRAINED": "/w/clip.bin"}
    spec = ClipSpec.from_env({**env, "SEMANTIFY_CLIP_DEVICE": "cuda"})
    assert (spec.model, spec.pretrained, spec.device) == ("ViT-L-14", "/w/clip.bin", "cuda")
    assert spec.weights_file == Path("/w/clip.bin")
    assert ClipSpec.from_env({"SEMANTIFY_CLIP_PRETRAINED": "none"}).pretrained is None
    assert ClipSpec(pretrained="openai").weights_file is None
    assert ClipSpec(pretrained="hf-hub:org/name").weights_file is None


def test_missing_local_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "clip-weights.bin"
    with pytest.raises(ClipWeightsError) as info:
        get_scorer(ClipSpec(model="ViT-B-32", pretrained=str(missing)))
    assert str(missing) in str(info.value)
    assert isinstance(info.value, SemantifyError)


def test_unknown_tag_and_unknown_architecture() -> None:
    with pytest.raises(ClipWeightsError, match="laion2b"):  # the known tags are listed
        get_scorer(ClipSpec(model="ViT-B-32", pretrained="no_such_tag"))
    with pytest.raises(ClipModelError, match="no-such-architecture"):
        get_scorer(ClipSpec(model="no-such-architecture", pretrained="openai"))


def test_weights_that_do_not_fit_the_architecture(tiny_weights: Path) -> None:
    with pytest.raises(ClipWeightsError, match="Could not load"):
        get_scorer(ClipSpec(model="RN50", pretrained=str(tiny_weights)))


@pytest.mark.parametrize("suffix", [".bin", ".safetensors"])
def test_corrupt_weights_file_is_a_user_error(tmp_path: Path, tiny_weights: Path, suffix: str) -> None:
    corrupt = tmp_path / f"{TINY_NAME}{suffix}"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ClipWeightsError, match="Could not load") as info:
        get_scorer(ClipSpec(model=TINY_NAME, pretrained=str(corrupt)))
    assert str(corrupt) in str(info.value)


def _isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The current environment with every cache pointed at empty folders under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "SEMANTIFY_CLIP"))}
    env.update(
        HOME=str(tmp_path / "home"),
        HF_HOME=str(tmp_path / "hf"),
        XDG_CACHE_HOME=str(tmp_path / "xdg"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def test_uncached_tag_offline_fails_at_once_with_how_to(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        from semantify_engine.errors import ClipWeightsError
        from semantify_engine.scoring.clip import ClipSpec, get_scorer
        try:
            get_scorer(ClipSpec("ViT-B-32", "openai"))
        except ClipWeightsError as exc:
            print(exc)
        else:
            print("LOADED")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=_isolated_env(tmp_path, HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=20,
        cwd=tmp_path,
    )
    message = result.stdout
    assert result.returncode == 0, result.stderr
    assert "LOADED" not in message
    assert "HF_HUB_OFFLINE" in message
    assert "open_clip.create_model_and_transforms('ViT-B-32', pretrained='openai')" in message
    assert str(tmp_path / "hf" / "hub") in message  # where the cache lives
    assert "pretrained /path/to/" in message and "SEMANTIFY_CLIP_PRETRAINED" in message


def test_uncached_tag_unreachable_hub_fails_after_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probed: list[str] = []

    def unreachable(host: str, *args: object, **kwargs: object) -> bool:
        probed.append(host)
        return False

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(clip_network, "_network_reachable", unreachable)
    with pytest.raises(ClipWeightsError, match="cannot be reached") as info:
        get_scorer(ClipSpec("ViT-B-32", "openai", cache_dir=str(tmp_path)))
    assert probed == [clip_cache._hub_host()]
    assert str(tmp_path) in str(info.value)


def test_network_probe_is_bounded_even_when_dns_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    def hanging_getaddrinfo(*args: object, **kwargs: object) -> list:
        time.sleep(5)
        raise socket.gaierror("simulated DNS timeout")

    monkeypatch.setattr(clip_network, "_probe_target", lambda host, port: (host, port))
    monkeypatch.setattr(socket, "getaddrinfo", hanging_getaddrinfo)
    start = time.monotonic()
    assert clip_network._network_reachable("hub.example.invalid", timeout=0.5) is False
    assert time.monotonic() - start < 2.0


def test_network_probe_sees_open_and_closed_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clip_network, "_probe_target", lambda host, port: (host, port))
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert clip_network._network_reachable("127.0.0.1", port, timeout=2.0) is True
    assert clip_network._network_reachable("127.0.0.1", port, timeout=2.0) is False


def _fake_hub_snapshot(cache: Path, repo_id: str, files: dict[str, bytes]) -> None:
    """Lay files out the way huggingface_hub caches a downloaded repo (refs/main -> snapshots/<commit>)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        (snapshot / name).write_bytes(data)


def test_cached_tag_is_planned_offline_without_probing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'openai' weights found in the hub cache: no network check, offline load, QuickGELU as trained."""
    repo = "timm/vit_base_patch32_clip_224.openai"
    _fake_hub_snapshot(tmp_path, repo, {"open_clip_model.safetensors": b"x"})
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(clip_network, "_network_reachable", lambda *a, **k: pytest.fail("network probed"))
    plan = clip_loading._plan_load(ClipSpec("ViT-B-32", "openai", cache_dir=str(tmp_path)))
    assert (plan.model_name, plan.pretrained, plan.offline, plan.force_quick_gelu) == (
        "ViT-B-32",
        "openai",
        True,
        True,
    )


def test_cached_hf_hub_model_loads_without_network(
    tmp_path: Path,
    tiny_weights: Path,
    scorer: ClipScorer,
    images: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An hf-hub model already in the cache loads with no connection attempt, even without HF_HUB_OFFLINE."""
    import huggingface_hub.constants

    config = json.dumps({"model_cfg": TINY_CONFIG, "preprocess_cfg": {}}).encode()
    files = {"open_clip_config.json": config, "open_clip_pytorch_model.bin": tiny_weights.read_bytes()}
    _fake_hub_snapshot(tmp_path, "semantify-tests/tiny-clip", files)
    lookups: list[object] = []

    def no_network(*args: object, **kwargs: object) -> list:
        lookups.append(args)
        raise socket.gaierror("network used in a test")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    hub_scorer = ClipScorer.load(ClipSpec("hf-hub:semantify-tests/tiny-clip", None, cache_dir=str(tmp_path)))
    assert lookups == []
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False  # the offline switch is restored
    assert "HF_HUB_OFFLINE" not in os.environ
    expected = scorer.encode_images(images[:2])  # same weights as the file-loaded model
    np.testing.assert_allclose(hub_scorer.encode_images(images[:2]), expected, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# Import cost and the torchvision compatibility step
# ------------------------------------------------------------------------------------------------


def test_importing_the_scoring_module_does_not_import_torch(tmp_path: Path) -> None:
    script = (
        "import sys, semantify_engine.scoring, semantify_engine.scoring.clip\n"
        "heavy = ('torch', 'open_clip', 'torchvision', 'PIL', 'huggingface_hub')\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    env = _isolated_env(tmp_path)
    command = [sys.executable, "-c", script]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_torchvision_compat_is_idempotent_and_torchvision_imports() -> None:
    from semantify_engine.compat import torchvision_ops

    first = torchvision_ops.ensure_torchvision_importable()
    library = torchvision_ops._LIBRARY
    assert torchvision_ops.ensure_torchvision_importable() == first
    assert torchvision_ops._LIBRARY is library
    assert (library is not None) == first
    import torch
    import torchvision.transforms

    assert torchvision.transforms.Resize is not None
    assert hasattr(torch.ops.torchvision, "nms") and hasattr(torch.ops.torchvision, "qnms")
