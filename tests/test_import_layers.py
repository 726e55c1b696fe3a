"""Layers that only point down: no import cycle inside router_core, and the bottom modules
import nothing above them.

Every import counts, as the project's `import_cycle` hook counts them: those inside
functions and `TYPE_CHECKING` blocks too (a cycle hidden in a function is still a cycle a
reader has to untangle, and it breaks the day someone moves the import to the top).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "router_core"


@functools.cache  # read once per run; the tree does not change under the tests
def module_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """module -> the modules of `package` (under `root`) it imports, anywhere in its text."""
    files = {}
    for path in (root / package).rglob("*.py"):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        files[name.removesuffix(".__init__")] = path

    def resolve(target: str) -> str:
        # `from a.b import c` names a.b.c when c is a module, else something inside a.b.
        while target and target not in files:
            target = target.rpartition(".")[0]
        return target

    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package_of = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package_of.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                found = resolve(target)
                if found and found != name:
                    graph[name].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def closure(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for child in graph[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen - {start}


def test_the_cycle_finder_sees_imports_in_functions_and_type_checking_blocks(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from .. import c\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n")
    (package / "d.py").write_text("from pkg.a import something\n")
    graph = module_graph.__wrapped__(tmp_path, "pkg")
    assert "pkg.c" in graph["pkg.sub.b"] and graph["pkg.d"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]
    (package / "c.py").write_text("")
    assert cycles(module_graph.__wrapped__(tmp_path, "pkg")) == []


def test_router_core_has_no_import_cycle() -> None:
    found = cycles(module_graph())
    assert found == [], "import cycles in router_core:\n" + "\n".join(" <-> ".join(c) for c in found)


# The bottom of the core: what settings (and everything above it) may lean on.
LEAVES = {
    "router_core.errors",
    "router_core.types",
    "router_core.signals",
    "router_core.records",
    "router_core.presets",
    "router_core.tags",
    "router_core.globs",
    "router_core.addresses",
    "router_core.toml_edit",
    "router_core.sse",
}


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_leaf_modules_import_only_other_leaves(leaf: str) -> None:
    assert closure(module_graph(), leaf) <= LEAVES


def test_settings_imports_nothing_above_it() -> None:
    # Presets, tag patterns, glob checks, loopback addresses and the TOML editor are leaves, so
    # the settings schema does not pull in routing, providers or privacy.
    assert closure(module_graph(), "router_core.settings") <= LEAVES


def test_the_event_bus_names_no_ledger_type_and_the_ledger_owns_its_signals() -> None:
    graph = module_graph()
    assert not {m for m in closure(graph, "router_core.events") if m.startswith("router_core.ledger")}
    assert "router_core.events" not in graph["router_core.ledger.signals"]


def test_server_modules_are_imported_plainly() -> None:
    # No importlib: every route module is an import the graph (and a reader) can see.
    for path in (ROOT / PACKAGE / "server").glob("*.py"):
        assert "importlib.import_module" not in path.read_text(encoding="utf-8"), path.name


# The command line starts the tray app and installs its menu entry: the only places the core
# names the app, and only inside the function that needs it.
APP_ENTRY_POINTS = {"cli.py", "commands/desktop.py"}


def test_router_core_never_imports_qt_and_names_the_app_only_at_its_entry_points() -> None:
    for path in (ROOT / PACKAGE).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            where = f"{path.relative_to(ROOT / PACKAGE).as_posix()}:{node.lineno}"
            assert not [n for n in names if n.startswith("PySide6")], where
            if [n for n in names if n == "app" or n.startswith("app.")]:
                assert path.relative_to(ROOT / PACKAGE).as_posix() in APP_ENTRY_POINTS, where
                assert id(node) not in top_level, where
