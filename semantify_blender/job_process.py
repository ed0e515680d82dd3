"""A background job's process: its ``semantify`` command line before it starts, its result once it ends.

The work needs torch and open_clip and takes seconds to hours, so it runs as a ``semantify`` command
(``build``, ``mapper add-word``, ``fit text|image``, ``clip download``) in a background process: a
headless child of this Blender with the platform extension's CLIP engine, or the Python set in the
preferences (the engine's :mod:`semantify_engine.cli.worker` decides which, and every report names it).
Argument lists are written from the command-line parser's own definitions
(:func:`semantify_engine.cli.arguments.command_arguments`), never by hand.

Before anything starts, the worker is asked (without importing anything) whether it has the modules the
job needs; when it does not, the report says which are missing and how to get them (the platform
extension's CLIP engine, or a Python that has them). When the process ends, :func:`finish` turns its
result into a report: by default it loads the new mapper onto the object the job was started for.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy

from . import model_objects, sliders
from .engine import import_engine
from .preferences import cache_dir, engine_environment, job_worker, user_model_dir

if TYPE_CHECKING:
    from semantify_engine.cli.background import BackgroundJob
    from semantify_engine.cli.worker import Worker

    from .job_state import ActiveJob

WORD_MODULES = ("numpy", "torch", "torchvision", "open_clip", "sklearn", "bpy")
"""What building word sliders imports: CLIP, the descriptor selection, Blender to render the views."""


# ------------------------------------------------------------------------------------ preparation
def require_modules(worker: Worker, modules: tuple[str, ...], purpose: str) -> None:
    """Refuse to start when ``worker`` lacks any of ``modules``, saying how to make them available."""
    errors = import_engine("errors")
    describe = import_engine("cli.worker").missing_engine_message
    try:
        missing = worker.missing_modules(modules)
    except errors.JobError as error:
        raise errors.JobError(
            f"{error} Set Edit > Preferences > Add-ons > Semantify > 'Python with semantify installed' to a "
            "Python that runs, or clear it to use this Blender."
        ) from error
    if missing:
        raise errors.JobError(describe(worker, missing, purpose))


def command(name: str, *positionals: object, **options: object) -> list[str]:
    """``semantify NAME ...`` as an argument list, written from the parser's own definitions."""
    return import_engine("cli.arguments").command_arguments(tuple(name.split()), *positionals, **options)


def slug(text: str) -> str:
    """``text`` as a file name part: safe characters only, at most 40 of them."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:40] or "model"


def model_options(context: Any, obj: bpy.types.Object) -> dict[str, str]:
    """``model`` (and ``model_dir``) naming the object's model for the engine (a file for 'Use My Mesh')."""
    registry = import_engine("models.registry")
    user_models = import_engine("models.user_models")
    state = obj.semantify
    source = state.model_source
    if source in registry.bundled_model_paths():
        return {"model": source}
    if source in user_models.USER_MODEL_NAMES:
        folder = user_model_dir(context)
        return {"model": source, **({"model_dir": folder} if folder else {})}
    if source == model_objects.SHAPE_KEY_SOURCE:
        models = import_engine("models")
        model = model_objects.own_mesh_model(obj)
        path = Path(cache_dir(context)) / "models" / f"{slug(state.model_name)}-{state.model_checksum}.npz"
        models.save_model(model, path)
        return {"model": str(path)}
    return {"model": bpy.path.abspath(source)}


def build_job(
    context: Any,
    obj: bpy.types.Object,
    samples: int,
    scorer: str,
    words: str,
    descriptors: int,
    render_engine: str = "workbench",
) -> BackgroundJob:
    """``semantify build`` for the object's model into a cache folder named after the request.

    The same request goes to the same folder, so building again after a cancel resumes the dataset.
    """
    background = import_engine("cli.background")
    scorers = import_engine("dataset.scorers")
    worker = job_worker(context)
    require_modules(worker, ("numpy", "torch"), "Building a mapper")  # training is torch's, any sliders
    scorer = scorers.settled(scorer, lambda: not worker.missing_modules(WORD_MODULES))
    if scorers.asks_clip(scorer):
        require_modules(worker, WORD_MODULES, "Building word sliders")
    options: dict[str, object] = {
        **model_options(context, obj),
        "samples": samples,
        "scorer": scorer,
        "no_evaluate": True,
        "words": words.strip() or None,
        "descriptors": descriptors if descriptors > 0 else None,
        "engine": render_engine if scorers.asks_clip(scorer) else None,  # measurements render nothing
    }
    environment = engine_environment(context)
    request = json.dumps([sorted(options.items()), sorted(environment.items())]).encode()
    name = f"{slug(obj.semantify.model_name)}-{hashlib.sha256(request).hexdigest()[:10]}"
    out = Path(cache_dir(context)) / "builds" / name
    return background.BackgroundJob(
        worker,
        command("build", **options, out=str(out)),
        out / "mapper.npz",
        environment=environment,
        label=f"Build mapper for {obj.semantify.model_name}",
    )


def add_word_job(context: Any, obj: bpy.types.Object, word: str, dataset: str) -> BackgroundJob:
    """``semantify mapper add-word`` on the object's mapper, written to a new file in the cache."""
    background = import_engine("cli.background")
    add_word = import_engine("mapper.add_word")
    worker = job_worker(context)
    word = add_word.clean_word(word)
    require_modules(worker, ("numpy", "torch", "torchvision", "open_clip"), "Adding a word")
    state = obj.semantify
    mapper_path = sliders.mapper_file(state.mapper_path)
    out = Path(cache_dir(context)) / "mappers" / f"{Path(mapper_path).stem}+{slug(word)}.npz"
    arguments = command(
        "mapper add-word",
        mapper_path,
        word,
        out=str(out),
        dataset=bpy.path.abspath(dataset) if dataset.strip() else None,
    )
    return background.BackgroundJob(
        worker, arguments, out, environment=engine_environment(context), label=f"Add word '{word}'"
    )


# ------------------------------------------------------------------------------------------ finish
def finish(state: ActiveJob) -> tuple[str, str, bool]:
    """Use the finished job's result (by default: load its mapper onto its object).

    Returns a report level, a message and whether the scene changed. The command's error names the
    parameters it blames as the operator that started the job names them (``state.label_of``).
    """
    errors = import_engine("errors")
    try:
        path = state.job.result()
    except errors.JobCancelled:
        return "WARNING", f"{state.job.label}: cancelled", False
    except errors.SemantifyError as error:
        return "ERROR", f"{state.job.label} failed: {error.render(state.label_of)}", False
    if state.use_result is not None:
        return state.use_result(state, path)
    obj = bpy.data.objects.get(state.object_name or "")
    if obj is None or not obj.semantify.is_model:
        return (
            "WARNING",
            f"New mapper saved to {path}; '{state.object_name}' is gone: load it with Load Mapper",
            False,
        )
    try:
        mapper = sliders.load_onto(obj, str(path), keep_values=state.keep_values)
    except errors.SemantifyError as error:
        return "ERROR", f"New mapper saved to {path} but not loaded onto '{obj.name}': {error}", False
    names = ", ".join(mapper.descriptor_names)
    where = f"built in {state.job.worker.describe()}"
    return "INFO", f"'{obj.name}' has {mapper.input_count} sliders: {names} ({where})", True
