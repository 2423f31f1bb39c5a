"""Many conversations at once on one scripted server: each gets its own turns.

A barrier inside the script holds every conversation's first turn until all of them have arrived,
so the test only passes if the server really serves them all at the same time.
"""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from openai import AsyncOpenAI, OpenAI

from runner.scripted import ScriptedServer, TurnContext
from runner.workflow.model import ScriptedCall, ScriptedTurn

N = 100


def barrier_script(parties: int):
    barrier = threading.Barrier(parties, timeout=20)

    def script(ctx: TurnContext) -> ScriptedTurn:
        if ctx.turn_index == 0:
            barrier.wait()  # raises BrokenBarrierError (-> HTTP 500) unless all are in flight together
            return ScriptedTurn(tool_calls=(ScriptedCall("lookup", {"who": ctx.user_message}),))
        return ScriptedTurn(text="${{ outputs.lookup }} for " + (ctx.user_message or "?"))

    return script


def chat_conversation(c: OpenAI, i: int) -> str:
    user = {"role": "user", "content": f"user-{i}"}
    calls: dict[int, dict] = {}
    for chunk in c.chat.completions.create(model="m", messages=[user], stream=True):
        for tc in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            entry = calls.setdefault(tc.index, {"id": tc.id, "name": tc.function.name, "arguments": ""})
            entry["arguments"] += tc.function.arguments or ""
    call = calls[0]
    messages = [user, {"role": "assistant", "tool_calls": [
        {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "result-" + json.loads(call["arguments"])["who"]}]
    stream = c.chat.completions.create(model="m", messages=messages, stream=True)
    return "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)


def responses_conversation(c: OpenAI, i: int) -> str:
    events = list(c.responses.create(model="m", input=f"user-{i}", stream=True))
    first = events[-1].response
    fc = first.output[0]
    answer = "result-" + json.loads(fc.arguments)["who"]
    out = [{"type": "function_call_output", "call_id": fc.call_id, "output": answer}]
    return [e for e in c.responses.create(model="m", input=out, previous_response_id=first.id,
                                          stream=True)][-1].response.output_text


def assistants_conversation(c: OpenAI, i: int, assistant_id: str) -> str:
    thread = c.beta.threads.create(messages=[{"role": "user", "content": f"user-{i}"}])
    run = list(c.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant_id, stream=True))[-1].data
    tc = run.required_action.submit_tool_outputs.tool_calls[0]
    outputs = [{"tool_call_id": tc.id, "output": "result-" + json.loads(tc.function.arguments)["who"]}]
    events = list(c.beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs,
                                                          stream=True))
    return next(e.data.content[0].text.value for e in events if e.event == "thread.message.completed")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_100_concurrent_conversations_across_the_three_apis():
    with ScriptedServer(barrier_script(N), latency_per_event=0.001) as server:
        c = OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        assistant_id = c.beta.assistants.create(model="m").id

        def conversation(i: int) -> str:
            if i % 3 == 0:
                return chat_conversation(c, i)
            if i % 3 == 1:
                return responses_conversation(c, i)
            return assistants_conversation(c, i, assistant_id)

        with ThreadPoolExecutor(max_workers=N) as pool:
            results = list(pool.map(conversation, range(N)))
        turns = sorted(r.turn_index for r in server.requests if r.turn_index is not None)
    assert results == [f"result-user-{i} for user-{i}" for i in range(N)]
    assert turns == [0] * N + [1] * N


def test_100_concurrent_async_streams():
    async def main(url: str) -> list[str]:
        c = AsyncOpenAI(base_url=url, api_key="x", max_retries=0)

        async def one(i: int) -> str:
            events = [e async for e in await c.responses.create(model="m", input=f"user-{i}", stream=True)]
            return json.loads(events[-1].response.output[0].arguments)["who"]

        try:
            return await asyncio.gather(*(one(i) for i in range(N)))
        finally:
            await c.close()

    with ScriptedServer(barrier_script(N)) as server:
        assert asyncio.run(main(server.base_url)) == [f"user-{i}" for i in range(N)]
