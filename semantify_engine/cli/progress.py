"""Progress bars for long work: count, rate and time left, on stderr so stdout stays parseable.

Three displays behind one :func:`progress_bar`:

- tqdm, for people at a terminal;
- plain lines every two seconds, for Pythons without tqdm (Blender's own);
- machine-readable lines (``SEMANTIFY_PROGRESS=json``), for a program following a ``semantify`` process:
  the Blender add-on runs builds and add-word in a background process and draws their progress. One line
  per update, at most every :data:`JSON_INTERVAL_S` (and always the last one), of the form
  ``semantify-progress {"task": "dataset anny-body", "done": 64, "total": 3000, "unit": "sample"}``.
  :func:`parse_progress_line` reads one back. An environment variable rather than an option, so that
  every subcommand (present and future) speaks it without a change to its parser.

In the machine-readable mode a failing command also writes its error as a record,
``semantify-error {"message": "{samples} must be ...", "parameters": ["samples"]}``, before the line a
person reads: the follower (the add-on) names the parameters as its own fields (:func:`error_record_line`,
:func:`parse_error_line`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import SemantifyError

PROGRESS_VARIABLE = "SEMANTIFY_PROGRESS"
JSON_MODE = "json"
JSON_PREFIX = "semantify-progress "
ERROR_RECORD_PREFIX = "semantify-error "
JSON_INTERVAL_S = 0.25


class _PlainProgress:
    """Rate and time left as plain lines, for Pythons without tqdm (Blender's own)."""

    def __init__(self, total: int, description: str, unit: str) -> None:
        self.total, self.description, self.unit = total, description, unit
        self.done, self.started, self.shown = 0, time.monotonic(), 0.0
        self.postfix = ""

    def set_postfix(self, values: dict[str, Any], refresh: bool = True) -> None:
        """Like tqdm's: extra figures (a loss) shown after the count."""
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def update(self, count: int) -> None:
        self.done += count
        elapsed = time.monotonic() - self.started
        if elapsed - self.shown < 2.0 and self.done < self.total:
            return
        self.shown = elapsed
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        extra = f", {self.postfix}" if self.postfix else ""
        counts = f"{self.done}/{self.total} {self.unit}s"
        print(
            f"{self.description}: {counts}, {rate:.1f}/s, {left:.0f} s left{extra}",
            file=sys.stderr,
            flush=True,
        )


class _JsonProgress:
    """One ``semantify-progress {json}`` line per update (throttled), for programs following the work."""

    def __init__(self, total: int, description: str, unit: str) -> None:
        self.total, self.description, self.unit = total, description, unit
        self.done, self.shown = 0, float("-inf")
        self.postfix: dict[str, Any] = {}

    def set_postfix(self, values: dict[str, Any], refresh: bool = True) -> None:
        self.postfix = {key: str(value) for key, value in values.items()}

    def update(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.shown < JSON_INTERVAL_S and self.done < self.total:
            return
        self.shown = now
        record = {"task": self.description, "done": self.done, "total": self.total, "unit": self.unit}
        if self.postfix:
            record["postfix"] = self.postfix
        print(JSON_PREFIX + json.dumps(record), file=sys.stderr, flush=True)


def machine_readable() -> bool:
    """Whether a program follows this one (``SEMANTIFY_PROGRESS=json``): progress and errors as records."""
    return os.environ.get(PROGRESS_VARIABLE, "").lower() == JSON_MODE


def listen_for_cancel() -> None:
    """Let the program following this one cancel it with SIGINT, as :class:`BackgroundJob` does.

    A process started with SIGINT ignored (from a shell's ``&`` or ``nohup``, or a launcher that ignores
    it) passes that on to its children, and Python keeps an ignored SIGINT ignored: the follower's cancel
    would then do nothing until its kill, and a kill leaves an atomic write's temporary file behind. A
    follower only exists under ``SEMANTIFY_PROGRESS=json``; a user's own ``nohup semantify ...`` keeps
    ignoring Ctrl-C, as asked.
    """
    if not machine_readable() or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def progress_bar(total: int, description: str, unit: str = "item") -> Iterator[Any]:
    """A tqdm bar showing rate and ETA; ``bar.update(n)`` advances it by ``n``.

    With ``SEMANTIFY_PROGRESS=json`` in the environment the bar is machine-readable lines instead.
    """
    if machine_readable():
        yield _JsonProgress(total, description, unit)
        return
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


@contextlib.contextmanager
def epoch_bar(description: str) -> Iterator[Callable[[int, int, float, float | None], None]]:
    """A progress bar over epochs with the latest train / validation MSE, opened at the first epoch so that
    an error found before training starts is not printed under an empty bar."""
    with contextlib.ExitStack() as stack:
        bar: Any = None

        def update(epoch: int, total: int, train: float, validation: float | None) -> None:
            nonlocal bar
            if bar is None:
                bar = stack.enter_context(progress_bar(total, description, unit="epoch"))
            postfix = {"train_mse": f"{train:.4f}"}
            if validation is not None:
                postfix["val_mse"] = f"{validation:.4f}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)

        yield update


def say(message: str) -> None:
    """A line for the person following long work (a stage, a step), on stderr so stdout stays parseable:
    what the engine's ``say`` callbacks hear on the command line."""
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ProgressRecord:
    """One machine-readable progress line: ``done`` of ``total`` ``unit``s of ``task``."""

    task: str
    done: int
    total: int
    unit: str = "item"

    @property
    def fraction(self) -> float:
        return min(1.0, max(0.0, self.done / self.total)) if self.total > 0 else 0.0


def _read_record(line: str, prefix: str, make: Callable[[Any], Any]) -> Any:
    """``make`` of the JSON after ``prefix`` on ``line``; None for any other line, or a malformed record."""
    line = line.strip()
    if not line.startswith(prefix):
        return None
    try:
        return make(json.loads(line[len(prefix) :]))
    except (ValueError, KeyError, TypeError):
        return None


def parse_progress_line(line: str) -> ProgressRecord | None:
    """The record on a ``semantify-progress`` line, or None for any other line (or a malformed one)."""
    return _read_record(
        line,
        JSON_PREFIX,
        lambda data: ProgressRecord(
            task=str(data["task"]),
            done=int(data["done"]),
            total=int(data["total"]),
            unit=str(data.get("unit", "item")),
        ),
    )


def error_record_line(error: SemantifyError) -> str:
    """``error`` as a ``semantify-error`` line: its message with the parameters unspelled, and their names."""
    return ERROR_RECORD_PREFIX + json.dumps({"message": error.template, "parameters": list(error.parameters)})


def parse_error_line(line: str) -> SemantifyError | None:
    """The error on a ``semantify-error`` line, or None for any other line (or a malformed one)."""
    return _read_record(
        line,
        ERROR_RECORD_PREFIX,
        lambda data: SemantifyError(
            str(data["message"]), parameters=[str(name) for name in data["parameters"]]
        ),
    )
