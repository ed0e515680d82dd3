"""Descriptor selection (paper §3.3): which few of the scored words become sliders.

A dataset scores dozens of words per render; a mapper wants a handful of descriptors that each move the
shape in their own way. :class:`DescriptorSelector` is the paper's algorithm as one scikit-learn estimator
(parameters in ``__init__``, :meth:`~DescriptorSelector.fit`, learned attributes with a trailing
underscore):

1. **Cluster the renders.** Image embeddings, views averaged and L2-normalised (so that the K-means
   distance is the cosine distance CLIP is trained with), go through K-means for every K in
   ``n_clusters_range``; the K with the best silhouette score wins (ties: the smaller K).
2. **Vote.** Each image votes for its ``top_k`` best-scoring words; votes are divided by the cluster's size;
   each word belongs to the one cluster where its vote share is largest. A word no image ever ranks in
   its top ``top_k`` belongs to no cluster (``-1``) and is not picked by the algorithm itself (the
   reference code puts such words in cluster 0, an artefact of ``idxmax`` over all-zero columns), though
   it can be added back when a fixed count asks for more.
3. **Pick per cluster.** The cluster's words in descending score variance (over the whole dataset, as the
   reference code does); a word is dropped when it is a synonym / antonym of one already kept, or when
   the absolute Pearson correlation of its scores with a kept one is above the threshold.
4. **Merge** the clusters' survivors, rank them by variance again and filter again the same way, since
   two clusters may have kept correlated words.
5. **Count.** With ``n_descriptors`` set, trim from the bottom or add filtered words back in ranking order;
   otherwise keep the count within ``[min_descriptors, max_descriptors]`` (the reference code's 1..10).

Choices beyond the paper, and why:

* **Threshold.** ``"median"`` is the paper's: the median of the absolute pairwise correlations of all
  candidates (words and metrics whose values vary). A number is the reference code's style (it uses 0.6).
  A pair is "correlated" when strictly above it, so ``1.0`` turns correlation filtering off.
* **Synonyms before correlation.** A pair the lexicon relates is reported as "synonym of" / "antonym of"
  even when the scores are also correlated: the exact reason is the more useful one, and it decides the
  add-back order below. Synonymy comes from the bundled lexicon (:mod:`.lexicon`); for a pair with a word
  the lexicon does not cover, from the cosine similarity of the words' CLIP text embeddings when given.
  Text similarity detects synonyms only: antonyms share their context ("a photo of a fat person" /
  "a photo of a thin person"), so CLIP puts them *close*, not apart. For the same reason (CLIP's text
  embeddings sit in a narrow cone, and template sentences differing in one word are very similar) the
  default threshold is a strict 0.95 rather than 0.9: a missed synonym usually costs nothing, because its
  scores are then correlated with its twin's and the correlation filter drops it, whereas a false
  "synonym" drops a word the data would keep. (Not calibrated on real CLIP weights here; set
  ``text_similarity_threshold`` to suit your model.)
* **Forced descriptors** are kept whatever their variance or correlations, count toward the total, and
  are seeded into every filter, so a word correlated with a forced one is dropped in its favour.
* **Metric descriptors** (height, waist girth, ... from :mod:`semantify_engine.scoring.metrics`) do not vote
  (their units are not CLIP's) and have no variance comparable with a cosine score's (a z-scored variance
  is 1 for all of them, so that route ranks nothing). They keep the order they are given in and enter
  the ranking *just ahead of the first word whose scores they correlate with above the threshold*: "height"
  goes where "tall" would be, is kept, and "tall" is dropped as correlated with it: a measurement means
  exactly what its name says, a CLIP word only roughly. A metric correlated with no word goes after the
  words, so a trim removes it before any word the algorithm chose. Metrics still filter one another
  (height vs leg length) in ranking order.
* **Adding back** (a fixed count above what the filters left): filtered candidates in ranking order, but
  one that is a synonym or antonym of a descriptor already selected only when nothing else is left: a
  correlated word still adds some information, a synonym adds none. Constant descriptors are never added.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score
from sklearn.utils.validation import check_is_fitted

from ..errors import DescriptorSelectionError
from .lexicon import Lexicon, Relation, default_lexicon, normalise

MEDIAN = "median"


# -- validated input ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Candidates:
    """Everything ``fit`` works on, validated: words first, then metrics, one column each."""

    names: tuple[str, ...]
    n_words: int
    values: np.ndarray  # (N, W + M) float64: word scores, then metric values
    embeddings: np.ndarray  # (N, D) float64, unit rows
    text_embeddings: np.ndarray | None  # (W, D') float64, unit rows

    @property
    def word_scores(self) -> np.ndarray:
        return self.values[:, : self.n_words]

    def is_word(self, index: int) -> bool:
        return index < self.n_words


def _as_finite(array: Any, what: str, ndim: tuple[int, ...]) -> np.ndarray:
    """``array`` as float64 with one of the given dimensions and no NaN / inf, or a clear error."""
    try:
        result = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise DescriptorSelectionError(f"{what} must be a numeric array: {error}") from error
    if result.ndim not in ndim:
        shapes = " or ".join(f"{n}-D" for n in ndim)
        raise DescriptorSelectionError(f"{what} must be {shapes}, got shape {result.shape}.")
    return result


def _reject_non_finite(values: np.ndarray, what: str, names: Sequence[str] | None = None) -> None:
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    if names is not None and values.ndim == 2:
        columns = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise DescriptorSelectionError(
            f"{what} hold {int(bad.sum())} NaN or infinite values, in the columns of {columns}; rebuild or "
            "drop those samples before selecting descriptors."
        )
    raise DescriptorSelectionError(f"{what} hold {int(bad.sum())} NaN or infinite values.")


def _check_names(names: Sequence[str], what: str) -> tuple[str, ...]:
    if isinstance(names, str):
        raise DescriptorSelectionError(f"{what} must be a list of names, got the single string {names!r}.")
    result = tuple(str(name) for name in names)
    duplicates = sorted({name for name in result if result.count(name) > 1})
    if duplicates:
        raise DescriptorSelectionError(f"{what} must be unique; repeated: {duplicates}.")
    return result


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms > 0.0, norms, 1.0)


def _candidates(
    image_embeddings: Any,
    scores: Any,
    words: Sequence[str],
    text_embeddings: Any,
    metric_scores: Any,
    metric_names: Sequence[str],
) -> _Candidates:
    """Validate and assemble ``fit``'s arguments (shapes, names, finiteness)."""
    words = _check_names(words, "words")
    metric_names = _check_names(metric_names, "metric_names")
    clash = sorted(set(words) & set(metric_names))
    if clash:
        raise DescriptorSelectionError(f"{clash} are both words and metric names; rename the metrics.")
    if not words and not metric_names:
        raise DescriptorSelectionError("No candidate descriptors: give at least one word or metric.")

    embeddings = _as_finite(image_embeddings, "image_embeddings", (2, 3))
    _reject_non_finite(embeddings, "image_embeddings")
    if embeddings.ndim == 3:  # (N, views, D): one embedding per sample, like the scores
        embeddings = embeddings.mean(axis=1)
    n = embeddings.shape[0]
    if n < 2:
        raise DescriptorSelectionError(f"Descriptor selection needs at least 2 samples, got {n}.")

    word_scores = _as_finite(scores, "scores", (2,))
    if word_scores.shape != (n, len(words)):
        raise DescriptorSelectionError(
            f"scores must have shape (samples, words) = ({n}, {len(words)}), got {word_scores.shape}."
        )
    _reject_non_finite(word_scores, "scores", words)

    metrics = np.zeros((n, 0))
    if metric_scores is not None or metric_names:
        given = np.zeros((n, 0)) if metric_scores is None else metric_scores
        metrics = _as_finite(given, "metric_scores", (2,))
        if metrics.shape != (n, len(metric_names)):
            raise DescriptorSelectionError(
                f"metric_scores must have shape (samples, metric_names) = ({n}, {len(metric_names)}), "
                f"got {metrics.shape}."
            )
        _reject_non_finite(metrics, "metric_scores", metric_names)

    text = None
    if text_embeddings is not None:
        text = _as_finite(text_embeddings, "text_embeddings", (2,))
        if text.shape[0] != len(words):
            raise DescriptorSelectionError(
                f"text_embeddings must have one row per word ({len(words)}), got shape {text.shape}."
            )
        _reject_non_finite(text, "text_embeddings")
        text = _unit_rows(text)

    return _Candidates(
        names=words + metric_names,
        n_words=len(words),
        values=np.hstack([word_scores, metrics]),
        embeddings=_unit_rows(embeddings),
        text_embeddings=text,
    )


# -- statistics ---------------------------------------------------------------------------------------


def pearson_matrix(values: np.ndarray, constant: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns; a constant column correlates 0 with every other one.

    A constant descriptor carries no information, so it must not veto anything; ``np.corrcoef`` would
    give NaN there.
    """
    centred = values - values.mean(axis=0)
    std = centred.std(axis=0)
    z = np.divide(centred, std, out=np.zeros_like(centred), where=(std > 0.0) & ~constant)
    r = (z.T @ z) / len(values)
    np.clip(r, -1.0, 1.0, out=r)
    np.fill_diagonal(r, 1.0)
    return r


def median_abs_correlation(correlation: np.ndarray, usable: np.ndarray) -> float:
    """The paper's threshold: median |r| over all pairs of usable (non-constant) candidates."""
    index = np.flatnonzero(usable)
    upper = np.triu_indices(len(index), k=1)
    pairs = np.abs(correlation[np.ix_(index, index)][upper])
    return float(np.median(pairs)) if pairs.size else 1.0


def vote_shares(word_scores: np.ndarray, labels: np.ndarray, n_clusters: int, top_k: int) -> np.ndarray:
    """(clusters, words): the share of a cluster's images that rank a word in their top ``top_k``."""
    n, n_words = word_scores.shape
    if n_words == 0:
        return np.zeros((n_clusters, 0))
    k = min(top_k, n_words)
    top = np.argpartition(-word_scores, k - 1, axis=1)[:, :k]
    hits = np.zeros((n, n_words))
    hits[np.arange(n)[:, None], top] = 1.0
    counts = np.zeros((n_clusters, n_words))
    np.add.at(counts, labels, hits)
    sizes = np.bincount(labels, minlength=n_clusters).astype(np.float64)
    return counts / np.maximum(sizes, 1.0)[:, None]


def assign_words(shares: np.ndarray) -> np.ndarray:
    """Each word's cluster: where its vote share is largest (ties: the lower cluster); -1 without votes."""
    if shares.shape[1] == 0:
        return np.zeros(0, dtype=int)
    best = shares.argmax(axis=0)
    return np.where(shares.max(axis=0) > 0.0, best, -1)


# -- the estimator ------------------------------------------------------------------------------------


class DescriptorSelector(BaseEstimator):
    """Choose the descriptors that become sliders (paper §3.3); see the module docstring for the steps.

    Parameters
    ----------
    n_descriptors:
        A fixed number of descriptors, or ``None`` to keep what the algorithm finds (within
        ``[min_descriptors, max_descriptors]``). Forced descriptors count toward it.
    correlation_threshold:
        ``"median"`` (the paper: median |r| of all candidate pairs) or a number in [0, 1] (the reference
        code uses 0.6). Two descriptors are redundant when |r| is strictly above it.
    top_k:
        How many best-scoring words each image votes for (paper: 5).
    n_clusters_range:
        ``(low, high)``, inclusive: the K tried for K-means (reference: 2..10). ``(1, 1)`` skips clustering.
    forced:
        Descriptors (words or metric names) always kept. Matched exactly, else case- and hyphen-
        insensitively.
    exclude_related:
        Drop synonyms and antonyms of chosen descriptors (lexicon, plus text similarity for user words).
    text_similarity_threshold:
        Cosine of two words' text embeddings at or above which a word outside the lexicon is a synonym.
    random_state:
        Seed for K-means and the silhouette subsample; an int makes ``fit`` deterministic.
    max_descriptors, min_descriptors:
        Bounds on the count when ``n_descriptors`` is ``None`` (reference code: 1 and 10).
    n_init:
        K-means restarts per K; the best inertia wins.
    silhouette_sample_size:
        Silhouette scores on at most this many samples (exact silhouette is quadratic in N); ``None``: all.
    lexicon:
        A :class:`~semantify_engine.selection.lexicon.Lexicon` to use instead of the bundled one (another
        language, a project's own word list).

    Attributes
    ----------
    selected_: the chosen names in ranking order, forced ones included.
    descriptors_: every candidate name, words then metrics, in input order (the rows of ``correlation_``);
    n_words_: how many of them are words.
    ranking_: every candidate in ranking order (words by descending variance, metrics placed as described).
    n_clusters_, cluster_labels_, silhouette_scores_: the chosen K, each sample's cluster, K -> silhouette.
    vote_shares_: (n_clusters_, words) vote shares; word_cluster_: word -> cluster, or -1 without votes.
    variance_: name -> variance of its values (metrics: in their own units, not used for ranking).
    correlation_: (candidates, candidates) Pearson r; correlation_threshold_: the |r| limit used.
    filtered_: name -> why it is not selected; added_back_: names added back to reach the count;
    forced_: the forced names as resolved.
    """

    def __init__(
        self,
        n_descriptors: int | None = None,
        correlation_threshold: str | float = MEDIAN,
        top_k: int = 5,
        n_clusters_range: tuple[int, int] = (2, 10),
        forced: Sequence[str] = (),
        exclude_related: bool = True,
        text_similarity_threshold: float = 0.95,
        random_state: int | None = 0,
        max_descriptors: int = 10,
        min_descriptors: int = 1,
        n_init: int = 3,
        silhouette_sample_size: int | None = 2000,
        lexicon: Lexicon | None = None,
    ) -> None:
        self.n_descriptors = n_descriptors
        self.correlation_threshold = correlation_threshold
        self.top_k = top_k
        self.n_clusters_range = n_clusters_range
        self.forced = forced
        self.exclude_related = exclude_related
        self.text_similarity_threshold = text_similarity_threshold
        self.random_state = random_state
        self.max_descriptors = max_descriptors
        self.min_descriptors = min_descriptors
        self.n_init = n_init
        self.silhouette_sample_size = silhouette_sample_size
        self.lexicon = lexicon

    # -- public API -----------------------------------------------------------------------------

    def fit(
        self,
        image_embeddings: Any,
        scores: Any,
        words: Sequence[str],
        text_embeddings: Any = None,
        metric_scores: Any = None,
        metric_names: Sequence[str] = (),
    ) -> DescriptorSelector:
        """Select descriptors from a dataset.

        ``image_embeddings``: (N, D) or (N, views, D) CLIP image embeddings (views are averaged).
        ``scores``: (N, W) word scores, column j for ``words[j]``. ``text_embeddings``: optional (W, D')
        CLIP text embeddings of the words (better: of the prompts that scored them), used only to spot
        synonyms among words the lexicon does not cover. ``metric_scores`` / ``metric_names``: optional
        (N, M) measurements to mix in.
        """
        self._check_params()
        data = _candidates(image_embeddings, scores, words, text_embeddings, metric_scores, metric_names)
        forced = self._resolve_forced(data.names)
        lexicon = default_lexicon() if self.lexicon is None else self.lexicon

        constant = np.ptp(data.values, axis=0) == 0.0
        variance = data.values.var(axis=0)
        correlation = pearson_matrix(data.values, constant)
        threshold = self._threshold(correlation, ~constant)
        labels, n_clusters, silhouettes = self._cluster(data.embeddings)
        shares = vote_shares(data.word_scores, labels, n_clusters, self.top_k)
        word_cluster = assign_words(shares)
        ranking = _ranking(data, variance, correlation, threshold)
        relations = self._relations(data, lexicon)
        judge = _Judge(data.names, correlation, threshold, relations)

        filtered = _initial_reasons(data, constant, word_cluster, forced, self.top_k)
        selected = self._select(data, ranking, word_cluster, n_clusters, forced, filtered, judge)
        target = self._target(len(selected), forced, int((~constant).sum()), data.names, constant)
        added = _add_back(selected, target, ranking, constant, filtered, judge)
        _trim(selected, target, ranking, forced, filtered)

        position = {index: rank for rank, index in enumerate(ranking)}
        names = data.names
        self.descriptors_ = names
        self.n_words_ = data.n_words
        self.selected_ = tuple(names[i] for i in sorted(selected, key=position.__getitem__))
        self.ranking_ = tuple(names[i] for i in ranking)
        self.n_clusters_ = n_clusters
        self.cluster_labels_ = labels
        self.silhouette_scores_ = silhouettes
        self.vote_shares_ = shares
        self.word_cluster_ = {names[j]: int(word_cluster[j]) for j in range(data.n_words)}
        self.variance_ = {name: float(v) for name, v in zip(names, variance, strict=True)}
        self.correlation_ = correlation
        self.correlation_threshold_ = threshold
        self.filtered_ = {names[i]: filtered[i] for i in sorted(filtered, key=position.__getitem__)}
        self.added_back_ = tuple(names[i] for i in added)
        self.forced_ = tuple(names[i] for i in forced)
        return self

    def transform(self, scores: Any, metric_scores: Any = None) -> np.ndarray:
        """The selected columns, in ``selected_`` order, from scores laid out like ``fit``'s.

        ``metric_scores`` is needed only when a metric was selected.
        """
        check_is_fitted(self, "selected_")
        n_metrics = len(self.descriptors_) - self.n_words_
        scores = _as_finite(scores, "scores", (2,))
        if scores.shape[1] != self.n_words_:
            raise DescriptorSelectionError(
                f"scores must have {self.n_words_} columns (the words given to fit), got {scores.shape[1]}."
            )
        index = {name: i for i, name in enumerate(self.descriptors_)}
        wanted = [index[name] for name in self.selected_]
        if metric_scores is None:
            missing = [self.descriptors_[i] for i in wanted if i >= self.n_words_]
            if missing:
                raise DescriptorSelectionError(f"Metrics {missing} were selected; pass metric_scores too.")
            metrics = np.zeros((len(scores), n_metrics))
        else:
            metrics = _as_finite(metric_scores, "metric_scores", (2,))
            if metrics.shape != (len(scores), n_metrics):
                raise DescriptorSelectionError(
                    f"metric_scores must have shape ({len(scores)}, {n_metrics}), got {metrics.shape}."
                )
        return np.hstack([scores, metrics])[:, wanted]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The names of :meth:`transform`'s columns (scikit-learn convention)."""
        check_is_fitted(self, "selected_")
        return np.asarray(self.selected_, dtype=object)

    # -- parameters ---------------------------------------------------------------------------

    def _check_params(self) -> None:
        """Validate parameters at ``fit`` (scikit-learn leaves ``__init__`` to store them as given)."""
        fail = DescriptorSelectionError
        d = self.n_descriptors
        if d is not None and (not isinstance(d, Integral) or isinstance(d, bool) or d < 1):
            raise fail(f"n_descriptors must be None or a positive integer, got {d!r}.")
        t = self.correlation_threshold
        if not (t == MEDIAN or (isinstance(t, Real) and not isinstance(t, bool) and 0.0 <= t <= 1.0)):
            raise fail(f"correlation_threshold must be 'median' or a number in [0, 1], got {t!r}.")
        if not isinstance(self.top_k, Integral) or self.top_k < 1:
            raise fail(f"top_k must be a positive integer, got {self.top_k!r}.")
        low_high = tuple(self.n_clusters_range) if isinstance(self.n_clusters_range, Sequence) else ()
        if len(low_high) != 2 or not all(isinstance(k, Integral) for k in low_high):
            raise fail(f"n_clusters_range must be (low, high) integers, got {self.n_clusters_range!r}.")
        if not 1 <= low_high[0] <= low_high[1]:
            raise fail(f"n_clusters_range needs 1 <= low <= high, got {self.n_clusters_range!r}.")
        s = self.text_similarity_threshold
        if not isinstance(s, Real) or not -1.0 <= s <= 1.0:
            raise fail(f"text_similarity_threshold must be a cosine in [-1, 1], got {s!r}.")
        lo, hi = self.min_descriptors, self.max_descriptors
        if not (isinstance(lo, Integral) and isinstance(hi, Integral) and 1 <= lo <= hi):
            raise fail(f"Need 1 <= min_descriptors <= max_descriptors, got {lo!r} and {hi!r}.")
        if not isinstance(self.n_init, Integral) or self.n_init < 1:
            raise fail(f"n_init must be a positive integer, got {self.n_init!r}.")
        sample = self.silhouette_sample_size
        if sample is not None and (not isinstance(sample, Integral) or sample < 2):
            raise fail(f"silhouette_sample_size must be None or an integer >= 2, got {sample!r}.")

    def _resolve_forced(self, names: tuple[str, ...]) -> list[int]:
        """Indices of the forced descriptors; exact names first, then case/hyphen-insensitive ones."""
        requested = [self.forced] if isinstance(self.forced, str) else list(self.forced)
        exact = {name: i for i, name in enumerate(names)}
        loose: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            loose.setdefault(normalise(name), []).append(i)
        resolved: list[int] = []
        unknown: list[str] = []
        for name in requested:
            if name in exact:
                index = exact[name]
            elif len(loose.get(normalise(name), [])) == 1:
                index = loose[normalise(name)][0]
            else:
                unknown.append(str(name))
                continue
            if index not in resolved:
                resolved.append(index)
        if unknown:
            raise DescriptorSelectionError(
                f"Forced descriptor(s) {', '.join(repr(n) for n in unknown)} not among the candidates; "
                f"known descriptors: {', '.join(names)}."
            )
        return resolved

    def _threshold(self, correlation: np.ndarray, usable: np.ndarray) -> float:
        if self.correlation_threshold == MEDIAN:
            return median_abs_correlation(correlation, usable)
        return float(self.correlation_threshold)

    def _target(
        self, found: int, forced: list[int], n_usable: int, names: tuple[str, ...], constant: np.ndarray
    ) -> int:
        """How many descriptors to end with, or a clear error when that cannot be met."""
        usable = n_usable + sum(1 for i in forced if constant[i])
        if usable == 0:
            raise DescriptorSelectionError(
                f"Every candidate descriptor ({', '.join(names)}) has the same value on every sample; "
                "nothing can become a slider. Check that the dataset's samples differ."
            )
        if self.n_descriptors is not None:
            if self.n_descriptors < len(forced):
                raise DescriptorSelectionError(
                    f"n_descriptors={self.n_descriptors} is fewer than the {len(forced)} forced descriptors."
                )
            if self.n_descriptors > usable:
                raise DescriptorSelectionError(
                    f"n_descriptors={self.n_descriptors} but only {usable} of the {len(names)} candidates "
                    "vary over the dataset; ask for fewer or score more words."
                )
            return int(self.n_descriptors)
        if len(forced) > self.max_descriptors:
            raise DescriptorSelectionError(
                f"{len(forced)} descriptors are forced but max_descriptors={self.max_descriptors}; raise it."
            )
        return min(max(found, self.min_descriptors, len(forced)), self.max_descriptors, usable)

    # -- the algorithm ---------------------------------------------------------------------------

    def _cluster(self, embeddings: np.ndarray) -> tuple[np.ndarray, int, dict[int, float]]:
        """K-means for every K in range; the best silhouette wins (ties: smaller K).

        A K whose K-means finds fewer distinct clusters than K (duplicate samples) is skipped; so are all
        when fewer than 3 samples make silhouette undefined, and then everything is one cluster.
        """
        n = len(embeddings)
        low, high = self.n_clusters_range
        scores: dict[int, float] = {}
        labelings: dict[int, np.ndarray] = {}
        sample = self.silhouette_sample_size
        sample = sample if sample is not None and n > sample else None
        for k in range(max(low, 2), min(high, n - 1) + 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
                labels = model.fit_predict(embeddings)
            if len(np.unique(labels)) != k:
                continue
            try:
                score = silhouette_score(
                    embeddings, labels, sample_size=sample, random_state=self.random_state
                )
            except ValueError:  # a subsample that caught a single cluster: silhouette undefined there
                continue
            scores[k] = float(score)
            labelings[k] = labels.astype(int)
        if not scores:
            return np.zeros(n, dtype=int), 1, scores
        best = max(scores, key=lambda k: (scores[k], -k))
        return labelings[best], best, scores

    def _relations(self, data: _Candidates, lexicon: Lexicon) -> dict[tuple[int, int], Relation]:
        """Synonym / antonym relations between words (both orders); metrics have none."""
        relations: dict[tuple[int, int], Relation] = {}
        if not self.exclude_related:
            return relations
        words = data.names[: data.n_words]
        text = data.text_embeddings
        for i in range(len(words)):
            for j in range(i + 1, len(words)):
                relation = lexicon.relation(words[i], words[j])
                vetted = lexicon.knows(words[i]) and lexicon.knows(words[j])
                similar = text is not None and float(text[i] @ text[j]) >= self.text_similarity_threshold
                if relation is None and not vetted and similar:
                    relation = "synonym"
                if relation is not None:
                    relations[i, j] = relations[j, i] = relation
        return relations

    def _select(
        self,
        data: _Candidates,
        ranking: list[int],
        word_cluster: np.ndarray,
        n_clusters: int,
        forced: list[int],
        filtered: dict[int, str],
        judge: _Judge,
    ) -> list[int]:
        """Steps 3 and 4: greedy pick per cluster, then over the merged survivors.

        Forced descriptors, and the metrics that survive among themselves, are seeded into every walk:
        both win against any correlated word, so settling them first keeps a word that would only be
        dropped for a word that itself loses to them later. (A metric is never dropped for a word: it
        is ranked ahead of every word it correlates with.)
        """
        open_ = [i for i in ranking if i not in filtered and i not in forced]
        metrics, reasons = judge.greedy([i for i in open_ if not data.is_word(i)], seed=forced)
        filtered.update(reasons)
        seed = [*forced, *metrics]
        survivors: set[int] = set()
        for cluster in range(n_clusters):
            members = [i for i in open_ if data.is_word(i) and word_cluster[i] == cluster]
            kept, reasons = judge.greedy(members, seed=seed)
            survivors.update(kept)
            filtered.update(reasons)
        kept, reasons = judge.greedy([i for i in open_ if i in survivors], seed=seed)
        filtered.update(reasons)
        return [*seed, *kept]


@dataclass(frozen=True, eq=False)
class _Judge:
    """Decides whether a candidate is redundant with the descriptors kept so far, and says why."""

    names: tuple[str, ...]
    correlation: np.ndarray
    threshold: float
    relations: dict[tuple[int, int], Relation]

    def related(self, index: int, kept: Sequence[int]) -> str | None:
        for other in kept:
            relation = self.relations.get((index, other))
            if relation is not None:
                return f"{relation} of {self.names[other]}"
        return None

    def correlated(self, index: int, kept: Sequence[int]) -> str | None:
        if not kept:
            return None
        r = self.correlation[index, list(kept)]
        strongest = int(np.argmax(np.abs(r)))
        if abs(r[strongest]) > self.threshold:
            return f"correlated with {self.names[kept[strongest]]} (r={r[strongest]:+.3f})"
        return None

    def greedy(self, candidates: Sequence[int], seed: Sequence[int]) -> tuple[list[int], dict[int, str]]:
        """Walk ``candidates`` in order; keep each one neither related nor correlated to a kept one."""
        kept = list(seed)
        reasons: dict[int, str] = {}
        for index in candidates:
            reason = self.related(index, kept) or self.correlated(index, kept)
            if reason is None:
                kept.append(index)
            else:
                reasons[index] = reason
        return kept[len(seed) :], reasons


def _ranking(data: _Candidates, variance: np.ndarray, correlation: np.ndarray, threshold: float) -> list[int]:
    """Words by descending variance (ties: input order); each metric just ahead of the first word it
    correlates with above the threshold, or after all words (see the module docstring)."""
    words = sorted(range(data.n_words), key=lambda j: (-variance[j], j))
    anchored: dict[int, list[int]] = {}
    trailing: list[int] = []
    for metric in range(data.n_words, len(data.names)):
        anchor = next((rank for rank, j in enumerate(words) if abs(correlation[metric, j]) > threshold), None)
        if anchor is None:
            trailing.append(metric)
        else:
            anchored.setdefault(anchor, []).append(metric)
    ranking: list[int] = []
    for rank, word in enumerate(words):
        ranking.extend(anchored.get(rank, []))
        ranking.append(word)
    return ranking + trailing


def _initial_reasons(
    data: _Candidates, constant: np.ndarray, word_cluster: np.ndarray, forced: list[int], top_k: int
) -> dict[int, str]:
    """Candidates out before any filter: constant ones, and words no image voted for."""
    reasons: dict[int, str] = {}
    for i in range(len(data.names)):
        if i in forced:
            continue
        if constant[i]:
            reasons[i] = "constant over the dataset"
        elif data.is_word(i) and word_cluster[i] < 0:
            reasons[i] = f"no votes (never among the top {top_k} of any image)"
    return reasons


def _add_back(
    selected: list[int],
    target: int,
    ranking: list[int],
    constant: np.ndarray,
    filtered: dict[int, str],
    judge: _Judge,
) -> list[int]:
    """Add filtered candidates in ranking order up to ``target``; synonyms/antonyms of selected ones last."""
    pool = [i for i in ranking if i not in selected and not constant[i]]
    added: list[int] = []
    while len(selected) < target and pool:
        pick = next((i for i in pool if judge.related(i, selected) is None), pool[0])
        pool.remove(pick)
        selected.append(pick)
        added.append(pick)
        filtered.pop(pick, None)
    return added


def _trim(
    selected: list[int], target: int, ranking: list[int], forced: list[int], filtered: dict[int, str]
) -> None:
    """Drop the lowest-ranked non-forced descriptors until ``target`` remain."""
    for index in reversed(ranking):
        if len(selected) <= target:
            return
        if index in selected and index not in forced:
            selected.remove(index)
            filtered[index] = "trimmed"
