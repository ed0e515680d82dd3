"""The options that define a dataset, and the request they make: shared by ``dataset build``, ``build``
and ``demo``, so that each option means the same thing in all three and no command imports another."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..dataset.builder import DEFAULT_CHUNK_SIZE, ClipScoring, DatasetRequest
from ..dataset.ray_build import LOCAL, MODES, RAY_REQUIREMENT, RayOptions
from ..dataset.sampling import SCHEMES, SamplingPlan, scheme_for_build
from ..dataset.scorers import SCORERS, asks_clip, resolve
from ..errors import ClipWeightsError, SemantifyError
from ..models import load
from ..scoring.clip import template_for
from ..scoring.engines import ENGINE_CHOICES, ENV_ENGINE, engine_from_env
from ..scoring.vocabulary import parse_words, vocabulary_for
from .arguments import spelled
from .common import (
    add_clip_arguments,
    add_model_arguments,
    add_render_arguments,
    clip_spec_from,
    render_settings_from,
    views_from,
)


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
    clip = _clip_scoring(arguments, model.kind) if asks_clip(arguments.scorer) else None
    words, metrics = resolve(
        arguments.scorer, lambda: clip is not None and _usable(clip), lambda: _measurable(model)
    )
    clip = clip if words else None
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
        print(f"note: no measurements for this model ({spelled(error)})", file=sys.stderr)
        return False
    return True


def _clip_scoring(arguments: argparse.Namespace, kind: str) -> ClipScoring:
    words = parse_words(arguments.words) if arguments.words else vocabulary_for(kind)
    template = arguments.template or template_for(kind)
    engine = getattr(arguments, "clip_engine", None) or engine_from_env()
    return ClipScoring(spec=clip_spec_from(arguments), template=template, words=words, engine=engine)


def _usable(clip: ClipScoring) -> bool:
    """For --scorer auto: whether CLIP's weights can be loaded here; when not, say plainly why."""
    from ..scoring.clip import get_scorer

    try:
        get_scorer(clip.spec)
    except ClipWeightsError as error:
        print(
            f"note: building without CLIP scores (metric descriptors only). {spelled(error)}", file=sys.stderr
        )
        return False
    return True
