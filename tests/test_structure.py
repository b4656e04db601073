"""The structure the design notes promise: no import circle, one owner per idea, internals private.

These read the source (its imports and definitions), not the behaviour: each check names
what it found, so that a change that breaks the structure says where.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "skstrf"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, level: int, target: str | None, is_package: bool) -> str:
    """The absolute name of a relative import ``from <level dots><target>`` in ``module``."""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported skstrf module, names taken from it, line) for every import of ``path``,
    at any depth (imports inside functions count)."""
    tree = ast.parse(path.read_text())
    module = _name(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = (_resolve(module, node.level, node.module, path.name == "__init__.py")
                      if node.level else node.module or "")
            if target.split(".")[0] != "skstrf":
                continue
            names = [alias.name for alias in node.names]
            # "from . import _solvers": the names are modules
            for name in names:
                if f"{target}.{name}".replace("..", ".") in {_name(p) for p in MODULES}:
                    found.append((f"{target}.{name}", [], node.lineno))
            found.append((target, names, node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "skstrf":
                    found.append((alias.name, [], node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    known = {_name(p) for p in MODULES}
    graph = {}
    for path in MODULES:
        edges = set()
        for target, _, _ in _imports(path):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != _name(path) and target != "skstrf":
                edges.add(target)
        graph[_name(path)] = edges
    return graph


def test_no_import_circle():
    graph = _graph()
    circles = []

    def visit(node, stack, on_stack, done):
        on_stack.add(node)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt in on_stack:
                circles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, stack, on_stack, done)
        on_stack.discard(node)
        stack.pop()
        done.add(node)

    done: set[str] = set()
    for node in sorted(graph):
        if node not in done:
            visit(node, [], set(), done)
    assert circles == [], f"import circles: {circles}"


def test_planning_does_not_import_training():
    graph = _graph()
    assert "skstrf._net" not in graph["skstrf._plan"]


def test_no_module_takes_another_modules_private_name():
    offences = []
    for path in MODULES:
        for target, names, line in _imports(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")
                       and f"{target}.{n}" not in {_name(p) for p in MODULES}]
            if private:
                offences.append(f"{path.relative_to(PACKAGE.parent)}:{line} takes {private} from {target}")
        # attribute access on a module imported whole: module._name
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                for alias in node.names:
                    if alias.name.startswith("_"):
                        aliases[alias.asname or alias.name] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__")):
                offences.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert offences == []


def test_fit_reads_as_the_algorithm():
    from skstrf import STRFRegressor

    source = inspect.getsource(STRFRegressor.fit)
    body = ast.parse(source.strip() if source.startswith("def") else "\n".join(
        line[4:] for line in source.splitlines())).body[0]
    docstring_end = body.body[0].end_lineno if isinstance(body.body[0], ast.Expr) else body.lineno
    lines = [line for line in source.splitlines()[docstring_end:] if line.strip() and not line.strip().startswith("#")]
    assert len(lines) <= 40, f"STRFRegressor.fit has {len(lines)} lines of code after its docstring"


def test_the_out_of_core_path_calls_no_private_estimator_method():
    tree = ast.parse((PACKAGE / "_chunked.py").read_text())
    calls = [f"line {node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
             and node.value.id in ("est", "estimator", "self_est") and node.attr.startswith("_")]
    assert calls == []


@pytest.mark.parametrize("name", ["plan", "model", "gram", "net", "solvers", "threads", "validation", "chunked"])
def test_internals_are_private(name):
    assert not (PACKAGE / f"{name}.py").exists(), f"skstrf/{name}.py is public; internals start with _"
