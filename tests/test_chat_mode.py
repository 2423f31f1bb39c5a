"""``--chat``: the conversation continues on the same thread / response chain / message list."""

from __future__ import annotations

import pytest

from support.cli import flowrun
from runner.scripted import ScriptedServer
from runner.workflow.model import ScriptedCall, ScriptedTurn

TURNS = [
    ScriptedTurn(tool_calls=(ScriptedCall("get_rain_probability", {"location": "San Francisco, CA"}),)),
    ScriptedTurn(text="Rain: ${{ outputs.get_rain_probability }}."),
    ScriptedTurn(text="Paris too."),
]


@pytest.mark.parametrize("api", ["responses", "chat", "assistants"])
def test_chat_continues_the_same_conversation_until_an_empty_line(api):
    with ScriptedServer(TURNS) as server:
        r = flowrun("workflows/weather.yaml", "--api", api, "--base-url", server.base_url, "--chat",
                    env={"OPENAI_API_KEY": "sk-chat"}, input="And in Paris?\n\nnever read\n")
        turns = [q for q in server.requests if q.turn_index is not None]
    assert r.code == 0, r.err
    assert r.out == "Rain: 0.06.\nParis too.\n"
    assert r.err.count("you> ") == 2
    assert [q.turn_index for q in turns] == [0, 1, 2]
    last = turns[-1]
    if api == "chat":
        roles = [m["role"] for m in last.body["messages"]]
        assert roles == ["system", "user", "assistant", "tool", "assistant", "user"]
        assert last.body["messages"][-1]["content"] == "And in Paris?"
    elif api == "responses":
        assert last.body.get("previous_response_id")  # chained, not a new conversation
    else:
        assert len({q.path.split("/")[3] for q in turns}) == 1  # one thread


def test_chat_ends_on_end_of_input():
    with ScriptedServer(TURNS) as server:
        r = flowrun("workflows/weather.yaml", "--api", "chat", "--base-url", server.base_url, "--chat",
                    env={"OPENAI_API_KEY": "sk-chat"}, input="")
    assert r.code == 0, r.err
    assert r.out == "Rain: 0.06.\n"
