"""What ``runner/`` imports, read from its source with ``ast`` (nothing is imported to find out).

``runner_imports()`` lists every import statement of every module: who imports what, and whether
the statement runs when the module loads or only when a function runs. ``reached()`` follows those
edges from some entry modules, the way Python would load them. Both serve tests/test_layering.py:
a test that imports modules to see what gets loaded can only look at one process state at a time
and needs a fresh interpreter for each question; reading the source answers all of them at once.

Not seen: ``importlib.import_module(name)`` with a computed name (``runner.cli`` loads its commands
that way; the tests name the command modules they mean).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from support.paths import REPO


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name, e.g. "runner.run.session"
    imported: str  # dotted module name as resolved (relative imports made absolute)
    line: int
    at_load: bool  # runs when the importer loads (module level, class body), not inside a function
    type_only: bool  # under ``if TYPE_CHECKING:`` (never runs)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, name: str, is_package: bool = False) -> list[Import]:
    """The imports in one module's source. For ``from runner.pkg import x`` both ``runner.pkg``
    and ``runner.pkg.x`` are listed (``x`` may be a submodule; callers drop names that are not
    modules); for other packages only the module named after ``from``."""
    found: list[Import] = []

    def visit(node: ast.AST, at_load: bool, type_only: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            at_load = False
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, at_load, True)
            for child in node.orelse:
                visit(child, at_load, type_only)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(name, alias.name, node.lineno, at_load, type_only))
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, name, is_package)
            found.append(Import(name, base, node.lineno, at_load, type_only))
            for alias in node.names:
                if alias.name != "*" and base.split(".")[0] == name.split(".")[0]:
                    found.append(Import(name, f"{base}.{alias.name}", node.lineno, at_load, type_only))
        for child in ast.iter_child_nodes(node):
            visit(child, at_load, type_only)

    visit(ast.parse(source), True, False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def runner_imports(root: Path = REPO) -> tuple[set[str], list[Import]]:
    """(every module of ``runner/``, every import statement in them)."""
    modules: set[str] = set()
    edges: list[Import] = []
    for path in sorted((root / "runner").rglob("*.py")):
        name = module_name(path, root)
        modules.add(name)
        edges += imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
    return modules, edges


def reached(entries: Iterable[str], modules: set[str], edges: list[Import], *, at_load_only: bool) -> set[str]:
    """Every module name loading ``entries`` reaches: ours, followed; others (``openai``,
    ``yaml``), listed but not followed. Loading a module loads its parent packages first.
    With ``at_load_only`` only module-level imports are followed (what ``import X`` loads);
    otherwise function-level ones too (what running any code of those modules may load)."""
    by_importer: dict[str, list[str]] = {}
    for edge in edges:
        if edge.type_only or (at_load_only and not edge.at_load):
            continue
        by_importer.setdefault(edge.importer, []).append(edge.imported)
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages load first
        todo += by_importer.get(name, [])
    return {n for n in seen if n in modules or not n.startswith("runner")}


def top_level_names(names: Iterable[str]) -> set[str]:
    return {n.split(".")[0] for n in names}
