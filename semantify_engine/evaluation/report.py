"""The evaluation report: ``evaluation.json`` with every figure, ``report.md`` with pictures.

Pictures, both rendered by Blender:

- ``gallery.png``: each slider at its low value, default and high value (the others at default);
- ``corners.png``: the corners of the slider box where the bodies are least plausible (every slider at an
  end), with their population percentile: where a mapper that leaves the population shows it first;
- ``coverage.png``: per descriptor, the normalised displacement δ(v) painted on the mesh (paper Fig. 5),
  dark blue = still, yellow = moves most; vertices above θ count as covered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_output
from ..models.linear import LinearMorphableModel
from ..render.images import labelled_grid, save_png
from ..render.settings import RenderSettings
from ..render.views import View, framing_of_shapes
from .coverage import SliderMapper

GALLERY_RESOLUTION = 384
"""Pixels per picture in the galleries (at least): big enough to judge a body, not only to score it."""


def _picture_settings(settings: RenderSettings) -> RenderSettings:
    from dataclasses import replace

    return replace(settings, resolution=max(settings.resolution, GALLERY_RESOLUTION))


# A perceptually ordered ramp (approximately viridis) sampled at 5 stops.
_RAMP = np.array(
    [
        [0.267, 0.005, 0.329],
        [0.229, 0.322, 0.546],
        [0.128, 0.567, 0.551],
        [0.369, 0.789, 0.383],
        [0.993, 0.906, 0.144],
    ],
    np.float32,
)


def heat_colours(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB along the ramp (linear between stops)."""
    position = np.clip(values, 0.0, 1.0) * (len(_RAMP) - 1)
    lower = np.floor(position).astype(int).clip(0, len(_RAMP) - 2)
    fraction = (position - lower)[:, None]
    return (_RAMP[lower] * (1 - fraction) + _RAMP[lower + 1] * fraction).astype(np.float32)


def render_gallery(
    model: LinearMorphableModel, mapper: SliderMapper, views: Sequence[View], settings: RenderSettings
) -> np.ndarray:
    """One row per descriptor: low / default / high for every view, framed on these bodies."""
    from ..render.blender import BlenderRenderer
    from .fidelity import sweep_values

    descriptors = list(mapper.descriptors)
    values = np.concatenate([sweep_values(mapper, index, 3) for index in range(len(descriptors))])
    values[1::3] = [d.default for d in descriptors]  # the middle column is the default, not the midpoint
    coefficients = mapper.coefficients(values)
    framing = framing_of_shapes(model, tuple(views), coefficients, settings.margin)
    with BlenderRenderer(model, views, _picture_settings(settings), framing=framing) as renderer:
        images = renderer.render(coefficients)
    size = images.shape[-2]
    cells = images.reshape(len(descriptors), 3, len(views), size, size, 3).transpose(0, 2, 1, 3, 4, 5)
    cells = cells.reshape(len(descriptors), 3 * len(views), size, size, 3)
    labels = [f"{d.name}  [{d.low:.4g} | {d.default:.4g} | {d.high:.4g}]" for d in descriptors]
    headers = [f"{view.label} {column}" for view in views for column in ("low", "default", "high")]
    return labelled_grid(cells, labels, headers, title=f"{model.name}: each slider low / default / high")


CORNERS_SHOWN = 12


def render_corner_gallery(
    model: LinearMorphableModel,
    mapper: SliderMapper,
    views: Sequence[View],
    settings: RenderSettings,
    shown: int = CORNERS_SHOWN,
) -> np.ndarray:
    """The ``shown`` least plausible corners of the slider box, one row each, from every view."""
    from ..render.blender import BlenderRenderer
    from .plausibility import CORNERS_LIMIT, box_corners

    measure = model.plausibility_measure
    assert measure is not None
    corners = box_corners(mapper, CORNERS_LIMIT)
    percentiles = measure.percentile(mapper.coefficients(corners))
    order = np.argsort(-percentiles, kind="stable")[:shown]
    coefficients = mapper.coefficients(corners[order])
    framing = framing_of_shapes(model, tuple(views), coefficients, settings.margin)
    with BlenderRenderer(model, views, _picture_settings(settings), framing=framing) as renderer:
        images = renderer.render(coefficients)
    descriptors = list(mapper.descriptors)
    labels = []
    for row in order:
        ends = " ".join(
            f"{d.name}{'+' if corners[row, i] >= d.high else '-'}" for i, d in enumerate(descriptors)
        )
        labels.append(f"p{percentiles[row]:.1f}  {ends}")
    headers = [view.label for view in views]
    title = f"{model.name}: the {len(order)} least plausible of {len(corners)} slider-box corners"
    return labelled_grid(images, labels, headers, title=title)


def render_coverage_heatmaps(
    model: LinearMorphableModel,
    mapper: SliderMapper,
    displacement: np.ndarray,
    views: Sequence[View],
    settings: RenderSettings,
    theta: float,
    framing_components: int = 10,
) -> np.ndarray:
    """One row per descriptor: the mean shape painted with that descriptor's δ(v), from every view."""
    from ..render.blender import BlenderRenderer

    descriptors = list(mapper.descriptors)
    defaults = np.array([[d.default for d in descriptors]], np.float32)
    mean_shape = mapper.coefficients(defaults)
    rows = []
    for per_vertex in displacement:
        colours = heat_colours(per_vertex)
        with BlenderRenderer(
            model, views, settings, framing_components=framing_components, vertex_colours=colours
        ) as renderer:
            rows.append(renderer.render(mean_shape)[0])
    cells = np.stack(rows)
    labels = [
        f"{d.name}: {np.mean(row > theta):.1%} of vertices above theta={theta:g}"
        for d, row in zip(descriptors, displacement, strict=True)
    ]
    headers = [view.label for view in views]
    return labelled_grid(cells, labels, headers, title="coverage: delta(v), dark still, yellow moves most")


def write_report(folder: Path, figures: dict[str, Any], pictures: dict[str, np.ndarray]) -> Path:
    """Write ``evaluation.json``, the pictures and ``report.md`` into ``folder``; return the report path."""
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output(folder / "evaluation.json", "w") as stream:
        json.dump(figures, stream, indent=2, sort_keys=True)
    for name, image in pictures.items():
        save_png(image, folder / f"{name}.png")
    report = folder / "report.md"
    with atomic_output(report, "w") as stream:
        stream.write(_markdown(figures, list(pictures)))
    return report


def _markdown(figures: dict[str, Any], pictures: list[str]) -> str:
    lines = [f"# Mapper evaluation: {figures.get('model', '')}", ""]
    descriptors = figures.get("descriptors", [])
    if descriptors:
        lines += ["Descriptors: " + ", ".join(f"`{d}`" for d in descriptors), ""]
    coverage = figures.get("coverage")
    if coverage:
        lines += [
            "## Coverage and overlap (paper §5.1)",
            "",
            f"θ = {coverage['theta']}: coverage **{coverage['coverage']:.1%}**, "
            f"overlap **{coverage['overlap']:.1%}** (1 − |union| / Σ|sets|, as Table 1), "
            f"mean pairwise IoU {coverage['mean_pairwise_iou']:.1%}.",
            "",
            "| descriptor | vertices covered |",
            "|---|---|",
            *[f"| {name} | {value:.1%} |" for name, value in coverage["per_descriptor_coverage"].items()],
            "",
        ]
    sweep = figures.get("sweep")
    if sweep:
        lines += [
            "## Coverage / overlap by number of descriptors (Table 1 style)",
            "",
            "| d | coverage | overlap |",
        ]
        lines += [
            "|---|---|---|",
            *[f"| {row['d']} | {row['coverage']:.1%} | {row['overlap']:.1%} |" for row in sweep],
        ]
        lines.append("")
    held_out = figures.get("held_out")
    if held_out:
        lines += ["## Held-out error", "", *[f"- {key}: {value:.4g}" for key, value in held_out.items()], ""]
    express = figures.get("expressiveness")
    if express:
        lines += [
            "## Expressiveness",
            "",
            f"Best slider fit of {express['shapes']} held-out shapes: "
            f"{express['semantic_sliders_mm_mean']:.2f} mm mean vertex error with {express['sliders']} "
            "semantic sliders, against "
            f"{express['raw_pca_sliders_mm_mean']:.2f} mm with {express['sliders']} raw PCA sliders.",
            "",
        ]
    for key, title in (("metric_fidelity", "Metric fidelity"), ("attribute_fidelity", "Attribute fidelity")):
        if figures.get(key):
            lines += _fidelity_table(title, figures[key], attributes=key == "attribute_fidelity")
    plausibility = figures.get("plausibility")
    if plausibility and "skipped" not in plausibility:
        lines += _plausibility_section(plausibility)
    agreement = figures.get("word_attributes")
    if agreement:
        names = list(next(iter(agreement.values())))
        lines += [
            "## Word sliders against the attributes",
            "",
            "Change of each attribute from the word slider's low to its high end, as a fraction of the "
            "attribute's range in the source population (Spearman's ρ in brackets).",
            "",
            "| word | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for word, row in agreement.items():
            cells = [f"{row[n]['change']:+.0%} ({row[n]['rank_correlation']:+.2f})" for n in names]
            lines.append(f"| {word} | " + " | ".join(cells) + " |")
        lines.append("")
    semantic = figures.get("semantic")
    if semantic and "skipped" in semantic:
        lines += ["## Semantic faithfulness", "", f"Skipped: {semantic['skipped']}", ""]
    elif semantic:
        lines += ["## Semantic faithfulness", "", "| word | rank correlation | max drift of other words |"]
        lines += [
            "|---|---|---|",
            *[f"| {n} | {r['rank_correlation']:.2f} | {r['max_drift']:.1%} |" for n, r in semantic.items()],
        ]
        lines.append("")
    for note in figures.get("notes", []):
        lines += [f"Note: {note}.", ""]
    for name in pictures:
        lines += [f"![{name}]({name}.png)", ""]
    return "\n".join(lines)


def _scaled(value: float | None, unit: str) -> str:
    """A descriptor value with its unit, metres in millimetres."""
    if value is None:
        return "n/a"
    scale, shown = (1000.0, " mm") if unit == "m" else (1.0, f" {unit}" if unit else "")
    return f"{value * scale:.4g}{shown}"


def _fidelity_table(title: str, fidelity: dict[str, Any], attributes: bool) -> list[str]:
    read = "read by the model's attribute regressor" if attributes else "measured on the mesh"
    lines = [
        f"## {title}",
        "",
        f"Each slider swept over its range, the others at their defaults, values {read}. The achieved range "
        "is what the sweep reaches; errors in brackets are over the requests inside it. Cross-talk: the "
        "largest move of another slider of the same kind, as a fraction of its range.",
        "",
        "| descriptor | mean abs error | max abs error | achieved range | max cross-talk |",
        "|---|---|---|---|---|",
    ]
    for name, row in fidelity.items():
        unit = row.get("unit", "")
        low, high = row.get("achieved_range", [None, None])
        inside = _scaled(row.get("mean_abs_error_achieved"), unit)
        lines.append(
            f"| {name} | {_scaled(row['mean_abs_error'], unit)} ({inside}) "
            f"| {_scaled(row['max_abs_error'], unit)} | {_scaled(low, unit)} – {_scaled(high, unit)} "
            f"| {row['max_cross_talk']:.1%} |"
        )
    return [*lines, ""]


def _plausibility_section(plausibility: dict[str, Any]) -> list[str]:
    region = plausibility["region"]
    corners, random = plausibility["corners"], plausibility["random"]
    verdict = "inside" if plausibility["inside"] else "**outside**"
    lines = [
        "## Plausibility",
        "",
        "Percentile of the model's source population more typical than each body "
        f"({plausibility['method']}); the plausible region holds {region:g} %. Worst of all: "
        f"p{plausibility['worst']:.1f}, {verdict} it.",
        "",
        f"- defaults: p{plausibility['default']:.1f}",
        f"- slider ends: worst p{plausibility['slider_ends_max']:.1f}",
        f"- {corners['count']} box corners: median p{corners['p50']:.1f}, worst p{corners['max']:.1f}, "
        f"{corners['outside_fraction']:.1%} outside",
        f"- {random['count']} random settings: median p{random['p50']:.1f}, worst p{random['max']:.1f}, "
        f"{random['outside_fraction']:.1%} outside",
        "",
        "| slider | low end | high end |",
        "|---|---|---|",
    ]
    for name, row in plausibility["slider_ends"].items():
        lines.append(f"| {name} | p{row['low']:.1f} | p{row['high']:.1f} |")
    return [*lines, ""]
