"""Contact sheets: what each component of a model does, one row per component.

Columns are the component at its low end, at zero and at its high end (±σ·std by default, cut to the
model's bounds), all other coefficients zero. It is the first picture anyone wants of a new model, and
the quickest check that a model file, its frame and the renderer agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import RenderError
from ..models.linear import LinearMorphableModel
from .blender import BlenderRenderer
from .images import labelled_grid
from .settings import RenderSettings
from .views import View


def component_range(model: LinearMorphableModel, components: int, sigmas: float) -> np.ndarray:
    """``(components, 2)``: ±σ·std, or the whole valid range for bounded components (blendshapes)."""
    if model.coefficient_bounds is not None:
        return model.coefficient_bounds[:components]
    return model.coefficient_box(sigmas, components)


def contact_sheet_coefficients(model: LinearMorphableModel, components: int, sigmas: float) -> np.ndarray:
    """``(components * 3, components)`` coefficients: each component at low end, 0, high end."""
    box = component_range(model, components, sigmas)
    rows = []
    for component in range(components):
        for value in (box[component, 0], 0.0, box[component, 1]):
            coefficients = np.zeros(components, np.float32)
            coefficients[component] = value
            rows.append(coefficients)
    return np.asarray(rows)


def render_contact_sheet(
    model: LinearMorphableModel,
    views: Sequence[View],
    components: int = 10,
    sigmas: float = 2.0,
    settings: RenderSettings | None = None,
) -> np.ndarray:
    """An RGB uint8 sheet: one labelled row per component, low / 0 / high for every view."""
    if components < 1:
        raise RenderError(
            f"A contact sheet shows at least one component; got {{components}} {components}.",
            parameters=("components",),
        )
    components = min(components, model.component_count)
    coefficients = contact_sheet_coefficients(model, components, sigmas)
    with BlenderRenderer(model, views, settings, sigmas=max(sigmas, 3.0), framing_components=components) as r:
        images = r.render(coefficients)  # (components * 3, views, R, R, 3)
    size = images.shape[-2]
    box = component_range(model, components, sigmas)
    cells = images.reshape(components, 3, len(views), size, size, 3).transpose(0, 2, 1, 3, 4, 5)
    cells = cells.reshape(components, 3 * len(views), size, size, 3)
    labels = [
        f"{model.component_names[k]}  [{box[k, 0]:+.2f} | 0 | {box[k, 1]:+.2f}]" for k in range(components)
    ]
    headers = [f"{view.label} {column}" for view in views for column in ("low", "0", "high")]
    extent = "full valid range" if model.coefficient_bounds is not None else f"±{sigmas:g} std"
    return labelled_grid(cells, labels, headers, title=f"{model.name}: {extent}")
