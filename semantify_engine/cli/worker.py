"""Which process runs a background job, and the command line and environment that start it.

Jobs (building a mapper, adding a word, photo and text fits, fetching CLIP weights) need torch and
open_clip, and building word sliders renders training views with Blender. An artist's Blender has
neither torch in its Python nor a Python that can ``import bpy``, so the job runs in a **headless child
of the user's own Blender**: ``blender --background --factory-startup --python blender_job.py -- ARGS``,
which renders with that Blender and imports torch from the wheels the platform extension installed. The
choice, first match wins:

1. the preference *Python with semantify installed*, then ``$SEMANTIFY_PYTHON``: a Python the user
   prepared (their own CUDA torch, a checkout's ``.venv``); it runs ``python -m semantify_engine.cli.main``;
2. the preference *Blender for Jobs*, then ``$SEMANTIFY_BLENDER``: an explicit Blender executable;
3. the Blender that is running (``bpy.app.binary_path``);
4. this Python, when Blender is a Python module (``binary_path`` is empty: tests, CI, scripts), whose
   ``sys.executable`` can ``import bpy``.

A Blender child starts with ``--factory-startup`` (no user add-ons, no startup file: fast and the same
for everyone) and its Python ignores ``PYTHONPATH``, so the engine's folder and the extension's wheel
folder travel in ``$SEMANTIFY_JOB_PATH`` and ``blender_job.py`` puts them on ``sys.path``. Every child
runs the engine next to this module, so the add-on and its job agree on file formats. Nothing here
imports bpy: the glue passes what it knows of Blender (the binary, the wheel folder, the preferences).
"""

from __future__ import annotations

import importlib.machinery
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import __version__

ENGINE_PARENT = Path(__file__).resolve().parent.parent.parent
"""The folder holding this engine package: first on every child's path."""
ENGINE_PACKAGE = Path(__file__).resolve().parent.parent.name
BLENDER_JOB_SCRIPT = Path(__file__).resolve().parent / "blender_job.py"
JOB_PATH_VARIABLE = "SEMANTIFY_JOB_PATH"
PYTHON_VARIABLE = "SEMANTIFY_PYTHON"
BLENDER_VARIABLE = "SEMANTIFY_BLENDER"
BLENDER_FLAGS = ("--background", "--factory-startup", "-noaudio", "--python-exit-code", "1")
BLENDER_SHIPS = frozenset({"bpy", "numpy"})
"""What every Blender's Python has without any extension."""

CLIP_ENGINE_MODULES = ("torch", "torchvision", "open_clip", "sklearn", "PIL")
"""What CLIP work imports: the platform extension's wheels carry them (with their dependencies)."""
PIP_NAMES = {
    "numpy": "'numpy<2'",
    "torch": "torch",
    "torchvision": "torchvision",
    "open_clip": "open_clip_torch",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "bpy": "bpy",
}


@dataclass(frozen=True)
class Worker:
    """The process that runs jobs: a Blender in background mode, or a Python with the engine's needs.

    ``package_dirs`` are folders of wheels the child imports from (the platform extension's); ``source``
    says why this worker was chosen, for reports ("the running Blender", "$SEMANTIFY_BLENDER", ...).
    """

    kind: str  # "blender" or "python"
    executable: str
    source: str
    package_dirs: tuple[str, ...] = ()

    @property
    def is_blender(self) -> bool:
        return self.kind == "blender"

    def describe(self) -> str:
        what = "a headless Blender" if self.is_blender else "the Python"
        return f"{what} {self.executable} ({self.source})"

    def command(self, arguments: Sequence[str]) -> list[str]:
        """The command line that runs ``semantify ARGUMENTS`` in this worker."""
        if self.is_blender:
            return [self.executable, *BLENDER_FLAGS, "--python", str(BLENDER_JOB_SCRIPT), "--", *arguments]
        return [self.executable, "-m", f"{ENGINE_PACKAGE}.cli.main", *arguments]

    def search_path(self) -> list[str]:
        """Folders the child imports from before its own: this engine, then the wheel folders."""
        return [str(ENGINE_PARENT), *self.package_dirs]

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child's environment: ``base`` (default: this process's) plus the search path."""
        environment = dict(os.environ if base is None else base)
        path = os.pathsep.join(self.search_path())
        if self.is_blender:
            environment[JOB_PATH_VARIABLE] = path
        else:
            inherited = environment.get("PYTHONPATH", "")
            environment["PYTHONPATH"] = os.pathsep.join(part for part in (path, inherited) if part)
        environment["PYTHONUNBUFFERED"] = "1"
        return environment

    def missing_modules(self, modules: Sequence[str]) -> list[str]:
        """Which of ``modules`` the child would not find, decided without importing any of them.

        A Blender child has bpy and numpy and finds the rest in the wheel folders (looked up on disk, in
        microseconds: starting a Blender to ask would take seconds). A Python child is asked directly.
        """
        if self.is_blender:
            return [
                name
                for name in modules
                if name not in BLENDER_SHIPS
                and importlib.machinery.PathFinder.find_spec(name, list(self.package_dirs)) is None
            ]
        from .background import missing_modules

        return missing_modules(self.executable, modules, environment=self.environment())


def choose_worker(
    *,
    python_preference: str = "",
    blender_preference: str = "",
    running_blender: str = "",
    package_dirs: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    this_python: str = sys.executable,
) -> Worker:
    """The worker for a job, by the order in this module's docstring; ``source`` says which rule chose.

    ``running_blender`` is ``bpy.app.binary_path`` (empty when Blender is a Python module),
    ``package_dirs`` the folders holding the platform extension's wheels. A Python the user chose gets no
    package folders: its own packages (a CUDA torch, say) must not be shadowed by the extension's.
    """
    environ = os.environ if environ is None else environ
    dirs = tuple(str(folder) for folder in package_dirs if folder and Path(folder).is_dir())
    if python_preference:
        return Worker("python", python_preference, "the preference 'Python with semantify installed'")
    if blender_preference:
        return Worker("blender", blender_preference, "the preference 'Blender for Jobs'", dirs)
    if environ.get(PYTHON_VARIABLE):
        return Worker("python", environ[PYTHON_VARIABLE], f"${PYTHON_VARIABLE}")
    if environ.get(BLENDER_VARIABLE):
        return Worker("blender", environ[BLENDER_VARIABLE], f"${BLENDER_VARIABLE}", dirs)
    if running_blender:
        return Worker("blender", running_blender, "the running Blender", dirs)
    return Worker("python", this_python, "this Python: Blender runs as a Python module", dirs)


def platform_name() -> str:
    """This machine as Blender names extension platforms, with ``_``: ``linux_x64``, ``macos_arm64``."""
    system = {"darwin": "macos"}.get(platform.system().lower(), platform.system().lower())
    machine = platform.machine().lower()
    machine = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64"}.get(machine, machine)
    return f"{system}_{machine}"


def platform_extension_name() -> str:
    """The zip that carries the CLIP engine for this machine: ``semantify-0.1.0-linux_x64.zip``."""
    return f"semantify-{__version__}-{platform_name()}.zip"


def missing_engine_message(worker: Worker, missing: Sequence[str], purpose: str) -> str:
    """What to do when ``worker`` lacks modules ``purpose`` needs: one message, both ways to fix it."""
    names = ", ".join(missing)
    if worker.kind == "blender" or worker.source.startswith("this Python"):
        return (
            f"{purpose} needs the CLIP engine ({names} missing in {worker.describe()}): this Semantify is "
            f"the plain extension. Install the platform extension {platform_extension_name()} over it "
            "(Edit > Preferences > Get Extensions > Install from Disk), or set Preferences > Semantify > "
            "'Python with semantify installed' to a Python that has torch and open_clip."
        )
    install = " ".join(PIP_NAMES.get(name, name) for name in missing)
    return (
        f"{purpose} runs in {worker.describe()}, which lacks {names}. Install them there "
        f'("{worker.executable}" -m pip install {install}), choose another Python in Preferences > '
        f"Semantify > 'Python with semantify installed', or clear it to use the CLIP engine of the "
        f"platform extension {platform_extension_name()}."
    )
