"""Generate the default mappers shipped with the bundled models (maintainers only).

::

    .venv/bin/python tools/build_default_mappers.py            # all of them, 15-100 s each on 2 cores
    .venv/bin/python tools/build_default_mappers.py anny-body  # one
    .venv/bin/python tools/build_default_mappers.py --only attributes anny-body  # one of its two

For each bundled model below it runs the same command a user would::

    semantify build --model MODEL --scorer metric --samples 6000 --no-evaluate --out TMP/MODEL

and copies ``TMP/MODEL/mapper.npz`` to ``semantify_engine/data/mappers/MODEL-measurements.npz``. A body
gets two, both from datasets drawn from its source bank: ``MODEL-attributes.npz`` (the build's default:
MakeHuman's gender, age, muscle, weight and proportions with the height in metres) and
``MODEL-measurements.npz`` (``--force height,chest,waist,hips --descriptors 4``). The face gets mouth,
eye opening and jaw drop, the head shape head circumference, face height and head width. All have a known
truth, because no CLIP weights can be had where the project is built; word sliders need a user's CLIP
weights (``semantify build`` with ``--pretrained``, or the add-on's Build Mapper).

The mapper's header records the absolute dataset folder it was trained from, a temporary folder that
means nothing on a user's disk. The shipped copy records ``folder: null`` and ``shipped: true`` instead,
plus ``rebuild``: the command that remakes the same samples (same model, seed, sampling and chunking;
the dataset's checksum covers the coefficients, and these do not depend on the scorers) with CLIP
embeddings, so that ``semantify mapper add-word MAPPER WORD --dataset DIR`` can grow a shipped mapper.
The arrays are untouched, so the mapper's checksum is that of the build.

Everything is seeded (sampling seed 0, training seed 42, one torch thread): re-running gives the same
sliders up to floating-point round-off of the BLAS in use.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: find semantify_engine
    sys.path.insert(0, str(REPO_ROOT))

from semantify_engine.dataset.sampling import BANK_SCHEMES  # noqa: E402
from semantify_engine.mapper import load_mapper, save_mapper  # noqa: E402
from semantify_engine.mapper.defaults import DEFAULT_MAPPER_DIR  # noqa: E402

MODELS = ("anny-body", "anny-body-male", "anny-body-female", "anny-face-expression", "anny-head-shape")
BODIES = ("anny-body", "anny-body-male", "anny-body-female")
MEASUREMENTS = ("--force", "height,chest,waist,hips", "--descriptors", "4")
"""A body's measurement mapper: its girths and height (its default build makes the attribute sliders)."""
SAMPLES = 6000  # semantify build's default for measurement-only builds (see pipeline.MEASUREMENT_SAMPLES)
MAX_BYTES = 2_000_000  # each file ships in the extension zip: refuse a surprise


def shipped_mappers(model: str) -> list[tuple[str, tuple[str, ...]]]:
    """(file suffix, extra build arguments) of each mapper shipped for ``model``."""
    if model in BODIES:
        return [("attributes", ()), ("measurements", MEASUREMENTS)]
    return [("measurements", ())]


def build_one(model: str, scratch: Path, suffix: str = "measurements", extra: tuple[str, ...] = ()) -> Path:
    """Run ``semantify build`` for ``model`` and install its mapper, with its dataset folder stripped."""
    out = scratch / f"{model}-{suffix}"
    command = [
        sys.executable,
        "-m",
        "semantify_engine.cli.main",
        "build",
        "--model",
        model,
        "--scorer",
        "metric",
        "--samples",
        str(SAMPLES),
        "--no-evaluate",
        *extra,
        "--out",
        str(out),
    ]
    started = time.monotonic()
    subprocess.run(command, check=True, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    mapper = load_mapper(out / "mapper.npz")
    built = mapper.metadata.get("dataset", {})
    sampling = built.get("sampling", {})
    scheme = sampling.get("scheme", "uniform")
    sigma = "" if scheme in BANK_SCHEMES else f" --sigma {sampling.get('sigmas', 2.0)}"  # bank bodies: no box
    rebuild = (
        f"semantify dataset build --model {model} --samples {built.get('samples', SAMPLES)} "
        f"--seed {sampling.get('seed', 0)} --components {sampling.get('components')} "
        f"--scheme {scheme}{sigma} --scorer both --out DIR"
    )
    dataset = {**built, "folder": None, "shipped": True, "rebuild": rebuild}
    shipped = dataclasses.replace(mapper, metadata={**mapper.metadata, "dataset": dataset})
    target = save_mapper(shipped, DEFAULT_MAPPER_DIR / f"{model}-{suffix}.npz")
    size = target.stat().st_size
    print(
        f"{target.relative_to(REPO_ROOT)}: {', '.join(mapper.descriptor_names)}; "
        f"{size / 1e6:.2f} MB, checksum {shipped.checksum()}, {time.monotonic() - started:.0f} s"
    )
    if size > MAX_BYTES:
        raise SystemExit(f"{target} is {size} bytes, over the {MAX_BYTES} budget for a shipped mapper.")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "models", nargs="*", default=list(MODELS), help=f"bundled models ({', '.join(MODELS)})"
    )
    parser.add_argument(
        "--only", choices=("attributes", "measurements"), help="build only the mappers with this suffix"
    )
    arguments = parser.parse_args()
    DEFAULT_MAPPER_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="semantify-default-mappers-") as scratch:
        for model in arguments.models:
            for suffix, extra in shipped_mappers(model):
                if arguments.only in (None, suffix):
                    build_one(model, Path(scratch), suffix, extra)


if __name__ == "__main__":
    main()
