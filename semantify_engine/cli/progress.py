"""Progress bars for long work: count, rate and time left, on stderr so stdout stays parseable."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def progress_bar(total: int, description: str, unit: str = "item") -> Iterator[Any]:
    """A tqdm bar showing rate and ETA; ``bar.update(n)`` advances it by ``n``."""
    from tqdm import tqdm

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
