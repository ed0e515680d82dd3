"""``semantify dataset build | merge | info``: coefficients, CLIP embeddings, scores and measurements."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..dataset.builder import DEFAULT_CHUNK_SIZE, SCORERS, ClipScoring, DatasetRequest, build_dataset
from ..dataset.ray_build import LOCAL, MODES, RAY_REQUIREMENT, RayOptions
from ..dataset.sampling import SCHEMES, SamplingPlan, scheme_for_build
from ..dataset.store import (
    DatasetFolder,
    Shard,
    chunk_count,
    content_checksum,
    merge_datasets,
    shard_samples,
)
from ..errors import ClipWeightsError, SemantifyError
from ..models import load
from ..scoring.clip import template_for
from ..scoring.engines import ENGINE_CHOICES, ENV_ENGINE, TORCH, engine_from_env
from ..scoring.vocabulary import parse_words, vocabulary_for
from .common import (
    add_clip_arguments,
    add_model_arguments,
    add_render_arguments,
    clip_spec_from,
    render_settings_from,
    views_from,
)
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


def add_dataset_arguments(parser: argparse.ArgumentParser, samples_help: str | None = None) -> None:
    """The options that define a dataset; shared by ``dataset build`` and ``build``.

    ``samples_help`` None makes ``--samples`` required; otherwise it is optional, described by it.
    """
    add_model_arguments(parser, positional=False)
    if samples_help is None:
        parser.add_argument("--samples", type=int, required=True, help="number of samples")
    else:
        parser.add_argument("--samples", type=int, help=samples_help)
    parser.add_argument("--out", required=True, help="output folder (created, or resumed)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (0)")
    parser.add_argument(
        "--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="samples per chunk file (64)"
    )
    sampling = parser.add_argument_group("sampling")
    sampling.add_argument(
        "--scheme",
        choices=SCHEMES,
        help="uniform (the paper's; default), reference, normal, sparse (a few components at a time; "
        "the default for expressions), bank (the model's source bodies; the default for the bundled "
        "bodies) or settings (their shape settings without individual detail; what semantify build "
        "uses for attribute sliders alone)",
    )
    sampling.add_argument("--sigma", type=float, help="range in std (paper: 2 for shapes, 4 for expressions)")
    sampling.add_argument(
        "--components",
        type=int,
        help="how many components to sample (10; semantify build: 30 for bodies, all for sparse expressions)",
    )
    scoring = parser.add_argument_group("scoring")
    scoring.add_argument(
        "--scorer",
        choices=SCORERS,
        default="auto",
        help="clip, metric, both, or auto: both when CLIP weights are available, else metric (auto)",
    )
    add_clip_arguments(scoring)
    scoring.add_argument("--words", help="comma-separated descriptor words (default: the model kind's list)")
    scoring.add_argument("--template", help="prompt template with {} for the word (default per model kind)")
    scoring.add_argument(
        "--clip-engine",
        choices=ENGINE_CHOICES,
        help="what runs CLIP's image tower: torch (fp32, the reference), onnx, onnx-int8 (ONNX Runtime), or "
        "auto: the fastest that passes its fidelity check against torch on this build's first images "
        f"(default ${ENV_ENGINE} or auto)",
    )
    add_render_arguments(parser)
    cluster = parser.add_argument_group("Ray cluster")
    cluster.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL,
        metavar="ADDRESS",
        help="build the chunks on Ray workers: 'auto' (the cluster this machine belongs to), a cluster "
        "address (HOST:6379, ray://HOST:10001), or none for a Ray instance on this machine. Needs "
        f"'pip install semantify[ray]' ({RAY_REQUIREMENT}); the folder is the one a local build writes",
    )
    cluster.add_argument(
        "--ray-workers", type=int, help="worker processes (default: one per CPU of the cluster)"
    )
    cluster.add_argument(
        "--ray-mode",
        choices=MODES,
        default="actors",
        help="actors: a fixed pool of workers fed chunk by chunk (default); tasks: one Ray task per chunk, "
        "each process keeping what it loaded",
    )


def ray_options_from(arguments: argparse.Namespace) -> RayOptions | None:
    """The Ray options the command line asks for, or None for a build in this process."""
    if getattr(arguments, "ray", None) is None:
        if getattr(arguments, "ray_workers", None) is not None:
            raise SemantifyError("--ray-workers needs --ray (a build on a Ray cluster).")
        return None
    return RayOptions(address=arguments.ray, workers=arguments.ray_workers, mode=arguments.ray_mode)


def request_from(
    arguments: argparse.Namespace, components: int | None = None, forced: tuple[str, ...] | None = None
) -> DatasetRequest:
    """The dataset request the options describe (CLIP loaded, or dropped with a note, for --scorer auto).

    ``forced`` is given by ``semantify build`` (the sliders it is asked for): with no --scheme, the build
    then samples what its sliders need (:func:`..dataset.sampling.scheme_for_build`)."""
    model = load(arguments.model, arguments.model_dir)
    clip = None
    if arguments.scorer in ("clip", "both", "auto"):
        clip = _clip_scoring(arguments, model.kind)
        if arguments.scorer == "auto":
            clip = _usable_or_none(clip)
    scheme = arguments.scheme
    if scheme is None and forced is not None:
        scheme = scheme_for_build(model, words=clip is not None, forced=forced)
    plan = SamplingPlan.for_model(
        model,
        seed=arguments.seed,
        scheme=scheme,
        sigmas=arguments.sigma,
        components=arguments.components if arguments.components is not None else components,
    )
    metrics = arguments.scorer in ("metric", "both") or (arguments.scorer == "auto" and _measurable(model))
    samples = arguments.samples
    if samples is None:  # `semantify build` leaves the count to the pipeline's defaults
        from ..pipeline import default_build_samples

        samples = default_build_samples(clip is not None)
    return DatasetRequest(
        model_spec=arguments.model,
        model=model,
        samples=samples,
        plan=plan,
        views=views_from(arguments),
        render=render_settings_from(arguments),
        clip=clip,
        metrics=metrics,
        chunk_size=arguments.chunk_size,
        model_dir=arguments.model_dir,
    )


def _measurable(model: Any) -> bool:
    from ..scoring.metrics import MetricScorer

    try:
        MetricScorer.for_model(model)
    except SemantifyError as error:
        print(f"note: no measurements for this model ({error})", file=sys.stderr)
        return False
    return True


def _clip_scoring(arguments: argparse.Namespace, kind: str) -> ClipScoring:
    words = parse_words(arguments.words) if arguments.words else vocabulary_for(kind)
    template = arguments.template or template_for(kind)
    engine = getattr(arguments, "clip_engine", None) or engine_from_env()
    return ClipScoring(spec=clip_spec_from(arguments), template=template, words=words, engine=engine)


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


def _usable_or_none(clip: ClipScoring) -> ClipScoring | None:
    """For --scorer auto: CLIP when its weights can be loaded here, else say plainly why not."""
    from ..scoring.clip import get_scorer

    try:
        get_scorer(clip.spec)
    except ClipWeightsError as error:
        print(f"note: building without CLIP scores (metric descriptors only). {error}", file=sys.stderr)
        return None
    return clip


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
