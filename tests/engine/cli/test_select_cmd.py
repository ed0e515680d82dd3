"""``semantify select DATASET``: the paper's step 4 on its own, run for real on a small word dataset.

The dataset is built once (capsules rendered by Blender, scored by the tiny random CLIP, measured too);
the command's table and JSON are checked against :class:`DescriptorSelector` fitted directly on the same
arrays, against the selection ``semantify build`` makes, and its bad input against exit status 2 with a
one-line message.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.clip import capsule_clip_request, capsule_metric_request

from semantify_engine.cli.main import main as cli_main
from semantify_engine.dataset.builder import build_dataset
from semantify_engine.dataset.store import DatasetFolder

WORDS = ("fat", "thin", "tall", "short", "broad shoulders", "muscular")
TEMPLATE = "a photo of a {} person"


@pytest.fixture(scope="module")
def words_dataset(capsule, tiny_spec, tmp_path_factory) -> Path:
    folder = DatasetFolder(tmp_path_factory.mktemp("select") / "words")
    request = capsule_clip_request(
        capsule, tiny_spec, WORDS, samples=40, chunk_size=20, metrics=True, template=TEMPLATE
    )
    build_dataset(folder, request)
    return folder.folder


@pytest.fixture(scope="module")
def metric_dataset(capsule, tmp_path_factory) -> Path:
    folder = DatasetFolder(tmp_path_factory.mktemp("select") / "metrics")
    request = capsule_metric_request(capsule, samples=12, chunk_size=6)
    build_dataset(folder, request)
    return folder.folder


def direct_selector(folder: Path, tiny_spec, **params):
    """The estimator fitted by hand on the dataset's arrays, as a researcher would call it."""
    from semantify_engine.scoring.clip import get_scorer, prompts
    from semantify_engine.selection import DescriptorSelector

    data = DatasetFolder(folder).load()
    text = get_scorer(tiny_spec).encode_texts(prompts(list(WORDS), TEMPLATE))
    return DescriptorSelector(random_state=0, **params).fit(
        data["embeddings"], data["scores"], list(WORDS), text_embeddings=text
    )


def select(capsys, *arguments: str) -> tuple[int, str, str]:
    code = cli_main(["select", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_and_table_agree_with_the_selector_called_directly(words_dataset, tiny_spec, capsys) -> None:
    code, out, _ = select(capsys, str(words_dataset), "--descriptors", "3", "--force", "tall", "--json")
    assert code == 0
    report = json.loads(out)
    selector = direct_selector(words_dataset, tiny_spec, n_descriptors=3, forced=("tall",))
    assert report["kind"] == "words"
    assert report["selected"] == list(selector.selected_) and len(report["selected"]) == 3
    assert "tall" in report["selected"]
    assert report["ranking"] == list(selector.ranking_)
    assert report["n_clusters"] == selector.n_clusters_ == len(report["clusters"])
    assert report["correlation_threshold"] == pytest.approx(selector.correlation_threshold_)
    assert report["filtered"] == {name: str(reason) for name, reason in selector.filtered_.items()}
    assert set(report["filtered"]) == set(WORDS) - set(report["selected"]), "every word left out says why"
    assert report["silhouette"] == {
        str(k): pytest.approx(v, abs=1e-4) for k, v in selector.silhouette_scores_.items()
    }
    sizes = np.bincount(selector.cluster_labels_, minlength=selector.n_clusters_)
    for cluster in report["clusters"]:
        index = cluster["cluster"]
        assert cluster["images"] == sizes[index]
        assert cluster["words"] == sorted(w for w, c in selector.word_cluster_.items() if c == index)
        shares = selector.vote_shares_[index]
        top = sorted((w for w in WORDS if shares[WORDS.index(w)] > 0), key=lambda w: -shares[WORDS.index(w)])
        assert set(cluster["top_votes"]) == set(top[:5])
        for word, share in cluster["top_votes"].items():
            assert share == pytest.approx(shares[WORDS.index(word)], abs=1e-4)
    assert sum(cluster["images"] for cluster in report["clusters"]) == 40
    chosen = [WORDS.index(name) for name in report["selected"]]
    expected = {
        f"{WORDS[a]} ~ {WORDS[b]}": selector.correlation_[a, b]
        for i, a in enumerate(chosen)
        for b in chosen[i + 1 :]
    }
    assert report["correlations"] == {pair: pytest.approx(r, abs=1e-4) for pair, r in expected.items()}

    code, text, _ = select(capsys, str(words_dataset), "--descriptors", "3", "--force", "tall")
    assert code == 0
    lines = text.splitlines()
    assert lines[0] == f"selected (words): {', '.join(report['selected'])}"
    assert f"{report['n_clusters']} image clusters" in lines[1]
    for cluster in report["clusters"]:
        row = next(line for line in lines if line.startswith(f"cluster {cluster['cluster']} "))
        assert row.split()[2] == str(cluster["images"])
        for word, share in cluster["top_votes"].items():
            assert f"{word} {share:.0%}" in row
    matrix = lines.index("correlations among the chosen (Pearson r of their scores)")
    for offset, name in enumerate(report["selected"], start=2):
        cells = lines[matrix + offset].removeprefix(name).split()
        for column, cell in zip(report["selected"], cells, strict=True):
            pair = f"{name} ~ {column}" if f"{name} ~ {column}" in expected else f"{column} ~ {name}"
            assert cell == ("1" if column == name else f"{report['correlations'][pair]:+.2f}")
    left_out = lines[lines.index(next(line for line in lines if line.startswith("left out"))) + 1 :]
    assert len(left_out) == len(report["filtered"])
    for line, (name, reason) in zip(left_out, report["filtered"].items(), strict=True):
        assert line.startswith(name) and line.endswith(reason)


def test_select_is_the_selection_build_makes(words_dataset, capsule, capsys) -> None:
    from semantify_engine.pipeline import BuildOptions, select_descriptors

    folder = DatasetFolder(words_dataset)
    options = BuildOptions(n_descriptors=3, forced=("tall", "height"))
    built = select_descriptors(folder, folder.load(), capsule, options)
    code, out, _ = select(
        capsys, str(words_dataset), "--descriptors", "3", "--force", "tall,height", "--json"
    )
    assert code == 0 and json.loads(out) == json.loads(json.dumps(built))
    assert {"tall", "height"} <= set(built["selected"]), "a forced measurement is a candidate too"


def test_descriptors_bounds_the_count(words_dataset, tiny_spec, capsys) -> None:
    for count in (1, 2, len(WORDS)):
        code, out, _ = select(capsys, str(words_dataset), "--descriptors", str(count), "--json")
        assert code == 0
        chosen = json.loads(out)["selected"]
        assert chosen == list(direct_selector(words_dataset, tiny_spec, n_descriptors=count).selected_)
        assert len(chosen) == count
    code, out, _ = select(capsys, str(words_dataset), "--json")
    assert code == 0 and json.loads(out)["selected"] == list(
        direct_selector(words_dataset, tiny_spec).selected_
    )


def one_line_error(capsys, *arguments: str) -> str:
    """The command refuses with exit status 2 and one line on stderr, nothing on stdout; that line."""
    code, out, err = select(capsys, *arguments)
    assert code == 2 and out == ""
    assert err.startswith("semantify: error: ") and err.count("\n") == 1, err
    return err


def test_bad_input_is_refused_in_one_line(words_dataset, metric_dataset, tmp_path, capsys) -> None:
    missing = tmp_path / "no-such-dataset"
    error = one_line_error(capsys, str(missing))
    assert str(missing) in error and "is not a dataset" in error and "semantify dataset build" in error

    error = one_line_error(capsys, str(metric_dataset))
    assert (
        str(metric_dataset) in error and "has no CLIP word scores" in error and "measurements only" in error
    )
    assert "Build a dataset with CLIP weights" in error

    error = one_line_error(capsys, str(words_dataset), "--descriptors", str(len(WORDS) + 1))
    assert str(words_dataset) in error and f"n_descriptors={len(WORDS) + 1}" in error
    assert f"only {len(WORDS)} of the {len(WORDS)} candidates" in error and "ask for fewer" in error

    error = one_line_error(capsys, str(words_dataset), "--descriptors", "0")
    assert "--descriptors must be at least 1, got 0" in error

    error = one_line_error(capsys, str(words_dataset), "--force", "tall,purple")
    assert str(words_dataset) in error and "'purple' not among the candidates" in error


def test_the_installed_command_exits_2_on_a_missing_dataset(tmp_path) -> None:
    missing = tmp_path / "nothing"
    command = [sys.executable, "-m", "semantify_engine.cli.main", "select", str(missing), "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and str(missing) in result.stderr


def test_help_lists_select_and_documents_its_json_keys(capsys) -> None:
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    overview = capsys.readouterr().out
    assert "select" in overview and "'select' (choose the descriptors)" in " ".join(overview.split())
    with pytest.raises(SystemExit):
        cli_main(["select", "--help"])
    text = capsys.readouterr().out
    for option in ("--descriptors", "--force", "--json"):
        assert option in text
    for key in ("kind", "selected", "n_clusters", "correlation_threshold", "filtered", "ranking"):
        assert f"\n  {key} " in text
    for key in ("silhouette", "clusters", "correlations", "top_votes"):
        assert key in text
