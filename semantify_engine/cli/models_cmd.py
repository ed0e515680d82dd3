"""``semantify models``: what models can be used here, and what is missing for the others."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ..models import list_models


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "models",
        help="list bundled and user-owned models",
        description="List every model semantify can use: bundled defaults and your own SMPL-family / "
        "SMAL files (found in --model-dir or $SEMANTIFY_MODEL_DIR).",
    )
    parser.add_argument("--model-dir", help="folder with your SMPL-family / SMAL files")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(arguments: argparse.Namespace) -> int:
    entries = list_models(arguments.model_dir)
    if arguments.json:
        print(json.dumps([asdict(entry) for entry in entries], indent=2))
        return 0
    header = f"{'model':<22} {'vertices':>8} {'comps':>5}  {'licence':<34} status"
    print(header)
    print("-" * len(header))
    for entry in entries:
        vertices = "" if entry.vertex_count is None else str(entry.vertex_count)
        components = "" if entry.component_count is None else str(entry.component_count)
        status = "ready" if entry.available else entry.location  # it says "missing: ..." itself
        print(f"{entry.name:<22} {vertices:>8} {components:>5}  {entry.licence[:34]:<34} {status}")
        print(f"{'':<22} source: {entry.source}")
    return 0
