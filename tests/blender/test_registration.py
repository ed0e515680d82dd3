"""What the add-on registers: its panels, preferences and ``-c semantify`` command, and what disable removes.

What cannot be tested without a real ``blender`` executable (the wheel has none): Blender dispatching
``blender -c semantify ...`` to the command; the test calls the registered callback itself (and
``test_package.py`` proves the id is taken).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from support.blender import MODULE, add_body_with_default_mapper
from support.recording_layout import RecordingLayout

bpy = pytest.importorskip("bpy")


# ---------------------------------------------------------------------- preferences, command, disable
def test_panels_draw_registered_operators_valid_icons_and_existing_properties(glue, monkeypatch) -> None:
    icons = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())
    obj = add_body_with_default_mapper()
    calls: list[tuple[str, tuple, dict]] = []
    panels = [getattr(glue.panels, name) for name in dir(glue.panels) if name.startswith("SEMANTIFY_PT_")]
    shown = bpy.context.window_manager.semantify_job
    shown.known, shown.fraction, shown.label, shown.message = True, 0.3, "Build", "dataset: 64/3000 samples"
    for running in (False, True):
        monkeypatch.setattr(glue.jobs, "active_job", lambda running=running: object() if running else None)
        for panel in panels:
            if not hasattr(panel, "poll") or panel.poll(bpy.context):
                panel.draw(SimpleNamespace(layout=RecordingLayout(calls)), bpy.context)
    operators = {args[0] for name, args, _ in calls if name in ("operator", "operator_menu_enum")}
    for idname in operators:
        group, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, group), name), idname
    assert {"semantify.load_default_mapper", "semantify.bake_shape_key", "semantify.apply_shape"} <= operators
    assert {"semantify.build_mapper", "semantify.add_word", "semantify.cancel_job"} <= operators
    used = {keywords["icon"] for _, _, keywords in calls if "icon" in keywords}
    assert used <= icons, used - icons
    for name, args, _ in calls:
        if name == "prop":
            assert args[1] in args[0].bl_rna.properties, args[1]
        if name == "menu":
            assert hasattr(bpy.types, args[0]), args[0]
    assert any(name == "progress" for name, _, _ in calls)  # the running job's progress bar
    assert obj.semantify.is_model


def test_preferences_and_the_command_callback(glue, capsys: pytest.CaptureFixture[str]) -> None:
    preferences = bpy.context.preferences.addons[MODULE].preferences
    assert {"model_dir", "clip_model", "clip_pretrained", "clip_engine", "cache_dir", "python"} <= set(
        preferences.bl_rna.properties.keys()
    )
    from semantify_engine.scoring.engines import ENGINE_CHOICES, ENV_ENGINE

    items = [item.identifier for item in preferences.bl_rna.properties["clip_engine"].enum_items]
    assert items == list(ENGINE_CHOICES), "the preference offers exactly the engine's choices"
    preferences.clip_engine = "onnx-int8"
    assert glue.preferences.engine_environment()[ENV_ENGINE] == "onnx-int8"  # jobs get it
    preferences.clip_engine = "auto"
    assert glue.cli_command.execute(["models", "--json"]) == 0
    listed = {entry["name"] for entry in json.loads(capsys.readouterr().out)}
    assert {"anny-body", "anny-head-shape", "anny-face-expression"} <= listed
    assert glue.cli_command.execute(["models", "--no-such-option"]) == 2  # argparse usage error
    assert glue.cli_command.execute(["preview", "no-such-model", "--out", "x.png"]) == 2


def test_disable_leaves_no_class_property_or_handler_behind(glue) -> None:
    classes = glue.CLASSES
    assert all(cls.is_registered for cls in classes)
    assert bpy.ops.preferences.addon_disable(module=MODULE) == {"FINISHED"}
    assert not hasattr(bpy.types.Object, "semantify")
    assert not hasattr(bpy.types.WindowManager, "semantify_job")
    assert not [name for name in dir(bpy.types) if name.startswith("SEMANTIFY")]
    assert not any(cls.is_registered for cls in classes)
    assert glue.sliders.on_frame_change not in bpy.app.handlers.frame_change_post
