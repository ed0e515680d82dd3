"""Semantify's Blender glue: properties, operators, panels, preferences and the ``-c semantify`` command.

It holds no algorithm: every computation is the engine's (``semantify_engine``, bundled next to this
package in the extension; see :mod:`.engine`). Registration only registers classes, two pointer
properties (objects' sliders, the window manager's job progress), one frame handler and one command-line
command; it imports no engine module, so enabling the add-on is fast and never imports torch or open_clip
(those load only in the background process that builds mappers and adds words, see :mod:`.jobs`).
"""

from __future__ import annotations

import bpy

from . import (
    bake,
    choices,
    cli_command,
    clip_ops,
    clip_status,
    export,
    fitting_ops,
    fitting_panel,
    fitting_props,
    job_state,
    jobs,
    operators,
    panels,
    preferences,
    properties,
    rig,
    rig_operators,
    sliders,
)

CLASSES: tuple[type, ...] = (
    *preferences.CLASSES,
    *properties.CLASSES,
    *fitting_props.CLASSES,
    *operators.CLASSES,
    *bake.CLASSES,
    *export.CLASSES,
    *rig_operators.CLASSES,
    *jobs.CLASSES,
    *clip_ops.CLASSES,
    *fitting_ops.CLASSES,
    *panels.CLASSES,
    *fitting_panel.CLASSES,  # a sub-panel of Sliders: registered after it
)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    properties.register_properties()
    fitting_props.register_properties()
    sliders.register_handlers()
    rig.register_handlers()
    cli_command.register_command()
    export.register_menu()


def unregister() -> None:
    job_state.shutdown()  # a running background job's process and timer end with the add-on
    clip_status.forget()  # and so does a running CLIP status check
    export.unregister_menu()
    cli_command.unregister_command()
    sliders.unregister_handlers()
    rig.unregister_handlers()
    fitting_props.unregister_properties()
    properties.unregister_properties()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
    choices.clear_caches()
    fitting_ops.clear_caches()
