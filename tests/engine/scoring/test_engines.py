"""CLIP image engines: the ONNX export run by ONNX Runtime, its cache, the fidelity gate and its fallback.

Everything runs for real: the tiny random open_clip model of conftest, exported with torch's exporter,
quantised and run by ONNX Runtime, renders made by Blender. A "perturbed" engine is the real ONNX engine
whose embeddings are pushed past the bound, to show that the gate rejects what it must.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.clip import capsule_clip_request

from semantify_engine.dataset.builder import build_dataset
from semantify_engine.dataset.store import DatasetError, DatasetFolder, Shard, merge_datasets
from semantify_engine.errors import ClipEngineError, SemantifyError
from semantify_engine.scoring import engines
from semantify_engine.scoring.clip import ClipScorer, get_scorer, l2_normalize, prompts

WORDS = ("fat", "thin", "tall", "short", "big", "small", "broad")
TEMPLATE = "a photo of a {} person"


@pytest.fixture(scope="module")
def scorer(tiny_spec) -> ClipScorer:
    return get_scorer(tiny_spec)


@pytest.fixture(scope="module")
def text(scorer: ClipScorer) -> np.ndarray:
    return scorer.encode_texts(prompts(WORDS, TEMPLATE))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, size=(12, 64, 64, 3), dtype=np.uint8)


class PerturbedEngine:
    """A real engine whose embeddings are turned by a fixed angle: cosine to the original = ``cosine``."""

    def __init__(self, engine: engines.ImageEngine, cosine: float) -> None:
        self.name = engine.name
        self._engine, self._cosine = engine, cosine

    def encode(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        embeddings = self._engine.encode(images, batch_size)
        rng = np.random.default_rng(0)
        noise = rng.normal(size=embeddings.shape).astype(np.float32)
        noise -= np.sum(noise * embeddings, axis=1, keepdims=True) * embeddings  # orthogonal to each row
        sine = np.sqrt(1.0 - self._cosine**2)
        return l2_normalize(self._cosine * embeddings + sine * l2_normalize(noise))


# ------------------------------------------------------------------------------------------ the gate
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 40), st.floats(0.9, 0.99999))
def test_the_gate_measures_cosine_and_top_words(seed: int, words: int, cosine: float) -> None:
    rng = np.random.default_rng(seed)
    reference = l2_normalize(rng.normal(size=(20, 16)))
    text = l2_normalize(rng.normal(size=(words, 16)))
    same = engines.measure_fidelity("x", reference, reference.copy(), text)
    assert same.passed and same.min_cosine == pytest.approx(1.0, abs=1e-6) and same.top_k_agreement == 1.0
    noise = l2_normalize(rng.normal(size=reference.shape))
    noise = l2_normalize(noise - np.sum(noise * reference, axis=1, keepdims=True) * reference)
    turned = cosine * reference + np.sqrt(1 - cosine**2) * noise
    check = engines.measure_fidelity("x", reference, turned, text)
    assert check.min_cosine == pytest.approx(cosine, abs=1e-5)
    assert check.passed == (check.min_cosine >= engines.MIN_COSINE and check.top_k_agreement >= 0.99)
    assert check.top_k == min(engines.TOP_K, words)


def test_the_gate_rejects_changed_top_words_even_at_high_cosine() -> None:
    text = np.eye(8, dtype=np.float32)
    reference = l2_normalize(np.tile(np.array([8, 7, 6, 5, 4.0, 3.99, 1, 0], np.float32), (100, 1)))
    candidate = reference.copy()
    candidate[0, [4, 5]] = candidate[0, [5, 4]]  # one image of 100: its 5th and 6th words swap
    check = engines.measure_fidelity("x", reference, candidate, text)
    assert check.min_cosine > 0.9999 and check.top_k_agreement == pytest.approx(0.99)
    assert check.passed, "one image in a hundred is within the 99 % bound"
    candidate[1, [4, 5]] = candidate[1, [5, 4]]
    check = engines.measure_fidelity("x", reference, candidate, text)
    assert not check.passed and "98.0% of 100 images" in check.describe()


def test_engine_names_are_checked() -> None:
    assert engines.candidates("auto") == ("onnx-int8", "onnx", "torch")
    assert engines.candidates("onnx") == ("onnx", "torch")
    assert engines.candidates("torch") == ("torch",)
    assert engines.engine_from_env({}) == "auto"
    with pytest.raises(SemantifyError, match=r"\$SEMANTIFY_CLIP_ENGINE must be one of auto, onnx-int8"):
        engines.engine_from_env({"SEMANTIFY_CLIP_ENGINE": "tensorrt"})


# ------------------------------------------------------------------------------------ real engines
def test_onnx_engines_are_exported_once_beside_the_weights_and_match_torch(
    scorer: ClipScorer, images: np.ndarray, tiny_weights
) -> None:
    reference = engines.TorchEngine(scorer).encode(images)
    for name in ("onnx", "onnx-int8"):
        engine = engines.load_engine(scorer, name)
        assert engine.name == name and engines.load_engine(scorer, name) is engine, "loaded once"
        embeddings = engine.encode(images, batch_size=5)
        assert embeddings.shape == reference.shape and embeddings.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
        cosine = np.sum(embeddings * reference, axis=1)
        assert cosine.min() > (0.99999 if name == "onnx" else 0.99), name
    (folder,) = (tiny_weights.parent / f"{tiny_weights.name}.semantify-engines").iterdir()
    exports = sorted(path.name for path in folder.iterdir() if not path.name.startswith("fixed-"))
    assert exports == ["image-fp32.onnx", "image-int8.onnx", "key.json"], "earlier builds keep probes too"
    key = json.loads((folder / "key.json").read_text())
    assert key["tower_sha256"] == engines.tower_checksum(scorer) and key["engine_version"] == 2
    import onnx

    operators = {node.op_type for node in onnx.load(str(folder / "image-int8.onnx")).graph.node}
    assert {"MatMulInteger", "Conv"} <= operators and "ConvInteger" not in operators, "slow int conv"
    assert engines.export_files(scorer) == folder, "the same weights find the same export"
    assert engines.load_engine(scorer, "onnx").encode(images[:0]).shape == (0, scorer.embed_dim)


def test_a_perturbed_engine_is_rejected_and_the_next_one_used(
    scorer: ClipScorer, images: np.ndarray, text: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = engines._LOADED.setdefault(scorer, {})
    real = engines.load_engine(scorer, "onnx-int8")
    monkeypatch.setitem(loaded, "onnx-int8", PerturbedEngine(real, cosine=0.995))
    said: list[str] = []
    choice = engines.choose_engine(scorer, "auto", [images[:8], images[8:]], text, say=said.append)
    assert choice.name == "onnx" and [c.engine for c in choice.checks] == ["onnx-int8", "onnx"]
    assert not choice.checks[0].passed and 0.99 < choice.checks[0].min_cosine < engines.MIN_COSINE
    assert choice.checks[1].passed and choice.check is choice.checks[1]
    assert said == choice.notes and "onnx-int8 failed its fidelity check" in said[0]
    assert "using onnx instead" in said[0]
    monkeypatch.setitem(loaded, "onnx", PerturbedEngine(engines.load_engine(scorer, "onnx"), cosine=0.99))
    assert engines.choose_engine(scorer, "onnx-int8", [images], text, say=said.append).name == "torch"
    with pytest.raises(
        ClipEngineError, match="onnx failed its fidelity check: min cosine to torch fp32 0.99"
    ):
        engines.choose_engine(scorer, "onnx", [images], text, fallback=False)


def test_without_onnxruntime_the_build_falls_back_to_torch(
    scorer: ClipScorer, images: np.ndarray, text: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "_LOADED", type(engines._LOADED)())  # nothing loaded yet
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    said: list[str] = []
    choice = engines.choose_engine(scorer, "auto", [images], text, say=said.append)
    assert choice.name == "torch" and not choice.checks
    assert "onnxruntime is not installed" in said[0] and "pip install onnxruntime==" in said[0]


# ------------------------------------------------------------------------------ datasets built with it
def request(capsule, tiny_spec, engine: str = "auto", samples: int = 12):
    built = capsule_clip_request(capsule, tiny_spec, WORDS, samples=samples, chunk_size=4)
    from dataclasses import replace

    assert built.clip is not None
    return replace(built, clip=replace(built.clip, engine=engine))


def test_a_fast_engine_dataset_resumes_and_merges_like_any_other(capsule, tiny_spec, tmp_path) -> None:
    single = DatasetFolder(tmp_path / "single")
    report = build_dataset(single, request(capsule, tiny_spec, "onnx"))
    assert report.clip_engine is not None and report.clip_engine.name == "onnx"
    assert single.read_manifest()["settings"]["clip"]["engine"] == "onnx"
    (record,) = single.records("clip_engine")
    assert record["engine"] == "onnx" and record["checks"][0]["passed"] and record["shard"] == "0/1"
    assert record["checks"][0]["images"] == 8 + 16, "the first batch (4 samples, 2 views) and the probe set"
    expected = single.load()

    single.chunk_path(1).unlink()  # an interrupted build: resumed with auto, it keeps its engine
    resumed = build_dataset(single, request(capsule, tiny_spec, "auto"))
    assert (resumed.built_chunks, resumed.clip_engine.name) == (1, "onnx")
    np.testing.assert_array_equal(single.load()["embeddings"], expected["embeddings"])
    assert len(single.records("clip_engine")) == 2, "every build run's check is kept"
    with pytest.raises(DatasetError, match=r"made by the CLIP engine onnx; clip_engine torch would mix"):
        build_dataset(single, request(capsule, tiny_spec, "torch"))

    shards = []
    for index in range(2):
        folder = DatasetFolder(tmp_path / f"shard{index}")
        build_dataset(folder, request(capsule, tiny_spec, "onnx"), shard=Shard(index, 2))
        shards.append(folder.folder)
    merged = merge_datasets(tmp_path / "merged", shards)
    data = merged.load()
    np.testing.assert_array_equal(data["embeddings"], expected["embeddings"])
    np.testing.assert_array_equal(data["scores"], expected["scores"])
    assert sorted(r["shard"] for r in merged.records("clip_engine")) == ["0/2", "1/2"]


class RecordingEngine:
    """A real engine that keeps every batch it was asked to encode (to count and replay them)."""

    def __init__(self, engine: engines.ImageEngine) -> None:
        self.name = engine.name
        self.engine = engine
        self.calls: list[np.ndarray] = []

    def encode(self, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
        self.calls.append(np.array(images))
        return self.engine.encode(images, batch_size)


def test_the_checked_first_batch_is_encoded_once_and_stored_as_a_fresh_encoding_would_be(
    capsule, tiny_spec, tmp_path, scorer: ClipScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """int8 quantises activations per batch, so reusing the check's embeddings is right only if they are
    the encoder's own first batch: a chunk of 40 images is stored exactly as 32 + 8 encoded afresh."""
    real = engines.load_engine(scorer, "onnx-int8")
    recording = RecordingEngine(real)
    monkeypatch.setitem(engines._LOADED.setdefault(scorer, {}), "onnx-int8", recording)
    for kept in engines.export_files(scorer).glob("fixed-*.npy"):
        kept.unlink()  # probes not kept yet: the first build encodes them
    five = WORDS[:5]  # with five words the tiny random model's near ties leave only the cosine bound
    built = capsule_clip_request(capsule, tiny_spec, five, samples=24, chunk_size=20, engine="onnx-int8")
    folder = DatasetFolder(tmp_path / "first")
    assert build_dataset(folder, built).clip_engine.name == "onnx-int8"
    sizes = [len(call) for call in recording.calls]
    assert sorted(sizes) == [8, 8, 16, 32], "check batch, probes, chunk 0's last 8 images, chunk 1"
    first_chunk = np.concatenate([recording.calls[0], recording.calls[2]])
    assert len(recording.calls[0]) == 32 and len(recording.calls[1]) == 16, "the check: first batch, probes"
    fresh = real.encode(first_chunk, 32).reshape(20, 2, -1).astype(np.float16)
    np.testing.assert_array_equal(folder.load()["embeddings"][:20], fresh)

    recording.calls.clear()
    build_dataset(DatasetFolder(tmp_path / "second"), built)
    assert sorted(len(call) for call in recording.calls) == [8, 8, 32], "the probes' embeddings were kept"


def test_kept_probe_embeddings_are_keyed_by_engine_and_pixels_and_a_bad_file_is_replaced(
    scorer: ClipScorer, images: np.ndarray
) -> None:
    torch_engine = RecordingEngine(engines.TorchEngine(scorer))
    onnx_engine = RecordingEngine(engines.load_engine(scorer, "onnx"))
    probes = images[:6]
    for kept in engines.export_files(scorer).glob("fixed-*.npy"):
        kept.unlink()
    first = engines.fixed_embeddings(scorer, torch_engine, probes)
    np.testing.assert_array_equal(first, engines.TorchEngine(scorer).encode(probes, 6))
    np.testing.assert_array_equal(engines.fixed_embeddings(scorer, torch_engine, probes), first)
    assert len(torch_engine.calls) == 1, "read back, not encoded again"
    engines.fixed_embeddings(scorer, onnx_engine, probes)
    assert len(onnx_engine.calls) == 1, "another engine's numbers are its own"
    changed = probes.copy()
    changed[0, 0, 0, 0] ^= 1
    engines.fixed_embeddings(scorer, torch_engine, changed)
    assert len(torch_engine.calls) == 2, "one pixel changed: other images"
    files = sorted(engines.export_files(scorer).glob("fixed-torch-*.npy"))
    assert len(files) == 2
    for path in files:
        path.write_bytes(b"not an array")
    np.testing.assert_array_equal(engines.fixed_embeddings(scorer, torch_engine, probes), first)
    assert len(torch_engine.calls) == 3, "an unreadable file is recomputed"
    readable = [path for path in files if path.read_bytes()[:6] == b"\x93NUMPY"]
    assert len(readable) == 1, "written again (the other file is read only when its images come)"
    np.testing.assert_array_equal(np.load(readable[0], allow_pickle=False), first)


def test_a_resumed_dataset_never_switches_engine(
    capsule, tiny_spec, tmp_path, scorer: ClipScorer, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = DatasetFolder(tmp_path / "data")
    build_dataset(folder, request(capsule, tiny_spec, "onnx", samples=8))
    folder.chunk_path(1).unlink()
    loaded = engines._LOADED.setdefault(scorer, {})
    monkeypatch.setitem(loaded, "onnx", PerturbedEngine(engines.load_engine(scorer, "onnx"), cosine=0.99))
    with pytest.raises(
        DatasetError, match="built with the CLIP image engine onnx, which cannot be used here"
    ):
        build_dataset(folder, request(capsule, tiny_spec, "auto", samples=8))
    assert folder.present_chunks() == [0], "nothing was encoded with another engine"
    torch_built = DatasetFolder(tmp_path / "torch")
    build_dataset(torch_built, request(capsule, tiny_spec, "torch", samples=4))
    assert "engine" not in torch_built.read_manifest()["settings"]["clip"], "as datasets made before engines"
    assert torch_built.records("clip_engine")[0]["checks"] == []


def test_the_command_line_names_a_bad_engine(capsule, tmp_path, capsys, monkeypatch) -> None:
    from semantify_engine.cli.main import main as cli_main
    from semantify_engine.models import save_model

    model = save_model(capsule, tmp_path / "capsule.npz")
    base = ["dataset", "build", "--model", str(model), "--samples", "4", "--out", str(tmp_path / "d")]
    with pytest.raises(SystemExit) as exit_:
        cli_main([*base, "--clip-engine", "tensorrt"])
    assert exit_.value.code == 2 and "invalid choice: 'tensorrt'" in capsys.readouterr().err
    monkeypatch.setenv("SEMANTIFY_CLIP_ENGINE", "fast")
    assert cli_main([*base, "--scorer", "clip", "--pretrained", "none"]) == 2
    assert "$SEMANTIFY_CLIP_ENGINE must be one of auto" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31))
def test_renders_at_the_input_size_are_preprocessed_as_open_clip_does_to_the_bit(scorer, seed: int) -> None:
    import torch
    from PIL import Image

    side = engines.tower_input(scorer)[-1]
    rng = np.random.default_rng(seed)
    batch = rng.integers(0, 256, size=(3, side, side, 3), dtype=np.uint8)
    theirs = torch.stack([scorer._preprocess(Image.fromarray(image)) for image in batch])
    assert torch.equal(scorer.preprocess_images(batch), theirs)
    other = rng.integers(0, 256, size=(2, side + 9, side, 3), dtype=np.uint8)  # not at the input size
    theirs = torch.stack([scorer._preprocess(Image.fromarray(image)) for image in other])
    assert torch.equal(scorer.preprocess_images(other), theirs)
