"""``semantify select DATASET``: the paper's step 4 on its own, which descriptors become sliders and why.

Researchers look at the selection before training on it: the chosen words, the clusters of images and the
words they vote for, the silhouettes behind the cluster count, why every other word was left out, and
how the chosen ones correlate. The same function as ``semantify build`` (one rule, one place).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..scoring.vocabulary import parse_words


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "select",
        help="choose a dataset's descriptors (the paper's step 4) and say why",
        description="Run descriptor selection on a dataset: K-means on its image embeddings, top-5 votes, "
        "variance ranking, correlation and synonym/antonym filtering (paper §3.3) when it has CLIP scores; "
        "the default measurement and attribute sliders when it has none. Prints the chosen descriptors, "
        "clusters, votes, why each other word was left out and the correlations among the chosen.",
    )
    parser.add_argument("dataset", help="dataset folder (semantify dataset build)")
    parser.add_argument("--descriptors", type=int, help="how many (default: what the algorithm finds)")
    parser.add_argument("--force", help="comma-separated words or measurements always kept")
    parser.add_argument("--model-dir", help="folder with your SMPL-family / SMAL files, for user models")
    parser.add_argument("--json", action="store_true", help="print the whole selection as JSON")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    from ..dataset.store import DatasetFolder
    from ..models import load
    from ..pipeline import BuildOptions, select_descriptors

    options = BuildOptions(
        n_descriptors=arguments.descriptors,
        forced=parse_words(arguments.force) if arguments.force else (),
    )
    folder = DatasetFolder(arguments.dataset)
    settings = folder.read_manifest()["settings"]
    model = load(settings["model"]["spec"], arguments.model_dir)
    selection = select_descriptors(folder, folder.load(), model, options)
    if arguments.json:
        print(json.dumps(selection, indent=2))
    else:
        print("\n".join(describe(selection)))
    return 0


def describe(selection: dict[str, Any]) -> list[str]:
    """The selection as lines for a terminal."""
    lines = [f"selected ({selection['kind']}): {', '.join(selection['selected'])}"]
    if selection["kind"] == "words":
        lines.append(
            f"{selection['n_clusters']} image clusters (silhouettes "
            + ", ".join(f"K={k}: {v:.3f}" for k, v in selection["silhouette"].items())
            + f"); redundant above |r| = {selection['correlation_threshold']:.3f}"
        )
        for cluster in selection["clusters"]:
            votes = ", ".join(f"{word} {share:.0%}" for word, share in cluster["top_votes"].items())
            lines.append(f"  cluster {cluster['cluster']} ({cluster['images']} images): votes {votes}")
        if selection["correlations"]:
            pairs = ", ".join(f"{pair} r={r:+.2f}" for pair, r in selection["correlations"].items())
            lines.append(f"correlations among the chosen: {pairs}")
    for name, reason in selection["filtered"].items():
        lines.append(f"  left out {name}: {reason}")
    return lines
