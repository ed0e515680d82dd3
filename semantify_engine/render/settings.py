"""Render settings: plain data, validated once, shared by the renderer, the CLI and datasets."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import RenderError

ENGINES = ("workbench", "cycles", "eevee")


def _colour(value: Any, what: str) -> tuple[float, float, float]:
    try:
        colour = tuple(float(channel) for channel in value)
    except (TypeError, ValueError):
        colour = ()
    if len(colour) != 3 or not all(0.0 <= channel <= 1.0 for channel in colour):
        raise RenderError(f"{what} must be three numbers between 0 and 1 (RGB), got {value!r}.")
    return colour  # type: ignore[return-value]


@dataclass(frozen=True)
class RenderSettings:
    """How training views look.

    Defaults follow the paper's data renders where they matter to CLIP (black background, neutral grey
    material, soft studio light) and the machine where they matter to speed (224², Workbench, which
    renders in a few milliseconds on a CPU). ``supersample`` renders n× larger and averages n×n
    blocks: clean edges without Workbench's costly anti-aliasing passes.
    """

    resolution: int = 224
    engine: str = "workbench"
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    colour: tuple[float, float, float] = (0.8, 0.8, 0.8)
    supersample: int = 1
    samples: int = 16  # path-tracing samples (Cycles) or TAA samples (EEVEE)
    margin: float = 0.04  # fraction of the frame left empty on each side
    max_tile_pixels: int = 1024  # the side of the largest frame tiles are packed into

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise RenderError(f"Unknown render engine '{self.engine}'. Choose one of: {', '.join(ENGINES)}.")
        if not isinstance(self.resolution, int) or not 16 <= self.resolution <= 4096:
            raise RenderError(
                f"Resolution must be a whole number of pixels from 16 to 4096, got {self.resolution!r}."
            )
        if not isinstance(self.supersample, int) or not 1 <= self.supersample <= 4:
            raise RenderError(f"Supersample must be 1, 2, 3 or 4, got {self.supersample!r}.")
        if not isinstance(self.samples, int) or self.samples < 1:
            raise RenderError(f"Samples must be a positive whole number, got {self.samples!r}.")
        if not 0.0 <= self.margin < 0.4:
            raise RenderError(f"Margin must lie in [0, 0.4), got {self.margin!r}.")
        object.__setattr__(self, "background", _colour(self.background, "Background"))
        object.__setattr__(self, "colour", _colour(self.colour, "Colour"))

    @property
    def tile_pixels(self) -> int:
        """The side of one tile as Blender renders it (before supersampling is averaged away)."""
        return self.resolution * self.supersample

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
