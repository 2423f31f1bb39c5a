"""Turn selection and turn preparation, as pure functions (no server)."""

from __future__ import annotations

import pytest

from runner.scripted import RawSSE, TurnContext, render_text
from runner.scripted.conversation import chat_conversation, responses_conversation
from runner.scripted.script import Script, ScriptError, prepare_turn
from runner.scripted.wire import ApiError, split_fragments, text_deltas
from runner.workflow.model import ScriptedCall, ScriptedTurn


def test_render_text_fills_outputs_and_marks_unknown_tools():
    outputs = {"get_temp": "21C", "get_json": '{"wind": {"kmh": 12}}'}
    assert render_text("It is ${{ outputs.get_temp }}.", outputs) == "It is 21C."
    assert render_text("${{outputs.get_json.wind.kmh}} km/h", outputs) == "12 km/h"
    assert render_text("${{ outputs.nope }}!", outputs) == "<no output for outputs.nope>!"
    assert render_text("${{ outputs.get_temp.deep }}", outputs) == "<no output for outputs.get_temp.deep>"
    assert render_text("broken ${{ oops", outputs) == "broken ${{ oops"  # left as written


@pytest.mark.parametrize("text, parts", [('{"city": "Paris"}', 3), ("ab", 5), ('{"a":"\\u00e9"}', 4), ("", 3)])
def test_split_fragments_cuts_anywhere_and_joins_back(text, parts):
    pieces = split_fragments(text, parts)
    assert "".join(pieces) == text
    assert len(pieces) == min(parts, len(text)) and all(pieces)


def test_text_deltas_are_small_and_lossless():
    text = "I'm unable to  provide\nreal-time updates. "
    deltas = text_deltas(text)
    assert "".join(deltas) == text and deltas[:2] == ["I'm", " unable"]


def test_prepare_turn_gives_unique_ids_and_json_arguments():
    turn = ScriptedTurn(tool_calls=(ScriptedCall("a", {"x": 1}), ScriptedCall("a", '{"bad"'),
                                    ScriptedCall("b", [1, 2])))
    prepared = prepare_turn(turn, {})
    assert [c.arguments for c in prepared.calls] == ['{"x": 1}', '{"bad"', "[1, 2]"]
    ids = {c.call_id for c in prepared.calls} | {c.item_id for c in prepared.calls}
    assert len(ids) == 6
    assert prepare_turn(ScriptedTurn(), {}).text == ""  # an empty turn still answers


def test_script_exhaustion_and_callables():
    ctx = TurnContext("chat", 2, "hi", {}, [])
    with pytest.raises(ScriptError, match=r"has no turn 2 \(the script has 1 turns\)"):
        Script([ScriptedTurn(text="x")]).pick(ctx)
    with pytest.raises(ScriptError, match="function raised ZeroDivisionError"):
        Script(lambda c: 1 / 0).pick(ctx)
    with pytest.raises(ScriptError, match="returned None"):
        Script(lambda c: None).pick(ctx)
    raw = RawSSE(b"data: [DONE]\n\n")
    assert Script(lambda c: raw).pick(ctx) is raw
    with pytest.raises(TypeError, match="script item 0 is str"):
        Script(["text"])


def _assistant(*ids: str) -> dict:
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": i, "type": "function", "function": {"name": f"t{i}", "arguments": "{}"}}
                           for i in ids]}


def test_chat_turn_index_counts_assistant_messages():
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "first"}, _assistant("1"),
                {"role": "tool", "tool_call_id": "1", "content": "one"}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "second"}]}, _assistant("2"),
                {"role": "tool", "tool_call_id": "2", "content": "two"}]
    conv = chat_conversation({"messages": messages})
    assert (conv.turn_index, conv.user_message) == (3, "second")
    assert conv.outputs() == {"t1": "one", "t2": "two"}
    assert [c.call_id for c in conv.results()] == ["1", "2"]


def test_responses_turn_index_from_stateless_replay_and_chain():
    items = [{"role": "user", "content": "q"},
             {"type": "function_call", "call_id": "a", "name": "ta", "arguments": "{}"},
             {"type": "function_call", "call_id": "b", "name": "tb", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "a", "output": "A"},
             {"type": "function_call_output", "call_id": "b", "output": "B"},
             {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hm"}]},
             {"type": "function_call", "call_id": "c", "name": "ta", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "c", "output": "C"}]
    conv = responses_conversation({"input": items}, None)
    assert conv.turn_index == 2 and conv.outputs() == {"ta": "C", "tb": "B"}
    # the chain: the stored conversation of the previous response, its calls pending
    after = conv.copy()
    after.add_call("d", "td", "{}")
    nxt = responses_conversation({"input": [{"type": "function_call_output", "call_id": "d", "output": "D"}]}, after)
    assert nxt.turn_index == 3 and nxt.outputs()["td"] == "D" and nxt.user_message == "q"
    with pytest.raises(ApiError, match="No tool output found for function call d"):
        responses_conversation({"input": "next question"}, after)
    with pytest.raises(ApiError, match="No tool call found for function call output with call_id zz"):
        responses_conversation({"input": [{"type": "function_call_output", "call_id": "zz", "output": "x"}]}, None)
    with pytest.raises(ApiError, match="Duplicate item"):
        responses_conversation({"input": [items[1]]}, conv)
