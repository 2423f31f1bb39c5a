"""The embedded scripted model: an OpenAI-compatible loopback server that plays the model's side
of Chat Completions, Responses and Assistants v2 from a script (tests, ``--offline``, benchmarks).

    from runner.scripted import ScriptedServer
    with ScriptedServer([ScriptedTurn(tool_calls=(ScriptedCall("get_temp", {"city": "Paris"}),)),
                         ScriptedTurn(text="It is ${{ outputs.get_temp }}.")]) as server:
        client = OpenAI(base_url=server.base_url, api_key="test")

Faults (``Fault``) make it misbehave on purpose; ``EchoServer`` is the other side of HTTP tools:
a loopback server that records and counts every request and quotes headers back.
"""

from .echo import EchoRequest, EchoServer
from .faults import ActiveFaults, Fault
from .script import CallResult, PreparedCall, PreparedTurn, RawSSE, ScriptError, TurnContext, render_text
from .server import RecordedRequest, ScriptedServer

__all__ = [
    "ActiveFaults",
    "CallResult",
    "EchoRequest",
    "EchoServer",
    "Fault",
    "PreparedCall",
    "PreparedTurn",
    "RawSSE",
    "RecordedRequest",
    "ScriptError",
    "ScriptedServer",
    "TurnContext",
    "render_text",
]
