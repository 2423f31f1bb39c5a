"""A small workflow and a scripted model that echoes each batch input back, for batch tests."""

from __future__ import annotations

from runner.scripted import TurnContext
from runner.workflow.model import ScriptedCall, ScriptedTurn

WORKFLOW = """\
version: 1
name: echo
model: {api: chat, name: scripted}
instructions: Answer with the tool.
inputs:
  city: {description: the city, default: Paris}
input: "Weather in ${{ inputs.city }}?"
tools:
  - name: get_temp
    description: the temperature in a city
    parameters:
      type: object
      properties: {city: {type: string}}
      required: [city]
      additionalProperties: false
    resolve:
      static: "21C in ${{ args.city }}"
tests:
  - name: demo
    turns:
      - tool_calls: [{name: get_temp, arguments: {city: Oslo}}]
      - text: "It is ${{ outputs.get_temp }}."
"""


def echo_script(ctx: TurnContext) -> ScriptedTurn:
    """Ask for the temperature of the city in the message, then answer quoting the message."""
    message = ctx.user_message or ""
    if "explode" in message:
        raise RuntimeError("this input makes the model fail")
    if ctx.turn_index == 0:
        city = message.removeprefix("Weather in ").rstrip("?")
        return ScriptedTurn(tool_calls=(ScriptedCall("get_temp", {"city": city}),))
    return ScriptedTurn(text=f"[{message}] ${{{{ outputs.get_temp }}}}")
