"""The script a headless Blender runs for a background job: the ``semantify`` command line inside Blender.

:class:`.worker.Worker` starts ``blender --background --factory-startup ... --python blender_job.py --
ARGUMENTS``. A freshly started Blender knows nothing of the extension that started it: factory settings
enable no add-on, and Blender's Python ignores ``PYTHONPATH``. So the engine's folder and the platform
extension's wheel folder arrive in ``$SEMANTIFY_JOB_PATH`` and go first on ``sys.path`` here; then the
engine's own command line runs with the arguments after ``--``, rendering with this Blender's ``bpy``.

The process ends with ``os._exit`` and the command's status, after flushing its output, so the status
the add-on sees does not depend on how a Blender version treats ``SystemExit`` from a ``--python``
script, and nothing Blender would do on its way out (writing preferences, "Blender quit") runs.
"""

import os
import sys


def main() -> int:
    paths = [path for path in os.environ.get("SEMANTIFY_JOB_PATH", "").split(os.pathsep) if path]
    sys.path[:0] = [path for path in paths if path not in sys.path]
    arguments = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    from semantify_engine.cli.main import main as semantify

    try:
        return int(semantify(arguments) or 0)
    except SystemExit as exit_:  # argparse: --help, usage errors
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 2)


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
