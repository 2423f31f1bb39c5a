"""Replay one run from the run log as text a person can read (``flowrun logs show``).

Works from the stored events alone, so a crashed run replays as far as it got. Every string that
came from a model or a tool is escaped first: ANSI sequences, carriage returns and bidi controls
in the log must not rewrite the reader's terminal.
"""

from __future__ import annotations

import time
from typing import Any

from runner.terminal_text import duration_text, show_controls

MAX_OUTPUT = 2000  # characters of one tool output; `logs show --json` has them all

def fmt_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


fmt_duration = duration_text  # the live summary line's format too


def run_duration_ms(run: dict) -> float | None:
    """Recorded duration; for an unfinished run, up to its last recorded event."""
    if run.get("duration_ms") is not None:
        return run["duration_ms"]
    if run.get("last_event_at") and run.get("started_at"):
        return max(0.0, (run["last_event_at"] - run["started_at"]) * 1000)
    return None


def finished_calls(run: dict) -> int:
    """The calls that returned an output (what the run's own summary line counts): a call cut
    short by Ctrl-C or never run (a turn limit) is listed, not counted."""
    return sum(1 for c in run.get("tool_calls") or [] if c.get("is_error") is not None)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _indent(text: str, prefix: str = "  ") -> str:
    return text.replace("\n", "\n" + prefix)


def _clip(text: str, limit: int = MAX_OUTPUT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"… ({len(text) - limit} more characters; `flowrun logs show --json` has all)"


def _header(run: dict) -> list[str]:
    mode = " (offline)" if run.get("offline") else ""
    status = run.get("status") or "?"
    lines = [
        f"run       {run.get('run_id')}",
        f"workflow  {show_controls(run.get('workflow_path'))}",
        f"api       {show_controls(run.get('api'))} · model {show_controls(run.get('model'))}{mode}",
        f"started   {fmt_time(run.get('started_at'))}",
        f"status    {status} · {fmt_duration(run_duration_ms(run))}",
    ]
    if status == "crashed":
        lines.append(f"          the recording process ({run.get('pid')} on {show_controls(run.get('hostname'))}) "
                     "ended without finishing the run; replaying what was recorded")
    elif status == "running":
        lines.append("          still running, or recorded on another host that may have crashed")
    return lines


def render_transcript(run: dict) -> str:
    """The whole run in order: input, assistant text, tool calls and results, final status."""
    out = _header(run)
    user = show_controls(run.get("input") or "").strip("\n")
    out += ["", "user:", "  " + _indent(user) if user.strip() else "  (no input recorded)"]
    text: list[str] = []
    saw_text = False
    turns = 0
    saw_failure = False
    last_call = None  # call_id of the request rendered just before
    unanswered: dict = {}  # call_id -> name: requested, no output yet
    usage_sum: dict[str, int] = {}

    def end_text() -> None:
        if text:
            joined = show_controls("".join(text)).strip("\n")
            if joined.strip():
                out.extend(["assistant:", "  " + _indent(joined)])
            text.clear()

    for e in run.get("events", []):
        kind = e.get("type")
        if kind == "text.delta":
            text.append(str(e.get("text", "")))
            saw_text = True
            continue
        end_text()
        if kind == "turn.started":
            turns = max(turns, e["turn"]) if isinstance(e.get("turn"), int) else turns
            out += ["", f"── turn {e.get('turn')} ──"]
        elif kind == "tool_call.requested":
            unanswered[e.get("call_id")] = e.get("name")
            out.append(f"→ {show_controls(e.get('name'))}({show_controls(e.get('arguments'))})")
        elif kind == "tool_call.completed":
            unanswered.pop(e.get("call_id"), None)
            # Every line names its tool; parallel calls finish out of order, so the call id too
            # unless the line just follows its request.
            who = show_controls(e.get("name"))
            if last_call != e.get("call_id"):
                who += f" [{show_controls(e.get('call_id'))}]"
            body = _indent(show_controls(_clip(str(e.get("output", "")))), "    ")
            if e.get("is_error"):
                error = "" if body.startswith("error:") else "error: "
                out.append(f"✗ {who}: {error}{body}  ({fmt_duration(e.get('duration_ms'))})")
            else:
                out.append(f"← {who}: {body}  ({fmt_duration(e.get('duration_ms'))})")
        elif kind == "turn.completed":
            for key, value in (e.get("usage") or {}).items():
                if isinstance(value, int):
                    usage_sum[key] = usage_sum.get(key, 0) + value
            if e.get("status") not in ("tool_calls", "completed"):
                out.append(f"(turn ended: {show_controls(e.get('status'))})")
        elif kind == "approval.requested":
            target = f" {show_controls(e.get('target'))}" if e.get("target") else ""
            out.append(f"? approval asked for {show_controls(e.get('name'))}{target} ({show_controls(e.get('why'))})")
        elif kind == "approval.decided":
            reason = f": {show_controls(e.get('reason'))}" if e.get("reason") else ""
            out.append(f"  {show_controls(e.get('decision'))} {show_controls(e.get('name'))} "
                       f"(by {show_controls(e.get('by'))}){reason}")
        elif kind == "notice":
            out.append(f"! {show_controls(e.get('level', 'info'))}: {_indent(show_controls(e.get('message')))}")
        elif kind == "run.paused":
            waiting = [w for w in e.get("waiting") or () if isinstance(w, dict)]
            names = ", ".join(show_controls(str(w.get("name"))) for w in waiting)
            if names:
                out.append(f"⏸ paused: {names} waits for approval (no tool of this round ran)")
            else:  # the round ran; its outputs could not be sent and are saved for the resume
                out.append("⏸ paused: the outputs of this round wait to be sent (its tools ran)")
        elif kind == "run.resumed":
            said = [f"--approve {show_controls(str(n))}" for n in e.get("approve") or ()]
            said += [f"--deny {show_controls(str(n))}" for n in e.get("deny") or ()]
            said += ["--yes"] if e.get("yes") is True else []
            out += ["", f"── resumed {fmt_time(e.get('ts') if isinstance(e.get('ts'), (int, float)) else None)}"
                        f" (flowrun resume {' '.join(said)}) ──".replace("resume  ", "resume ").replace(" )", ")")]
        elif kind in ("run.completed", "run.failed") and isinstance(e.get("turns"), int):
            turns = max(turns, e["turns"])
        if kind in ("run.completed", "run.failed"):
            if not (kind == "run.failed" and e.get("status") == "paused"):  # paused: they run on resume
                for call_id, name in unanswered.items():  # Ctrl-C or a turn limit before they finished
                    out.append(f"✗ {show_controls(name)} [{show_controls(call_id)}]: no output (the run ended before this call finished)")
            unanswered.clear()
        if kind == "run.failed" and e.get("status") == "paused":
            if run.get("status") == "paused":  # still waiting: say what to run
                saw_failure = True
                out.append(f"  {_indent(show_controls(e.get('message')))}")
        elif kind == "run.failed":
            saw_failure = True
            out.append(f"✗ run {show_controls(e.get('status'))}: {_indent(show_controls(e.get('message')))}")
        last_call = e.get("call_id") if kind == "tool_call.requested" else None
    end_text()
    if not saw_text and run.get("final_text"):
        out += ["assistant:", "  " + _indent(show_controls(run["final_text"]).strip("\n"))]
    out += ["", _summary(run, turns, usage_sum, saw_failure)]
    return "\n".join(out) + "\n"


def _summary(run: dict, turns: int, usage_sum: dict[str, int], saw_failure: bool) -> str:
    usage = run.get("usage") if isinstance(run.get("usage"), dict) else usage_sum
    tokens = {k: v for k, v in usage.items() if isinstance(v, int)}
    parts = [str(run.get("status") or "?"), _plural(turns, "turn"),
             _plural(finished_calls(run), "tool call")]
    total = tokens.get("total_tokens") or tokens.get("input_tokens", 0) + tokens.get("output_tokens", 0)
    if total:
        detail = ""
        if "input_tokens" in tokens and "output_tokens" in tokens:
            detail = f" ({tokens['input_tokens']} in / {tokens['output_tokens']} out)"
        parts.append(f"{total} tokens{detail}")
    parts.append(fmt_duration(run_duration_ms(run)))
    if run.get("exit_code") is not None:
        parts.append(f"exit {run['exit_code']}")
    error = show_controls(run.get("error") or "").strip()
    if error and not saw_failure:  # otherwise the run.failed line above already said it
        parts.append(error.splitlines()[0])
    return "── " + " · ".join(parts) + " ──"
