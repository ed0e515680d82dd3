"""Run a ``semantify`` command in a background process and follow it: progress, cancel, result.

The Blender add-on builds mappers, adds words, fits photos and texts and fetches CLIP weights without
freezing Blender: the work runs in another process (:class:`.worker.Worker` decides which: a headless
child of the user's Blender, or a Python the user chose) while Blender polls this object from a timer.
Nothing here imports bpy, so it is tested with real processes outside Blender.

The child runs the *same* engine as the caller (:meth:`.worker.Worker.search_path` puts its folder
first), so an add-on and the engine it bundles always agree on file formats. It prints machine-readable
progress (``SEMANTIFY_PROGRESS=json``, see :mod:`.progress`) and the build's stage lines (``2/4 choosing
descriptors``); :meth:`BackgroundJob.poll` turns them into one fraction. A failing child writes its error
as a record too: :meth:`BackgroundJob.result` raises it with the parameters it names unspelled, for the
add-on to name as its own fields.

Reading the child's output happens on two daemon threads (one per pipe), because a pipe that is not
drained blocks the child once its buffer is full, and because a non-blocking read that works on every
platform does not exist for pipes. Cancel ends the child's whole process group (renderers and loaders
it started included): a cancelled build keeps the chunks it finished (the next build resumes them), and
add-word writes its mapper atomically, so a cancel never leaves a torn file.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import JobCancelled, JobError, SemantifyError
from .progress import JSON_MODE, PROGRESS_VARIABLE, parse_error_line, parse_progress_line

if TYPE_CHECKING:
    from .worker import Worker

STAGE_LINE = re.compile(r"^\s*(\d+)/(\d+) (\S.*)$")
ERROR_PREFIX = "semantify: error: "
KEPT_LINES = 200
ERROR_LINES = 12
"""Lines after ``semantify: error:`` that belong to the message (instructions such as how to get weights)."""


@dataclass(frozen=True)
class JobProgress:
    """What to show: overall fraction in [0, 1] (None until the child says anything measurable)."""

    fraction: float | None
    message: str
    running: bool


def missing_modules(
    python: str,
    modules: Sequence[str],
    timeout: float = 30.0,
    environment: Mapping[str, str] | None = None,
) -> list[str]:
    """Which of ``modules`` the interpreter ``python`` cannot import (found without importing them).

    ``importlib.util.find_spec`` answers in milliseconds where importing torch would take seconds, so the
    add-on can check before it starts a job. ``environment`` is the one the job would run with (its
    ``PYTHONPATH``). Raises :class:`JobError` when ``python`` does not run.
    """
    probe = (
        "import importlib.util, json, sys\n"
        "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]))\n"
    )
    try:
        result = subprocess.run(
            [python, "-c", probe, *modules],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=None if environment is None else dict(environment),
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise JobError(f"The Python '{python}' cannot be run ({error}).") from error
    try:
        return list(json.loads(result.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError) as error:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise JobError(f"The Python '{python}' did not answer a module check ({detail}).") from error


class BackgroundJob:
    """One ``semantify ARGUMENTS`` process in ``worker``, followed without blocking.

    ``result_path`` is the file the command writes on success (the mapper, a fit's JSON); :meth:`result`
    returns it once the command exited 0 and the file is there. A job without one (fetching weights)
    succeeds by its exit status alone, and :meth:`summary` holds what it printed.
    """

    def __init__(
        self,
        worker: Worker,
        arguments: Sequence[str],
        result_path: str | os.PathLike[str] | None,
        *,
        environment: Mapping[str, str] | None = None,
        label: str = "semantify",
    ) -> None:
        self.worker = worker
        self.arguments = [str(argument) for argument in arguments]
        self.result_path = None if result_path is None else Path(result_path)
        self.environment = dict(environment or {})
        self.label = label
        self.process: subprocess.Popen[str] | None = None
        self.cancelled = False
        self.started_at = 0.0
        self.stderr_lines: collections.deque[str] = collections.deque(maxlen=KEPT_LINES)
        self.stdout_lines: collections.deque[str] = collections.deque(maxlen=KEPT_LINES)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stage: tuple[int, int, str] | None = None
        self._task: tuple[str, float] | None = None  # (task, fraction) of the latest progress record
        self._message = "starting"
        self._error: SemantifyError | None = None  # the command's own error record, parameters unspelled

    # ------------------------------------------------------------------------------------ lifecycle
    @property
    def command(self) -> list[str]:
        return self.worker.command(self.arguments)

    def start(self) -> None:
        """Start the process (once). Raises :class:`JobError` when the worker cannot be started."""
        if self.process is not None:
            raise JobError("This job was already started.")
        environment = self.worker.environment(
            {**os.environ, **self.environment, PROGRESS_VARIABLE: JSON_MODE}
        )
        options: dict = {}
        if os.name == "posix":
            options["start_new_session"] = True  # its own process group: cancel reaches its children
        else:
            options["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        try:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,  # universal newlines: tqdm's carriage returns end lines too
                encoding="utf-8",
                errors="replace",
                env=environment,
                **options,
            )
        except OSError as error:
            raise JobError(f"Could not start {self.worker.describe()} for {self.label} ({error}).") from error
        self.started_at = time.monotonic()
        for stream, lines in ((self.process.stdout, self.stdout_lines), (self.process.stderr, None)):
            thread = threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read(self, stream, lines: collections.deque[str] | None) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            with self._lock:
                if lines is not None:
                    lines.append(line)
                else:
                    self._take_stderr_line(line)
        stream.close()

    def _take_stderr_line(self, line: str) -> None:
        error = parse_error_line(line)
        if error is not None:
            self._error = error
            return
        record = parse_progress_line(line)
        if record is not None:
            self._task = (record.task, record.fraction)
            self._message = f"{record.task}: {record.done}/{record.total} {record.unit}s"
            return
        self.stderr_lines.append(line)
        stage = STAGE_LINE.match(line)
        if stage and 0 < int(stage.group(1)) <= int(stage.group(2)):
            self._stage = (int(stage.group(1)), int(stage.group(2)), stage.group(3))
            self._task = None  # the new stage has made no measurable progress yet
            self._message = stage.group(3)
        elif not line.startswith(" "):
            self._message = line.strip()[:200]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def poll(self) -> JobProgress:
        """Where the work stands, without waiting: overall fraction and the latest message."""
        running = self.running
        with self._lock:
            fraction = self._fraction()
            message = self._message
        if not running and self.process is not None:
            self._join_readers()
            if self.returncode == 0:
                fraction, message = 1.0, "finished"
            elif self.cancelled:
                message = "cancelled"
            else:
                message = self.error_message()
        return JobProgress(fraction=fraction, message=message, running=running)

    def _fraction(self) -> float | None:
        inner = self._task[1] if self._task is not None else None
        if self._stage is None:
            return inner
        index, total, _ = self._stage
        return (index - 1 + (inner or 0.0)) / total

    def cancel(self, timeout: float = 5.0) -> None:
        """End the process and its process group: interrupted first, killed after ``timeout`` seconds.

        An interrupt (Ctrl-C's signal) lets the command unwind: temporary files of atomic writes are
        removed and the command exits with status 130. A command that does not end in time is killed.
        """
        process = self.process
        if process is None:
            return
        self.cancelled = True
        if process.poll() is None:
            self._send(interrupt=True)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._send(interrupt=False)
                process.wait(timeout)
        self._join_readers()

    def _send(self, interrupt: bool) -> None:
        process = self.process
        assert process is not None
        try:
            if os.name == "posix":  # the group start_new_session made holds this child and its own children
                os.killpg(process.pid, signal.SIGINT if interrupt else signal.SIGKILL)
            elif interrupt:
                process.send_signal(getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM))
            else:
                process.kill()
        except (ProcessLookupError, PermissionError):
            pass  # already gone

    def wait(self, timeout: float | None = None) -> int:
        """Block until the process ends (for command-line use and tests); returns its exit status."""
        if self.process is None:
            raise JobError("The job was not started.")
        code = self.process.wait(timeout)
        self._join_readers()
        return code

    def _join_readers(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5.0)

    # ---------------------------------------------------------------------------------------- result
    def error(self) -> JobError:
        """The command's failure: its own error with the parameters it names (for the caller to spell as
        its fields, :meth:`SemantifyError.render`), else what :meth:`error_message` finds."""
        with self._lock:
            own = self._error
        if own is None:
            return JobError(self.error_message())
        return own.recast(JobError)

    def error_message(self) -> str:
        """The command's own error, else the last thing it printed (a traceback's last line)."""
        with self._lock:
            if self._error is not None:
                return str(self._error)
            lines = list(self.stderr_lines)
        for index in range(len(lines) - 1, -1, -1):
            if lines[index].startswith(ERROR_PREFIX):  # the message, with its how-to lines after it
                return "\n".join([lines[index][len(ERROR_PREFIX) :], *lines[index + 1 :][:ERROR_LINES]])
        tail = next((line.strip() for line in reversed(lines) if line.strip()), "")
        code = self.returncode
        if code is not None and code < 0:  # POSIX: ended by a signal (killed, or a crash such as SIGSEGV)
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            how = f"was ended by {name} ({self.worker.describe()}); nothing was changed, run it again"
        else:
            how = f"failed (exit status {code})"
        return f"{self.label} {how}" + (f": {tail}" if tail else "")

    def result(self) -> Path | None:
        """The result file of a finished, successful job (None for a job without one).

        Raises :class:`JobError` for a failed job and :class:`JobCancelled` for a cancelled one.
        """
        if self.process is None:
            raise JobError("The job was not started.")
        if self.running:
            raise JobError(f"{self.label} is still running.")
        self._join_readers()
        if self.cancelled:
            raise JobCancelled(f"{self.label} was cancelled.")
        if self.returncode != 0:
            raise self.error()
        if self.result_path is None:
            return None
        if not self.result_path.is_file():
            raise JobError(f"{self.label} finished but wrote no {self.result_path}.")
        return self.result_path

    def summary(self) -> dict | None:
        """The JSON object the command printed last on stdout (``semantify build``'s summary), if any.

        Parsed from the last line that opens an object; whatever follows it (a Blender child's own
        closing lines) is ignored.
        """
        with self._lock:
            lines = list(self.stdout_lines)
        decoder = json.JSONDecoder()
        for index in range(len(lines) - 1, -1, -1):
            if lines[index].startswith("{"):
                try:
                    value, _ = decoder.raw_decode("\n".join(lines[index:]))
                except ValueError:
                    continue
                return value if isinstance(value, dict) else None
        return None
