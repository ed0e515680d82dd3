"""``semantify dataset build | merge | info``: coefficients, CLIP embeddings, scores and measurements."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..dataset.builder import build_dataset
from ..dataset.store import (
    DatasetFolder,
    Shard,
    chunk_count,
    content_checksum,
    merge_datasets,
    shard_samples,
)
from ..scoring.engines import TORCH
from .dataset_options import add_dataset_arguments, ray_options_from, request_from
from .progress import progress_bar


def register(commands: argparse._SubParsersAction) -> None:
    dataset = commands.add_parser(
        "dataset", help="build, merge and inspect datasets", description="Datasets: build, merge, info."
    )
    actions = dataset.add_subparsers(dest="action", metavar="ACTION", required=True)

    build = actions.add_parser(
        "build",
        help="sample, render, score; resumable and shardable",
        description="Sample coefficients, render them with Blender, score the images with CLIP and/or "
        "measure the meshes, chunk by chunk. Run the same command again after an interruption to resume. "
        "--shard I/N builds every N-th chunk starting at I: run one shard per machine, then "
        "'semantify dataset merge'.",
    )
    add_dataset_arguments(build)
    build.add_argument("--shard", default="0/1", help="I/N: build only shard I of N (0/1: everything)")
    build.set_defaults(run=run_build)

    merge = actions.add_parser(
        "merge",
        help="merge shard folders into one dataset",
        description="Copy the chunks of shards built with identical settings into one dataset folder.",
    )
    merge.add_argument("--out", required=True, help="the merged dataset folder")
    merge.add_argument("shards", nargs="+", help="shard dataset folders")
    merge.set_defaults(run=run_merge)

    info = actions.add_parser(
        "info",
        help="describe a dataset (sample count, checksums)",
        description="Print what a dataset holds; --json adds content checksums of coefficients and scores "
        "so two datasets can be compared from the shell.",
    )
    info.add_argument("folder", help="dataset folder")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=run_info)


def run_build(arguments: argparse.Namespace) -> int:
    shard = Shard.parse(arguments.shard)
    ray = ray_options_from(arguments)
    request = request_from(arguments)
    model, clip = request.model, request.clip
    folder = DatasetFolder(arguments.out)
    settings = request.settings()
    total = shard_samples(settings, shard)
    with progress_bar(total, f"dataset {model.name}", unit="sample") as bar:
        if ray is None:
            report = build_dataset(folder, request, shard, progress=bar.update, say=_note)
        else:
            from ..dataset.ray_build import build_dataset_on_ray

            report = build_dataset_on_ray(folder, request, ray, shard, progress=bar.update, say=_note)
    scorers = " + ".join(name for name, used in (("CLIP", clip), ("metric", request.metrics)) if used)
    print(
        f"{folder.folder}: built {report.built_samples} samples in {report.built_chunks} chunks, "
        f"{report.skipped_chunks} chunks already there; scorers: {scorers}"
    )
    return 0


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr, flush=True)


def run_merge(arguments: argparse.Namespace) -> int:
    merged = merge_datasets(arguments.out, arguments.shards)
    missing = merged.missing_chunks()
    state = "complete" if not missing else f"still missing {len(missing)} chunk(s), first {missing[0]}"
    print(f"{merged.folder}: merged {len(arguments.shards)} folder(s); {state}")
    return 0


def run_info(arguments: argparse.Namespace) -> int:
    folder = DatasetFolder(Path(arguments.folder))
    manifest = folder.read_manifest()
    settings = manifest["settings"]
    data = folder.load(require_complete=False, require_sound=False)
    problems = folder.problems(settings)
    summary = {
        "folder": str(folder.folder),
        "model": settings["model"]["name"],
        "samples": len(data.get("indices", [])),
        "samples_planned": settings["samples"],
        "chunks": f"{len(folder.present_chunks())}/{chunk_count(settings)}",
        "views": [view["name"] for view in settings["views"]],
        "words": (settings["clip"] or {}).get("words", []),
        "clip_engine": (settings["clip"] or {}).get("engine", TORCH) if settings["clip"] else None,
        "metrics": (settings["metrics"] or {}).get("names", []),
        "coefficients_checksum": content_checksum([data["coefficients"]]) if "coefficients" in data else None,
        "scores_checksum": content_checksum([data[k] for k in ("scores", "metrics") if k in data]) or None,
        "problems": problems,  # chunk files that do not belong: build rebuilds them, train refuses them
    }
    for line in problems:
        print(f"warning: {line}", file=sys.stderr)
    if arguments.json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key:>22}: {value}")
    return 0
