"""The training hyper-parameters, in one place: their defaults, their limits and the record a mapper keeps.

A run is decided by its data and one :class:`TrainingSettings`; the settings travel whole (the command line
builds one, add-word and the evaluation read one back from a mapper's metadata, variants are made with
:func:`dataclasses.replace`), so no function copies the fields one by one and no default is written twice.
The defaults follow the paper except the batch size and the consistency term; the runs that chose them are
recorded in ``benchmarks/bench_mapper.py``, which prints the same figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from .mapper import MapperError

DEFAULT_HIDDEN = (800, 500)
DEFAULT_EPOCHS = 50
DEFAULT_LR = 1e-4
DEFAULT_BATCH_SIZE = 32
"""Samples per Adam step. The reference's 1500 gives 3000 samples (2400 for training) 2 steps per epoch, 100
in all at lr 1e-4, and underfits; 32 gives 75 per epoch, 3750 in all: the largest batch within 2% of the best
validation MSE with 4 and with 6 metric descriptors, and training (~7-8 s) stays inside add-word's 15 s
budget and far inside the 60 s training goal (see ``benchmarks/bench_mapper.py --batch-sizes``)."""
DEFAULT_VALIDATION_FRACTION = 0.2
DEFAULT_SEED = 42
DEFAULT_CONSISTENCY = 1.0
"""Weight of the measurement-consistency term (:mod:`.consistency`) against the data term; 0 turns it off. It
acts only on measured descriptors, and only when the model is at hand to measure bodies. Weight 1 keeps the
sweeps true and the cross-talk low at the same validation MSE as without the term; weights 2 and 3 were
less stable: the network overshoots between two real measurements (see ``benchmarks/bench_mapper.py``)."""
DEFAULT_THREADS = 1
"""torch threads while training. One, on purpose: the layers at this batch size are too small to gain much
from a second thread, and on a shared machine two OpenMP threads collapse when another process holds a
core (see ``benchmarks/bench_mapper.py``)."""
MAX_HIDDEN_WIDTH = 8192
"""Widest hidden layer: one of 8192 × 8192 is 1 GB with Adam's state; the paper's mapper is 800, 500."""


@dataclass(frozen=True)
class TrainingSettings:
    """Everything that decides a training run besides the data; recorded so add-word can redo it."""

    hidden: tuple[int, ...] = DEFAULT_HIDDEN
    epochs: int = DEFAULT_EPOCHS
    lr: float = DEFAULT_LR
    batch_size: int = DEFAULT_BATCH_SIZE
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION
    seed: int = DEFAULT_SEED
    threads: int = DEFAULT_THREADS
    consistency: float = DEFAULT_CONSISTENCY

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(width) for width in self.hidden))
        if not self.hidden or any(not 1 <= width <= MAX_HIDDEN_WIDTH for width in self.hidden):
            widths = ",".join(str(width) for width in self.hidden)
            raise MapperError(
                f"{{hidden}} widths must be whole numbers from 1 to {MAX_HIDDEN_WIDTH} (the paper's are "
                f"800,500), got {widths or 'none'}.",
                parameters=("hidden",),
            )
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise _bad("epochs", f"a whole number ≥ 1, got {self.epochs!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise _bad("batch_size", f"a whole number ≥ 1, got {self.batch_size!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise _bad("lr", f"a number > 0, got {self.lr!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise _bad("validation_fraction", f"in [0, 1), got {self.validation_fraction!r}")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise _bad("seed", f"a whole number ≥ 0, got {self.seed!r}")
        if not (isinstance(self.threads, int) and self.threads >= 1):
            raise _bad("threads", f"a whole number ≥ 1, got {self.threads!r}")
        if not (np.isfinite(self.consistency) and self.consistency >= 0):
            raise _bad("consistency", f"a number ≥ 0, got {self.consistency!r}")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingSettings:
        """The settings a mapper recorded; a field it lacks (a mapper older than that field) keeps its
        default, and the other keys of its training record (architecture, versions, ...) are not settings."""
        known = {field.name: data[field.name] for field in fields(cls) if field.name in data}
        return cls(**{**known, "hidden": tuple(known.get("hidden", DEFAULT_HIDDEN))})


def _bad(parameter: str, expected: str) -> MapperError:
    """``parameter`` must be ``expected``: the message names the parameter, each front end spells it."""
    return MapperError("{" + parameter + "} must be " + expected + ".", parameters=(parameter,))
