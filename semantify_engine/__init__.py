"""Semantify engine: everything that is not Blender glue.

It never imports ``bpy`` except in :mod:`semantify_engine.render.blender`, and never imports torch or
open_clip at import time, so it runs in a plain Python process, in ``blender -b`` and bundled inside the
Blender extension. Imports inside the package are relative so the folder works both as a top-level
package and vendored inside the extension.
"""

__version__ = "0.1.0"
