"""Compare the metric scorer's body measurements with anny's own anthropometry on the same meshes.

Run by maintainers, in the environment that has anny (see tools/build_anny_models.py)::

    ANNY_CACHE_DIR=/tmp/anny_cache python tools/compare_anny_anthropometry.py [--samples 500]

It samples adult anny bodies exactly as the bundled models were sampled (anny's calibrated shape
distribution plus local changes, from a seed none of the builds used), then measures every body twice:

- with ``anny.Anthropometry`` (height, waist circumference along anny's waist vertex loop, volume, mass at
  980 kg/m³), the only measurements anny defines;
- with :class:`semantify_engine.scoring.metrics.MetricScorer` on the *same* vertices (anny's topology is the
  bundled anny-body topology), and again after projecting each body onto the anny-body PCA model (what
  a slider can reach: the PCA truncation's effect on each measurement).

It prints, per measurement, both means, the mean and largest absolute difference and the correlation, plus
our measurements that anny lacks (chest, hips, shoulder width, leg length) with their correlation to
anny's macro parameters, and the time our scorer takes per body. It also checks the landmark file against
anny's own data (topology, waist loop), so a changed anny cannot silently shift the landmarks.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "tools"):  # run as a script from anywhere
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from build_anny_models import (  # noqa: E402
    GENDER_RANGES,
    AnnySampler,
    fit_coefficients,
    ground,
    require_anny,
)

from semantify_engine.models import load  # noqa: E402
from semantify_engine.scoring import metrics  # noqa: E402
from semantify_engine.scoring.metrics import MetricScorer  # noqa: E402

COMPARE_SEED = 90_210  # not one of build_anny_models.SEEDS (nor their held-out offsets)
ANNY_DENSITY_KG_M3 = 980.0  # anny.Anthropometry.mass


def check_landmarks(anny: Any, sampler: AnnySampler) -> list[str]:
    """Problems found between the landmark file and anny's own data (an empty list when all agree)."""
    from anny.anthropometry import BASE_MESH_WAIST_VERTICES

    definition = metrics.load_definition(metrics.LANDMARK_DIR / "anny-body.json")
    problems = []
    faces = sampler.model.faces.numpy()
    if metrics.faces_hash(faces) != definition["topology"]["faces_sha256"]:
        problems.append(f"anny {anny.__version__}'s body faces differ from the landmark file's topology")
    base = sampler.model.base_mesh_vertex_indices.numpy().tolist()
    waist = [base.index(index) for index in BASE_MESH_WAIST_VERTICES]
    if waist != definition["landmarks"]["waist_loop"]:
        problems.append("the landmark file's waist_loop is not anny's BASE_MESH_WAIST_VERTICES")
    return problems


def sample_bodies(sampler: AnnySampler, count: int, seed: int) -> dict[str, np.ndarray]:
    """``count`` grounded adult rest shapes (float64, neutral population) and their macro parameters."""
    phenotypes, local = sampler.sample_parameters(count, seed, GENDER_RANGES["anny-body"])
    vertices, joints = sampler.rest_shapes(phenotypes, local)
    ground(vertices, joints)
    labels = list(sampler.model.phenotype_labels)
    return {"vertices": vertices, **{label: phenotypes[:, i].numpy() for i, label in enumerate(labels)}}


def anny_measurements(anny: Any, sampler: AnnySampler, vertices: np.ndarray) -> dict[str, np.ndarray]:
    """anny's Anthropometry on rest vertices ``(N, V, 3)``, in batches."""
    import torch

    anthropometry = anny.Anthropometry(sampler.model)
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, len(vertices), 128):
            batch = torch.as_tensor(vertices[start : start + 128])
            for key, value in anthropometry(batch).items():
                parts.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(value) for key, value in parts.items()}


def projected(vertices: np.ndarray) -> np.ndarray:
    """Each body replaced by its least-squares reconstruction in the bundled anny-body PCA model."""
    model = load("anny-body")
    coefficients = fit_coefficients(model, vertices, model.component_count)
    return model.vertices(coefficients.astype(np.float32)).astype(np.float64)


def agreement_row(name: str, theirs: np.ndarray, ours: np.ndarray, scale: float, unit: str) -> str:
    difference = (ours - theirs) * scale
    correlation = np.corrcoef(theirs, ours)[0, 1]
    means = f"{theirs.mean() * scale:9.1f} {ours.mean() * scale:9.1f}"
    differences = (
        f"{np.abs(difference).mean():9.2f} {difference.mean():+9.2f} {np.abs(difference).max():9.2f}"
    )
    return f"{name:34s} {means} {differences} {correlation:8.4f}  {unit}"


def print_agreement(
    anny_values: dict[str, np.ndarray], ours: np.ndarray, names: tuple[str, ...], label: str
) -> None:
    column = {name: ours[:, i].astype(np.float64) for i, name in enumerate(names)}
    print(f"\n{label}")
    headings = ("anny", "ours", "mean|d|", "mean d", "max|d|")
    print(f"{'measurement':34s} " + " ".join(f"{h:>9s}" for h in headings) + f" {'corr':>8s}")
    print(agreement_row("height", anny_values["height"], column["height"], 1000.0, "mm"))
    print(
        agreement_row(
            "waist (anny: loop polyline)", anny_values["waist_circumference"], column["waist"], 1000.0, "mm"
        )
    )
    our_volume = column["mass"] / metrics.BODY_DENSITY_KG_M3
    print(agreement_row("volume", anny_values["volume"], our_volume, 1000.0, "litres"))
    print(agreement_row("mass (anny 980, ours 985 kg/m3)", anny_values["mass"], column["mass"], 1.0, "kg"))
    print(
        agreement_row(
            "mass at anny's density", anny_values["mass"], our_volume * ANNY_DENSITY_KG_M3, 1.0, "kg"
        )
    )


def print_others(samples: dict[str, np.ndarray], ours: np.ndarray, names: tuple[str, ...]) -> None:
    """Our measurements anny lacks: their spread, and how they follow anny's macro parameters."""
    macros = [key for key in ("height", "weight", "muscle", "gender", "proportions", "age") if key in samples]
    print(
        "\nall our measurements on the same bodies: mean, sd, range; correlation with anny's macro parameters"
    )
    print(
        f"{'measurement':16s} {'mean':>8s} {'sd':>7s} {'min':>8s} {'max':>8s}  "
        + " ".join(f"{m:>11s}" for m in macros)
    )
    for i, name in enumerate(names):
        values = ours[:, i].astype(np.float64)
        scale, unit = (1.0, "kg") if name == "mass" else (1000.0, "mm")
        correlations = " ".join(f"{np.corrcoef(values, samples[m])[0, 1]:11.3f}" for m in macros)
        spread = [values.mean(), values.std(), values.min(), values.max()]
        numbers = " ".join(f"{value * scale:8.1f}" for value in spread)
        print(f"{name:16s} {numbers}  {correlations}   ({unit})")


def time_scorer(scorer: MetricScorer, vertices: np.ndarray) -> tuple[float, float]:
    """Best-of-5 milliseconds per body, one body at a time and in one batch."""
    single = vertices[0].astype(np.float32)
    batch = vertices[:64].astype(np.float32)
    scorer.measure(batch[:2])
    one = min(_seconds(lambda: scorer.measure(single)) for _ in range(5)) * 1000.0
    many = min(_seconds(lambda: scorer.measure(batch)) for _ in range(5)) * 1000.0 / len(batch)
    return one, many


def _seconds(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=500, help="bodies to sample (default 500)")
    parser.add_argument("--seed", type=int, default=COMPARE_SEED)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    arguments = parser.parse_args(argv)
    if "ANNY_CACHE_DIR" not in os.environ:
        print("ANNY_CACHE_DIR is not set: anny caches about 1.3 GB under ~/.cache/anny", flush=True)
    anny = require_anny()
    import torch

    torch.set_num_threads(arguments.threads)
    started = time.time()
    sampler = AnnySampler.create(anny)
    print(f"anny {anny.__version__} body model ready in {time.time() - started:.0f} s", flush=True)
    problems = check_landmarks(anny, sampler)
    for problem in problems:
        print(f"LANDMARK PROBLEM: {problem}")
    samples = sample_bodies(sampler, arguments.samples, arguments.seed)
    vertices = samples["vertices"]
    print(f"sampled {len(vertices)} adult bodies (seed {arguments.seed}, neutral population)")
    theirs = anny_measurements(anny, sampler, vertices)
    scorer = MetricScorer.for_model(load("anny-body"))
    ours = scorer.measure(vertices)
    print_agreement(theirs, ours, scorer.names, "anny's Anthropometry vs ours, on anny's own vertices")
    print_agreement(
        theirs,
        scorer.measure(projected(vertices)),
        scorer.names,
        "the same, ours after projecting onto anny-body's 30 components",
    )
    print_others(samples, ours, scorer.names)
    one, many = time_scorer(scorer, vertices)
    print(
        f"\nmetric scorer, all {len(scorer.names)} measurements: {one:.2f} ms per body alone, "
        f"{many:.2f} ms per body in a batch of 64"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
