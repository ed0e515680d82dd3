"""Descriptor selection on synthetic data whose structure is known, and the offline lexicon."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from support import ROOT

from semantify_engine.errors import SemantifyError
from semantify_engine.scoring.vocabulary import VOCABULARIES
from semantify_engine.selection import (
    DescriptorSelectionError,
    DescriptorSelector,
    Lexicon,
    LexiconError,
    default_lexicon,
    normalise,
)

# -- synthetic data ------------------------------------------------------------------------------------


def blobs(k: int, per_blob: int, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` well-separated gaussian blobs on the unit sphere (orthogonal centres), and the true labels."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:k]
    labels = np.repeat(np.arange(k), per_blob)
    return centres[labels] + 0.05 * rng.normal(size=(len(labels), dim)), labels


def independent_scores(n: int, stds: list[float], seed: int = 1) -> np.ndarray:
    """Independent score columns around CLIP's typical 0.25, column j with standard deviation ``stds[j]``."""
    rng = np.random.default_rng(seed)
    return 0.25 + rng.normal(size=(n, len(stds))) * np.asarray(stds)


def fit_flat(scores: np.ndarray, words: list[str], **params) -> DescriptorSelector:
    """Fit without clustering structure: one cluster, and every word voted for, so that only variance,
    correlation and the lexicon decide."""
    embeddings = np.random.default_rng(7).normal(size=(len(scores), 8))
    params = {"n_clusters_range": (1, 1), "top_k": len(words), "correlation_threshold": 0.5} | params
    return DescriptorSelector(**params).fit(embeddings, scores, words)


# -- clustering and votes --------------------------------------------------------------------------------


def test_k_is_the_number_of_well_separated_blobs() -> None:
    embeddings, truth = blobs(k=3, per_blob=40)
    scores = independent_scores(len(truth), [0.01] * 6)
    selector = DescriptorSelector().fit(embeddings, scores, [f"w{j}" for j in range(6)])
    assert selector.n_clusters_ == 3
    assert sorted(selector.silhouette_scores_) == list(range(2, 11))
    assert adjusted_rand_score(truth, selector.cluster_labels_) == 1.0


def test_k_follows_the_data_within_the_range() -> None:
    embeddings, truth = blobs(k=5, per_blob=20, seed=3)
    scores = independent_scores(len(truth), [0.01] * 4)
    selector = DescriptorSelector(n_clusters_range=(2, 7), silhouette_sample_size=60)  # subsampled
    selector.fit(embeddings, scores, ["a", "b", "c", "d"])
    assert selector.n_clusters_ == 5
    assert adjusted_rand_score(truth, selector.cluster_labels_) == 1.0


def test_views_are_averaged_before_clustering() -> None:
    embeddings, truth = blobs(k=3, per_blob=20)
    noise = np.random.default_rng(5).normal(size=embeddings.shape) * 0.02
    views = np.stack([embeddings + noise, embeddings - noise], axis=1)  # (N, 2, D), mean = embeddings
    scores = independent_scores(len(truth), [0.01] * 3)
    params = {"n_clusters_range": (2, 4), "correlation_threshold": 0.6}
    by_views = DescriptorSelector(**params).fit(views.astype(np.float16), scores, ["a", "b", "c"])
    by_mean = DescriptorSelector(**params).fit(embeddings, scores, ["a", "b", "c"])
    assert adjusted_rand_score(by_views.cluster_labels_, by_mean.cluster_labels_) == 1.0
    assert by_views.selected_ == by_mean.selected_


def test_each_cluster_votes_for_the_words_that_dominate_it() -> None:
    embeddings, truth = blobs(k=3, per_blob=30)
    stds = [0.002] * 7
    scores = independent_scores(len(truth), stds)
    words = ["lion", "cow", "cat", "f1", "f2", "f3", "f4"]
    for blob in range(3):
        scores[truth == blob, blob] += 0.08  # "lion" dominates blob 0, "cow" blob 1, "cat" blob 2
    selector = DescriptorSelector(correlation_threshold=0.6).fit(embeddings, scores, words)
    cluster_of_blob = {
        blob: int(np.bincount(selector.cluster_labels_[truth == blob]).argmax()) for blob in range(3)
    }
    for blob, word in enumerate(words[:3]):
        assert selector.word_cluster_[word] == cluster_of_blob[blob]
        assert selector.vote_shares_[cluster_of_blob[blob], blob] == 1.0
    # the three dominant words vary most and are only mildly (anti-)correlated: all three are kept, first
    assert set(selector.selected_[:3]) == {"lion", "cow", "cat"}


def test_a_word_without_votes_is_not_picked_but_can_be_added_back() -> None:
    scores = independent_scores(60, [0.01, 0.01, 0.03])
    scores[:, 2] -= 1.0  # never among any image's top 2, although it varies most
    words = ["a", "b", "low"]
    free = fit_flat(scores, words, top_k=2)
    assert free.word_cluster_["low"] == -1
    assert "low" not in free.selected_
    assert free.filtered_["low"].startswith("no votes")
    assert "low" in fit_flat(scores, words, top_k=2, n_descriptors=3).selected_


# -- correlation, synonyms, antonyms ----------------------------------------------------------------------


def test_two_perfectly_correlated_descriptors_keep_one() -> None:
    scores = independent_scores(200, [0.01, 0.012, 0.008, 0.011])
    scores = np.column_stack([scores, 2.0 * scores[:, 0] + 0.1])  # "twin" = 2·a + 0.1: r = 1, 4× the variance
    selector = fit_flat(scores, ["a", "b", "c", "d", "twin"])
    assert "twin" in selector.selected_ and "a" not in selector.selected_
    assert selector.filtered_["a"] == "correlated with twin (r=+1.000)"
    assert set(selector.selected_) == {"twin", "b", "c", "d"}


def test_an_anticorrelated_antonym_pair_keeps_one() -> None:
    rng = np.random.default_rng(2)
    fat = 0.25 + 0.02 * rng.normal(size=150)
    thin = 0.5 - 0.8 * fat + 0.001 * rng.normal(size=150)
    other = independent_scores(150, [0.01, 0.01], seed=4)
    scores = np.column_stack([fat, thin, other])
    words = ["fat", "thin", "tall", "muscular"]
    selector = fit_flat(scores, words)
    assert "fat" in selector.selected_ and "thin" not in selector.selected_
    assert selector.filtered_["thin"] == "antonym of fat"  # the exact reason wins over the statistical one
    without_lexicon = fit_flat(scores, words, exclude_related=False)
    assert without_lexicon.filtered_["thin"].startswith("correlated with fat (r=-0.99")


def test_lexicon_synonyms_are_dropped_even_when_their_scores_differ() -> None:
    scores = independent_scores(100, [0.02, 0.01, 0.015])
    words = ["smiling", "smile", "serious"]
    selector = fit_flat(scores, words)
    assert selector.filtered_ == {"smile": "synonym of smiling"}
    assert set(fit_flat(scores, words, exclude_related=False).selected_) == set(words)


def test_text_similarity_spots_synonyms_among_words_outside_the_lexicon() -> None:
    scores = independent_scores(100, [0.02, 0.01, 0.015])
    text = np.array([[1.0, 0.0, 0.0], [0.99, 0.141, 0.0], [0.0, 0.0, 1.0]])  # glorp·glorpy = 0.99
    embeddings = np.random.default_rng(0).normal(size=(100, 8))
    params = {"n_clusters_range": (1, 1), "top_k": 3, "correlation_threshold": 0.5}

    selector = DescriptorSelector(**params).fit(embeddings, scores, ["glorp", "glorpy", "zint"], text)
    assert selector.filtered_ == {"glorpy": "synonym of glorp"}
    strict = DescriptorSelector(**params, text_similarity_threshold=0.995)
    assert strict.fit(embeddings, scores, ["glorp", "glorpy", "zint"], text).filtered_ == {}
    # two words the lexicon covers are judged by the lexicon alone: identical text embeddings don't matter
    same_text = np.repeat(text[:1], 3, axis=0)
    vetted = DescriptorSelector(**params).fit(
        embeddings, scores, ["hourglass", "rectangular", "tall"], same_text
    )
    assert vetted.filtered_ == {}


def test_a_lexicon_of_ones_own_replaces_the_bundled_one() -> None:
    scores = independent_scores(100, [0.02, 0.01, 0.015])
    own = Lexicon.from_groups([["glorp", "zint"]], [["glorp", "blip"]])
    selector = fit_flat(scores, ["glorp", "zint", "blip"], lexicon=own)
    assert selector.filtered_ == {"zint": "synonym of glorp", "blip": "antonym of glorp"}
    assert fit_flat(scores, ["fat", "thin", "blip"], lexicon=own).filtered_ == {}


def test_median_threshold_is_the_median_of_pairwise_absolute_correlations() -> None:
    rng = np.random.default_rng(11)
    latent = rng.normal(size=(80, 2))
    scores = 0.25 + 0.01 * (latent @ rng.normal(size=(2, 6)) + 0.5 * rng.normal(size=(80, 6)))
    scores[:, 5] = 0.3  # constant: excluded from the median, correlates with nothing
    selector = fit_flat(scores, [f"w{j}" for j in range(6)], correlation_threshold="median")
    r = np.abs(np.corrcoef(scores[:, :5], rowvar=False))[np.triu_indices(5, k=1)]
    assert selector.correlation_threshold_ == pytest.approx(np.median(r), abs=1e-12)
    assert selector.filtered_["w5"] == "constant over the dataset"
    assert (
        fit_flat(scores, [f"w{j}" for j in range(6)], correlation_threshold=0.6).correlation_threshold_ == 0.6
    )


# -- forced descriptors and the count ----------------------------------------------------------------------


def test_a_forced_word_is_kept_even_with_the_lowest_variance() -> None:
    scores = independent_scores(120, [0.03, 0.02, 0.01])
    scores = np.column_stack([scores, 0.01 * scores[:, 0]])  # "quiet": r = 1 with "loud", tiny variance
    words = ["loud", "b", "c", "quiet"]
    selector = fit_flat(scores, words, forced=("quiet",))
    assert "quiet" in selector.selected_ and selector.selected_[-1] == "quiet"  # ranked by variance
    assert selector.filtered_["loud"] == "correlated with quiet (r=+1.000)"
    assert fit_flat(scores, words, forced=("quiet",), n_descriptors=1).selected_ == ("quiet",)


def test_a_word_dropped_for_a_forced_one_does_not_knock_out_others() -> None:
    # forced "f" = x, "a" = x + y (r ≈ 0.7 with both), "b" = y (r = 0 with "f"): "a" loses to "f"; "b" is
    # compared with "f" only and stays (dropping it for "a", which is gone anyway, would lose "y" altogether)
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(2, 200))
    scores = 0.25 + np.column_stack([0.01 * x, 0.02 * (x + y), 0.015 * y])
    selector = fit_flat(scores, ["f", "a", "b"], forced=("f",))
    assert selector.selected_ == ("b", "f")
    assert selector.filtered_["a"].startswith("correlated with f (r=+0.6")


def test_forced_names_match_loosely_and_unknown_ones_are_named() -> None:
    scores = independent_scores(50, [0.02, 0.01])
    words = ["nose sticking-out", "big head"]
    assert fit_flat(scores, words, forced=("Nose sticking out",)).forced_ == ("nose sticking-out",)
    with pytest.raises(
        DescriptorSelectionError, match="'zebra'.*known descriptors: nose sticking-out, big head"
    ):
        fit_flat(scores, words, forced=("zebra",))
    assert issubclass(DescriptorSelectionError, SemantifyError)


def test_n_descriptors_trims_from_the_bottom() -> None:
    scores = independent_scores(100, [0.05, 0.04, 0.03, 0.02, 0.01])
    words = ["a", "b", "c", "d", "e"]
    free = fit_flat(scores, words)
    assert free.selected_ == ("a", "b", "c", "d", "e")
    trimmed = fit_flat(scores, words, n_descriptors=2)
    assert trimmed.selected_ == ("a", "b")
    assert {name: trimmed.filtered_[name] for name in "cde"} == dict.fromkeys("cde", "trimmed")
    assert fit_flat(scores, words, max_descriptors=3).selected_ == ("a", "b", "c")


def test_n_descriptors_adds_back_in_ranking_order_synonyms_last() -> None:
    rng = np.random.default_rng(3)
    smiling = 0.25 + 0.05 * rng.normal(size=100)
    smile = 0.25 + 0.04 * rng.normal(size=100)  # uncorrelated, but a synonym of "smiling"
    echo = 0.25 + 0.5 * (smiling - 0.25) + 0.001 * rng.normal(size=100)  # correlated with "smiling"
    scores = np.column_stack([smiling, smile, echo])
    words = ["smiling", "smile", "echo"]
    assert fit_flat(scores, words).selected_ == ("smiling",)
    two = fit_flat(scores, words, n_descriptors=2)
    assert two.selected_ == ("smiling", "echo")  # "smile" ranks higher but adds nothing new
    assert two.added_back_ == ("echo",) and two.filtered_ == {"smile": "synonym of smiling"}
    assert fit_flat(scores, words, n_descriptors=3).selected_ == ("smiling", "smile", "echo")
    assert fit_flat(scores, words, min_descriptors=2).selected_ == ("smiling", "echo")


# -- metrics -----------------------------------------------------------------------------------------------


def test_a_metric_replaces_the_word_it_measures() -> None:
    rng = np.random.default_rng(8)
    scores = independent_scores(150, [0.03, 0.02, 0.01], seed=9)
    height = 1.7 + 2.0 * (scores[:, 1] - 0.25) + 1e-4 * rng.normal(size=150)  # r ≈ 1 with "tall"
    unrelated = 70.0 + 5.0 * rng.normal(size=150)
    embeddings = rng.normal(size=(150, 8))
    selector = DescriptorSelector(n_clusters_range=(1, 1), top_k=3, correlation_threshold=0.5).fit(
        embeddings,
        scores,
        ["fat", "tall", "muscular"],
        metric_scores=np.column_stack([height, unrelated]),
        metric_names=["height", "mass"],
    )
    assert selector.ranking_ == ("fat", "height", "tall", "muscular", "mass")
    assert selector.selected_ == ("fat", "height", "muscular", "mass")
    assert selector.filtered_["tall"].startswith("correlated with height (r=+1.000")
    columns = selector.transform(scores, np.column_stack([height, unrelated]))
    np.testing.assert_array_equal(columns, np.column_stack([scores[:, 0], height, scores[:, 2], unrelated]))
    with pytest.raises(DescriptorSelectionError, match="pass metric_scores"):
        selector.transform(scores)
    assert list(selector.get_feature_names_out()) == list(selector.selected_)


# -- estimator conventions, determinism, errors ------------------------------------------------------------


def test_scikit_learn_conventions_and_determinism() -> None:
    embeddings, truth = blobs(k=3, per_blob=20, seed=1)
    scores = independent_scores(len(truth), [0.02, 0.015, 0.01, 0.005])
    selector = DescriptorSelector(n_descriptors=2, n_clusters_range=(2, 5), random_state=4)
    assert selector.get_params()["n_descriptors"] == 2
    twin = clone(selector).set_params(top_k=3)
    assert twin.get_params()["top_k"] == 3 and selector.top_k == 5
    first = selector.fit(embeddings, scores, list("abcd"))
    second = clone(selector).fit(embeddings, scores, list("abcd"))
    assert first.selected_ == second.selected_
    np.testing.assert_array_equal(first.cluster_labels_, second.cluster_labels_)
    assert first.silhouette_scores_ == second.silhouette_scores_
    np.testing.assert_array_equal(
        first.transform(scores), scores[:, [list("abcd").index(w) for w in first.selected_]]
    )
    assert "n_descriptors=2" in repr(selector)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nan": True}, r"NaN or infinite values, in the columns of \['b'\]"),
        ({"words": ["a", "a", "c"]}, r"words must be unique; repeated: \['a'\]"),
        ({"words": ["a", "b"]}, r"scores must have shape \(samples, words\) = \(30, 2\)"),
        ({"words": [], "scores": np.zeros((30, 0))}, "No candidate descriptors"),
        ({"constant": True}, "has the same value on every sample"),
        ({"params": {"n_descriptors": 4}}, "n_descriptors=4 but only 3 of the 3 candidates vary"),
        ({"params": {"n_descriptors": 1, "forced": ("a", "b")}}, "fewer than the 2 forced"),
        ({"params": {"correlation_threshold": "mean"}}, "correlation_threshold must be 'median'"),
        ({"params": {"top_k": 0}}, "top_k must be a positive integer"),
        ({"params": {"n_clusters_range": (3, 2)}}, "1 <= low <= high"),
    ],
)
def test_bad_input_gets_a_clear_error(change: dict, message: str) -> None:
    scores = independent_scores(30, [0.01, 0.02, 0.03])
    if change.get("nan"):
        scores[4, 1] = np.nan
    if change.get("constant"):
        scores[:] = 0.25
    words = change.get("words", ["a", "b", "c"])
    scores = change.get("scores", scores)
    embeddings = np.random.default_rng(0).normal(size=(30, 8))
    with pytest.raises(DescriptorSelectionError, match=message):
        DescriptorSelector(**change.get("params", {})).fit(embeddings, scores, words)


# -- properties on random data -------------------------------------------------------------------------------

POOL = ("fat", "thin", "skinny", "tall", "short", "smiling", "smile", "happy", "glorp", "zint")


def random_problem(seed: int, n_words: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Scores with random correlation structure (a few latent factors) over words with some relations."""
    rng = np.random.default_rng(seed)
    n = 40
    latent = rng.normal(size=(n, 3))
    mixing = rng.normal(size=(3, n_words)) * rng.uniform(0.0, 2.0, size=n_words)
    scores = 0.25 + 0.01 * (latent @ mixing + rng.uniform(0.1, 1.0) * rng.normal(size=(n, n_words)))
    words = [POOL[j] for j in rng.permutation(len(POOL))[:n_words]]
    return rng.normal(size=(n, 6)), scores, words


FAST = {"n_clusters_range": (2, 3), "n_init": 1}


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n_words=st.integers(3, 9),
    n_forced=st.integers(0, 2),
    threshold=st.one_of(st.just("median"), st.floats(0.05, 0.9)),
)
def test_no_two_selected_are_redundant_unless_both_forced(
    seed: int, n_words: int, n_forced: int, threshold: str | float
) -> None:
    embeddings, scores, words = random_problem(seed, n_words)
    forced = tuple(words[-n_forced:]) if n_forced else ()
    selector = DescriptorSelector(
        correlation_threshold=threshold, forced=forced, max_descriptors=n_words, **FAST
    )
    selector.fit(embeddings, scores, words)
    assert set(forced) <= set(selector.selected_)
    lexicon = default_lexicon()
    index = {name: i for i, name in enumerate(selector.descriptors_)}
    for i, first in enumerate(selector.selected_):
        for second in selector.selected_[i + 1 :]:
            if first in forced and second in forced:
                continue
            r = selector.correlation_[index[first], index[second]]
            assert abs(r) <= selector.correlation_threshold_
            assert lexicon.relation(first, second) is None
    assert set(selector.selected_).isdisjoint(selector.filtered_)
    assert set(selector.selected_) | set(selector.filtered_) == set(words)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), n_words=st.integers(3, 9), n_forced=st.integers(0, 2), data=st.data())
def test_a_fixed_count_is_always_honoured(
    seed: int, n_words: int, n_forced: int, data: st.DataObject
) -> None:
    embeddings, scores, words = random_problem(seed, n_words)
    forced = tuple(words[:n_forced])
    d = data.draw(st.integers(max(1, n_forced), n_words), label="n_descriptors")
    selector = DescriptorSelector(n_descriptors=d, forced=forced, **FAST).fit(embeddings, scores, words)
    assert len(selector.selected_) == d
    assert set(forced) <= set(selector.selected_)
    ranks = [selector.ranking_.index(name) for name in selector.selected_]
    assert ranks == sorted(ranks)


# -- the lexicon -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "relation"),
    [
        ("fat", "thin", "antonym"),
        ("thin", "skinny", "synonym"),
        ("slim", "lean", "synonym"),
        ("chubby", "skinny", "antonym"),  # antonyms carry over to synonyms
        ("short", "tall", "antonym"),
        ("small", "petite", "synonym"),
        ("big", "petite", "antonym"),
        ("happy", "sad", "antonym"),
        ("smiling", "smile", "synonym"),
        ("fearful", "scared", "synonym"),
        ("long legs", "short legs", "antonym"),  # multi-word: through the first word
        ("long arms", "short arms", "antonym"),  # ... also for phrases nobody listed
        ("broad shoulders", "wide shoulders", "synonym"),
        ("narrow face", "wide face", "antonym"),
        ("nose sticking-out", "Nose Sticking Out", "synonym"),
        ("fat", "stocky", None),  # synonymy does not chain across groups ("heavyset" is in both)
        ("long head", "long neck", None),
        ("lion", "cat", None),
    ],
)
def test_lexicon_relations(first: str, second: str, relation: str | None) -> None:
    lexicon = default_lexicon()
    assert lexicon.relation(first, second) == relation
    assert lexicon.relation(second, first) == relation


def test_the_lexicon_covers_every_bundled_vocabulary_word() -> None:
    lexicon = default_lexicon()
    assert all(lexicon.knows(word) for words in VOCABULARIES.values() for word in words)
    assert not lexicon.knows("glorp")
    assert normalise("  Nose_sticking-out ") == "nose sticking out"
    assert "skinny" in lexicon.synonyms_of("thin") and "fat" in lexicon.antonyms_of("skinny")


def test_a_contradictory_or_malformed_lexicon_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LexiconError, match="own antonym|both synonyms and antonyms"):
        Lexicon.from_groups([["big", "large"]], [["big", "large"]])
    bad = tmp_path / "lexicon.json"
    bad.write_text(json.dumps({"format": "semantify-lexicon", "format_version": 1, "synonyms": "big"}))
    with pytest.raises(LexiconError, match="lists of lists"):
        Lexicon.load(bad)
    bad.write_text("{not json")
    with pytest.raises(LexiconError, match="Cannot read"):
        Lexicon.load(bad)


def test_importing_the_package_does_not_import_scikit_learn() -> None:
    code = (
        "import sys, semantify_engine.selection as s; s.default_lexicon(); "
        "assert 'sklearn' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
