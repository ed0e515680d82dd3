"""Exporting characters to other tools: what each target needs (the presets); Blender does the work."""

from .presets import PRESETS, ExportPreset, preset

__all__ = ["PRESETS", "ExportPreset", "preset"]
