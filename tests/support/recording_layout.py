"""A stand-in for Blender's UILayout that records what a panel draws (headless has no region to draw in).

Shared by the panel tests in the project's environment and the stock-Blender driver, which imports
nothing of the project; so this module imports nothing either.
"""

from __future__ import annotations


class RecordingLayout:
    """Every layout call (``operator``, ``label``, ``prop``, ...) is recorded as (name, args, keywords)."""

    def __init__(self, calls: list[tuple[str, tuple, dict]]) -> None:
        object.__setattr__(self, "calls", calls)

    def __getattr__(self, name: str):
        def call(*arguments, **keywords):
            self.calls.append((name, arguments, keywords))
            return RecordingLayout(self.calls)

        return call

    def __setattr__(self, name: str, value: object) -> None:
        pass  # layout settings (use_property_split, active, scale_x, operator properties) draw nothing
