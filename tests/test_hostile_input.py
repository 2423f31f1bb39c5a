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

from cli_helpers import flowrun
from reliability_support import (
    APIS,
    ENV,
    EVENTS_SCHEMA,
    completed,
    flowrun_in_process,
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
@pytest.mark.parametrize("command", [("validate",), ("run",), ()])
def test_a_fifo_as_the_workflow_is_refused_with_exit_2_without_blocking(command, tmp_path):
    fifo = tmp_path / "wf.yaml"
    os.mkfifo(fifo)
    r = flowrun(*command, str(fifo), env=ENV, timeout=30)  # opening it for reading would block forever
    assert r.code == 2, r.err
    assert "named pipe (FIFO), not a regular file" in r.err
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
