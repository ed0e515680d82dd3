"""Build the platform extensions: the plain extension plus the CLIP engine, as Blender add-on wheels.

::

    .venv/bin/python tools/platform_extension.py                        # all platforms into dist/
    .venv/bin/python tools/platform_extension.py --platform linux_x64   # one (what the tests install)
    .venv/bin/python tools/platform_extension.py --resolve              # print the resolved pin set

``make extension-full`` runs the first line. For each platform it fetches the pinned wheels of
``tools/extension-wheels.txt`` once (``pip download`` into ``build/wheels/<platform>/``, an ignored
folder, as ``make env`` fetches the project's own packages), checks from the wheels' own metadata that
every run-time dependency of every wheel is there (pip does not check this when it downloads for another
platform, and Blender resolves nothing: every wheel a package needs must be listed), and writes
``dist/semantify-<version>-<platform>.zip`` with Blender's own builder (``blender -c extension build
--split-platforms``, run headless from the script inside the bpy wheel) and validator.

The extension's files are exactly those of the plain zip (``make extension``): the plain zip is built
first and unpacked into a staging folder, where the wheels and a manifest naming them and the
platforms are added. Blender ships numpy, so numpy is never bundled: Blender puts an extension's wheels
*before* its own site-packages, and a second numpy would shadow the one Blender's own code uses.

Linux gets torch's CPU build (``2.13.0+cpu``): PyPI's Linux torch is the CUDA build and pulls several GB
of CUDA libraries. pip finds it in the machine's find-links folder here; elsewhere pass
``--torch-index https://download.pytorch.org/whl/cpu``.
"""

from __future__ import annotations

import argparse
import email.parser
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK = Path(__file__).resolve().parent / "extension-wheels.txt"
WHEEL_CACHE = REPO_ROOT / "build" / "wheels"
STAGING = REPO_ROOT / "build" / "platform-extension"
PYTHON_VERSION = "3.11"
BLENDER_VERSION_MAX = "5.1.0"
"""The first Blender whose Python is not 3.11 (exclusive): the platform zips' wheels cannot load there."""
PROVIDED_BY_BLENDER = frozenset({"numpy"})
TOP_LEVEL = (
    "torch",
    "torchvision",
    "open-clip-torch",
    "scikit-learn",
    "pillow",
    "tqdm",
    "onnxruntime",
    "onnx",
)
"""What the engine imports for CLIP work; everything else in the lock is what these need."""


@dataclass(frozen=True)
class Platform:
    """A Blender platform and how pip names it."""

    name: str  # Blender's, with "_" (the zip's suffix): linux_x64
    pip_platforms: tuple[str, ...]
    marker_environment: dict[str, str]  # PEP 508 marker values of that platform's Blender Python
    torch: str = "torch==2.13.0"

    @property
    def blender(self) -> str:
        return self.name.replace("_", "-")


PLATFORMS = {
    "linux_x64": Platform(
        "linux_x64",
        (
            "manylinux_2_28_x86_64",
            "manylinux_2_27_x86_64",
            "manylinux_2_17_x86_64",
            "manylinux2014_x86_64",
            "linux_x86_64",
        ),
        {
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": "x86_64",
            "os_name": "posix",
        },
        torch="torch==2.13.0+cpu",
    ),
    "windows_x64": Platform(
        "windows_x64",
        ("win_amd64",),
        {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64", "os_name": "nt"},
    ),
    "macos_arm64": Platform(
        "macos_arm64",
        ("macosx_14_0_arm64", "macosx_12_0_arm64", "macosx_11_0_arm64", "macosx_10_9_universal2"),
        {
            "sys_platform": "darwin",
            "platform_system": "Darwin",
            "platform_machine": "arm64",
            "os_name": "posix",
        },
    ),
}


class BuildFailure(SystemExit):
    """A step that cannot go on: the message says which and what to do (exit status 2)."""

    def __init__(self, message: str) -> None:
        print(f"platform_extension: error: {message}", file=sys.stderr)
        super().__init__(2)


# ------------------------------------------------------------------------------------------- wheels
def pinned_requirements() -> list[str]:
    lines = [line.split("#")[0].strip() for line in LOCK.read_text().splitlines()]
    return [line for line in lines if line]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_name(path: Path) -> str:
    return normalized(path.name.split("-")[0])


def fetch_wheels(platform: Platform, torch_index: str | None) -> list[Path]:
    """The platform's pinned wheels, downloaded once into ``build/wheels/<platform>/``."""
    folder = WHEEL_CACHE / platform.name
    folder.mkdir(parents=True, exist_ok=True)
    requirements = [
        platform.torch if normalized(r.split("==")[0]) == "torch" else r for r in pinned_requirements()
    ]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:"]
    command += ["--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", "cp311"]
    for tag in platform.pip_platforms:
        command += ["--platform", tag]
    if torch_index:
        command += ["--extra-index-url", torch_index]
    command += ["--dest", str(folder), *requirements]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join(line for line in result.stderr.splitlines() if "WARNING" not in line)[-1500:]
        hint = " (torch's CPU build: pass --torch-index https://download.pytorch.org/whl/cpu)"
        raise BuildFailure(f"pip could not fetch the {platform.name} wheels{hint}:\n{tail}")
    pins = {normalized(r.split("==")[0]): r.split("==")[1] for r in requirements}
    wheels = []
    for path in sorted(folder.glob("*.whl")):
        name = wheel_name(path)
        if name in pins and path.name.split("-")[1] == pins[name].replace("-", "_"):
            wheels.append(path)
    missing = sorted(set(pins) - {wheel_name(path) for path in wheels})
    if missing:
        raise BuildFailure(f"no {platform.name} wheel was fetched for {', '.join(missing)}.")
    return wheels


def check_dependencies(platform: Platform, wheels: list[Path]) -> None:
    """Every run-time requirement of every wheel (for this platform) is among the wheels, or is numpy.

    Read from the wheels' own METADATA and evaluated with the platform's marker values, because pip
    checks nothing when it downloads for another platform with ``--no-deps``.
    """
    from packaging.markers import Marker
    from packaging.requirements import Requirement

    present = {wheel_name(path) for path in wheels} | PROVIDED_BY_BLENDER
    environment = {
        "python_version": PYTHON_VERSION,
        "python_full_version": f"{PYTHON_VERSION}.9",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_version": "",
        "extra": "",
        **platform.marker_environment,
    }
    problems = []
    for path in wheels:
        with zipfile.ZipFile(path) as archive:
            metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode("utf-8"))
        for text in metadata.get_all("Requires-Dist") or []:
            requirement = Requirement(text)
            marker: Marker | None = requirement.marker
            if marker is not None and not marker.evaluate(environment):
                continue  # an extra, another platform or another Python
            if normalized(requirement.name) not in present:
                problems.append(f"{path.name} needs {requirement}")
    if problems:
        raise BuildFailure(
            f"the {platform.name} wheels are incomplete ({'; '.join(problems)}): pin the missing packages "
            f"in {LOCK.relative_to(REPO_ROOT)}."
        )


def resolve() -> None:
    """Print the full set pip resolves for the top-level packages on Linux (to refresh the lock)."""
    with tempfile.TemporaryDirectory() as folder:
        platform = PLATFORMS["linux_x64"]
        pins = [r for r in pinned_requirements() if normalized(r.split("==")[0]) in TOP_LEVEL]
        pins = [platform.torch if r.startswith("torch==") else r for r in pins]
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--dest",
            folder,
        ]
        command += ["--python-version", PYTHON_VERSION, "--implementation", "cp", "--abi", "cp311"]
        for tag in platform.pip_platforms:
            command += ["--platform", tag]
        subprocess.run([*command, *pins], check=True)
        for path in sorted(Path(folder).glob("*.whl")):
            print(f"{wheel_name(path)}=={path.name.split('-')[1]}")


# ------------------------------------------------------------------------------------------ the zip
def blender_ext_tools() -> tuple[Path, Path]:
    """Blender's extension builder/validator and its valid tags, from inside the bpy wheel."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise BuildFailure("bpy is not installed in this Python; run 'make env' and use .venv/bin/python.")
    root = Path(next(iter(spec.submodule_search_locations)))
    return (
        next(root.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py")),
        next(root.glob("*/scripts/modules/_bpy_internal/extensions/tags.py")),
    )


def blender_ext(*arguments: str) -> str:
    script, tags = blender_ext_tools()
    command = [sys.executable, str(script), arguments[0], "--valid-tags", str(tags), *arguments[1:]]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildFailure(
            f"Blender's extension tool failed ({' '.join(arguments[:1])}):\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def manifest_with_wheels(manifest: str, platforms: list[Platform], wheels: list[str]) -> str:
    """The source manifest with ``platforms`` and ``wheels`` added as top-level keys (before any table)."""
    lines = manifest.splitlines()
    first_table = next(i for i, line in enumerate(lines) if line.startswith("["))
    added = [
        "# Added by tools/platform_extension.py: the CLIP engine's wheels, per platform. They are CPython",
        f"# {PYTHON_VERSION} builds: Blender 4.2 to 5.0 run Python {PYTHON_VERSION}, 5.1 moved to 3.13.",
        f'blender_version_max = "{BLENDER_VERSION_MAX}"',
        "platforms = [" + ", ".join(f'"{platform.blender}"' for platform in platforms) + "]",
        "wheels = [",
        *(f'  "./wheels/{name}",' for name in wheels),
        "]",
        "",
    ]
    return "\n".join([*lines[:first_table], *added, *lines[first_table:]]) + "\n"


def build(platforms: list[Platform], out: Path, torch_index: str | None) -> list[Path]:
    version = tomllib.loads((REPO_ROOT / "blender_manifest.toml").read_text())["version"]
    wheels: dict[str, Path] = {}
    for platform in platforms:
        fetched = [
            path
            for path in fetch_wheels(platform, torch_index)
            if wheel_name(path) not in PROVIDED_BY_BLENDER
        ]
        check_dependencies(platform, fetched)
        wheels.update({path.name: path for path in fetched})
    if STAGING.exists():
        shutil.rmtree(STAGING)
    source = STAGING / "source"
    plain = STAGING / "plain"
    plain.mkdir(parents=True)
    blender_ext("build", "--source-dir", str(REPO_ROOT), "--output-dir", str(plain))
    with zipfile.ZipFile(plain / f"semantify-{version}.zip") as archive:
        archive.extractall(source)
    (source / "wheels").mkdir()
    for name, path in wheels.items():
        shutil.copy2(path, source / "wheels" / name)
    manifest = (source / "blender_manifest.toml").read_text()
    (source / "blender_manifest.toml").write_text(manifest_with_wheels(manifest, platforms, sorted(wheels)))
    out.mkdir(parents=True, exist_ok=True)
    blender_ext("build", "--source-dir", str(source), "--output-dir", str(out), "--split-platforms")
    zips = [out / f"semantify-{version}-{platform.name}.zip" for platform in platforms]
    for path in zips:
        blender_ext("validate", str(path))
    shutil.rmtree(STAGING)
    return zips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS), help="default: all")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist", help="output folder (dist/)")
    parser.add_argument("--torch-index", help="an index holding torch's CPU build for Linux")
    parser.add_argument("--resolve", action="store_true", help="print the resolved pin set and stop")
    arguments = parser.parse_args(argv)
    if arguments.resolve:
        resolve()
        return 0
    platforms = [PLATFORMS[name] for name in (arguments.platform or sorted(PLATFORMS))]
    started = time.perf_counter()
    for path in build(platforms, arguments.out, arguments.torch_index):
        with zipfile.ZipFile(path) as archive:
            bundled = sum(1 for name in archive.namelist() if name.startswith("wheels/"))
        print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, {bundled} wheels, validated")
    print(f"built in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
