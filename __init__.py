"""Semantify as a Blender extension: this file only hands over to :mod:`semantify_blender`.

Blender imports the extension root as ``bl_ext.<repository>.semantify``; the glue
(``semantify_blender``) and the bundled engine (``semantify_engine``) are sub-packages of it. Nothing is
imported here until Blender calls :func:`register`, so importing this package (pytest, tooling) has no
side effects and needs no ``bpy``.
"""


def register() -> None:
    """Register the add-on's classes, properties, handlers and command-line command."""
    from .semantify_blender import register as register_blender

    register_blender()


def unregister() -> None:
    """Undo :func:`register` completely: no class, property, handler or command is left behind."""
    from .semantify_blender import unregister as unregister_blender

    unregister_blender()
