"""Turn a ``module:function`` reference into the callable it names.

The module is looked up next to the workflow file first, then on ``sys.path``. A module found next
to the workflow is imported from its file under a name unique to that folder, so two workflows in
different folders that both ship ``tools.py`` never get each other's module. While that module runs
its top level, the folder is at the front of ``sys.path`` (so it can import its siblings); then the
folder leaves ``sys.path`` and its siblings leave ``sys.modules`` again. Siblings must therefore be
imported at the top of the module, not inside a function.

Importing runs the module's code: this is the point where a workflow file stops being data.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import keyword
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

from runner.suggest import suggest


class EntrypointError(Exception):
    """A reference that is malformed, cannot be imported, or does not name a callable.
    ``message`` says which and why; the import's own exception, if any, is ``__cause__``."""

    def __init__(self, message: str, hint: str | None = None, severity: str = "error"):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.severity = severity


def parse_entrypoint(ref: str) -> tuple[str, tuple[str, ...]]:
    """``"pkg.mod:obj.attr"`` -> ``("pkg.mod", ("obj", "attr"))``; EntrypointError if malformed."""
    hint = "write it as module:function, e.g. tools.weather:get_forecast"
    if not isinstance(ref, str) or ref.count(":") != 1:
        raise EntrypointError(f"{ref!r} is not a module:function reference (it needs exactly one ':')", hint)
    module, _, attrs = ref.partition(":")
    for part in (*module.split("."), *attrs.split(".")):
        if not part.isidentifier() or keyword.iskeyword(part):
            raise EntrypointError(f"{ref!r} is not a module:function reference ({part!r} is not a Python name)", hint)
    return module, tuple(attrs.split("."))


def load_entrypoint(ref: str, folder: Path) -> Callable[..., Any]:
    """The callable ``ref`` names, importing its module from ``folder`` or ``sys.path``."""
    module_name, attrs = parse_entrypoint(ref)
    module = _import(module_name, Path(folder))
    obj: Any = module
    for i, attr in enumerate(attrs):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            owner = module_name + "".join("." + a for a in attrs[:i])
            names = [n for n in dir(obj) if not n.startswith("_")]
            guess = suggest(attr, names)
            raise EntrypointError(
                f"{owner!r} has no attribute {attr!r} (in {ref!r})" + (f"; did you mean {guess!r}?" if guess else ""),
                "check the name after the ':'",
            ) from None
    if not callable(obj):
        raise EntrypointError(
            f"{ref!r} names a {type(obj).__name__}, not a function",
            "point the reference at a function",
        )
    return obj


def _import(name: str, folder: Path) -> ModuleType:
    top, _, rest = name.partition(".")
    local = _local_file(folder, top)
    try:
        if local is None:
            return importlib.import_module(name)
        with _folder_imports(folder):
            unique = _load_local(top, local, folder)
            return importlib.import_module(f"{unique}.{rest}") if rest else sys.modules[unique]
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if local is None and (name == missing or name.startswith(missing + ".")):
            raise EntrypointError(
                f"no module named {name!r} (looked next to the workflow file and on the Python path)",
                f"put {top}.py next to the workflow file, or install the package that provides it",
            ) from e
        if local is not None and missing.startswith("_flowrun_wf_"):
            raise EntrypointError(
                f"no module named {name!r} in {local.parent}",
                "check the module path before the ':'",
            ) from e
        raise _import_failed(name, e) from e
    except EntrypointError:
        raise
    except BaseException as e:  # the module's own code failed (even SystemExit): report, never crash
        if isinstance(e, KeyboardInterrupt):
            raise
        raise _import_failed(name, e) from e


def _import_failed(name: str, e: BaseException) -> EntrypointError:
    return EntrypointError(
        f"importing {name!r} failed: {type(e).__name__}: {e}",
        f"run `python -c 'import {name}'` in the workflow's folder to see the traceback",
    )


def _local_file(folder: Path, top: str) -> Path | None:
    """``folder/top.py`` or ``folder/top/__init__.py``, if there is one."""
    module_file = folder / f"{top}.py"
    if module_file.is_file():
        return module_file
    package_file = folder / top / "__init__.py"
    if package_file.is_file():
        return package_file
    return None


def _load_local(top: str, file: Path, folder: Path) -> str:
    """Import ``file`` as a module unique to ``folder``; return its name in ``sys.modules``."""
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    unique = f"_flowrun_wf_{digest}_{top}"
    if unique in sys.modules:
        return unique
    is_package = file.name == "__init__.py"
    spec = importlib.util.spec_from_file_location(
        unique, file, submodule_search_locations=[str(file.parent)] if is_package else None
    )
    if spec is None or spec.loader is None:
        raise EntrypointError(f"cannot import {file.name} from {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(unique, None)
        raise
    return unique


@contextmanager
def _folder_imports(folder: Path) -> Iterator[None]:
    """The folder first on sys.path while its modules run their top level, so they can import
    their siblings; afterwards the path is restored and those siblings are dropped from
    sys.modules (the modules that imported them keep them), so another folder's ``helpers.py``
    is never mistaken for this one's."""
    entry = str(folder.resolve())
    before = set(sys.modules)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        try:
            sys.path.remove(entry)
        except ValueError:  # the module removed it itself
            pass
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None)
            if not name.startswith("_flowrun_wf_") and file and Path(file).resolve().is_relative_to(entry):
                del sys.modules[name]


def check_entrypoint_statically(ref: str, folder: Path) -> None:
    """EntrypointError when ``ref``'s module cannot be found or its source plainly does not define
    the name, found the way ``load_entrypoint`` would look but without running any of the module's
    code (validation must not execute a workflow's Python). A module whose names cannot be known
    from its source (compiled, ``__getattr__``, ``import *``) passes; ``--resolve`` imports it."""
    module_name, attrs = parse_entrypoint(ref)
    file = entrypoint_file(ref, folder)
    if file is None:
        return
    names = _defined_names(file)
    if names is None or attrs[0] in names:
        return
    guess = suggest(attrs[0], [n for n in names if not n.startswith("_")])
    raise EntrypointError(
        f"{module_name!r} ({file.name}) defines no {attrs[0]!r} (in {ref!r})"
        + (f"; did you mean {guess!r}?" if guess else ""),
        "check the name after the ':'",
    )


def entrypoint_file(ref: str, folder: Path) -> Path | None:
    """The source file ``ref``'s module would be imported from, found the way ``load_entrypoint``
    looks (next to the workflow first, then the Python path) without running any of its code;
    None when it has no readable source (built-in, compiled). EntrypointError when there is no
    such module (a warning when it is not next to the workflow: it may be installed elsewhere)."""
    module_name, _ = parse_entrypoint(ref)
    parts = module_name.split(".")
    local = _local_file(Path(folder), parts[0])
    if local is not None:
        file: Path | None = local
        for part in parts[1:]:
            file = _submodule_file(file, part) if file is not None else None
        if file is None:
            raise EntrypointError(f"no module named {module_name!r} in {Path(folder)}",
                                  "check the module path before the ':'")
        return file
    found = _installed_module_file(parts)
    if found is False:
        raise EntrypointError(
            f"no module named {module_name!r} (looked next to the workflow file and on the Python path)",
            f"put {parts[0]}.py next to the workflow file, or install the package that provides it "
            "(a warning: validation may run where the workflow's packages are not installed)",
            severity="warning",
        )
    return found if isinstance(found, Path) else None


def _submodule_file(parent: Path, name: str) -> Path | None:
    """The file of submodule ``name`` of the package whose ``__init__.py`` is ``parent``."""
    if parent.name != "__init__.py":
        return None
    return _local_file(parent.parent, name)


def _installed_module_file(parts: list[str]) -> Path | None | bool:
    """The source file of an installed module, found without importing it (parents included);
    None when it exists but has no readable source (built-in, compiled); False when nowhere."""
    from importlib.machinery import PathFinder

    if parts[0] in sys.builtin_module_names:
        return None
    path = None
    spec = None
    for part in parts:
        spec = PathFinder.find_spec(part, path)
        if spec is None:
            return False
        path = spec.submodule_search_locations
    origin = spec.origin if spec is not None else None
    if not origin or not origin.endswith(".py"):
        return None
    return Path(origin)


def _defined_names(file: Path) -> set[str] | None:
    """Names bound at the top level of a module's source; None when they cannot be known."""
    import ast

    try:
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None  # --resolve reports what importing it says
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
            func = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            if func in ("setattr", "update", "exec") or func == "globals":
                return None  # names made at run time
    if "__getattr__" in names:
        return None
    return names
