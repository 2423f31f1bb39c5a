"""Provider snapshots (paused runs): after a turn that asked for tools, each provider saves what it
needs to go on; a new provider restores it and submits the outputs, as a resumed run does in a new
process. A snapshot read back from an edited run log is checked: a bad one is a clear error."""

from __future__ import annotations

import json
import time

import pytest

from support.providers import RAIN_TOOL, SCRIPT, TEMP_TOOL, collect, last_result, run, settings
from support.reliability import submissions
from runner.calls import ToolResult
from runner.providers.factory import create_provider, provider_class
from runner.providers.snapshot import SnapshotError
from runner.scripted import ScriptedServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
TOOLS = (TEMP_TOOL, RAIN_TOOL)


def first_leg(server, api, **overrides):
    """Send the message, take the snapshot after the tool-call turn, close the provider."""

    async def go():
        provider = create_provider(settings(api, server.base_url, tools=TOOLS, **overrides))
        try:
            turn = await collect(provider.send_message("Weather in Paris?"))
            assert last_result(turn).status == "tool_calls"
            return json.loads(json.dumps(provider.snapshot())), last_result(turn).tool_calls
        finally:
            await provider.aclose()

    return run(go())


def second_leg(server, api, snapshot, calls, **overrides):
    async def go():
        provider = create_provider(settings(api, server.base_url, tools=TOOLS, **overrides))
        try:
            provider.restore(snapshot)
            assert await provider.resumable() is None
            outputs = {"get_temp": "21C", "get_rain": "10%"}
            results = [ToolResult(c.call_id, c.name, outputs[c.name]) for c in calls]
            return last_result(await collect(provider.submit_tool_outputs(results)))
        finally:
            await provider.aclose()

    return run(go())


@pytest.mark.parametrize("api, overrides", [("chat", {}), ("responses", {}), ("responses", {"store": False}),
                                            ("assistants", {})])
def test_a_restored_provider_submits_the_outputs_and_the_model_reads_them(api, overrides):
    with ScriptedServer(SCRIPT) as server:
        snapshot, calls = first_leg(server, api, **overrides)
        result = second_leg(server, api, snapshot, calls, **overrides)
        assert result.status == "completed" and result.text == "It is 21C with 10% rain."
        assert submissions(server, api) == [{calls[0].call_id: "21C", calls[1].call_id: "10%"}]
        if api == "assistants":  # the assistant made for the run lives until the resumed run ends
            assert len(server.requests_for("/assistants/", "DELETE")) == 1
        assert server.errors == []


def test_the_snapshot_holds_what_each_api_continues_from():
    with ScriptedServer(SCRIPT * 4) as server:
        chat, _ = first_leg(server, "chat")
        stored, _ = first_leg(server, "responses")
        stateless, _ = first_leg(server, "responses", store=False)
        assistants, _ = first_leg(server, "assistants")
    assert chat["messages"][-1]["role"] == "assistant" and len(chat["messages"][-1]["tool_calls"]) == 2
    assert stored["stored"] is True and stored["previous_response_id"].startswith("resp")
    assert stateless["stored"] is False and [i.get("type") for i in stateless["history"][-2:]] == ["function_call"] * 2
    assert assistants["thread_id"] and assistants["run_id"] and assistants["expires_at"]
    assert assistants["own_assistant"] is True


def test_an_assistants_run_that_expired_is_not_resumable():
    with ScriptedServer(SCRIPT, run_ttl=1) as server:
        snapshot, _ = first_leg(server, "assistants")
        time.sleep(1.5)  # past the run's expires_at: the server expires it when it is next read

        async def go():
            provider = create_provider(settings("assistants", server.base_url, tools=TOOLS))
            try:
                provider.restore(snapshot)
                return await provider.resumable()
            finally:
                await provider.aclose()

        status, why = run(go())
    assert status == "expired" and "expired while it waited for the approval" in why and "no tool ran" in why


def test_a_provider_cannot_snapshot_before_a_tool_call_turn():
    provider = provider_class("chat")(settings("chat", "http://127.0.0.1:9/v1"), None, owns_client=False)
    with pytest.raises(Exception, match="cannot be paused"):
        provider.snapshot()


def _chat_snapshot():
    calls = [{"call_id": "call_1", "name": "get_temp", "arguments": "{}"}]
    return {"api": "chat", "version": 1, "pending": calls, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_temp", "arguments": "{}"}}]}]}


BAD = [
    ("chat", "not a dict", "expected an object"),
    ("chat", {**_chat_snapshot(), "api": "responses"}, "made on the 'responses' API"),
    ("chat", {**_chat_snapshot(), "version": 99}, "format 99"),
    ("chat", {**_chat_snapshot(), "pending": []}, "pending must be a non-empty list"),
    ("chat", {**_chat_snapshot(), "pending": [{"call_id": 5, "name": "x", "arguments": "{}"}]}, "call_id must be text"),
    ("chat", {**_chat_snapshot(), "messages": [{"role": "root", "content": "x"}]}, "role is not one of"),
    ("chat", {**_chat_snapshot(), "messages": [{"role": "user", "content": "hi"}]}, "does not end with the model's"),
    ("chat", {**_chat_snapshot(), "messages": "x"}, "messages must be a list of objects"),
    ("responses", {"api": "responses", "version": 1, "pending": _chat_snapshot()["pending"], "stored": True,
                   "previous_response_id": "../../admin"}, "previous_response_id is not a server id"),
    ("responses", {"api": "responses", "version": 1, "pending": _chat_snapshot()["pending"], "stored": "yes"},
     "stored must be true or false"),
    ("assistants", {"api": "assistants", "version": 1, "pending": _chat_snapshot()["pending"], "thread_id": "t/1",
                    "run_id": "run_1"}, "thread_id is not a server id"),
    ("assistants", {"api": "assistants", "version": 1, "pending": _chat_snapshot()["pending"], "thread_id": "t_1",
                    "run_id": "run_1", "expires_at": "soon"}, "expires_at must be a number"),
]


@pytest.mark.parametrize("api, snapshot, message", BAD)
def test_a_malformed_snapshot_is_one_clear_error(api, snapshot, message):
    provider = provider_class(api)(settings(api, "http://127.0.0.1:9/v1"), None, owns_client=False)
    with pytest.raises(SnapshotError) as caught:
        provider.restore(snapshot)
    assert message in str(caught.value) and caught.value.exit_code == 2
    assert "run log may have been edited" in str(caught.value)
