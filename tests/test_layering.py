"""The layers of ``runner/``, enforced on its source: a lower layer never imports a higher one, and
packages side by side in one layer never import each other. Also: what ``flowrun validate`` and
``flowrun --help`` can load never includes ``openai`` or ``mcp`` (they stay fast and work without
a model SDK); one real process backs that up in test_cli_run.py.

Imports are read with ``ast`` (tests/support/imports.py), including those inside functions: a
lazy import is still a dependency.
"""

from __future__ import annotations

import pytest

from support.imports import imports_of, reached, runner_imports, top_level_names

# Bottom to top. A package may import its own modules and anything in a lower layer; the
# packages of one layer do not import each other.
LAYERS: list[set[str]] = [
    {"runner", "runner.errors", "runner.events", "runner.templating", "runner.jsonpointer", "runner.calls",
     "runner.daemon_thread", "runner.secrets", "runner.secrets.masker", "runner.suggest", "runner.terminal_text",
     "runner.textsafe", "runner.stdout_fd",
     "runner.templates"},  # files `flowrun init` copies into a user's project: they import no runner code
    {"runner.workflow"},
    {"runner.tools", "runner.providers", "runner.secrets.sources", "runner.scripted", "runner.render",
     "runner.runlog", "runner.otel"},
    {"runner.run"},
    {"runner.testing", "runner.batch", "runner.view"},
    {"runner.commands"},
    {"runner.cli"},
    {"runner.__main__"},
]

# The SDKs a model run needs and nothing else may pull in.
MODEL_SDKS = {"openai", "mcp"}


def unit(module: str) -> str:
    """The layered unit a module belongs to: its package under ``runner`` (``runner.run`` for
    ``runner.run.session``), a top-level module itself, and the two halves of ``runner.secrets``
    on their own."""
    parts = module.split(".")
    if parts[0] != "runner" or len(parts) == 1:
        return module
    if parts[1] == "secrets" and len(parts) > 2:
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def layer_of(module: str) -> int:
    name = unit(module)
    for level, members in enumerate(LAYERS):
        if name in members:
            return level
    raise AssertionError(f"{module} is in no layer: add {name} to LAYERS in tests/test_layering.py")


def violations(modules: set[str], edges) -> list[str]:
    """Each import of ``runner`` code that breaks the layering, as 'importer:line -> imported (why)'."""
    found = set()
    for edge in edges:
        if edge.imported not in modules or not edge.importer.startswith("runner"):
            continue
        a, b = unit(edge.importer), unit(edge.imported)
        if a == b:
            continue
        la, lb = layer_of(edge.importer), layer_of(edge.imported)
        if lb > la:
            found.add(f"{edge.importer}:{edge.line} -> {b} (layer {la} imports layer {lb})")
        elif lb == la:
            found.add(f"{edge.importer}:{edge.line} -> {b} ({a} and {b} sit side by side)")
    return sorted(found)


@pytest.fixture(scope="module")
def graph():
    return runner_imports()


def test_every_runner_module_has_a_layer(graph):
    modules, _ = graph
    assert len(modules) > 50  # the source was found
    for module in modules:
        layer_of(module)


def test_no_layer_imports_a_higher_one_or_a_neighbour(graph):
    modules, edges = graph
    assert sum(e.imported in modules for e in edges) > 100  # the imports were read
    assert violations(modules, edges) == []


def test_the_checker_catches_upward_and_sideways_imports(graph):
    """The rules are not vacuous: synthetic modules with a bad import each are caught."""
    modules, _ = graph
    sources = {
        "runner.events": "from runner.run.session import execute\n",  # bottom imports the run
        "runner.tools.extra": "def f():\n    from runner.providers import factory\n",  # lazy, sideways
        "runner.workflow.extra": "from ..render import terminal\n",  # relative, upward
        "runner.run.extra": "from runner.tools.dispatcher import Dispatcher\n",  # allowed: downward
    }
    edges = [e for name, text in sources.items() for e in imports_of(text, name)]
    found = violations(modules | set(sources), edges)
    assert [f.split(" (")[0] for f in found] == ["runner.events:1 -> runner.run", "runner.tools.extra:2 -> runner.providers",
                                                   "runner.workflow.extra:1 -> runner.render"]
    assert "runner.tools and runner.providers sit side by side" in found[1]
    assert "layer 1 imports layer 2" in found[2]


def test_the_import_reader_resolves_relative_lazy_and_type_only_imports():
    found = imports_of(
        "from typing import TYPE_CHECKING\nfrom . import sibling\nif TYPE_CHECKING:\n    import openai\n"
        "def f():\n    import yaml\n", "runner.pkg.mod")
    by_name = {e.imported: e for e in found}
    assert "runner.pkg.sibling" in by_name and by_name["runner.pkg.sibling"].at_load
    assert by_name["openai"].type_only
    assert not by_name["yaml"].at_load and not by_name["yaml"].type_only
    assert reached(["runner.pkg.mod"], {"runner.pkg.mod", "runner.pkg.sibling"}, found, at_load_only=True) == {
        "runner.pkg.mod", "runner.pkg.sibling", "typing"}
    assert "yaml" in reached(["runner.pkg.mod"], {"runner.pkg.mod"}, found, at_load_only=False)


# --- what the light commands load -----------------------------------------------------------------

# Everything these can run, including imports inside functions (``flowrun --help`` runs runner.cli;
# validate runs runner.commands.validate, which runner.cli loads by name).
EVERYTHING_RUNNABLE = {
    "flowrun --help": ["runner.cli", "runner.__main__"],
    "flowrun validate": ["runner.cli", "runner.__main__", "runner.commands.validate"],
}
# Only what importing these loads: their commands import the run lazily, when they run one.
LOADED_ON_IMPORT = {
    "flowrun batch (module)": ["runner.cli", "runner.commands.batch"],
    "flowrun logs (modules)": ["runner.commands.logs", "runner.runlog.log", "runner.runlog.transcript"],
    "flowrun tools (modules)": ["runner.commands.tools", "runner.tools.dispatcher", "runner.tools.http_tool",
                                "runner.tools.python_tool"],
    "flowrun validate (module)": ["runner.commands.validate"],
}


@pytest.mark.parametrize("what", sorted(EVERYTHING_RUNNABLE))
def test_help_and_validate_can_never_load_a_model_sdk(graph, what):
    modules, edges = graph
    loaded = reached(EVERYTHING_RUNNABLE[what], modules, edges, at_load_only=False)
    assert "click" in loaded and "runner.errors" in loaded  # the walk followed the imports
    assert top_level_names(loaded) & MODEL_SDKS == set(), what


@pytest.mark.parametrize("what", sorted(LOADED_ON_IMPORT))
def test_command_modules_do_not_load_a_model_sdk_on_import(graph, what):
    modules, edges = graph
    loaded = reached(LOADED_ON_IMPORT[what], modules, edges, at_load_only=True)
    assert len(loaded) > len(LOADED_ON_IMPORT[what])  # the walk followed the imports
    assert top_level_names(loaded) & MODEL_SDKS == set(), what


def test_validate_does_not_load_the_http_stack_either(graph):
    modules, edges = graph
    loaded = reached(["runner.commands.validate"], modules, edges, at_load_only=True)
    assert "httpx2" not in top_level_names(loaded) and "openai" not in top_level_names(loaded)


def test_the_sdk_check_sees_a_lazy_import(graph):
    """Not vacuous: the run command, which does load the SDK when it runs, is seen to."""
    modules, edges = graph
    assert "openai" in top_level_names(reached(["runner.commands.run"], modules, edges, at_load_only=False))
    assert "openai" in top_level_names(reached(["runner.providers.sdk_client"], modules, edges, at_load_only=True))


# --- the tests' own rule ---------------------------------------------------------------------------

def test_test_modules_import_helpers_only_from_support():
    """Shared helpers live in tests/support; a test module never imports another test module or
    conftest, so moving or deleting one test file cannot break another."""
    from support.paths import TESTS

    local = {p.stem for p in TESTS.glob("*.py")}
    found = []
    for path in sorted(TESTS.glob("*.py")) + sorted((TESTS / "support").glob("*.py")):
        for edge in imports_of(path.read_text(encoding="utf-8"), path.stem):
            if edge.imported.split(".")[0] in local:
                found.append(f"{path.relative_to(TESTS)}:{edge.line} imports {edge.imported}")
    assert found == []
