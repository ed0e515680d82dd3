"""Build a dataset's chunks on a Ray cluster: workers make chunk arrays, the driver writes them.

Why it is shaped this way:

- **Workers return arrays; the driver writes every chunk** with the store's atomic writer. No shared
  filesystem is needed, and the folder is exactly what a single-machine build writes (same chunks, same
  proofs, same manifest settings), so ``dataset info --json`` checksums agree.
- **A worker loads the model, Blender's module and CLIP once** and then makes chunk after chunk. Two ways
  are offered because they behave differently on a cluster: a pool of Ray actors (``mode="actors"``, the
  default: a fixed set of processes, each fed one chunk at a time) and one Ray task per chunk with a
  per-process cache (``mode="tasks"``: Ray's scheduler places each chunk, a process keeps what it loaded
  for the next chunk it gets). ``benchmarks/bench_ray.py`` measures both side by side.
- **Faults cost time, never correctness.** A chunk is a function of (settings, chunk index) alone, so a
  chunk Ray retries after its worker was killed is the same chunk; the driver, killed and restarted,
  builds only the chunks not yet written (the store's resume).
- **Every node loads the model itself** (a bundled name, or a file that node has) and a worker whose model
  is not the driver's (another checksum) is refused by name before it makes anything.
- **The CLIP image engine** is chosen once, by the first worker on the build's first chunk, exactly like
  a local build (:func:`..dataset.builder.build_dataset`); every other worker then checks that same engine
  on its own first chunk and the figures of every check go to the manifest's records. A dataset never
  mixes engines: a worker where the chosen engine fails its check stops the build.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SemantifyError
from .builder import (
    BuildReport,
    ChunkEncoder,
    DatasetRequest,
    _with_engine_of,
    fidelity_batches,
    make_renderer,
    plan_build,
    sample_arrays,
)
from .store import DatasetError, DatasetFolder, Shard, chunk_proof

RAY_REQUIREMENT = "ray==2.60.0"
LOCAL = "local"
"""``--ray`` without an address: start a Ray instance on this machine for the build, stop it after."""
MODES = ("actors", "tasks")
IN_FLIGHT_PER_WORKER = 2
"""Chunks queued on each actor: the next one is waiting when the current one returns."""
RETRIES = 3
"""How often Ray restarts a killed worker and retries its chunk before the build gives up."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run: ``address`` is ``local``, ``auto`` (the cluster this machine is part of)
    or a cluster address (``HOST:6379``, ``ray://HOST:10001``)."""

    address: str = LOCAL
    workers: int | None = None
    """Worker processes; None: as many as the cluster's CPUs allow at ``cpus_per_worker`` each."""
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None
    """None: one GPU per worker when the cluster has GPUs (CLIP then runs on it), else none."""
    mode: str = "actors"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SemantifyError(f"Ray mode must be one of {', '.join(MODES)}, got {self.mode!r}.")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise SemantifyError(
                f"{{ray_workers}} must be a whole number > 0, got {self.workers!r}.",
                parameters=("ray_workers",),
            )
        if not self.cpus_per_worker > 0:
            raise SemantifyError(f"CPUs per Ray worker must be > 0, got {self.cpus_per_worker!r}.")


@dataclass(frozen=True)
class WorkerJob:
    """What a worker needs to rebuild the driver's request on its own node: the request without its model
    (which the worker loads) and the checksum the model must have."""

    request: DatasetRequest
    settings: dict[str, Any]
    checksum: str
    use_gpu: bool = False


def import_ray() -> Any:
    """Ray, or a one-line how-to: it is an optional extra."""
    try:
        import ray
    except ImportError as error:
        raise SemantifyError(
            "{ray} needs Ray, which is not installed in this Python: pip install 'semantify[ray]' "
            f"({RAY_REQUIREMENT}), on the driver and on every node.",
            parameters=("ray",),
        ) from error
    return ray


@contextmanager
def connected(options: RayOptions) -> Iterator[Any]:
    """Ray connected to ``options.address`` (a local instance started for the build when ``local``)."""
    ray = import_ray()
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if options.address == LOCAL:
            cpus = max(1, int(np.ceil((options.workers or os.cpu_count() or 1) * options.cpus_per_worker)))
            ray.init(num_cpus=cpus, **quiet)
        else:
            ray.init(address=options.address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise SemantifyError(
            f"Could not connect to the Ray cluster at {options.address!r} ({error}). Start one with "
            "'ray start --head' (then {ray} auto), or give {ray} without an address for a local one.",
            parameters=("ray",),
        ) from error
    try:
        yield ray
    finally:
        ray.shutdown()


class ChunkWorker:
    """One worker process: the model, the measurements, Blender's renderer and CLIP, loaded once.

    Errors a user must act on (another model file, a CLIP engine that fails its check) are returned as
    text by :meth:`problem` and raised as :class:`DatasetError` by :meth:`make`, so they reach the driver
    with their message rather than as a crashed process.
    """

    def __init__(self, job: WorkerJob) -> None:
        from ..models.registry import load

        self.where = f"{socket.gethostname()} (pid {os.getpid()})"
        self.problem_text: str | None = None
        request = job.request
        try:
            model = load(request.model_spec, request.model_dir)
        except SemantifyError as error:
            self.problem_text = f"Ray worker on {self.where}: {error}"
            return
        if model.checksum() != job.checksum:
            self.problem_text = (
                f"Ray worker on {self.where}: the model {request.model_spec!r} there has checksum "
                f"{model.checksum()}, not the driver's {job.checksum}. Put the same model file on every "
                "node (same path), or use a bundled model."
            )
            return
        clip = request.clip
        if clip is not None and job.use_gpu:
            clip = replace(clip, spec=replace(clip.spec, device="cuda"))
        self.request = replace(request, model=model, clip=clip)
        self.settings = job.settings
        self.metric_scorer = self.request.metric_scorer() if self.request.metrics else None
        self.encoder = ChunkEncoder(self.request) if clip is not None else None
        self.renderer: Any = None

    def problem(self) -> str | None:
        """Why this worker cannot make chunks, or None."""
        return self.problem_text

    def where_and_pid(self) -> tuple[str, int]:
        return self.where, os.getpid()

    def make(self, chunk: int, engine: str | None, fallback: bool) -> tuple[dict[str, np.ndarray], Any]:
        """The chunk's arrays, and this worker's engine check when it made one (on its first chunk)."""
        if self.problem_text is not None:
            raise DatasetError(self.problem_text)
        arrays = sample_arrays(self.request, self.settings, chunk, self.metric_scorer)
        check = None
        if self.encoder is not None:
            if self.renderer is None:
                self.renderer = make_renderer(self.request)
            images = self.renderer.render(arrays["coefficients"])
            if self.encoder.engine is None:
                from ..errors import ClipEngineError

                assert engine is not None
                first_batch, probes = fidelity_batches(self.request, self.renderer, images)
                try:
                    choice = self.encoder.choose_engine(
                        engine, first_batch, probes, fallback=fallback, say=None
                    )
                except ClipEngineError as error:
                    raise DatasetError(
                        f"Ray worker on {self.where}: the CLIP image engine {engine} chosen for this "
                        f"dataset fails here ({error.template}); a dataset never mixes engines. Give every "
                        "node the same hardware and packages, or pass {clip_engine} torch.",
                        parameters=(*error.parameters, "clip_engine"),
                    ) from error
                check = {**choice.to_json(), "worker": self.where}
            arrays.update(self.encoder.encode(images))
        return arrays, check


_process_workers: dict[str, ChunkWorker] = {}
"""mode="tasks": the ChunkWorker of this process, per build (keyed by the settings' proof)."""


def _make_in_process(job: WorkerJob, key: str, chunk: int, engine: str | None, fallback: bool) -> Any:
    worker = _process_workers.get(key)
    if worker is None:
        _process_workers.clear()  # one build's model and CLIP at a time per process
        worker = _process_workers[key] = ChunkWorker(job)
    return worker.make(chunk, engine, fallback)


def build_dataset_on_ray(
    folder: DatasetFolder,
    request: DatasetRequest,
    options: RayOptions,
    shard: Shard | None = None,
    progress: Callable[[int], None] | None = None,
    say: Callable[[str], None] | None = None,
    on_workers: Callable[[list[int]], None] | None = None,
) -> BuildReport:
    """Build (or resume) the chunks of ``shard`` on Ray; the same folder :func:`build_dataset` writes.

    ``on_workers`` hears the process ids of the actors once they run (tests kill one of them).
    """
    shard = shard or Shard()
    if request.clip is not None and request.clip.spec.pretrained is None:
        raise DatasetError(
            "{ray} needs CLIP weights every worker loads alike (a tag or a weights file, {pretrained}): "
            "random weights (none) would be drawn anew in every worker process, mixing models in one "
            "dataset.",
            parameters=("ray", "pretrained"),
        )
    request = _portable(_with_engine_of(folder, request))
    settings, todo, report = plan_build(folder, request, shard)
    if not todo:
        return report
    resuming = folder.exists()
    with connected(options) as ray:
        run = _RayRun(ray, options, request, settings, len(todo), on_workers)  # refuses another model
        if request.clip is None:
            settings = folder.create_or_check(settings)["settings"]
        engine = request.clip.engine if request.clip is not None else None
        queue = list(todo)
        if request.clip is not None:
            # The first chunk chooses the engine, as in a local build; the others then use that engine.
            first = queue.pop(0)
            arrays, check = run.result(run.submit(0, first, engine, fallback=not resuming))
            engine = check["engine"]
            request = replace(request, clip=replace(request.clip, engine=engine))
            settings = folder.create_or_check(request.settings())["settings"]
            run.record(folder, shard, check, len(todo))
            _write(folder, first, arrays, report, progress)
            if say is not None:
                say(f"CLIP image engine {engine} (chosen by the first Ray worker, checked by every other)")

        def write(chunk: int, arrays: dict[str, np.ndarray], check: dict[str, Any] | None) -> None:
            if check is not None:
                run.record(folder, shard, check, len(todo))
            _write(folder, chunk, arrays, report, progress)

        run.drain(queue, engine, write)
    return report


def _write(
    folder: DatasetFolder,
    chunk: int,
    arrays: dict[str, np.ndarray],
    report: BuildReport,
    progress: Callable[[int], None] | None,
) -> None:
    folder.write_chunk(chunk, arrays)
    report.built_chunks += 1
    report.built_samples += len(arrays["indices"])
    if progress is not None:
        progress(len(arrays["indices"]))


def _portable(request: DatasetRequest) -> DatasetRequest:
    """A model file named relative to the driver's folder, made absolute: workers run elsewhere."""
    path = Path(request.model_spec).expanduser()
    if path.exists() and not path.is_absolute():
        request = replace(request, model_spec=str(path.resolve()))
    if request.model_dir is not None:
        request = replace(request, model_dir=str(Path(request.model_dir).expanduser().resolve()))
    return request


class _RayRun:
    """The workers of one build and the chunks in flight on them."""

    def __init__(
        self,
        ray: Any,
        options: RayOptions,
        request: DatasetRequest,
        settings: dict[str, Any],
        chunks: int,
        on_workers: Callable[[list[int]], None] | None,
    ) -> None:
        self.ray, self.options = ray, options
        resources = ray.cluster_resources()
        gpus = options.gpus_per_worker
        if gpus is None:
            gpus = 1.0 if resources.get("GPU", 0) >= 1 else 0.0
        capacity = max(1, int(resources.get("CPU", 1) // options.cpus_per_worker))
        self.count = max(1, min(options.workers or capacity, chunks))
        self.key = chunk_proof(settings, -1)
        # The model travels as its name and checksum: every worker loads its own copy.
        job = WorkerJob(
            request=replace(request, model=None),  # type: ignore[arg-type]
            settings=settings,
            checksum=request.model.checksum(),
            use_gpu=gpus > 0,
        )
        # Passed by value, not as an object-store reference: a restarted actor gets it again even after
        # the reference went away (Ray warns of exactly that for references).
        self.job = job
        resources_of = {"num_cpus": options.cpus_per_worker, "num_gpus": gpus}
        if options.mode == "actors":
            actor = ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES, **resources_of)(ChunkWorker)
            self.actors = [actor.remote(job) for _ in range(self.count)]
            problems = self._get([a.problem.remote() for a in self.actors])
            if any(problems):
                raise DatasetError(next(p for p in problems if p))
            if on_workers is not None:
                on_workers([pid for _, pid in self._get([a.where_and_pid.remote() for a in self.actors])])
        else:
            self.task = ray.remote(max_retries=RETRIES, **resources_of)(_make_in_process)

    def submit(self, worker: int, chunk: int, engine: str | None, fallback: bool) -> Any:
        if self.options.mode == "actors":
            return self.actors[worker].make.remote(chunk, engine, fallback)
        return self.task.remote(self.job, self.key, chunk, engine, fallback)

    def result(self, reference: Any) -> Any:
        return self._get(reference)

    def drain(
        self,
        queue: list[int],
        engine: str | None,
        write: Callable[[int, dict[str, np.ndarray], dict[str, Any] | None], None],
    ) -> None:
        """Run every chunk of ``queue``, keeping each worker fed; ``write`` gets each chunk as it returns,
        so memory holds a few chunks whatever the dataset's size and a killed driver loses only those."""
        in_flight: dict[Any, tuple[int, int]] = {}  # reference -> (worker, chunk)
        pending = list(queue)
        slots = IN_FLIGHT_PER_WORKER if self.options.mode == "actors" else 1
        for _ in range(slots):
            for worker in range(self.count):
                if pending:
                    chunk = pending.pop(0)
                    in_flight[self.submit(worker, chunk, engine, False)] = (worker, chunk)
        while in_flight:
            done, _ = self.ray.wait(list(in_flight), num_returns=1)
            worker, chunk = in_flight.pop(done[0])
            arrays, check = self._get(done[0])
            write(chunk, arrays, check)
            if pending:
                next_chunk = pending.pop(0)
                in_flight[self.submit(worker, next_chunk, engine, False)] = (worker, next_chunk)

    def record(self, folder: DatasetFolder, shard: Shard, check: dict[str, Any], chunks: int) -> None:
        record = {"shard": f"{shard.index}/{shard.count}", "chunks": chunks, "ray_workers": self.count}
        folder.add_records("clip_engine", [{**record, **check}])

    def _get(self, references: Any) -> Any:
        """``ray.get``, with a worker's own error (a :class:`SemantifyError`) raised as itself."""
        try:
            return self.ray.get(references)
        except self.ray.exceptions.RayTaskError as error:
            cause = getattr(error, "cause", None)
            if isinstance(cause, SemantifyError):
                raise cause from None
            raise
