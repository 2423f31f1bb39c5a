"""The baseline: a minimal hand-written tool loop on the raw ``openai`` SDK, written the way
OpenAI's function-calling docs write it (one client for the program, stream, collect the calls,
run them, send every output back, repeat), sending the same requests flowrun sends.

``call_tool(name, args) -> str`` runs a tool; the loop returns the final text.
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Awaitable, Callable

import openai

warnings.filterwarnings("ignore", category=DeprecationWarning)  # the Assistants API is deprecated

CallTool = Callable[[str, dict], Awaitable[str]]


def tools_for(api: str, workflow) -> list[dict[str, Any]]:
    out = []
    for t in workflow.tools:
        fn = {"name": t.name, "description": t.description, "parameters": t.parameters}
        out.append({"type": "function", **fn} if api == "responses" else {"type": "function", "function": fn})
    return out


async def responses_run(client: openai.AsyncOpenAI, spec: dict, message: str, call_tool: CallTool) -> str:
    kwargs = dict(model=spec["model"], instructions=spec["instructions"], tools=spec["tools"], stream=True,
                  **spec["extra"])
    stream = await client.responses.create(input=[{"role": "user", "content": message}], **kwargs)
    while True:
        calls, text, response_id = [], [], None
        async for event in stream:
            if event.type == "response.output_text.delta":
                text.append(event.delta)
            elif event.type == "response.output_item.done" and event.item.type == "function_call":
                calls.append(event.item)
            elif event.type == "response.completed":
                response_id = event.response.id
        if not calls:
            return "".join(text)
        outputs = [
            {"type": "function_call_output", "call_id": c.call_id, "output": await call_tool(c.name, json.loads(c.arguments))}
            for c in calls
        ]
        stream = await client.responses.create(previous_response_id=response_id, input=outputs, **kwargs)


async def chat_run(client: openai.AsyncOpenAI, spec: dict, message: str, call_tool: CallTool) -> str:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": spec["instructions"]},
        {"role": "user", "content": message},
    ]
    while True:
        stream = await client.chat.completions.create(
            model=spec["model"], messages=messages, tools=spec["tools"], stream=True,
            stream_options={"include_usage": True}, **spec["extra"],
        )
        text, calls = [], {}
        async for chunk in stream:
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    text.append(delta.content)
                for tc in delta.tool_calls or []:
                    call = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                    if tc.id:
                        call["id"] = tc.id
                    if tc.function and tc.function.name:
                        call["name"] = tc.function.name
                    if tc.function and tc.function.arguments:
                        call["arguments"] += tc.function.arguments
        if not calls:
            return "".join(text)
        ordered = [calls[i] for i in sorted(calls)]
        messages.append({
            "role": "assistant", "content": "".join(text) or None,
            "tool_calls": [{"id": c["id"], "type": "function",
                            "function": {"name": c["name"], "arguments": c["arguments"]}} for c in ordered],
        })
        for c in ordered:
            output = await call_tool(c["name"], json.loads(c["arguments"]))
            messages.append({"role": "tool", "tool_call_id": c["id"], "content": output})


async def assistants_run(client: openai.AsyncOpenAI, spec: dict, message: str, call_tool: CallTool) -> str:
    beta = client.beta
    assistant = await beta.assistants.create(model=spec["model"], name="raw", instructions=spec["instructions"],
                                             tools=spec["tools"], **spec["extra"])
    try:
        thread = await beta.threads.create()
        await beta.threads.messages.create(thread.id, role="user", content=message)
        stream = await beta.threads.runs.create(thread.id, assistant_id=assistant.id, stream=True, **spec["extra"])
        while True:
            text, run = [], None
            async for event in stream:
                if event.event == "thread.message.delta":
                    for part in event.data.delta.content or []:
                        if part.type == "text" and part.text and part.text.value:
                            text.append(part.text.value)
                elif event.event == "thread.run.requires_action":
                    run = event.data
            if run is None:
                return "".join(text)
            outputs = [
                {"tool_call_id": tc.id, "output": await call_tool(tc.function.name, json.loads(tc.function.arguments))}
                for tc in run.required_action.submit_tool_outputs.tool_calls
            ]
            stream = await beta.threads.runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs,
                                                                 stream=True)
    finally:
        try:  # flowrun deletes the assistant it created; so does this loop
            await beta.assistants.delete(assistant.id)
        except openai.NotFoundError:
            pass


RUNS = {"responses": responses_run, "chat": chat_run, "assistants": assistants_run}


def spec_for(api: str, workflow) -> dict:
    extra = {}
    if workflow.model.temperature is not None:
        extra["temperature"] = workflow.model.temperature
    return {"model": workflow.model.name, "instructions": workflow.instructions, "tools": tools_for(api, workflow),
            "extra": extra}
