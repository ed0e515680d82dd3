"""The engine's modules import each other without cycles, and only the Blender renderer imports ``bpy``.

A cycle makes import order matter (a name half-defined when the other module reads it) and is what kept
``ModelEntry`` and the demo command tangled before they moved; ``bpy`` anywhere else would break the
command line and Ray workers outside Blender. Both are read off the source, module-level imports only
(imports inside functions are the deliberate lazy ones: torch, open_clip, onnxruntime).
"""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "semantify_engine"


def module_name(path: Path) -> str:
    parts = path.relative_to(ENGINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path) -> set[str]:
    """The modules ``path`` imports at its top level (``from . import x`` names ``package.x``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def engine_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in ENGINE.rglob("*.py")}
    return {
        name: {other for other in top_level_imports(path) if other in modules and other != name}
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that ends where it starts, or None (depth-first search)."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == "open":
                return [*path[path.index(successor) :], successor]
            if successor not in state:
                cycle = visit(successor, [*path, successor])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_engine_modules_import_each_other_without_cycles() -> None:
    graph = engine_graph()
    assert len(graph) > 100 and "semantify_engine.mapper.settings" in graph["semantify_engine.mapper.train"]
    assert find_cycle(graph) is None


def test_only_the_blender_renderer_imports_bpy_at_all() -> None:
    """Anywhere, function bodies included: the renderer's ``import_bpy`` is the one way in."""
    importing = sorted(
        module_name(path)
        for path in ENGINE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if (isinstance(node, ast.Import) and any(alias.name.split(".")[0] == "bpy" for alias in node.names))
        or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bpy")
    )
    assert importing == ["semantify_engine.render.blender"]
