"""Build Mapper and Add Word: background processes, their progress, cancel and result.

Headless Blender has no event loop to feed timer events to the modal operator: the tests deliver the
events themselves; the background process, its progress, cancel and result are real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from support.blender import (
    MODULE,
    OperatorStandIn,
    add_body_with_default_mapper,
    evaluated_vertices,
    positions_of,
)
from support.clip import capsule_clip_request

from semantify_engine.mapper import load_mapper, save_mapper
from semantify_engine.models import load

bpy = pytest.importorskip("bpy")


# ------------------------------------------------------------------------------------ background jobs
def test_build_mapper_runs_in_a_background_process_and_loads_its_sliders(glue) -> None:
    """Headless there is no event loop for the modal operator: it waits for the same process instead."""
    obj = add_body_with_default_mapper()
    assert bpy.ops.semantify.build_mapper(samples=128, scorer="metric") == {"FINISHED"}
    state = obj.semantify
    # a body with a source bank builds MakeHuman's shape settings with the height in metres by default
    assert [slider.name for slider in state.sliders] == [
        "gender",
        "age",
        "muscle",
        "weight",
        "height",
        "proportions",
    ]
    path = Path(state.mapper_path)
    assert path.name == "mapper.npz" and path.parent.parent.name == "builds"  # in the cache, not the zip
    mapper = load_mapper(path)
    assert mapper.metadata["dataset"]["samples"] == 128 and state.status == ""
    values = np.array([slider.value for slider in state.sliders], dtype=np.float32)
    expected = load("anny-body").vertices(mapper.coefficients(values))
    assert np.abs(evaluated_vertices(obj) - expected).max() < 1e-5
    assert glue.jobs.active_job() is None and not bpy.ops.semantify.cancel_job.poll()


def tick(glue, event_type: str = "TIMER") -> set[str]:
    """One event delivered to the modal operator, as Blender's event loop would (headless has none)."""
    event = SimpleNamespace(type=event_type, value="PRESS" if event_type == "ESC" else "NOTHING")
    return glue.jobs.SEMANTIFY_OT_build_mapper.modal(OperatorStandIn(), bpy.context, event)


def test_modal_build_shows_progress_on_timer_ticks_and_cancel_ends_the_process(glue, monkeypatch) -> None:
    obj = add_body_with_default_mapper()
    monkeypatch.setattr(glue.jobs, "has_event_loop", lambda context: True)
    assert bpy.ops.semantify.build_mapper(samples=50000, scorer="metric") == {"RUNNING_MODAL"}
    state = glue.jobs.active_job()
    assert state is not None and state.timer is not None
    assert (
        not bpy.ops.semantify.build_mapper.poll() and not bpy.ops.semantify.add_word.poll()
    )  # one at a time
    shown = bpy.context.window_manager.semantify_job
    deadline = time.monotonic() + 60
    while not (shown.known and shown.fraction > 0):
        assert tick(glue) == {"PASS_THROUGH"} and time.monotonic() < deadline
        time.sleep(0.05)
    assert shown.running and shown.label == "Build mapper for anny-body" and "dataset" in shown.message
    assert tick(glue, "MOUSEMOVE") == {"PASS_THROUGH"}  # other events go on to Blender
    assert bpy.ops.semantify.cancel_job() == {"FINISHED"}  # the sidebar's Cancel asks; the next tick ends it
    assert tick(glue) == {"CANCELLED"}
    assert not state.job.running and glue.jobs.active_job() is None and not shown.running
    with pytest.raises(ProcessLookupError):
        os.killpg(state.job.process.pid, 0)
    assert obj.semantify.mapper_path == "default:anny-body-measurements"  # the scene is as it was


def test_disabling_the_add_on_ends_a_running_job(glue, monkeypatch) -> None:
    add_body_with_default_mapper()
    monkeypatch.setattr(glue.jobs, "has_event_loop", lambda context: True)
    assert bpy.ops.semantify.build_mapper(samples=50000, scorer="metric") == {"RUNNING_MODAL"}
    state = glue.jobs.active_job()
    assert bpy.ops.preferences.addon_disable(module=MODULE) == {"FINISHED"}
    assert not state.job.running and glue.jobs.active_job() is None
    with pytest.raises(ProcessLookupError):
        os.killpg(state.job.process.pid, 0)


def test_modal_build_loads_the_new_sliders_when_the_process_finishes(glue, monkeypatch) -> None:
    obj = add_body_with_default_mapper()
    obj.semantify.sliders["height"].position = 0.9
    monkeypatch.setattr(glue.jobs, "has_event_loop", lambda context: True)
    assert bpy.ops.semantify.build_mapper(samples=128, scorer="metric") == {"RUNNING_MODAL"}
    deadline = time.monotonic() + 120
    while (result := tick(glue)) == {"PASS_THROUGH"}:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert result == {"FINISHED"} and glue.jobs.active_job() is None
    assert Path(obj.semantify.mapper_path).name == "mapper.npz"
    height = obj.semantify.sliders["height"]  # a new mapper: its defaults, not the old position
    assert height.position == pytest.approx(
        (height.default - height.low) / (height.high - height.low), abs=1e-3
    )


@pytest.fixture(scope="module")
def capsule_words(capsule, tiny_spec, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A capsule model file and a two-word mapper for it, trained on a tiny CLIP dataset (mechanics only)."""
    from semantify_engine.dataset.builder import build_dataset
    from semantify_engine.dataset.store import DatasetFolder
    from semantify_engine.mapper.from_dataset import train_from_dataset
    from semantify_engine.mapper.settings import TrainingSettings
    from semantify_engine.models import save_model

    folder = tmp_path_factory.mktemp("capsule-words")
    dataset = DatasetFolder(folder / "data")
    build_dataset(
        dataset,
        capsule_clip_request(capsule, tiny_spec, ("fat", "tall"), samples=16, views="front"),
    )
    settings = TrainingSettings(epochs=3, hidden=(16,), batch_size=8)
    mapper, _ = train_from_dataset(dataset.folder, ["fat", "tall"], model=capsule, settings=settings)
    return save_model(capsule, folder / "capsule.npz"), save_mapper(mapper, folder / "words.npz")


def test_add_word_from_the_sidebar_keeps_the_other_sliders_values(glue, capsule_words) -> None:
    model_path, mapper_path = capsule_words
    assert bpy.ops.semantify.add_model_file(filepath=str(model_path)) == {"FINISHED"}
    obj = bpy.context.active_object
    assert bpy.ops.semantify.load_mapper(filepath=str(mapper_path)) == {"FINISHED"}
    obj.semantify.sliders["tall"].position = 0.8
    tall = obj.semantify.sliders["tall"].value
    assert bpy.ops.semantify.add_word(word="broad shoulders") == {"FINISHED"}  # a real background process
    state = obj.semantify
    assert [slider.name for slider in state.sliders] == ["fat", "tall", "broad shoulders"]
    assert state.sliders["tall"].value == pytest.approx(tall, abs=1e-6)  # the artist's shape is kept
    assert Path(state.mapper_path).name == "words+broad_shoulders.npz" and state.status == ""
    assert load_mapper(mapper_path).descriptor_names == ("fat", "tall")  # the original is untouched


def test_build_mapper_offers_the_engines_scorers_and_lets_the_engine_settle_auto(glue, monkeypatch) -> None:
    from semantify_engine.dataset.scorers import SCORERS

    items = bpy.ops.semantify.build_mapper.get_rna_type().properties["scorer"].enum_items
    assert {item.identifier for item in items} == set(SCORERS)
    obj = add_body_with_default_mapper()
    worker = type(glue.preferences.job_worker(bpy.context))
    monkeypatch.setattr(
        worker, "missing_modules", lambda self, modules: [m for m in modules if m == "open_clip"]
    )
    job = glue.jobs.build_job(bpy.context, obj, 128, "auto", "", 0)
    assert job.arguments[job.arguments.index("--scorer") + 1] == "metric"  # auto without CLIP measures
    assert "--engine" not in job.arguments


def test_build_mapper_renders_with_the_engines_the_renderer_knows(glue) -> None:
    from semantify_engine.render.settings import ENGINES

    items = bpy.ops.semantify.build_mapper.get_rna_type().properties["render_engine"].enum_items
    assert {item.identifier for item in items} == set(ENGINES)
    obj = add_body_with_default_mapper()
    job = glue.jobs.build_job(bpy.context, obj, 128, "clip", "tall,fat", 0, "cycles")
    assert job.arguments[job.arguments.index("--engine") + 1] == "cycles"
    metric = glue.jobs.build_job(bpy.context, obj, 128, "metric", "", 0, "cycles")
    assert "--engine" not in metric.arguments  # measurements render nothing


def test_missing_torch_or_open_clip_is_reported_with_how_to_fix_it(glue, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    preferences = bpy.context.preferences.addons[MODULE].preferences
    obj = add_body_with_default_mapper()
    before = (positions_of(obj), obj.semantify.mapper_path)
    preferences.python = str(bare / "bin" / "python")
    with pytest.raises(RuntimeError) as caught:
        bpy.ops.semantify.add_word(word="muscular")
    message = str(caught.value)
    for text in (
        "lacks numpy, torch, torchvision, open_clip",
        "Python with semantify installed",
        "-m pip install",
    ):
        assert text in message
    preferences.python = str(tmp_path / "no-such-python")
    with pytest.raises(RuntimeError, match="cannot be run.*Python with semantify installed"):
        bpy.ops.semantify.build_mapper(samples=128, scorer="metric")
    assert np.array_equal(positions_of(obj), before[0]) and obj.semantify.mapper_path == before[1]
    preferences.python = ""


def test_an_engine_error_names_the_fields_that_fed_it(glue) -> None:
    """The engine error the command line spells ``--samples`` (tests/engine/test_errors.py) reads as the
    field's label here: the operator's own property, the property it passes under another name, else a
    preference."""
    errors = glue.engine.import_engine("errors")
    build = glue.jobs.SEMANTIFY_OT_build_mapper
    assert build.label_of("samples") == "'Samples'" and build.label_of("scorer") == "'Sliders'"
    assert build.label_of("engine") == "'Render With'"  # build_job passes render_engine as engine
    assert build.label_of("pretrained") == "the preference 'CLIP Weights'"
    assert build.label_of("model_dir") == "the preference 'User Model Folder'"
    assert build.label_of("seed") is None  # no field of its own: the engine's name stands
    assert glue.clip_ops.SEMANTIFY_OT_use_local_weights.label_of("clip") == "'Architecture'"

    def failed() -> None:  # what a background command's error record becomes (BackgroundJob.result)
        raise errors.JobError("{samples} must be a whole number > 0, got 0.", parameters=("samples",))

    job = SimpleNamespace(label="Build mapper", result=failed)
    state = glue.job_state.ActiveJob(job=job, object_name=None, keep_values=False, label_of=build.label_of)
    message = "Build mapper failed: 'Samples' must be a whole number > 0, got 0."
    assert glue.job_process.finish(state) == ("ERROR", message, False)

    class SEMANTIFY_OT_test_refuses(glue.operator_base.SemantifyOperator):
        bl_idname = "semantify.test_refuses"
        bl_label = "Refuses"
        samples: bpy.props.IntProperty(name="Shapes to Sample")

        def run(self, context):
            raise errors.DatasetError(
                "{samples} must be > 0; or set {clip_engine} to torch.", parameters=("samples", "clip_engine")
            )

    bpy.utils.register_class(SEMANTIFY_OT_test_refuses)
    try:
        expected = "'Shapes to Sample' must be > 0; or set the preference 'CLIP Image Engine' to torch."
        with pytest.raises(RuntimeError, match=expected):
            bpy.ops.semantify.test_refuses()
    finally:
        bpy.utils.unregister_class(SEMANTIFY_OT_test_refuses)


def test_add_word_on_a_shipped_mapper_reports_that_its_dataset_must_be_made(glue) -> None:
    obj = add_body_with_default_mapper()
    with pytest.raises(RuntimeError, match="without its dataset.*--scorer both"):
        bpy.ops.semantify.add_word(word="muscular")
    assert obj.semantify.mapper_path == "default:anny-body-measurements"
