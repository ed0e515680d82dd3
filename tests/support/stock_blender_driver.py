"""Drives the installed extension inside a stock-Blender environment (run by that environment's Python).

``tests/blender/test_stock_blender.py`` runs ``<stock python> stock_blender_driver.py SCENARIO '{json}'`` in a
virtual environment that holds only what Blender ships (bpy and numpy): none of the project's packages,
no torch. Each scenario does what an artist would do in the sidebar (operators, preferences), then prints
one line ``RESULT {json}`` with what it saw; the test asserts on it. Nothing of the project is imported
here except through the extension Blender installed from the zip.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import bpy
from recording_layout import RecordingLayout  # beside this script: it imports nothing

MODULE = "bl_ext.user_default.semantify"


def enable() -> object:
    before = set(sys.modules)
    assert bpy.ops.preferences.addon_enable(module=MODULE) == {"FINISHED"}
    glue = sys.modules[f"{MODULE}.semantify_blender"]
    heavy = sorted(name for name in set(sys.modules) - before if name.split(".")[0] in {"torch", "open_clip"})
    return glue, heavy


def preferences():
    return bpy.context.preferences.addons[MODULE].preferences


def configure(params: dict) -> None:
    prefs = preferences()
    for name in ("clip_model", "clip_pretrained", "cache_dir", "blender", "python"):
        if name in params:
            setattr(prefs, name, params[name])


def report_of(call) -> tuple[str, str]:
    """Run an operator call; (result, message): an ERROR report arrives as RuntimeError headless."""
    try:
        return "+".join(sorted(call())), ""
    except RuntimeError as error:
        return "ERROR", str(error)


def sliders_of(obj) -> list[tuple[str, str]]:
    return [(slider.name, slider.kind) for slider in obj.semantify.sliders]


def positions_of(obj) -> list[float]:
    return [round(slider.position, 6) for slider in obj.semantify.sliders]


def add_body(glue) -> object:
    assert bpy.ops.semantify.add_model(model="anny-body") == {"FINISHED"}
    obj = bpy.context.active_object
    assert bpy.ops.semantify.load_default_mapper(mapper="anny-body-measurements") == {"FINISHED"}
    return obj


def tick(glue, event_type: str = "TIMER") -> set[str]:
    """One event to the running modal operator, as Blender's event loop would deliver it."""

    class Reports:
        def __init__(self) -> None:
            self.messages: list[str] = []

        def report(self, level, message):
            self.messages.append(f"{next(iter(level))}: {message}")

    event = SimpleNamespace(type=event_type, value="PRESS" if event_type == "ESC" else "NOTHING")
    stand_in = Reports()
    result = glue.jobs._BackgroundOperator.modal(stand_in, bpy.context, event)
    return result, stand_in.messages


def wait_modal(glue, timeout: float = 600.0) -> tuple[set[str], list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        result, messages = tick(glue)
        if result != {"PASS_THROUGH"}:
            return result, messages
        if time.monotonic() > deadline:
            raise TimeoutError("the job did not end")
        time.sleep(0.1)


def worker_of(glue) -> dict | None:
    last = glue.jobs.last_job()
    if last is None:
        return None
    job = last.job
    return {"kind": job.worker.kind, "executable": job.worker.executable, "describe": job.worker.describe()}


# ------------------------------------------------------------------------------------------ scenarios
def scenario_install(params: dict) -> dict:
    started = time.perf_counter()
    result = bpy.ops.extensions.package_install_files(
        filepath=params["zip"], repo="user_default", enable_on_install=False
    )
    install_s = time.perf_counter() - started
    started = time.perf_counter()
    _, heavy = enable()  # the first enable installs the wheels into Blender's wheel folder
    enable_s = time.perf_counter() - started
    return {"result": sorted(result), "install_s": install_s, "enable_s": enable_s, "heavy_at_enable": heavy}


def scenario_refuse(params: dict) -> dict:
    """Installing a zip this Blender must refuse: the installed extension stays as it was."""
    installed = Path(bpy.utils.user_resource("EXTENSIONS", path="user_default")) / "semantify"

    def snapshot() -> dict[str, int]:
        return {
            str(path.relative_to(installed)): path.stat().st_mtime_ns for path in installed.rglob("*.py*")
        }

    before = snapshot()
    outcome, message = report_of(
        lambda: bpy.ops.extensions.package_install_files(
            filepath=params["zip"], repo="user_default", enable_on_install=True
        )
    )
    return {"outcome": outcome, "message": message, "unchanged": snapshot() == before}


def scenario_imports(params: dict) -> dict:
    glue, heavy = enable()
    wheels = glue.preferences.wheel_dir()
    import sklearn
    import torch

    engine = importlib.import_module(f"{MODULE}.semantify_engine")
    importlib.import_module(
        f"{MODULE}.semantify_engine.compat.torchvision_ops"
    ).ensure_torchvision_importable()
    import open_clip

    files = {
        name: module.__file__
        for name, module in (("torch", torch), ("open_clip", open_clip), ("sklearn", sklearn))
    }
    needs = glue.clip_status.needs(bpy.context)
    return {
        "heavy_at_enable": heavy,
        "wheel_dir": wheels,
        "files": files,
        "engine": engine.__file__,
        "worker": needs.worker.describe(),
        "engine_missing": list(needs.engine_missing),
    }


def scenario_words(params: dict) -> dict:
    """Build Mapper with words, then Add Word and Fit Photo, as an artist would in the sidebar."""
    glue, _ = enable()
    configure(params)
    obj = add_body(glue)
    out: dict = {}
    needs = glue.clip_status.needs(bpy.context, wait=True)
    out["needs"] = {
        "engine_missing": list(needs.engine_missing),
        "weights": needs.weights,
        "ready": needs.ready,
    }
    started = time.perf_counter()
    outcome, message = report_of(
        lambda: bpy.ops.semantify.build_mapper(
            samples=params["samples"], scorer=params["scorer"], words=params["words"]
        )
    )
    out["build"] = {
        "outcome": outcome,
        "message": message,
        "seconds": time.perf_counter() - started,
        "sliders": sliders_of(obj),
        "mapper": obj.semantify.mapper_path,
        "worker": worker_of(glue),
        "summary": glue.jobs.last_job().job.summary() if glue.jobs.last_job() else None,
        # the largest process this one waited for: the job's worker (the status check is smaller)
        "peak_child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }
    if outcome != "FINISHED" or not params.get("more", True):
        return out
    obj.semantify.sliders[0].position = 0.8
    kept = obj.semantify.sliders[0].value
    outcome, message = report_of(lambda: bpy.ops.semantify.add_word(word="broad shoulders"))
    out["add_word"] = {
        "outcome": outcome,
        "message": message,
        "sliders": sliders_of(obj),
        "kept": abs(obj.semantify.sliders[0].value - kept) < 1e-6,
        "worker": worker_of(glue),
    }
    before = positions_of(obj)
    outcome, message = report_of(lambda: bpy.ops.semantify.fit_text(prompt="a tall muscular person"))
    out["fit_text"] = {"outcome": outcome, "message": message, "before": before, "after": positions_of(obj)}
    before = positions_of(obj)
    obj.semantify.fit.photo = params["photo"]
    outcome, message = report_of(lambda: bpy.ops.semantify.fit_photo())
    out["fit_photo"] = {
        "outcome": outcome,
        "message": message,
        "before": before,
        "after": positions_of(obj),
        "notes": obj.semantify.fit.notes,
        "worker": worker_of(glue),
    }
    return out


def scenario_cli(params: dict) -> dict:
    """``blender -b -c semantify ...``: the registered command callback, in this (stock) Blender."""
    glue, _ = enable()
    codes = [glue.cli_command.execute(arguments) for arguments in params["commands"]]
    return {"codes": codes, "torch_loaded_from": getattr(sys.modules.get("torch"), "__file__", None)}


def scenario_weights(params: dict) -> dict:
    """Download / Use a Local File / Check in the preferences, with bad input; the preferences after."""
    glue, _ = enable()
    configure(params)
    if "online" in params:
        bpy.context.preferences.system.use_online_access = params["online"]
    out = {"online_access": bpy.app.online_access, "steps": []}
    for step in params["steps"]:
        name = step.pop("operator")
        started = time.perf_counter()
        outcome, message = report_of(lambda name=name, step=step: getattr(bpy.ops.semantify, name)(**step))
        prefs = preferences()
        out["steps"].append(
            {
                "operator": name,
                "outcome": outcome,
                "message": message,
                "seconds": time.perf_counter() - started,
                "clip_model": prefs.clip_model,
                "clip_pretrained": prefs.clip_pretrained,
                "status": glue.clip_status.needs(bpy.context, wait=True).weights,
            }
        )
    return out


def scenario_cancel_download(params: dict) -> dict:
    """Start Download modally, cancel once bytes arrive: nothing of it may stay in the cache."""
    glue, _ = enable()
    configure(params)
    bpy.context.preferences.system.use_online_access = True
    glue.jobs.has_event_loop = lambda context: True
    assert bpy.ops.semantify.download_weights() == {"RUNNING_MODAL"}
    shown = bpy.context.window_manager.semantify_job
    deadline = time.monotonic() + 120
    while not (shown.known and 0 < shown.fraction < 1):  # the weights on their way (not the config)
        assert tick(glue)[0] == {"PASS_THROUGH"} and time.monotonic() < deadline, shown.message
        time.sleep(0.05)
    message = shown.message
    assert bpy.ops.semantify.cancel_job() == {"FINISHED"}
    result, _ = tick(glue)
    cache = Path(params["cache_dir"])
    return {
        "seen": message,
        "result": sorted(result),
        "files": sorted(str(path.relative_to(cache)) for path in cache.rglob("*") if path.is_file()),
    }


def scenario_child_dies(params: dict) -> dict:
    """A build whose worker is killed (or crashes): a clear report, and the scene as it was."""
    glue, _ = enable()
    configure(params)
    obj = add_body(glue)
    before = (sliders_of(obj), positions_of(obj), obj.semantify.mapper_path)
    glue.jobs.has_event_loop = lambda context: True
    assert bpy.ops.semantify.build_mapper(samples=50000, scorer="metric") == {"RUNNING_MODAL"}
    job = glue.jobs.active_job().job
    if params.get("kill"):
        deadline = time.monotonic() + 60
        while not job.poll().fraction:  # working: the dataset is being made
            assert time.monotonic() < deadline and job.running
            tick(glue)
            time.sleep(0.05)
        os.killpg(job.process.pid, signal.SIGKILL)
    result, messages = wait_modal(glue)
    after = (sliders_of(obj), positions_of(obj), obj.semantify.mapper_path)
    return {"result": sorted(result), "messages": messages, "unchanged": before == after}


def drawn(glue, panel) -> dict:
    """The operators and labels a panel draws now."""
    calls: list = []
    panel.draw(SimpleNamespace(layout=RecordingLayout(calls)), bpy.context)
    return {
        "operators": [args[0] for name, args, _ in calls if name == "operator"],
        "labels": [keywords.get("text", "") for name, _, keywords in calls if name == "label"],
    }


def scenario_what_is_missing(params: dict) -> dict:
    """What a new user meets: measurement sliders work; the panel names what word sliders lack."""
    glue, _ = enable()
    configure(params)
    obj = add_body(glue)
    weights_before = [block.value for block in obj.data.shape_keys.key_blocks[1:]]
    obj.semantify.sliders["height"].position = 0.9
    moved = [block.value for block in obj.data.shape_keys.key_blocks[1:]] != weights_before
    needs = glue.clip_status.needs(bpy.context, wait=True)
    out = {
        "slider_moves_the_shape": moved,
        "engine_missing": list(needs.engine_missing),
        "weights": needs.weights,
        "build_panel": drawn(glue, glue.panels.SEMANTIFY_PT_build),
    }
    outcome, message = report_of(lambda: bpy.ops.semantify.build_mapper(samples=64, scorer="clip"))
    out["words"] = {"outcome": outcome, "message": message}
    if params.get("metric_build"):
        outcome, message = report_of(lambda: bpy.ops.semantify.build_mapper(samples=128, scorer="metric"))
        out["metric"] = {"outcome": outcome, "message": message, "sliders": sliders_of(obj)}
    return out


def main() -> None:
    scenario, params = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    try:
        result = globals()[f"scenario_{scenario}"](params)
    except Exception:  # the test shows the traceback
        result = {"exception": traceback.format_exc()}
    print("\nRESULT " + json.dumps(result, default=str), flush=True)  # Blender may leave a line open


if __name__ == "__main__":
    main()
