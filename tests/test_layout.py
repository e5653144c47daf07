"""The library's layout: wings stacked from the env up to the stages, imports running only down
(or within a wing), no import circle, and nothing in the library importing the CLI or the bench
beside it. Read from the source with ``ast``; nothing is run."""

from __future__ import annotations

import ast
from pathlib import Path

import worldmodels

ROOT = Path(worldmodels.__file__).parent

# Bottom to top: a module may import from its own wing or from a wing below it.
WINGS = ["errors", "envs", "config", "core", "data", "model", "scoring", "views", "stages",
         "api", "__init__"]
# Beside the library, importing it: the CLI (commands/) and the benchmark (bench/).
BESIDE = ("worldmodels_cli", "worldmodels_bench")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported worldmodels module, line, at module level) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "worldmodels" and _exists(name):
                found.append((name, node.lineno, id(node) in top))
    return found


def _exists(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return ((ROOT / relative).with_suffix(".py").exists()
            or (ROOT / relative / "__init__.py").exists())


def _graph() -> dict[str, list[tuple[str, int, bool]]]:
    return {_module(path): _imports(path) for path in sorted(ROOT.rglob("*.py"))}


def test_every_module_belongs_to_a_known_wing():
    assert {_wing(module) for module in _graph()} <= set(WINGS)


def test_the_library_imports_neither_the_cli_nor_the_bench():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found += [f"{_module(path)}:{node.lineno} imports {name}" for name in names
                      if name.split(".")[0] in BESIDE]
    assert found == []


def test_imports_run_down_through_the_wings():
    upward = []
    for module, imports in _graph().items():
        for target, line, _ in imports:
            if WINGS.index(_wing(target)) > WINGS.index(_wing(module)):
                upward.append(f"{module}:{line} imports {target}")
    assert upward == []


def test_no_import_circle_at_module_level():
    graph = {module: {t for t, _, top in imports if top and t != module}
             for module, imports in _graph().items()}
    # a package's __init__ is imported with its modules: count the edge to the package's
    # modules only when the __init__ itself imports them
    state: dict[str, int] = {}
    circles = []

    def visit(module, trail):
        state[module] = 1
        for target in graph.get(module, ()):
            if state.get(target) == 1:
                circles.append(trail[trail.index(target):] + [target])
            elif target not in state:
                visit(target, trail + [target])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert circles == []
    assert len(graph) > 40  # the walk saw the library, not an empty folder
