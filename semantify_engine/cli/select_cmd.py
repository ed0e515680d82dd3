"""``semantify select DATASET``: the paper's step 4 on its own, which words become sliders and why.

Researchers look at the selection before training on it: the chosen words, the clusters of images and the
words they vote for, the silhouettes behind the cluster count, why every other word was left out, and
how the chosen ones correlate. It runs the engine function ``semantify build`` runs
(:func:`~semantify_engine.selection.from_dataset.select_words`), with the same ``--descriptors`` and
``--force``, so ``--json`` prints exactly the ``result`` a build stores in ``selection.json``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from .selection_options import add_selection_arguments, forced_from

DESCRIPTION = """\
Run descriptor selection (paper §3.3) on a dataset's CLIP word scores: K-means on its image
embeddings (K by silhouette), each image's top-5 votes, ranking by score variance, correlation and
synonym/antonym filtering. Prints the chosen words, the image clusters with their votes, the
correlations among the chosen and why every other word was left out. A dataset without CLIP word
scores (measurements or attributes only) is refused: its sliders are named, not selected."""

JSON_KEYS = """\
--json prints one object, the "result" that 'semantify build' stores in OUT/selection.json:
  kind                   "words"
  selected               the chosen descriptors, in ranking order (forced ones included)
  n_clusters             K, the number of image clusters
  correlation_threshold  |r| above which two descriptors are redundant
  filtered               {name: why it was left out}, for every other candidate
  ranking                every candidate in ranking order (words by descending score variance)
  silhouette             {K: silhouette score} for each K tried
  clusters               [{cluster, images, top_votes: {word: share of the cluster's images
                         with it in their top 5}, words: the words the cluster owns}]
  correlations           {"a ~ b": Pearson r of the scores} for every pair of chosen descriptors"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "select",
        help="choose a dataset's descriptors (the paper's step 4) and say why",
        description=DESCRIPTION,
        epilog=JSON_KEYS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", help="dataset folder (semantify dataset build) with CLIP word scores")
    add_selection_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the selection as JSON (keys below)")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    from ..dataset.store import DatasetFolder
    from ..pipeline import BuildOptions
    from ..selection.from_dataset import select_words

    options = BuildOptions(n_descriptors=arguments.descriptors, forced=forced_from(arguments))
    selection = select_words(DatasetFolder(arguments.dataset), None, options.n_descriptors, options.forced)
    if arguments.json:
        print(json.dumps(selection, indent=2))
    else:
        print("\n".join(describe(selection)))
    return 0


def describe(selection: dict[str, Any]) -> list[str]:
    """The selection as tables for a terminal, made from the same data ``--json`` prints."""
    silhouettes = ", ".join(f"K={k}: {v:.3f}" for k, v in selection["silhouette"].items())
    lines = [
        f"selected ({selection['kind']}): {', '.join(selection['selected'])}",
        f"{selection['n_clusters']} image clusters (silhouettes {silhouettes or 'not computed'}); "
        f"redundant above |r| = {selection['correlation_threshold']:.3f}",
        "",
        *_clusters(selection["clusters"]),
    ]
    if len(selection["selected"]) > 1:
        lines += ["", "correlations among the chosen (Pearson r of their scores)"]
        lines += _correlations(selection["selected"], selection["correlations"])
    if selection["filtered"]:
        lines += ["", *table(["left out", "why"], [list(item) for item in selection["filtered"].items()])]
    return lines


def _clusters(clusters: Sequence[dict[str, Any]]) -> list[str]:
    """One row per image cluster: its size, the words its images vote for, the words it owns."""
    rows = [
        [
            f"cluster {cluster['cluster']}",
            str(cluster["images"]),
            ", ".join(f"{word} {share:.0%}" for word, share in cluster["top_votes"].items()) or "-",
            ", ".join(cluster["words"]) or "-",
        ]
        for cluster in clusters
    ]
    return table(["clusters", "images", "top votes (share of its images)", "words"], rows, right={1})


def _correlations(chosen: Sequence[str], correlations: dict[str, float]) -> list[str]:
    """The chosen descriptors' correlations as a symmetric matrix (the report keeps each pair once)."""
    from ..selection.from_dataset import pair_key

    rank = {name: index for index, name in enumerate(chosen)}

    def cell(row: str, column: str) -> str:
        if row == column:
            return "1"
        first, second = sorted((row, column), key=rank.__getitem__)
        return f"{correlations[pair_key(first, second)]:+.2f}"

    rows = [[row, *(cell(row, column) for column in chosen)] for row in chosen]
    return table(["", *chosen], rows, right=set(range(1, len(chosen) + 1)))


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int] | None = None) -> list[str]:
    """``rows`` under ``header`` in aligned columns (the ``right`` ones right-aligned), two spaces apart."""
    right = right or set()
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return [line(header), *(line(row) for row in rows)]
