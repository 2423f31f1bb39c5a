"""Run a ScriptedServer in its own process for the benchmark, so the server's CPU time is not
counted as the client's (the bench machine has 2 cores: one for each side).

    python bench/serve.py weather [--latency-turn 0.1]   the weather test case: 2 tools, then text
    python bench/serve.py rounds                          N rounds of one `blob` call, then text;
                                                          N and the blob size come from the user
                                                          message: "rounds=N size=S"

Prints the base URL on one line, then serves until its stdin is closed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.scripted import ScriptedServer, TurnContext  # noqa: E402
from runner.workflow.model import ScriptedCall, ScriptedTurn  # noqa: E402

_SPEC = re.compile(r"rounds=(\d+)\s+size=(\d+)")


def rounds_script(ctx: TurnContext) -> ScriptedTurn:
    m = _SPEC.search(ctx.user_message or "")
    rounds, size = (int(m.group(1)), int(m.group(2))) if m else (1, 10)
    if ctx.turn_index < rounds:
        return ScriptedTurn(tool_calls=(ScriptedCall("blob", {"size": size, "round": ctx.turn_index}),))
    return ScriptedTurn(text=f"done after {rounds} rounds")


def weather_script():
    from runner.workflow.validate import load_workflow

    return list(load_workflow(ROOT / "workflows" / "weather.yaml").tests[0].turns)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("script", choices=["weather", "rounds"])
    p.add_argument("--latency-turn", type=float, default=0.0)
    p.add_argument("--latency-event", type=float, default=0.0)
    args = p.parse_args()
    script = weather_script() if args.script == "weather" else rounds_script
    server = ScriptedServer(script, latency_per_turn=args.latency_turn, latency_per_event=args.latency_event)
    server.start()
    print(server.base_url, flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
