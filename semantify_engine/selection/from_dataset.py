"""Step 4 on a dataset folder: the paper's descriptor selection over the words a dataset scored.

:class:`~.descriptors.DescriptorSelector` works on arrays; this module reads them from a dataset (image
embeddings, word scores, the CLIP text embeddings of the prompts that scored them, and the measurements
of any forced metric), fits the selector and reports what it found as plain JSON-able data. It is the one
path both ``semantify build`` (whose ``selection.json`` holds the report) and ``semantify select`` (which
prints it) take, so the two can never choose differently for the same dataset and options.

scikit-learn and CLIP are imported only when a selection runs, like the estimator itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..dataset.store import DatasetFolder

if TYPE_CHECKING:
    from .descriptors import DescriptorSelector

# Votes listed per cluster in the report: the paper's top-k, so a cluster shows every word it could vote for.
REPORTED_VOTES = 5


def pair_key(first: str, second: str) -> str:
    """The report's key for the correlation of two chosen descriptors."""
    return f"{first} ~ {second}"


def has_word_scores(settings: Mapping[str, Any], data: Mapping[str, np.ndarray]) -> bool:
    """Whether a dataset carries what word selection needs: CLIP settings and image embeddings.

    A measurement- or attribute-only dataset (built without CLIP) has neither; its sliders are named,
    not selected.
    """
    return bool(settings.get("clip")) and "embeddings" in data


def fit_word_selector(
    folder: DatasetFolder,
    data: Mapping[str, np.ndarray] | None = None,
    n_descriptors: int | None = None,
    forced: Sequence[str] = (),
) -> DescriptorSelector:
    """The selector fitted on ``folder``'s words (``data``: its arrays, when already loaded).

    Forced names that are the dataset's measurements enter as metric candidates; every other forced name
    must be a scored word. Errors name the dataset, then say what the selector could not do.
    """
    from ..scoring.clip import prompts, recorded_clip
    from .descriptors import DescriptorSelectionError, DescriptorSelector

    settings = folder.read_manifest()["settings"]
    data = folder.load() if data is None else data
    if not has_word_scores(settings, data):
        held = [
            what
            for key, what in (("metrics", "measurements"), ("attributes", "attributes"))
            if settings.get(key)
        ]
        raise DescriptorSelectionError(
            f"Dataset {folder.folder} has no CLIP word scores (it holds {' and '.join(held) or 'no scores'} "
            "only), and descriptor selection chooses among scored words. Build a dataset with CLIP "
            "weights and words to select from, or name the measurement sliders to train directly."
        )
    clip = settings["clip"]
    words = list(clip["words"])
    metric_names = list((settings.get("metrics") or {}).get("names", []))
    forced_metrics = [name for name in forced if name in metric_names]
    text = recorded_clip(clip).encode_texts(prompts(words, clip["template"]))
    selector = DescriptorSelector(n_descriptors=n_descriptors, forced=tuple(forced), random_state=0)
    try:
        return selector.fit(
            data["embeddings"],
            data["scores"],
            words,
            text_embeddings=text,
            metric_scores=data["metrics"][:, [metric_names.index(n) for n in forced_metrics]]
            if forced_metrics
            else None,
            metric_names=forced_metrics,
        )
    except DescriptorSelectionError as error:
        raise DescriptorSelectionError(f"Dataset {folder.folder}: {error}") from error


def selection_report(selector: DescriptorSelector) -> dict[str, Any]:
    """A fitted selector as JSON-able data: the keys ``semantify select --json`` documents.

    ``selected``, ``n_clusters``, ``correlation_threshold`` and ``filtered`` (name -> why it is out) say
    what was chosen; ``ranking``, ``silhouette`` (K -> score), ``clusters`` (each with its image count,
    its top votes as shares of its images, and the words it owns) and ``correlations`` (Pearson r of every
    pair of chosen descriptors, keyed ``"a ~ b"``) say why.
    """
    names = list(selector.descriptors_)
    words = names[: selector.n_words_]
    shares = np.asarray(selector.vote_shares_)
    labels = np.asarray(selector.cluster_labels_)
    clusters = []
    for cluster in range(int(selector.n_clusters_)):
        order = [j for j in np.argsort(-shares[cluster])[:REPORTED_VOTES] if shares[cluster, j] > 0]
        clusters.append(
            {
                "cluster": cluster,
                "images": int(np.sum(labels == cluster)),
                "top_votes": {words[j]: round(float(shares[cluster, j]), 4) for j in order},
                "words": sorted(word for word, owner in selector.word_cluster_.items() if owner == cluster),
            }
        )
    chosen = [names.index(name) for name in selector.selected_]
    correlation = np.asarray(selector.correlation_)
    return {
        "kind": "words",
        "selected": list(selector.selected_),
        "n_clusters": int(selector.n_clusters_),
        "correlation_threshold": float(selector.correlation_threshold_),
        "filtered": {name: str(reason) for name, reason in selector.filtered_.items()},
        "ranking": list(selector.ranking_),
        "silhouette": {str(k): round(float(v), 4) for k, v in dict(selector.silhouette_scores_).items()},
        "clusters": clusters,
        "correlations": {
            pair_key(names[a], names[b]): round(float(correlation[a, b]), 4)
            for i, a in enumerate(chosen)
            for b in chosen[i + 1 :]
        },
    }


def select_words(
    folder: DatasetFolder,
    data: Mapping[str, np.ndarray] | None = None,
    n_descriptors: int | None = None,
    forced: Sequence[str] = (),
) -> dict[str, Any]:
    """The paper's selection on ``folder``'s words, as :func:`selection_report` describes it."""
    return selection_report(fit_word_selector(folder, data, n_descriptors, forced))
