"""The python resolver: imports beside the workflow, threads for sync code, stdout kept clean."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.calls import ToolCall
from runner.tools.dispatcher import Dispatcher
from runner.workflow.model import ModelSpec, PythonResolver, ToolSpec, Workflow

REPO = Path(__file__).resolve().parents[1]


def write(folder: Path, name: str, source: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(source), encoding="utf-8")


def workflow(folder: Path, **entrypoints: str) -> Workflow:
    tools = tuple(ToolSpec(n, "d", {"type": "object"}, PythonResolver(ep), timeout=10) for n, ep in entrypoints.items())
    return Workflow(path=folder / "wf.yaml", name="t", model=ModelSpec(), tools=tools)


def call(wf: Workflow, name: str, args: dict | str = "{}", **kwargs):
    raw = args if isinstance(args, str) else json.dumps(args)

    async def go():
        d = Dispatcher(wf, env={}, **kwargs)
        try:
            return await d.run_one(ToolCall("c", name, raw))
        finally:
            await d.aclose()

    return asyncio.run(asyncio.wait_for(go(), 20))


def test_module_beside_the_workflow_sync_and_async(tmp_path):
    write(tmp_path, "mytools.py", """
        import asyncio
        def add(a, b):
            return a + b
        async def greet(name, punctuation="!"):
            await asyncio.sleep(0)
            return f"hello {name}{punctuation}"
        class Box:
            @staticmethod
            def size(n):
                return {"size": n}
    """)
    wf = workflow(tmp_path, add="mytools:add", greet="mytools:greet", size="mytools:Box.size")
    assert call(wf, "add", {"a": 2, "b": 3}).output == "5"
    assert call(wf, "greet", {"name": "Ada"}).output == "hello Ada!"
    assert call(wf, "size", {"n": 4}).output == '{"size":4}'


def test_arguments_that_do_not_fit_the_signature_are_an_error_output(tmp_path):
    write(tmp_path, "mytools.py", "def add(a, b):\n    return a + b\n")
    result = call(workflow(tmp_path, add="mytools:add"), "add", {"a": 1, "c": 2})
    assert result.is_error and result.output.startswith("error: the tool raised TypeError:")


def test_two_workflows_with_the_same_module_name_do_not_collide(tmp_path):
    write(tmp_path / "one", "tools.py", "def who():\n    return 'one'\n")
    write(tmp_path / "two", "tools.py", "def who():\n    return 'two'\n")
    assert call(workflow(tmp_path / "one", who="tools:who"), "who").output == "one"
    assert call(workflow(tmp_path / "two", who="tools:who"), "who").output == "two"


def test_a_module_is_imported_once_per_run(tmp_path):
    write(tmp_path, "counted.py", """
        import builtins
        builtins.FLOWRUN_TEST_IMPORTS = getattr(builtins, "FLOWRUN_TEST_IMPORTS", 0) + 1
        def n():
            import builtins
            return builtins.FLOWRUN_TEST_IMPORTS
    """)
    wf = workflow(tmp_path, n="counted:n")

    async def go():
        d = Dispatcher(wf, env={})
        return await d.run_all([ToolCall(str(i), "n", "{}") for i in range(5)])

    try:
        results = asyncio.run(go())
        assert [r.output for r in results] == ["1"] * 5
    finally:
        import builtins

        del builtins.FLOWRUN_TEST_IMPORTS


@pytest.mark.parametrize("source,ref,expected", [
    (None, "missing_module:f", "error: no module named 'missing_module'"),
    ("def f(:\n", "broken:f", "error: importing 'broken' failed: SyntaxError"),
    ("raise RuntimeError('boom at import')\n", "explodes:f", "failed: RuntimeError: boom at import"),
    ("raise SystemExit(2)\n", "quits:f", "failed: SystemExit"),
    ("def f():\n    pass\n", "present:nothere", "has no attribute 'nothere'"),
    ("VALUE = 3\n", "value:VALUE", "'value:VALUE' names a int, not a function"),
    ("def f():\n    pass\n", "no_colon", "'no_colon' is not a module:function reference"),
])
def test_import_problems_at_run_time_are_error_outputs(tmp_path, source, ref, expected):
    if source is not None:
        write(tmp_path, ref.split(":")[0] + ".py", source)
    result = call(workflow(tmp_path, t=ref), "t")
    assert result.is_error and result.output.startswith("error: ")
    assert expected in result.output


def test_entrypoints_also_come_from_the_import_path(tmp_path):
    result = call(workflow(tmp_path, dumps="json:dumps"), "dumps", {"obj": [1, 2]})
    assert (result.output, result.is_error) == ("[1, 2]", False)


def test_disabled_python_does_not_import_anything(tmp_path):
    write(tmp_path, "loud.py", "raise RuntimeError('imported!')\n")
    result = call(workflow(tmp_path, t="loud:f"), "t", allow_python=False)
    assert result.output == "error: python resolvers are disabled (--no-python)"


def test_a_blocking_sync_tool_does_not_block_the_event_loop(tmp_path):
    write(tmp_path, "blocking.py", """
        import threading
        GO = threading.Event()
        def wait():
            return "released" if GO.wait(5) else "the loop was blocked"
    """)
    wf = workflow(tmp_path, wait="blocking:wait")

    async def go():
        d = Dispatcher(wf, env={})
        task = asyncio.ensure_future(d.run_one(ToolCall("c", "wait", "{}")))
        for _ in range(200):  # the loop keeps running while the tool blocks its thread
            await asyncio.sleep(0.01)
            module = next((m for m in list(sys.modules.values())
                           if getattr(m, "__file__", None) == str(tmp_path / "blocking.py")), None)
            if module is not None:
                module.GO.set()
                break
        return await task

    assert asyncio.run(go()).output == "released"


def test_what_tools_print_goes_to_stderr_not_stdout(tmp_path, capsys):
    write(tmp_path, "chatty.py", """
        import asyncio, sys
        def sync_tool():
            print("sync tool chatter")
            sys.stdout.write("more sync chatter\\n")
            return "sync ok"
        async def async_tool():
            print("async tool chatter")
            await asyncio.sleep(0)
            print("async tool chatter after await")
            return "async ok"
    """)
    wf = workflow(tmp_path, s="chatty:sync_tool", a="chatty:async_tool")

    async def go():
        d = Dispatcher(wf, env={})
        print("flowrun's own line before")
        results = await d.run_all([ToolCall("1", "s", "{}"), ToolCall("2", "a", "{}")])
        print("flowrun's own line after")
        return results

    results = asyncio.run(go())
    assert [r.output for r in results] == ["sync ok", "async ok"]
    out, err = capsys.readouterr()
    assert out == "flowrun's own line before\nflowrun's own line after\n"
    for line in ("sync tool chatter", "more sync chatter", "async tool chatter", "async tool chatter after await"):
        assert line in err


def test_tools_call_in_a_subprocess_keeps_stdout_to_the_output_only(tmp_path):
    """End to end through the real process stdout (no pytest capture in the way)."""
    write(tmp_path, "chatty.py", "def t():\n    print('noise')\n    return 'the output'\n")
    script = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from runner.calls import ToolCall
        from runner.tools.dispatcher import Dispatcher
        from runner.workflow.model import ModelSpec, PythonResolver, ToolSpec, Workflow
        wf = Workflow(path=Path({str(tmp_path / 'wf.yaml')!r}), name="t", model=ModelSpec(),
                      tools=(ToolSpec("t", "d", {{}}, PythonResolver("chatty:t")),))
        result = asyncio.run(Dispatcher(wf, env={{}}).run_one(ToolCall("c", "t", "")))
        print(result.output)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "the output\n"
    assert "noise" in proc.stderr
