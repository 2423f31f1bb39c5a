"""Issue 4, "Secrets" (docs/reliability.md #70, #71, #72, #74): the canary sweep.

Two planted secrets, the API key and a TOOL_TOKEN an HTTP tool sends in its headers, travel
every path they can: the echo server quotes the token back in a body and in an error, a Python
tool returns and prints it in several encodings, another raises with it, a static tool
templates it, the server's own error quotes the key or the token, and the model repeats the
tool outputs in its answer. Then every channel is searched for the canaries and their
base64, URL-encoded and JSON-escaped forms: stdout and stderr (``-v``, ``OPENAI_LOG=debug``),
the JSONL, the run-log database files byte for byte, the recorded test case, and every body
the model server received (which includes every tool output sent to the model). 0 hits."""

from __future__ import annotations

import base64
import json
import secrets as _random
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from support.cli import flowrun_process
from support.reliability import flowrun_with_key, write_workflow
from runner.scripted import EchoServer, Fault, ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

# The SDK warns on every Assistants call; flowrun hides that from users, but pytest resets the
# warning filters for each test, so say it again here.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The Assistants API is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning"),
]


API_KEY = "sk-canary-" + _random.token_hex(16)
TOKEN = "tok-canary+/=" + _random.token_hex(12)  # characters that every encoding changes

LEAKY_PY = '''
import base64, os, urllib.parse

def leaky():
    t = os.environ["TOOL_TOKEN"]
    print("the tool prints its token:", t)
    return {"raw": t, "b64": base64.b64encode(t.encode()).decode(), "url": urllib.parse.quote(t, safe=""),
            "plus": urllib.parse.quote_plus(t), "json": __import__("json").dumps(t)}

def raiser():
    raise PermissionError("token " + os.environ["TOOL_TOKEN"] + " was refused")
'''


def forms(secret: str) -> set[str]:
    b64 = base64.b64encode(secret.encode()).decode()
    return {secret, b64, b64.rstrip("="), quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


CANARIES = forms(API_KEY) | forms(TOKEN)


def hits(text: str | bytes, where: str) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [f"{where}: {form!r}" for form in CANARIES if form in text]


def workflow(folder: Path, echo: EchoServer) -> Path:
    (folder / "leaky.py").write_text(LEAKY_PY)
    return write_workflow(folder, f"""
        - name: echo_auth
          description: the server echoes the request, headers included
          parameters: {{type: object, properties: {{}}}}
          resolve:
            http:
              url: "{echo.url('/echo')}"
              headers: {{Authorization: "Bearer ${{{{ env.TOOL_TOKEN }}}}"}}
              allow_private_network: true
        - name: fail_auth
          description: the server fails and quotes the headers in its error
          parameters: {{type: object, properties: {{}}}}
          resolve:
            http:
              url: "{echo.url('/status/500')}"
              headers: {{X-Api-Key: "${{{{ env.TOOL_TOKEN }}}}"}}
              retries: 0
              allow_private_network: true
        - name: secret_query
          description: a secret in the query string, which validate warns about
          parameters: {{type: object, properties: {{}}}}
          resolve:
            http: {{url: "{echo.url('/status/404')}?key=${{{{ env.TOOL_TOKEN }}}}", allow_private_network: true}}
        - name: leaky
          description: returns and prints the token
          parameters: {{type: object, properties: {{}}}}
          resolve: {{python: "leaky:leaky"}}
        - name: raiser
          description: raises with the token in the message
          parameters: {{type: object, properties: {{}}}}
          resolve: {{python: "leaky:raiser"}}
        - name: templated
          description: a static value built from the token
          parameters: {{type: object, properties: {{}}}}
          resolve: {{static: "the key is ${{{{ env.TOOL_TOKEN }}}}"}}
        """, python=None)


NAMES = ("echo_auth", "fail_auth", "secret_query", "leaky", "raiser", "templated")
TURNS = [
    ScriptedTurn(tool_calls=tuple(ScriptedCall(n, {}) for n in NAMES)),
    ScriptedTurn(text="I saw ${{ outputs.echo_auth }} and ${{ outputs.leaky }} and ${{ outputs.templated }}"),
]
ENV = {"OPENAI_API_KEY": API_KEY, "TOOL_TOKEN": TOKEN, "OPENAI_LOG": "debug"}


def server_bodies(server: ScriptedServer) -> str:
    return "\n".join(json.dumps([r.path, r.query, r.body]) for r in server.requests)


@pytest.mark.parametrize("api", ["responses", "chat", "assistants"])
def test_canary_sweep_success_path_every_channel(api, tmp_path):
    found: list[str] = []
    with EchoServer() as echo:
        wf = workflow(tmp_path, echo)
        record = tmp_path / "recorded.yaml"
        with ScriptedServer(TURNS * 2) as server:
            verbose = flowrun_process(str(wf), "--api", api, "--base-url", server.base_url, "-v", "--record", str(record),
                              env=ENV, timeout=60)
            jsonl = flowrun_process(str(wf), "--api", api, "--base-url", server.base_url, "-o", "jsonl", env=ENV, timeout=60)
        # the secrets really did travel: the tool sent the token, the client sent the key
        assert any(r.header("Authorization") == f"Bearer {TOKEN}" for r in echo.requests)
        assert all(r.headers.get("authorization") == f"Bearer {API_KEY}" for r in server.requests)
    assert verbose.code == 0 and jsonl.code == 0, verbose.err + jsonl.err
    assert "***" in verbose.out and "→ POST" in verbose.err  # masked, and -v did dump the requests
    events = [json.loads(line) for line in jsonl.out.splitlines()]
    outputs = {e["name"]: e["output"] for e in events if e["type"] == "tool_call.completed"}
    assert outputs["fail_auth"].startswith("error: HTTP 500") and "***" in outputs["fail_auth"]
    assert outputs["raiser"] == "error: the tool raised PermissionError: token *** was refused"
    assert outputs["templated"] == "the key is ***"
    leaky = json.loads(outputs["leaky"])  # every encoding masked (base64 padding and JSON quotes stay)
    assert {k: v.strip('"=') for k, v in leaky.items()} == dict.fromkeys(("raw", "b64", "url", "plus", "json"), "***")
    found += hits(verbose.out, "stdout -v") + hits(verbose.err, "stderr -v")
    found += hits(jsonl.out, "jsonl") + hits(jsonl.err, "stderr jsonl")
    found += hits(server_bodies(server), "bodies the model server received")
    for path in tmp_path.glob("runs.sqlite3*"):
        found += hits(path.read_bytes(), path.name)
    assert record.exists()
    found += hits(record.read_bytes(), "recorded test case")
    assert found == []


@pytest.mark.parametrize("api", ["responses", "chat", "assistants"])
def test_canary_sweep_failure_paths(api, tmp_path):
    """The server's errors quote the key (401) and the token (400 on the outputs). In process
    (the success path above covers what only a real process shows, such as OPENAI_LOG)."""
    found: list[str] = []
    key_quoted = {"error": {"message": f"Incorrect API key provided: {API_KEY}.", "type": "invalid_request_error",
                            "param": None, "code": "invalid_api_key"}}
    token_quoted = {"error": {"message": f"tool output contains a credential ({TOKEN}, "
                                        f"{base64.b64encode(TOKEN.encode()).decode()})",
                              "type": "invalid_request_error", "param": None, "code": None}}
    with EchoServer() as echo:
        wf = workflow(tmp_path, echo)
        with ScriptedServer(TURNS, faults=[Fault(kind="http_error", status=401, body=key_quoted, match="/v1/")]) as s1:
            auth = flowrun_with_key(str(wf), "--api", api, "--base-url", s1.base_url, "-v", env=ENV)
        with ScriptedServer(TURNS, faults=[Fault(kind="http_error", status=400, turn=1, body=token_quoted)]) as s2:
            rejected = flowrun_with_key(str(wf), "--api", api, "--base-url", s2.base_url, "-o", "jsonl", env=ENV)
    assert auth.code == 3 and "check OPENAI_API_KEY" in auth.err
    assert rejected.code == 1 and "the server rejected the tool outputs (HTTP 400): tool output contains a credential (***, ***" in rejected.out, rejected.out[-600:]
    for name, r in (("401", auth), ("400", rejected)):
        found += hits(r.out, f"stdout {name}") + hits(r.err, f"stderr {name}")
    found += hits(server_bodies(s1), "bodies 401") + hits(server_bodies(s2), "bodies 400")
    for path in tmp_path.glob("runs.sqlite3*"):
        found += hits(path.read_bytes(), path.name)
    assert found == []


def test_multi_line_secrets_are_masked_line_by_line_and_short_ones_do_not_shred_text():
    """docs/reliability.md #77: a PEM key is masked line by line (a tool may print one line of it),
    blank lines are left alone, and a 3-character value is not masked at all (validate warns
    about it instead) rather than turning every "abc" in the transcript into ***."""
    from runner.secrets.masker import Masker

    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----"
    masker = Masker([pem, "abc"])
    assert masker.mask(pem) == "***"
    assert masker.mask("line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC") == "line: ***"
    assert masker.mask("a\n\nb") == "a\n\nb"
    assert masker.mask("abc is the alphabet") == "abc is the alphabet"


def test_an_event_is_masked_once_for_every_sink():
    """Masking happens in FanOut, before any renderer or the run log sees an event."""
    from runner.events import Notice, ToolCallCompleted
    from runner.secrets.masker import Masker
    from runner.run.fanout import FanOut

    seen: list = []
    emit = FanOut([seen.append, seen.append], Masker([TOKEN]))
    emit(ToolCallCompleted("c1", "t", f"out {TOKEN}", False, 1.0))
    emit(Notice("warning", f"quoted {quote(TOKEN, safe='')}"))
    assert [getattr(e, "output", None) or e.message for e in seen] == ["out ***", "out ***", "quoted ***", "quoted ***"]
