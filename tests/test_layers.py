"""The layers stay clean: no import cycle anywhere in the package (function-level imports
included), nothing below the CLI layer imports ``mrisr.commands``, and no module grows past
~450 lines. Static (ast): fast, and it sees imports that only run on some paths."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "mrisr"
#: The CLI layer: the typer app, the command modules and the ``python -m`` entry points.
CLI_LAYER = ("mrisr.cli", "mrisr.__main__", "mrisr.train.__main__", "mrisr.commands")
MAX_LINES = 460


def _modules() -> dict[str, Path]:
    mods = {}
    for f in PKG.rglob("*.py"):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def _runtime_nodes(tree: ast.AST):
    """Every node, except those under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)


def import_graph() -> dict[str, set[str]]:
    """Module → the mrisr modules it names in any import statement that can run (at any
    depth; ``if TYPE_CHECKING:`` blocks left out). ``from
    a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``; the
    implicit import of parent packages is not an edge (it cannot form a cycle by itself)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, f in mods.items():
        is_pkg = f.name == "__init__.py"
        for node in _runtime_nodes(ast.parse(f.read_text(), str(f))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    up = m.split(".")[: len(m.split(".")) - node.level + (1 if is_pkg else 0)]
                    base = ".".join(up + ([base] if base else []))
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in mods else base)
            for t in targets:
                if t in mods and t != m:
                    graph[m].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _in_cli_layer(m: str) -> bool:
    return any(m == c or m.startswith(c + ".") for c in CLI_LAYER)


def test_the_package_has_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_only_the_cli_layer_imports_the_commands() -> None:
    graph = import_graph()
    bad = sorted(
        f"{m} imports {t}"
        for m, ts in graph.items()
        for t in ts
        if t.startswith("mrisr.commands") and not _in_cli_layer(m)
    )
    assert bad == []


def test_every_cli_command_lives_in_one_commands_module() -> None:
    """One hop from cli.py: each command function imports its body from mrisr.commands.*."""
    tree = ast.parse((PKG / "cli.py").read_text())
    commands = [
        f
        for f in tree.body
        if isinstance(f, ast.FunctionDef)
        and any(
            isinstance(d, ast.Call) and getattr(d.func, "attr", "") == "command"
            for d in f.decorator_list
        )
    ]
    assert len(commands) >= 11
    for f in commands:
        sources = {n.module for n in ast.walk(f) if isinstance(n, ast.ImportFrom)}
        assert any(s and s.startswith("mrisr.commands.") for s in sources), f.name


def test_no_module_is_over_the_size_limit() -> None:
    big = {
        str(f.relative_to(PKG)): n
        for f in PKG.rglob("*.py")
        if (n := len(f.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}


def test_the_checker_sees_a_cycle_through_a_function_level_import() -> None:
    """The checker itself can fail: a two-module cycle made of a top-level and a lazy import."""
    g = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert cycles(g) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    src = "def f():\n    from mrisr.io import load_volume\n"
    node = ast.parse(src).body[0].body[0]  # type: ignore[attr-defined]
    assert isinstance(node, ast.ImportFrom) and node.module == "mrisr.io"
