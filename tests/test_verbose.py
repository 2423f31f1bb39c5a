"""``-v`` shows the raw requests and full tool outputs, with secrets masked."""

from support.cli import flowrun
from runner.scripted import ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn


def test_verbose_shows_requests_and_full_outputs_with_secrets_masked(tmp_path):
    wf = tmp_path / "v.yaml"
    wf.write_text(
        "version: 1\nname: v\nmodel: {api: chat, name: m}\ninput: hi\n"
        "tools:\n  - name: long\n    description: d\n    parameters: {type: object}\n"
        "    resolve: {static: 'token ${{ env.TOOL_TOKEN }} then ' }\n"
    )
    long_tail = "x" * 120
    wf.write_text(wf.read_text().replace("then ", "then " + long_tail))
    turns = [ScriptedTurn(tool_calls=(ScriptedCall("long", {}),)), ScriptedTurn(text="ok")]
    env = {"OPENAI_API_KEY": "sk-verbose-canary-123456", "TOOL_TOKEN": "tok-canary-987654"}
    with ScriptedServer(turns) as server:
        r = flowrun(str(wf), "--base-url", server.base_url, "-v", env=env)
    assert r.code == 0, r.err
    assert "→ POST http://127.0.0.1:" in r.err and "/chat/completions" in r.err
    assert '"role": "tool"' in r.err  # the second request, with the tool output, is shown
    assert long_tail in r.err  # full output, not shortened
    assert "token *** then" in r.err
    assert "canary" not in r.err + r.out
