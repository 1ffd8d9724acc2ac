"""The modules of ``apps/`` import one another without cycles, and without the site package.

A cycle of module-level imports works only while the modules happen to be imported in one
order, and it ties the modules together so that none can be understood or moved alone; an app
that imports ``artefact_site`` depends on the project that is meant to depend on it. Both are
read from the source with :mod:`ast`, so nothing is imported to check them.

Imports inside functions are left out: deferring an import to the call is how heavy
dependencies (the ML stack) are kept off the start-up path. So are imports under
``if TYPE_CHECKING:``, which never run. ``from apps.x import y`` counts as an import of the
module ``apps.x.y`` when there is one, otherwise of ``apps.x``; a package is its ``__init__``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
APPS = BASE_DIR / "apps"


@dataclass(frozen=True)
class Import:
    """One module-level import: who imports what, and where."""

    source: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(BASE_DIR)}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = path.relative_to(BASE_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level(statements: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when the module is imported (not inside a function)."""
    for statement in statements:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            yield statement
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif isinstance(statement, ast.If) and _is_type_checking(statement.test):
            yield from module_level(statement.orelse)
        else:  # class bodies and the blocks of if, try, with, for, while and match
            blocks = [getattr(statement, name, []) for name in ("body", "orelse", "finalbody")]
            blocks += [part.body for part in getattr(statement, "handlers", [])]
            blocks += [part.body for part in getattr(statement, "cases", [])]
            for block in blocks:
                yield from module_level(block)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def targets(statement: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Absolute names one statement may import; for ``from a import b, c``: a.b, a.c and a."""
    if isinstance(statement, ast.Import):
        return [alias.name for alias in statement.names]
    if statement.level:
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(statement.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{statement.module}" if statement.module else package
    else:
        base = statement.module or ""
    return [f"{base}.{alias.name}" for alias in statement.names] + [base]


def imports_in(
    source: str, module: str, is_package: bool, modules: set[str]
) -> list[tuple[str, int]]:
    """(imported module, line) of each module-level import in one module's source."""
    found = []
    for statement in module_level(ast.parse(source).body):
        names = targets(statement, module, is_package)
        if isinstance(statement, ast.ImportFrom):
            # ``from a import b``: the submodule a.b if there is one, else a itself.
            submodules = [name for name in names[:-1] if name in modules]
            names = submodules if len(submodules) == len(names) - 1 else [*submodules, names[-1]]
        found.extend((name, statement.lineno) for name in names)
    return found


def imports_of_apps() -> tuple[set[str], list[Import]]:
    """Every module under ``apps/`` and every module-level import any of them makes."""
    paths = sorted(APPS.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    found = []
    for path in paths:
        module = module_name(path)
        source = path.read_text(encoding="utf-8")
        for target, line in imports_in(source, module, path.name == "__init__.py", modules):
            found.append(Import(module, target, path, line))
    return modules, found


def find_cycle(edges: dict[str, dict[str, Import]]) -> list[Import] | None:
    """One cycle of the graph as the imports that close it, or None if it has none."""
    done: set[str] = set()
    trail: list[Import] = []
    on_trail: dict[str, int] = {}

    def visit(node: str) -> list[Import] | None:
        on_trail[node] = len(trail)
        for target, edge in sorted(edges.get(node, {}).items()):
            if target in on_trail:
                return [*trail[on_trail[target] :], edge]
            if target not in done:
                trail.append(edge)
                cycle = visit(target)
                if cycle:
                    return cycle
                trail.pop()
        del on_trail[node]
        done.add(node)
        return None

    for node in sorted(edges):
        if node not in done:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_modules_of_apps_import_each_other_without_cycles():
    modules, found = imports_of_apps()
    edges: dict[str, dict[str, Import]] = {}
    for edge in found:
        if edge.target in modules:
            edges.setdefault(edge.source, {}).setdefault(edge.target, edge)

    cycle = find_cycle(edges)

    assert cycle is None, "import cycle among modules of apps/:\n" + "\n".join(
        f"  {edge}" for edge in cycle
    )


def test_imports_in_follows_module_level_statements_and_names_submodules():
    source = """
from __future__ import annotations
from typing import TYPE_CHECKING
import apps.a.b as b
from apps.a import c, helper
from . import sibling
from .. import d

if TYPE_CHECKING:
    from apps.typing_only import T
try:
    from apps.optional import x
except ImportError:
    from apps.fallback import x

class K:
    from apps.in_class import y

def f():
    from apps.lazy import z
"""
    modules = {"apps.a", "apps.a.c", "apps.p.q", "apps.p.q.sibling", "apps.p"}

    found = [name for name, _ in imports_in(source, "apps.p.q.m", False, modules)]

    assert [name for name in found if name.startswith("apps")] == [
        "apps.a.b",
        "apps.a.c",
        "apps.a",
        "apps.p.q.sibling",
        "apps.p",  # apps.p.d is no module: a name of the package
        "apps.optional",
        "apps.fallback",
        "apps.in_class",
    ]


def test_find_cycle_reports_the_imports_that_close_the_cycle():
    def edge(source: str, target: str) -> Import:
        return Import(source, target, BASE_DIR / "apps" / f"{source}.py", 1)

    a_b, b_c, c_a = edge("a", "b"), edge("b", "c"), edge("c", "a")
    assert find_cycle({"a": {"b": a_b}, "b": {"c": b_c}}) is None
    assert find_cycle({"a": {"b": a_b}, "b": {"c": b_c}, "c": {"a": c_a}}) == [a_b, b_c, c_a]


def test_apps_do_not_import_the_site_package_at_module_level():
    _, found = imports_of_apps()

    offending = sorted(
        {str(edge) for edge in found if edge.target.partition(".")[0] == "artefact_site"}
    )

    assert not offending, "modules of apps/ importing artefact_site:\n" + "\n".join(
        f"  {line}" for line in offending
    )
