"""``semantify clip status | download | check``: the CLIP weights word sliders and photo fits need.

``status`` says whether the configured weights are on this machine and where (no network, no model
built); ``download`` fetches them into the cache, all or nothing, with a progress bar; ``check`` loads
them and encodes an image and a word, which proves a local file is complete and fits its architecture.
The Blender add-on's preferences run the same three commands in a background process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from typing import Any

from .common import add_clip_arguments, clip_spec_from
from .progress import progress_bar


def register(commands: argparse._SubParsersAction) -> None:
    clip = commands.add_parser(
        "clip",
        help="CLIP weights: status, download, check",
        description="The CLIP weights used for word sliders, photo fits and text fits (open_clip's model "
        "names, tags, hf-hub: ids and local files; defaults from SEMANTIFY_CLIP_MODEL / _PRETRAINED / "
        "_CACHE_DIR).",
    )
    actions = clip.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text, run in (
        ("status", "are the weights here, and where (no download)", run_status),
        ("download", "fetch the weights into the cache (all or nothing)", run_download),
        ("check", "load the weights and encode an image and a word", run_check),
    ):
        parser = actions.add_parser(
            name, help=help_text, description=help_text[0].upper() + help_text[1:] + "."
        )
        add_clip_arguments(parser)
        parser.add_argument("--json", action="store_true", help="print JSON")
        parser.set_defaults(run=run)


def _print(record: dict, as_json: bool, line: str) -> None:
    print(json.dumps(record, indent=2) if as_json else line)


def run_status(arguments: argparse.Namespace) -> int:
    from ..scoring.weights import weights_status

    status = weights_status(clip_spec_from(arguments))
    _print(status.to_json(), arguments.json, status.summary())
    return 0


def run_download(arguments: argparse.Namespace) -> int:
    from ..scoring.weights import download_weights

    spec = clip_spec_from(arguments)
    with contextlib.ExitStack() as bars:
        bar: Any = None
        shown = 0  # bytes the current bar has been told about

        def advance(done: int, total: int | None) -> None:
            """A bar per file, opened when its first bytes arrive (not before the network is known)."""
            nonlocal bar, shown
            if bar is None or (total and bar.total != total):
                bars.close()
                bar, shown = (
                    bars.enter_context(progress_bar(total or 0, "downloading CLIP weights", "byte")),
                    0,
                )
            bar.update(done - shown)
            shown = done

        status = download_weights(spec, progress=advance)
    _print(status.to_json(), arguments.json, status.summary())
    return 0


def run_check(arguments: argparse.Namespace) -> int:
    from ..scoring.weights import check_weights

    record = check_weights(clip_spec_from(arguments))
    line = f"CLIP '{record['model']}' loads and encodes ({record['embedding_width']} numbers per embedding)"
    _print(record, arguments.json, line)
    return 0
