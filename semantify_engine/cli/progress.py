"""Progress bars for long work: count, rate and time left, on stderr so stdout stays parseable."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any


class _PlainProgress:
    """Rate and time left as plain lines, for Pythons without tqdm (Blender's own)."""

    def __init__(self, total: int, description: str, unit: str) -> None:
        self.total, self.description, self.unit = total, description, unit
        self.done, self.started, self.shown = 0, time.monotonic(), 0.0

    def update(self, count: int) -> None:
        self.done += count
        elapsed = time.monotonic() - self.started
        if elapsed - self.shown < 2.0 and self.done < self.total:
            return
        self.shown = elapsed
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        print(
            f"{self.description}: {self.done}/{self.total} {self.unit}s, {rate:.1f}/s, {left:.0f} s left",
            file=sys.stderr,
            flush=True,
        )


@contextlib.contextmanager
def progress_bar(total: int, description: str, unit: str = "item") -> Iterator[Any]:
    """A tqdm bar showing rate and ETA; ``bar.update(n)`` advances it by ``n``."""
    try:
        from tqdm import tqdm
    except ImportError:
        yield _PlainProgress(total, description, unit)
        return

    with tqdm(
        total=total,
        desc=description,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
        smoothing=0.1,
    ) as bar:
        yield bar
