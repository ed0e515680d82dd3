"""Fit the sliders from the sidebar: measurements in-process, a text or a photo in a background process.

All three fits end in :func:`set_sliders`: slider values by descriptor name become positions in [0, 1]
along each descriptor's range (clamped), are written at once and run through the slider path
(:func:`.sliders.apply`, what Reset and Random use) so the shape keys follow, and the user refines the
result with the sliders. A fit is one undo step; a fit that cannot be done (an impossible measurement,
empty text, a file that is not a photo, a mapper without the sliders the input can drive) is reported and
changes nothing in the scene.

- *Fit Measurements* runs :func:`semantify_engine.fitting.fit_measurements` here: numpy only, a fraction
  of a second, so no background process is worth its start-up.
- *Fit Text* and *Fit Photo* need CLIP (torch, open_clip, Pillow), which Blender's Python lacks, so they
  run ``semantify fit text|image ... --out RESULT.json`` in the Python set in the preferences through
  :mod:`.jobs` (progress, Esc / Cancel, the missing-torch report, waiting instead in ``blender -b``), and
  set the sliders from the JSON when it ends. The checks that need no CLIP (empty text, no photo file, a
  mapper with no word sliders or no dataset) run here first, so they are reported at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import bpy
import numpy as np
from bpy.props import BoolProperty, StringProperty

from . import jobs, model_objects, polls, sliders
from .engine import import_engine
from .fitting_props import SEMANTIFY_PG_fit, display_unit
from .job_process import command, require_modules, slug
from .job_state import ActiveJob, ResultHandler
from .operator_base import UNDOABLE, SemantifyOperator
from .preferences import cache_dir, engine_environment, job_worker, user_model_dir

if TYPE_CHECKING:
    from semantify_engine.cli.background import BackgroundJob
    from semantify_engine.fitting import FitResult
    from semantify_engine.mapper.mapper import Mapper
    from semantify_engine.models.linear import LinearMorphableModel

FIT_FOLDER = "fits"
TEXT_MODULES = ("numpy", "torch", "torchvision", "open_clip")
PHOTO_MODULES = ("numpy", "torch", "torchvision", "open_clip", "PIL")
MODEL_CACHE_SIZE = 4

_models: dict[tuple[str, str], LinearMorphableModel] = {}  # (source, checksum) -> model, for measuring


def fit_error(message: str) -> Exception:
    """The engine's :class:`FitError` (a SemantifyError), for checks made here."""
    return import_engine("fitting.result").FitError(message)


def clear_caches() -> None:
    model_objects.clear_models()


# ------------------------------------------------------------------------------------ the sliders
def set_sliders(
    obj: bpy.types.Object, values: Mapping[str, float], mapper_checksum: str | None = None
) -> np.ndarray:
    """Move ``obj``'s sliders to descriptor ``values`` (by name; others stay) and run the mapper once.

    Values outside a descriptor's range go to its end (the engine's fits have clamped and reported them
    already). ``mapper_checksum`` is the mapper the values were fitted with: values of another mapper would
    mean other things, so they are refused, like names the object has no slider for, before anything
    changes. Returns the slider positions written.
    """
    mapper = sliders.mapper_of(obj)  # the object's mapper, checked against its model and its file
    state = obj.semantify
    if mapper_checksum is not None and mapper_checksum != state.mapper_checksum:
        raise fit_error(
            f"This fit was made with another mapper (checksum {mapper_checksum}) than the one '{obj.name}' "
            f"now uses ({sliders.mapper_label(state.mapper_path)}, {state.mapper_checksum}); fit again."
        )
    names = list(mapper.descriptor_names)
    unknown = [name for name in values if name not in names]
    if unknown:
        raise fit_error(
            f"'{obj.name}' has no slider {', '.join(unknown)}; its sliders are {', '.join(names)}."
        )
    positions = sliders.positions_of(obj).astype(np.float64)
    span = (mapper.highs - mapper.lows).astype(np.float64)
    for name, value in values.items():
        index = names.index(name)
        if not np.isfinite(float(value)):
            raise fit_error(f"The fit gave '{name}' the value {value}; expected a number.")
        positions[index] = (float(value) - mapper.lows[index]) / span[index] if span[index] > 0 else 0.0
    positions = np.clip(positions, 0.0, 1.0).astype(np.float32)
    sliders.write_positions(obj, positions)
    if state.status:
        state.status = ""
    return positions


def quantity(value: float, unit: str) -> str:
    """A slider value as the Fit panel shows it: lengths in centimetres, scores bare."""
    shown, factor = display_unit(unit)
    if unit in ("", "cosine"):
        return f"{value:.3f}"
    return f"{value * factor:.1f} {shown}" if unit == "m" else f"{value * factor:.4g} {shown}"


def summary(
    label: str, shown: Mapping[str, float], units: Mapping[str, str], clamped: list[str]
) -> tuple[str, str]:
    """The report of a fit that was applied: WARNING when a value had to be clamped, else INFO."""
    values = ", ".join(f"{name} {quantity(value, units.get(name, ''))}" for name, value in shown.items())
    if clamped:
        return "WARNING", f"{label}: {'; '.join(clamped)}"
    return "INFO", f"{label}: {values}"


# ------------------------------------------------------------------------------ measurements → shape
def requested_measurements(obj: bpy.types.Object) -> dict[str, float]:
    """The ticked measurement fields in the descriptors' own units (centimetres become metres)."""
    return {
        slider.name: slider.fit_measurement / display_unit(slider.unit)[1]
        for slider in obj.semantify.sliders
        if slider.kind == "metric" and slider.fit_use
    }


def measuring_model(context: Any, obj: bpy.types.Object) -> LinearMorphableModel | None:
    """The object's model, to measure the fitted shape; None when it cannot be had (the fit still runs)."""
    return model_objects.model_of(obj, user_model_dir(context))


def measurement_fit(context: Any, obj: bpy.types.Object, mapper: Mapper) -> FitResult:
    """The engine's measurement fit of the ticked fields, with the fitted mesh measured when possible."""
    errors = import_engine("errors")
    fitting = import_engine("fitting")
    requested = requested_measurements(obj)
    model = measuring_model(context, obj)
    try:
        return fitting.fit_measurements(mapper, requested, model)
    except fitting.FitError:
        raise
    except errors.SemantifyError:  # the model has no measurement definition: fit without measuring
        return fitting.fit_measurements(mapper, requested)


def achieved_lines(result: FitResult, units: Mapping[str, str]) -> list[str]:
    """'height: the mesh measures 179.7 cm (asked 180.0 cm)' for every measurement the fit checked."""
    lines = []
    for name, row in result.details.get("achieved", {}).items():
        unit = units.get(name, "")
        lines.append(
            f"{name}: the mesh measures {quantity(row['achieved'], unit)} "
            f"(asked {quantity(row['requested'], unit)})"
        )
    return lines


class SEMANTIFY_OT_fit_measurements(SemantifyOperator):
    """Set the sliders so the shape has the ticked measurements (unticked ones go to their defaults)"""

    bl_idname = "semantify.fit_measurements"
    bl_label = "Fit Measurements"
    bl_options = UNDOABLE
    needs = (polls.SLIDERS, polls.MEASUREMENT_SLIDERS)

    def run(self, context: Any) -> set[str]:
        obj = context.active_object
        # everything that can fail does so before a slider moves
        result = measurement_fit(context, obj, sliders.mapper_of(obj))
        set_sliders(obj, result.sliders)
        units = {slider.name: slider.unit for slider in obj.semantify.sliders}
        achieved = achieved_lines(result, units)
        obj.semantify.fit.notes = "\n".join([*achieved, *result.notes])
        requested = {name: result.sliders[name] for name in result.inputs["measurements"]}
        level, message = summary(
            "Fit measurements", requested, units, [item.message() for item in result.clamped]
        )
        self.report({level}, message + "".join(f"; {line}" for line in achieved))
        return {"FINISHED"}


# ----------------------------------------------------------------------------- text, photo → shape
def fit_output(context: Any, obj: bpy.types.Object, method: str) -> Path:
    """Where a background fit writes its JSON: one file per object and method, in the cache folder.

    The previous file is removed first, so a fit that writes nothing can never pass off an old result.
    """
    path = Path(cache_dir(context)) / FIT_FOLDER / f"{slug(obj.name)}-{method}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return path


def text_dataset(mapper: Mapper, dataset: str, label: str) -> str | None:
    """The dataset folder to pass with ``--dataset`` (None: the mapper's own), refused now when the engine
    would refuse it (:func:`semantify_engine.mapper.provenance.trained_dataset`): no dataset given and none
    recorded, or not there any more."""
    if dataset.strip():
        folder = Path(bpy.path.abspath(dataset))
        import_engine("dataset.store").DatasetFolder(folder).read_manifest()  # a dataset, or said why not
        return str(folder)
    provenance = import_engine("mapper.provenance")
    provenance.trained_dataset(mapper, mapper_name=f"The mapper {label}")
    return None


def text_job(context: Any, obj: bpy.types.Object, prompt: str, dataset: str) -> BackgroundJob:
    """``semantify fit text PROMPT --mapper M --out RESULT.json`` for the object's mapper."""
    background = import_engine("cli.background")
    prompt = import_engine("fitting.text").clean_prompt(prompt)  # empty, no words, too long: said now
    state = obj.semantify
    folder = text_dataset(sliders.mapper_of(obj), dataset, sliders.mapper_label(state.mapper_path))
    worker = job_worker(context)
    require_modules(worker, TEXT_MODULES, "Fitting a text")
    out = fit_output(context, obj, "text")
    mapper = sliders.mapper_file(state.mapper_path)
    shown = prompt if len(prompt) <= 40 else prompt[:39] + "…"
    return background.BackgroundJob(
        worker,
        command("fit text", prompt, mapper=mapper, out=str(out), dataset=folder),
        out,
        environment=engine_environment(context),
        label=f'Fit text "{shown}"',
    )


def checked_photo(photo: str) -> Path:
    """The photo's absolute path, refused at once when there is no file (decoding it needs Pillow)."""
    if not photo.strip():
        raise fit_error("Choose a photo first (the Photo field, or Fit Photo's file browser).")
    path = Path(bpy.path.abspath(photo))
    if not path.exists():
        raise fit_error(f"Photo {path} does not exist.")
    if path.is_dir():
        raise fit_error(f"Photo {path} is a folder; choose an image file (JPEG, PNG, ...).")
    if path.stat().st_size == 0:
        raise fit_error(f"Photo {path} is an empty file; choose an image file (JPEG, PNG, ...).")
    return path


def photo_job(context: Any, obj: bpy.types.Object, photo: str, crop: str) -> BackgroundJob:
    """``semantify fit image PHOTO --mapper M --crop C --out RESULT.json`` for the object's mapper."""
    background = import_engine("cli.background")
    path = checked_photo(photo)
    state = obj.semantify
    import_engine("fitting.image").word_columns(
        sliders.mapper_of(obj),
        mapper_name=f"The mapper {sliders.mapper_label(state.mapper_path)}",
        instead="Use Fit Measurements, or a mapper with word sliders (Build Mapper, Add Word).",
    )
    worker = job_worker(context)
    require_modules(worker, PHOTO_MODULES, "Fitting a photo")
    out = fit_output(context, obj, "photo")
    mapper = sliders.mapper_file(state.mapper_path)
    return background.BackgroundJob(
        worker,
        command("fit image", str(path), mapper=mapper, out=str(out), crop=crop),
        out,
        environment=engine_environment(context),
        label=f"Fit photo {path.name}",
    )


def read_fit(path: Path) -> dict[str, Any]:
    """A fit's JSON result (``FitResult.to_json``), refused when it is not one."""
    result = import_engine("fitting.result")
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise fit_error(f"The fit's result {path} cannot be read ({error}).") from error
    if (
        not isinstance(data, dict)
        or data.get("format") != result.FORMAT
        or not isinstance(data.get("sliders"), dict)
    ):
        raise fit_error(f"{path} is not a semantify fit result.")
    return data


def apply_fit_result(state: ActiveJob, path: Path) -> tuple[str, str, bool]:
    """A finished background fit's sliders onto the object it was started for (a ``ResultHandler``)."""
    errors = import_engine("errors")
    label = state.job.label
    obj = bpy.data.objects.get(state.object_name)
    if obj is None or not obj.semantify.is_model:
        return "WARNING", f"{label}: '{state.object_name}' is gone; the fit is in {path}", False
    try:
        data = read_fit(path)
        set_sliders(obj, data["sliders"], (data.get("mapper") or {}).get("checksum"))
    except errors.SemantifyError as error:
        return "ERROR", f"{label}: {error}", False
    fit = obj.semantify.fit
    photo = (data.get("inputs") or {}).get("photo")
    if data.get("method") == "image" and photo and not fit.photo:
        fit.photo = str(photo)  # chosen in the file browser: show it in the panel
    fit.notes = "\n".join(str(note) for note in data.get("notes", []))
    units = {slider.name: slider.unit for slider in obj.semantify.sliders}
    level, message = summary(label, data["sliders"], units, clamp_messages(data.get("clamped", [])))
    return level, message, True


def clamp_messages(records: list[dict[str, Any]]) -> list[str]:
    """The engine's own wording for the values a fit clamped, from their JSON records."""
    clamped = import_engine("fitting.result").Clamped
    fields = ("descriptor", "value", "low", "high", "unit")
    return [clamped(**{key: record[key] for key in fields}).message() for record in records]


class _FitJobOperator(jobs._BackgroundOperator):
    """A fit in the background: needs loaded sliders; starts at once (no dialog); sets sliders at the end."""

    needs = jobs.ON_SLIDERS
    panel_fields: ClassVar[Mapping[str, tuple[type, str]]] = {
        "dataset": (SEMANTIFY_PG_fit, "Fit"),
        "crop": (SEMANTIFY_PG_fit, "Fit"),
    }

    def invoke(self, context: Any, event: Any) -> set[str]:
        return self.execute(context)

    def result_handler(self) -> ResultHandler:
        return apply_fit_result


class SEMANTIFY_OT_fit_text(_FitJobOperator):
    """Fit the shape to a text: blend the dataset renders most like it, set the sliders to their values"""

    bl_idname = "semantify.fit_text"
    bl_label = "Fit Text"

    prompt: StringProperty(
        name="Text",
        description="What the shape should look like (empty: the Fit panel's text)",
        options={"SKIP_SAVE"},
    )

    def make_job(self, context: Any, obj: bpy.types.Object) -> BackgroundJob:
        fit = obj.semantify.fit
        return text_job(context, obj, self.prompt or fit.prompt, fit.dataset)


class SEMANTIFY_OT_fit_photo(_FitJobOperator):
    """Fit the shape to a photo: CLIP-score it against the mapper's words, set the sliders to the scores"""

    bl_idname = "semantify.fit_photo"
    bl_label = "Fit Photo"

    filepath: StringProperty(
        name="Photo",
        description="The photo (empty: the Fit panel's photo)",
        subtype="FILE_PATH",
        options={"SKIP_SAVE"},
    )
    filter_image: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    filter_folder: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context: Any, event: Any) -> set[str]:
        if self.filepath or context.active_object.semantify.fit.photo:
            return self.execute(context)
        context.window_manager.fileselect_add(self)  # no photo yet: choose one, then execute runs
        return {"RUNNING_MODAL"}

    def make_job(self, context: Any, obj: bpy.types.Object) -> BackgroundJob:
        fit = obj.semantify.fit
        return photo_job(context, obj, self.filepath or fit.photo, fit.crop)


CLASSES: tuple[type, ...] = (SEMANTIFY_OT_fit_measurements, SEMANTIFY_OT_fit_text, SEMANTIFY_OT_fit_photo)
