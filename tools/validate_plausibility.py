"""Check the bundled bodies' plausibility and attribute sliders against anny itself (maintainers only).

Run in the environment that has anny (see ``tools/build_anny_models.py``)::

    ANNY_CACHE_DIR=/tmp/anny_cache OMP_NUM_THREADS=1 python tools/validate_plausibility.py --out OUT

For each bundled body model and its shipped default mapper it fits anny (``tools/anny_fit.py``: shape
settings, local changes and translation) to bodies and reports, in ``OUT/validation.json`` and
``OUT/validation.md``:

- **realistic baseline**: the fit residual (mean vertex distance, mm) of held-out realistic anny adults
  projected onto the model (a fresh seed none of the builds used): what "a body MakeHuman makes" scores;
- **the mapper's bodies**: residual at every slider end (the others at their defaults), at the least
  plausible box corners and at random slider settings; the worst slider end against the baseline (the
  goal: at most 2x);
- **rank agreement**: Spearman's rho between the model's plausibility score and the fit residual over those
  bodies and, to give the ranking a spread to rank, the same mapper pushed past its slider box (slider
  values beyond the ends, evaluated without clamping);
- **attribute sliders, measured independently**: each attribute slider swept with the others at their
  defaults, anny fitted to every body, anny's fitted setting against the requested one (age converted to
  years with anny's own map): mean error, cross-talk onto the other fitted settings (fraction of their
  population range) and the span reached (fraction of the population range), beside the same figures for
  a perfect slider (anny's own bodies with exactly the requested setting and the height held as the
  mapper holds it: the fitter's own floor);
- **height by anny's own anthropometry** along the height slider, against the request.
"""

from __future__ import annotations

import argparse
import json
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

from anny_fit import AnnyFitter  # noqa: E402
from build_anny_models import GENDER_RANGES, AnnySampler, fit_coefficients, ground, require_anny  # noqa: E402

from semantify_engine.evaluation.fidelity import sweep_values  # noqa: E402
from semantify_engine.evaluation.plausibility import box_corners, random_settings  # noqa: E402
from semantify_engine.evaluation.semantic import rank_correlation  # noqa: E402
from semantify_engine.mapper import load_mapper  # noqa: E402
from semantify_engine.mapper.defaults import default_mappers_for  # noqa: E402
from semantify_engine.models import LinearMorphableModel, load  # noqa: E402
from semantify_engine.models.bank import ATTRIBUTE_SETTINGS  # noqa: E402

VALIDATION_SEED = 77_001  # not one of build_anny_models.SEEDS (nor their offsets)
REALISTIC_BODIES = 24
RANDOM_SETTINGS = 24
CORNERS = 8
ATTRIBUTE_STEPS = 7
STRESS_REACH = 0.5
"""Stress bodies: slider values up to this fraction of each slider's range past its ends."""
BATCH = 16
HEIGHT_BISECTIONS = 18
"""Halvings of anny's height setting when a perfect slider holds a height in metres: 2^-18 of the setting's
range is well under a tenth of a millimetre."""


def log(message: str) -> None:
    print(message, flush=True)


class Oracle:
    """anny, its fitter, its age map and its anthropometry, built once."""

    def __init__(self, anny: Any) -> None:
        self.sampler = AnnySampler.create(anny)
        self.fitter = AnnyFitter(self.sampler.model)
        self.labels = list(self.sampler.model.phenotype_labels)
        from anny.anthropometry import Anthropometry

        self.anthropometry = Anthropometry(self.sampler.model)

    def fit(self, vertices: np.ndarray) -> dict[str, np.ndarray]:
        """Fit every body of ``vertices`` (N, V, 3); settings with age in years."""
        import torch

        parts = [self.fitter.fit(vertices[start : start + BATCH]) for start in range(0, len(vertices), BATCH)]
        settings = np.concatenate([part.settings for part in parts])
        age = self.labels.index("age")
        years = self.sampler.age_mapping().anny_to_morphological_age(torch.as_tensor(settings[:, age]))
        with_years = settings.copy()
        with_years[:, age] = years.numpy()
        return {
            "residual_mm": np.concatenate([part.mean_mm for part in parts]),
            "large_local_changes": np.concatenate([part.large_local_changes for part in parts]),
            "settings": with_years,
        }

    def heights(self, vertices: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.anthropometry.height(torch.as_tensor(vertices, dtype=torch.float64)).numpy()


def realistic_baseline(
    oracle: Oracle, model: LinearMorphableModel, gender_range: tuple[float, float]
) -> dict:
    """Fit residual of held-out realistic adults projected onto the model (what the model can show)."""
    phenotypes, local = oracle.sampler.sample_parameters(REALISTIC_BODIES, VALIDATION_SEED, gender_range)
    vertices, joints = oracle.sampler.rest_shapes(phenotypes, local)
    ground(vertices, joints)
    projected = model.vertices(fit_coefficients(model, vertices, model.component_count).astype(np.float32))
    fitted = oracle.fit(projected)
    percentiles = model.plausibility(fit_coefficients(model, vertices, model.component_count))
    return {
        "bodies": REALISTIC_BODIES,
        "residual_mm_mean": float(fitted["residual_mm"].mean()),
        "residual_mm_p90": float(np.percentile(fitted["residual_mm"], 90)),
        "plausibility_percentile_p50": float(np.median(percentiles)),
    }


def mapper_bodies(model: LinearMorphableModel, mapper: Any) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Slider vectors by group, with a label per vector."""
    ends, end_labels = [], []
    for index, descriptor in enumerate(mapper.descriptors):
        for value, side in zip(sweep_values(mapper, index, 2), ("low", "high"), strict=True):
            ends.append(value)
            end_labels.append(f"{descriptor.name} {side}")
    corners = box_corners(mapper, 1024)
    worst = np.argsort(-model.plausibility(mapper.coefficients(corners)), kind="stable")[:CORNERS]
    randoms = random_settings(mapper, RANDOM_SETTINGS, seed=VALIDATION_SEED)
    low, high = mapper.lows, mapper.highs
    reach = STRESS_REACH * (high - low)
    stress = np.concatenate([np.array(ends) + np.sign(np.array(ends) - mapper.defaults) * reach])
    rng = np.random.default_rng(VALIDATION_SEED + 1)
    stress_random = (low - reach + rng.random((RANDOM_SETTINGS, len(low))) * (high - low + 2 * reach)).astype(
        np.float32
    )
    return {
        "slider_ends": (np.array(ends, np.float32), end_labels),
        "corners": (corners[worst], [f"corner {i}" for i in worst]),
        "random": (randoms, [f"random {i}" for i in range(len(randoms))]),
        "stress_ends": (stress.astype(np.float32), [f"past {label}" for label in end_labels]),
        "stress_random": (stress_random, [f"wide random {i}" for i in range(len(stress_random))]),
    }


def validate_model(oracle: Oracle, name: str) -> list[dict[str, Any]]:
    """Every shipped mapper of one body model, against one realistic baseline."""
    model = load(name)
    shipped = default_mappers_for(model.checksum())
    if not shipped:
        raise SystemExit(f"no shipped mapper for {name}; run tools/build_default_mappers.py first")
    started = time.time()
    realistic = realistic_baseline(oracle, model, GENDER_RANGES[name])
    log(f"{name}: realistic baseline {realistic} ({time.time() - started:.0f} s)")
    return [
        validate_mapper(oracle, model, entry.name, load_mapper(entry.path), realistic) for entry in shipped
    ]


def validate_mapper(
    oracle: Oracle, model: LinearMorphableModel, name: str, mapper: Any, realistic: dict[str, Any]
) -> dict[str, Any]:
    """One shipped mapper's bodies fitted by anny: residuals, rank agreement, attribute sliders, height."""
    started = time.time()
    report: dict[str, Any] = {"model": model.name, "mapper": name, "realistic": realistic}
    groups = mapper_bodies(model, mapper)
    scores, residuals, inside = [], [], []
    for group, (values, labels) in groups.items():
        coefficients = mapper.evaluate(values)  # no clamping: the stress groups go past the box
        fitted = oracle.fit(model.vertices(coefficients))
        score = model.plausibility_measure.score(coefficients)
        percentile = model.plausibility(coefficients)
        worst = int(np.argmax(fitted["residual_mm"]))
        report[group] = {
            "bodies": len(values),
            "residual_mm_mean": float(fitted["residual_mm"].mean()),
            "residual_mm_max": float(fitted["residual_mm"][worst]),
            "worst": labels[worst],
            "large_local_changes_max": int(fitted["large_local_changes"].max()),
            "plausibility_percentile_max": float(percentile.max()),
            "per_body": [
                {"label": label, "residual_mm": float(r), "percentile": float(p)}
                for label, r, p in zip(labels, fitted["residual_mm"], percentile, strict=True)
            ],
        }
        scores.append(score)
        residuals.append(fitted["residual_mm"])
        inside.append(not group.startswith("stress"))
        row = report[group]
        log(
            f"{name}: {group} residual mean {row['residual_mm_mean']:.2f} mm, worst "
            f"{row['residual_mm_max']:.2f} mm ({labels[worst]}) ({time.time() - started:.0f} s)"
        )
    inside_scores = np.concatenate([s for s, keep in zip(scores, inside, strict=True) if keep])
    inside_residuals = np.concatenate([r for r, keep in zip(residuals, inside, strict=True) if keep])
    report["spearman_rho"] = {
        "inside_box": rank_correlation(inside_scores, inside_residuals),
        "with_stress": rank_correlation(np.concatenate(scores), np.concatenate(residuals)),
    }
    report["worst_slider_end_vs_realistic"] = (
        report["slider_ends"]["residual_mm_max"] / report["realistic"]["residual_mm_mean"]
    )
    report["attributes"] = attribute_sliders(oracle, model, mapper)
    report["height"] = height_by_anny(oracle, model, mapper)
    return report


def attribute_sliders(oracle: Oracle, model: LinearMorphableModel, mapper: Any) -> dict[str, Any]:
    """Each attribute slider's sweep, measured by anny fitted to the bodies, beside a perfect slider's.

    The fitter has a floor of its own (it misses anny's own settings by a few hundredths), and cross-talk
    is a range over seven fits, so its noise adds up. The **perfect slider** is the control that shows that
    floor on the same figures: anny's own bodies with exactly the requested setting and the others held at
    the mapper's defaults (no local changes, projected onto the model like the mapper's bodies), fitted the
    same way. A slider whose figures match the perfect slider's is as good as this check can tell.

    The perfect slider's bodies are also the target itself, so each sweep reports its **distance from
    them** (mean vertex distance, mm, over the sweep): a figure without the fitter's noise. On the male
    body the fitter reads a perfect muscle sweep moving weight by 10.7 % of its range, and the slider's
    14.9 % comes with bodies 0.51 mm from the perfect ones.
    """
    bank = model.bank
    assert bank is not None
    specs = {spec.name: spec for spec in bank.setting_specs}
    columns = {name: oracle.labels.index(name) for name in ATTRIBUTE_SETTINGS}
    names = [d.name for d in mapper.descriptors]
    out: dict[str, Any] = {}
    for index, descriptor in enumerate(mapper.descriptors):
        if descriptor.kind != "attribute":
            continue
        values = sweep_values(mapper, index, ATTRIBUTE_STEPS)
        requested = values[:, index]
        bodies = model.vertices(mapper.coefficients(values))
        perfect = perfect_sweep(oracle, model, mapper, index, requested)
        fitted = oracle.fit(bodies)["settings"]
        control = oracle.fit(perfect)["settings"]
        row = sweep_figures(fitted, requested, descriptor.name, names, specs, columns)
        row["perfect_slider"] = sweep_figures(control, requested, descriptor.name, names, specs, columns)
        row["mm_from_perfect"] = float(np.linalg.norm(bodies - perfect, axis=2).mean() * 1000)
        out[descriptor.name] = row
        log(
            f"    {descriptor.name}: anny-fitted error {row['mean_abs_error']:.3f}, span "
            f"{row['span_of_range']:.0%}, cross-talk {row['max_cross_talk']:.1%} (a perfect slider: "
            f"{row['perfect_slider']['mean_abs_error']:.3f}, {row['perfect_slider']['span_of_range']:.0%}, "
            f"{row['perfect_slider']['max_cross_talk']:.1%}); bodies {row['mm_from_perfect']:.2f} mm from its"
        )
    return out


def sweep_figures(
    fitted: np.ndarray,
    requested: np.ndarray,
    name: str,
    names: list[str],
    specs: dict[str, Any],
    columns: dict[str, int],
) -> dict[str, Any]:
    """Error, span and cross-talk of one sweep's fitted settings against the requested values."""
    own = fitted[:, columns[name]]
    span = specs[name].high - specs[name].low
    cross = {
        other: float(np.ptp(fitted[:, columns[other]]) / (specs[other].high - specs[other].low))
        for other in ATTRIBUTE_SETTINGS
        if other != name and other in names
    }
    return {
        "requested": requested.tolist(),
        "anny_fitted": own.tolist(),
        "mean_abs_error": float(np.abs(own - requested).mean()),
        "mean_abs_error_of_range": float(np.abs(own - requested).mean() / span),
        "span_of_range": float(np.ptp(own) / span),
        "cross_talk": cross,
        "max_cross_talk": max(cross.values(), default=0.0),
    }


def perfect_sweep(
    oracle: Oracle, model: LinearMorphableModel, mapper: Any, index: int, requested: np.ndarray
) -> np.ndarray:
    """anny's own bodies for a sweep of setting ``index``: the requested values, the other attribute
    settings at the mapper's defaults, no local changes; projected onto the model as the mapper's bodies
    are. The height is held as the mapper holds it: a mapper with a height slider in metres keeps every
    body at its default height (anny's height setting found for each body by bisection on anny's own
    anthropometry: at a fixed *setting*, a gender sweep changes the height), else anny's height
    setting stays at 0.5."""
    import torch

    defaults = {d.name: d.default for d in mapper.descriptors if d.kind == "attribute"}
    name = mapper.descriptors[index].name
    phenotypes = np.full((len(requested), len(oracle.labels)), 0.5)
    for label, value in defaults.items():
        phenotypes[:, oracle.labels.index(label)] = value
    phenotypes[:, oracle.labels.index(name)] = requested
    age = oracle.labels.index("age")
    mapping = oracle.sampler.age_mapping()
    phenotypes[:, age] = mapping.morphological_to_anny_age(torch.as_tensor(phenotypes[:, age])).numpy()
    local = torch.zeros(len(requested), len(oracle.sampler.local_labels), dtype=torch.float64)

    def bodies() -> np.ndarray:
        vertices, joints = oracle.sampler.rest_shapes(torch.as_tensor(phenotypes), local)
        ground(vertices, joints)
        return np.asarray(vertices)

    held = {d.name: d for d in mapper.descriptors if d.kind == "metric"}.get("height")
    if held is not None:
        column = oracle.labels.index("height")
        low, high = np.zeros(len(requested)), np.ones(len(requested))
        for _ in range(HEIGHT_BISECTIONS):
            phenotypes[:, column] = (low + high) / 2
            short = oracle.heights(bodies()) < held.default
            low, high = (
                np.where(short, phenotypes[:, column], low),
                np.where(short, high, phenotypes[:, column]),
            )
        phenotypes[:, column] = (low + high) / 2
    return model.vertices(fit_coefficients(model, bodies(), model.component_count).astype(np.float32))


def height_by_anny(oracle: Oracle, model: LinearMorphableModel, mapper: Any) -> dict[str, Any]:
    names = list(mapper.descriptor_names)
    if "height" not in names:
        return {}
    values = sweep_values(mapper, names.index("height"), 21)
    heights = oracle.heights(model.vertices(mapper.coefficients(values)))
    error = np.abs(heights - values[:, names.index("height")])
    return {
        "requested_m": [float(values[0, names.index("height")]), float(values[-1, names.index("height")])],
        "anny_height_m": [float(heights.min()), float(heights.max())],
        "mean_abs_error_mm": float(error.mean() * 1000),
    }


def markdown(reports: list[dict[str, Any]]) -> str:
    lines = ["# Plausibility and attribute sliders, checked with anny", ""]
    lines += [
        "| mapper | realistic residual | worst slider end | ratio | corners worst | random worst "
        "| rho (box) | rho (with stress) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        lines.append(
            f"| {r['mapper']} | {r['realistic']['residual_mm_mean']:.2f} mm | "
            f"{r['slider_ends']['residual_mm_max']:.2f} mm ({r['slider_ends']['worst']}) | "
            f"{r['worst_slider_end_vs_realistic']:.2f}x | {r['corners']['residual_mm_max']:.2f} mm | "
            f"{r['random']['residual_mm_max']:.2f} mm | {r['spearman_rho']['inside_box']:.2f} | "
            f"{r['spearman_rho']['with_stress']:.2f} |"
        )
    lines += ["", "## Attribute sliders (anny fitted to the bodies)", ""]
    lines += [
        "| mapper | slider | mean error | span of range | max cross-talk "
        "| a perfect slider: error / span / cross-talk | bodies from the perfect slider's |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        for name, row in r["attributes"].items():
            perfect = row["perfect_slider"]
            lines.append(
                f"| {r['mapper']} | {name} | {row['mean_abs_error']:.3f} | {row['span_of_range']:.0%} | "
                f"{row['max_cross_talk']:.1%} | {perfect['mean_abs_error']:.3f} / "
                f"{perfect['span_of_range']:.0%} / {perfect['max_cross_talk']:.1%} | "
                f"{row['mm_from_perfect']:.2f} mm |"
            )
    lines += ["", "## Height by anny's anthropometry", ""]
    for r in reports:
        h = r.get("height") or {}
        if h:
            lines.append(
                f"- {r['mapper']}: asked {h['requested_m'][0]:.3f}–{h['requested_m'][1]:.3f} m, anny "
                f"measures {h['anny_height_m'][0]:.3f}–{h['anny_height_m'][1]:.3f} m, mean error "
                f"{h['mean_abs_error_mm']:.1f} mm"
            )
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/validation"), help="report folder")
    parser.add_argument("--only", nargs="*", choices=list(GENDER_RANGES), help="models (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    arguments = parser.parse_args(argv)
    if "ANNY_CACHE_DIR" not in os.environ:
        log("ANNY_CACHE_DIR is not set: anny caches about 1.3 GB under ~/.cache/anny")
    anny = require_anny()
    import torch

    torch.set_num_threads(arguments.threads)
    oracle = Oracle(anny)
    reports = [
        report for name in (arguments.only or list(GENDER_RANGES)) for report in validate_model(oracle, name)
    ]
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "validation.json").write_text(json.dumps(reports, indent=2))
    (arguments.out / "validation.md").write_text(markdown(reports))
    log(markdown(reports))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
