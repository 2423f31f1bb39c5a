"""Issue 11, "Hostile input, round two": each hole an attacker found, through the real command
line (in-process where no process is needed), on all three APIs where an API is involved."""

from __future__ import annotations

import base64
import bz2
import codecs
import json
import os
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest

from support.pty_session import run_in_pty
from support.cli import flowrun_process as flowrun  # a real process: descriptors, FIFOs, closed stdout
from support.events import EVENTS_SCHEMA
from support.reliability import (
    APIS,
    ENV,
    completed,
    flowrun_with_key as flowrun_in_process,
    logged_run,
    same_events,
    submissions,
    write_workflow,
)
from runner.scripted import ScriptedServer
from runner.scripted.loopback import LoopbackServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

pytestmark = [
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning"),
]

EVENT_VALIDATOR = jsonschema.validators.validator_for(EVENTS_SCHEMA)(EVENTS_SCHEMA)  # checked once
LONE = "\udcff"
FFFD = "\ufffd"


class HostileHttp(LoopbackServer):
    """A web server that answers each path with a fixed hostile body: ``routes[path] = (content
    type, bytes)``."""

    thread_name = "hostile-http"

    def __init__(self, routes: dict[str, tuple[str, bytes]]):
        super().__init__()
        self.routes = routes

    def _make_httpd(self) -> ThreadingHTTPServer:
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                ctype, data = routes.get(self.path.partition("?")[0], ("text/plain", b"no such page"))
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        return httpd

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def http_tool(name: str, url: str, extract: str | None = None) -> str:
    ex = f", extract: '{extract}'" if extract else ""
    return (f"- name: {name}\n  description: {name}\n  parameters: {{type: object, properties: {{}}}}\n"
            f"  resolve: {{http: {{url: '{url}', allow_private_network: true{ex}}}}}\n")


def jsonl_run(wf: Path, server: ScriptedServer, api: str, *more: str):
    return flowrun_in_process(str(wf), "--api", api, "--base-url", server.base_url, "-o", "jsonl", *more)


# --- 1. lone surrogates -------------------------------------------------------------------------

SURROGATE_TOOLS = '''
def echo(text: str = ""):
    return "you said " + text

def lone():
    return {"k\\udcff": "v\\udcff", "list": ["\\ud800"]}
'''


@pytest.mark.parametrize("api", APIS)
def test_a_lone_surrogate_from_the_model_a_tool_or_a_server_does_not_end_the_run(api, tmp_path):
    """Arguments with the JSON escape (parsed into a surrogate), arguments with a surrogate in the
    stream itself, a python tool returning one, an HTTP tool's JSON reply holding one (read through
    ``extract``), and streamed text with one: the run goes on and ends completed, exit 0."""
    reply = b'{"city": "Par\\udcffis", "n": 1}'
    with HostileHttp({"/j": ("application/json", reply)}) as web:
        tools = (
            "- name: echo\n  description: e\n  parameters: {type: object, properties: {text: {type: string}}}\n"
            "  resolve: {python: 'tools:echo'}\n"
            "- name: lone\n  description: l\n  parameters: {type: object, properties: {}}\n"
            "  resolve: {python: 'tools:lone'}\n" + http_tool("web", web.url("/j"), "/city"))
        wf = write_workflow(tmp_path, tools, api=api, python=SURROGATE_TOOLS)
        calls = (
            ScriptedCall("echo", '{"text": "a\\udcffb"}'),  # the escape inside the arguments' JSON
            ScriptedCall("echo", {"text": "c" + LONE + "d"}),  # a surrogate in the stream's JSON
            ScriptedCall("lone", {}),
            ScriptedCall("web", {}),
        )
        turns = [ScriptedTurn(tool_calls=calls), ScriptedTurn(text="done " + LONE + " here")]
        with ScriptedServer(turns) as server:
            r = jsonl_run(wf, server, api)
    assert r.code == 0, r.err
    assert "Traceback" not in r.err and "UnicodeEncodeError" not in r.err
    events = r.jsonl()
    for e in events:
        EVENT_VALIDATOR.validate(e)
    outputs = [e["output"] for e in completed(events)]
    assert outputs == [f"you said a{FFFD}b", f"you said c{FFFD}d", '{"k\ufffd":"v\ufffd","list":["\ufffd"]}',
                       f"Par{FFFD}is"]
    assert events[-1]["type"] == "run.completed" and events[-1]["final_text"] == f"done {FFFD} here"
    (subs,) = submissions(server, api)
    assert sorted(subs.values()) == sorted(outputs)  # the SDK could encode every output
    logged = logged_run()
    assert logged["status"] == "completed" and logged["exit_code"] == 0
    same_events(logged["events"], events)


@pytest.mark.parametrize("api", APIS)
def test_a_lone_surrogate_in_streamed_text_reaches_the_terminal_as_a_replacement_character(api, tmp_path):
    wf = write_workflow(tmp_path, "- name: t\n  description: t\n  parameters: {type: object}\n  resolve: {static: x}\n",
                        api=api, python=None)
    with ScriptedServer([ScriptedTurn(text="a" + LONE + "b")]) as server:
        r = flowrun_in_process(str(wf), "--api", api, "--base-url", server.base_url)
    assert r.code == 0, r.err
    assert r.out == f"a{FFFD}b\n"


# --- 3. a FIFO or a device as the workflow path ------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
@pytest.mark.parametrize("command", [("validate",), ("run",), (), ("test",)])
def test_a_fifo_as_the_workflow_is_refused_with_exit_2_without_blocking(command, tmp_path):
    fifo = tmp_path / "wf.yaml"
    os.mkfifo(fifo)
    r = flowrun(*command, str(fifo), env=ENV, timeout=30)  # opening it for reading would block forever
    assert r.code == 2, r.err
    assert f"{fifo}: this is a named pipe (FIFO), not a regular file" in r.err + r.out  # flowrun test: stdout
    assert "Traceback" not in r.err


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_as_the_workflow_is_refused_with_exit_2():
    r = flowrun_in_process("validate", "/dev/zero")
    assert r.code == 2
    assert "/dev/zero: this is a character device, not a regular file" in r.err


# --- 4. decompression through the declared charset --------------------------------------------


@pytest.mark.parametrize("codec, pack", [("bz2_codec", bz2.compress), ("zlib_codec", zlib.compress),
                                         ("base64_codec", base64.b64encode),
                                         ("rot13", lambda b: codecs.encode(b.decode(), "rot13").encode())])
def test_only_text_encodings_decode_an_http_reply(codec, pack, tmp_path):
    bomb = pack(b"A" * 5_000_000)
    with HostileHttp({"/b": (f"text/plain; charset={codec}", bomb)}) as web:
        wf = write_workflow(tmp_path, http_tool("web", web.url("/b")), python=None)
        turns = [ScriptedTurn(tool_calls=(ScriptedCall("web", {}),)), ScriptedTurn(text="ok")]
        with ScriptedServer(turns) as server:
            r = jsonl_run(wf, server, "chat")
    assert r.code == 0, r.err
    (done,) = completed(r.jsonl())
    assert "AAAAAAAAAA" not in done["output"]  # not decompressed (or decoded) by a non-text codec
    assert len(done["output"]) <= len(bomb) + 200


def test_a_declared_text_charset_is_still_honoured(tmp_path):
    with HostileHttp({"/l": ("text/plain; charset=latin-1", "café".encode("latin-1"))}) as web:
        wf = write_workflow(tmp_path, http_tool("web", web.url("/l")), python=None)
        turns = [ScriptedTurn(tool_calls=(ScriptedCall("web", {}),)), ScriptedTurn(text="ok")]
        with ScriptedServer(turns) as server:
            r = jsonl_run(wf, server, "chat")
    assert completed(r.jsonl())[0]["output"] == "café"


# --- 5. the cost of validating a large file ----------------------------------------------------


def test_a_file_with_too_many_values_is_refused_at_file_line_col(tmp_path):
    from runner.workflow.yaml_loader import MAX_BYTES, MAX_NODES

    head = "version: 1\nname: big\nmodel: {api: chat, name: m}\ninput: hi\ntools:\n"
    rows = "".join(f"  - [{i}, {i}, {i}, {i}]\n" for i in range(MAX_NODES // 5 + 1))
    path = tmp_path / "big.yaml"
    path.write_text(head + rows)
    assert path.stat().st_size < MAX_BYTES  # under the size limit: the node limit stops it
    r = flowrun_in_process("validate", str(path))
    assert r.code == 2
    first = r.err.splitlines()[0]
    assert first.startswith(f"{path}:") and f"the file holds more than {MAX_NODES} YAML values" in first
    line, col = first[len(str(path)) + 1:].split(":")[:2]
    assert int(line) > 4000 and int(col) > 1


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path):
    from runner.workflow.yaml_loader import MAX_BYTES

    path = tmp_path / "big.yaml"
    path.write_text("version: 1\nname: big\n" + "# comment\n" * (MAX_BYTES // 10 + 1))
    r = flowrun_in_process("validate", str(path))
    assert r.code == 2 and f"file is larger than {MAX_BYTES // (1024 * 1024)} MB" in r.err


# --- 7 and 8. secrets split across deltas; base64 at every alignment ----------------------------

TOKEN = "correct horse battery staple 4242"  # word-sized deltas split it into five
ENCODE_PY = '''
import base64, os

def enc():
    token = os.environ["TOOL_TOKEN"]
    return " ".join(base64.b64encode((p + token + "!").encode()).decode() for p in ("", "B", "Bearer "))
'''


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def leaked(text: str) -> list[str]:
    """Every form of TOKEN found in ``text``: plain, split into words, or base64 at an alignment."""
    forms = [TOKEN, TOKEN.replace(" ", "")]
    for prefix in ("", "B", "Bearer "):
        encoded = b64(prefix + TOKEN + "!")
        forms.append(encoded[len(prefix) * 4 // 3 + 2: len(encoded) - 4])  # the token's own characters
    return [f for f in forms if f in text]


@pytest.mark.parametrize("api", APIS)
def test_a_secret_split_across_deltas_or_base64_encoded_reaches_no_channel(api, tmp_path):
    wf = write_workflow(tmp_path, """
        - name: enc
          description: returns the token base64-encoded at three alignments
          parameters: {type: object, properties: {}}
          resolve: {python: 'tools:enc'}
        - name: templated
          description: a static value built from the token (so it is a secret of the run)
          parameters: {type: object, properties: {}}
          resolve: {static: "${{ env.TOOL_TOKEN }}"}
        """, api=api, python=ENCODE_PY)
    said = f"The pass is {TOKEN} and encoded {b64('Bearer ' + TOKEN)} {b64('B' + TOKEN)} {b64(TOKEN + 'x')} ok"
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("enc", {}),)), ScriptedTurn(text=said)]
    record = tmp_path / "rec.test.yaml"
    env = {"TOOL_TOKEN": TOKEN}
    with ScriptedServer(turns) as server:
        r = flowrun_in_process(str(wf), "--api", api, "--base-url", server.base_url, "-o", "jsonl",
                               "--record", str(record), env=env)
        text_mode = flowrun_in_process(str(wf), "--api", api, "--base-url", server.base_url, env=env)
    assert r.code == 0 and text_mode.code == 0, r.err + text_mode.err
    events = r.jsonl()
    deltas = [e["text"] for e in events if e["type"] == "text.delta"]
    assert len(deltas) > 1
    streamed = "".join(deltas)
    assert streamed.startswith("The pass is *** and encoded ") and streamed.endswith(" ok")
    assert streamed == events[-1]["final_text"]  # the held-back tail was passed on at the turn's end
    run_id = events[-1]["run_id"]
    shown = flowrun_in_process("logs", "show", run_id)
    channels = {
        "jsonl deltas joined": streamed, "jsonl": r.out, "stderr": r.err + text_mode.err,
        "stdout": text_mode.out, "recorded test case": record.read_text(), "logs show": shown.out,
        "model received": json.dumps(submissions(server, api)),
    }
    assert {name: leaked(text) for name, text in channels.items() if leaked(text)} == {}
    (done,) = completed(events)
    assert done["output"].count("***") == 3  # each alignment masked in the tool's output


# --- 2. deeply nested arguments; a sink that fails ---------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_deeply_nested_arguments_do_not_silence_the_answer(api, tmp_path):
    wf = write_workflow(tmp_path, "- name: t\n  description: t\n  parameters: {type: object}\n  resolve: {static: fine}\n",
                        api=api, python=None)
    deep = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("t", deep),)), ScriptedTurn(text="the answer")]
    with ScriptedServer(turns) as server:
        r = flowrun_in_process(str(wf), "--api", api, "--base-url", server.base_url)
    assert r.code == 0, r.err
    assert r.out == "the answer\n"
    assert "output stopped" not in r.err
    assert '✗ t({"a": [[[' in r.err and "the arguments are not valid JSON" in r.err  # previewed, refused


def test_a_sink_that_fails_fails_the_run_visibly(tmp_path, monkeypatch):
    from runner.render import terminal

    def broken(*a, **k):
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(terminal, "short_args", broken)
    wf = write_workflow(tmp_path, "- name: t\n  description: t\n  parameters: {type: object}\n  resolve: {static: fine}\n",
                        python=None)
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("t", {}),)), ScriptedTurn(text="the answer")]
    with ScriptedServer(turns) as server:
        r = flowrun_in_process(str(wf), "--base-url", server.base_url)
    assert r.code == 1
    assert "flowrun: error: output stopped (RuntimeError: renderer broke)" in r.err
    assert "flowrun: error: the output failed (RuntimeError: renderer broke), so the run did not succeed" in r.err
    run = logged_run()
    assert run["final_text"] == "the answer"  # the run log, a sink that did not fail, has it all
    # ... and ends the run as the user saw it end: not exit 0
    assert (run["status"], run["exit_code"]) == ("output_failed", 1)
    assert run["events"][-1]["type"] == "run.failed" and "renderer broke" in run["events"][-1]["message"]


# --- smaller: descriptor 1, sys.stdout.close(), bidi controls ---------------------------------

FD1_PY = '''
import os, subprocess, sys

def fd1():
    os.write(1, b"RAW ON FD 1\\n")
    subprocess.run([sys.executable, "-c", "print('FROM A SUBPROCESS')"], check=True)
    return "wrote"

def closer():
    sys.stdout.close()
    return "closed"

def bidi():
    return "safe \\u202egnp.exe\\u202c \\x1b[2Jcleared"
'''


def fd1_workflow(tmp_path: Path, api: str = "chat") -> Path:
    tools = "".join(f"- name: {n}\n  description: {n}\n  parameters: {{type: object}}\n  resolve: {{python: 'tools:{n}'}}\n"
                    for n in ("fd1", "closer", "bidi"))
    return write_workflow(tmp_path, tools, api=api, python=FD1_PY)


def test_a_tool_writing_to_descriptor_1_does_not_corrupt_jsonl(tmp_path):
    wf = fd1_workflow(tmp_path)
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("fd1", {}),)), ScriptedTurn(text="done")]
    with ScriptedServer(turns) as server:
        r = flowrun(str(wf), "--base-url", server.base_url, "-o", "jsonl", env=ENV)
    assert r.code == 0, r.err
    events = r.jsonl()  # every line is JSON
    assert events[-1]["type"] == "run.completed" and events[-1]["final_text"] == "done"
    assert "RAW ON FD 1" in r.err and "FROM A SUBPROCESS" in r.err


@pytest.mark.parametrize("output", ["text", "jsonl"])
def test_a_tool_closing_sys_stdout_does_not_lose_the_answer(output, tmp_path):
    wf = fd1_workflow(tmp_path)
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("closer", {}),)), ScriptedTurn(text="still here")]
    with ScriptedServer(turns) as server:
        r = flowrun(str(wf), "--base-url", server.base_url, "-o", output, env=ENV)
    assert r.code == 0, r.err
    assert "still here" in r.out
    assert "Traceback" not in r.err


def test_tools_call_survives_a_tool_closing_sys_stdout(tmp_path):
    wf = fd1_workflow(tmp_path)
    r = flowrun("tools", "call", str(wf), "closer", "--args", "{}", env=ENV)
    assert r.code == 0, r.err
    assert "closed" in r.out and "Traceback" not in r.err


def test_bidi_and_escape_controls_never_reach_the_live_terminal(tmp_path):
    wf = fd1_workflow(tmp_path)
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("bidi", {}),)), ScriptedTurn(text="answer \u202eevil\u2066 text")]
    with ScriptedServer(turns) as server:
        piped = flowrun(str(wf), "--base-url", server.base_url, env=ENV)
        code, screen = run_in_pty([str(wf), "--base-url", server.base_url, "--no-log"], ENV)
    assert piped.code == 0 and code == 0
    assert "✓ bidi() → safe gnp.exe cleared" in piped.err  # the tool line, piped
    shown = screen.decode("utf-8", "replace")
    assert "answer evil text" in shown  # the answer on a terminal
    for control in ("\u202e", "\u202c", "\u2066", "\x1b[2J"):
        assert control not in shown and control not in piped.err


# --- 6. timeouts that hold ----------------------------------------------------------------------

BLOCKING_PY = '''
import os, pathlib, time

async def stuck_async(seconds: float = 3.0):
    time.sleep(seconds)  # blocks the event loop: never awaits
    return "finished anyway"

def stuck_worker():
    pathlib.Path(os.environ["PID_FILE"]).write_text(str(os.getpid()))
    time.sleep(600)
    return "never"

def boom():
    raise ValueError("db down")
'''


def test_an_async_tool_blocking_the_event_loop_is_reported_not_a_success(tmp_path):
    wf = write_workflow(tmp_path, """
        - {name: stuck, description: s, parameters: {type: object}, timeout: 0.5, resolve: {python: 'tools:stuck_async'}}
        """, python=BLOCKING_PY)
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("stuck", {}),)), ScriptedTurn(text="ok")]
    with ScriptedServer(turns) as server:
        r = flowrun_in_process(str(wf), "--base-url", server.base_url, "-o", "jsonl")
    assert r.code == 0, r.err
    (done,) = completed(r.jsonl())
    assert done["is_error"]
    assert "past its 0.5 s timeout: it blocked flowrun" in done["output"] and "isolation: process" in done["output"]
    assert "flowrun: warning: tool 'stuck' has blocked flowrun for" in r.err  # the watchdog said so


@pytest.mark.parametrize("api", APIS)
def test_isolation_process_kills_the_worker_at_the_timeout(api, tmp_path):
    pid_file = tmp_path / "pid"
    wf = write_workflow(tmp_path, """
        - {name: stuck, description: s, parameters: {type: object}, timeout: 8, resolve: {python: 'tools:stuck_worker'}}
        - {name: boom, description: b, parameters: {type: object}, resolve: {python: 'tools:boom'}}
        """, api=api, python=BLOCKING_PY).read_text()
    path = tmp_path / "wf.yaml"
    path.write_text(wf.replace("tools:\n", "isolation: process\ntools:\n", 1))  # file-wide
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("stuck", {}), ScriptedCall("boom", {}))), ScriptedTurn(text="ok")]
    with ScriptedServer(turns) as server:
        r = flowrun(str(path), "--api", api, "--base-url", server.base_url, "-o", "jsonl",
                    env={**ENV, "PID_FILE": str(pid_file)})
    assert r.code == 0, r.err
    stuck, boom = completed(r.jsonl())
    assert stuck["output"] == "error: tool 'stuck' timed out after 8 s"  # not 600 s
    assert boom["output"] == "error: the tool raised ValueError: db down"  # same words as a thread
    pid = int(pid_file.read_text())
    assert pid != 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the worker is gone, not left running


def test_isolation_is_per_tool_and_checked_by_validate(tmp_path):
    wf = write_workflow(tmp_path, """
        - {name: a, description: a, parameters: {type: object}, isolation: process, resolve: {python: 'tools:boom'}}
        - {name: b, description: b, parameters: {type: object}, isolation: fork, resolve: {python: 'tools:boom'}}
        """, python=BLOCKING_PY)
    r = flowrun_in_process("validate", str(wf))
    assert r.code == 2
    assert "isolation" in r.err and "fork" in r.err
    from runner.workflow.validate import load_workflow

    wf.write_text(wf.read_text().replace("isolation: fork, ", ""))
    tools = {t.name: t.isolation for t in load_workflow(wf).tools}
    assert tools == {"a": "process", "b": "thread"}


# --- smaller: validate --strict on stdlib entrypoints; flowrun test --no-python -----------------


@pytest.mark.parametrize("ref", ["os:system", "subprocess:getoutput", "shutil:rmtree", "subprocess:run"])
def test_strict_warns_about_stdlib_process_and_file_entrypoints(ref, tmp_path):
    wf = write_workflow(tmp_path, f"- {{name: t, description: t, parameters: {{type: object}}, resolve: {{python: '{ref}'}}}}\n",
                        python=None)
    assert flowrun_in_process("validate", str(wf)).code == 0  # a warning
    r = flowrun_in_process("validate", "--strict", str(wf))
    assert r.code == 2
    assert f"warning: '{ref}' is a " in r.err and "of Python's standard library" in r.err


def test_flowrun_test_accepts_no_python(tmp_path):
    (tmp_path / "tools.py").write_text("import pathlib\ndef w():\n    pathlib.Path(__file__).with_name('ran').write_text('x')\n"
                                       "    return 'ok'\n")
    wf = tmp_path / "wf.yaml"
    wf.write_text("version: 1\nname: np\nmodel: {api: chat, name: m}\ninput: hi\ntools:\n"
                  "  - {name: w, description: w, parameters: {type: object}, resolve: {python: 'tools:w'}}\n"
                  "tests:\n  - name: t\n    turns:\n      - tool_calls: [{name: w, arguments: {}}]\n"
                  "      - text: done\n")
    r = flowrun_in_process("test", str(wf), "--no-python")
    assert r.code == 0, r.out + r.err
    assert not (tmp_path / "ran").exists()  # the python resolver was refused
    assert flowrun_in_process("test", str(wf)).code == 0 and (tmp_path / "ran").exists()
