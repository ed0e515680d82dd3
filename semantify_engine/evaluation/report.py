"""The evaluation report: ``evaluation.json`` with every figure, ``report.md`` with pictures.

Pictures, both rendered by Blender:

- ``gallery.png``: each slider at its low value, default and high value (the others at default);
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
from ..render.views import View
from .coverage import SliderMapper

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
    model: LinearMorphableModel,
    mapper: SliderMapper,
    views: Sequence[View],
    settings: RenderSettings,
    framing_components: int = 10,
) -> np.ndarray:
    """One row per descriptor: low / default / high for every view."""
    from ..render.blender import BlenderRenderer
    from .fidelity import sweep_values

    descriptors = list(mapper.descriptors)
    values = np.concatenate([sweep_values(mapper, index, 3) for index in range(len(descriptors))])
    values[1::3] = [d.default for d in descriptors]  # the middle column is the default, not the midpoint
    with BlenderRenderer(model, views, settings, framing_components=framing_components) as renderer:
        images = renderer.render(mapper.coefficients(values))
    size = images.shape[-2]
    cells = images.reshape(len(descriptors), 3, len(views), size, size, 3).transpose(0, 2, 1, 3, 4, 5)
    cells = cells.reshape(len(descriptors), 3 * len(views), size, size, 3)
    labels = [f"{d.name}  [{d.low:.4g} | {d.default:.4g} | {d.high:.4g}]" for d in descriptors]
    headers = [f"{view.label} {column}" for view in views for column in ("low", "default", "high")]
    return labelled_grid(cells, labels, headers, title=f"{model.name}: each slider low / default / high")


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
    fidelity = figures.get("metric_fidelity")
    if fidelity:
        lines += [
            "## Metric fidelity",
            "",
            "| descriptor | mean abs error | max abs error | max cross-talk |",
        ]
        lines.append("|---|---|---|---|")
        for name, row in fidelity.items():
            scale, unit = (1000.0, "mm") if row.get("unit") == "m" else (1.0, row.get("unit", ""))
            lines.append(
                f"| {name} | {row['mean_abs_error'] * scale:.4g} {unit} | "
                f"{row['max_abs_error'] * scale:.4g} {unit} | {row['max_cross_talk']:.1%} |"
            )
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
    for name in pictures:
        lines += [f"![{name}]({name}.png)", ""]
    return "\n".join(lines)
