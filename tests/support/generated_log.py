"""A run log of many generated runs, for the view's tests and bench/view.py.

The rows are written with plain SQL in one transaction (recording 100,000 runs event by event
would take minutes), but every event is built from ``runner.events`` and masked the way the
recorder stores it, so the view reads exactly what a real log holds. Deterministic for a seed.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import time
from pathlib import Path

from runner.events import (RunCompleted, RunFailed, RunStarted, TextDelta, ToolCallCompleted,
                           ToolCallRequested, TurnCompleted, TurnStarted)
from runner.runlog.db import connect


def _d(cls, *args, **kwargs) -> dict:
    """The event as the recorder stores it (``to_dict`` without ``asdict``'s deep copies: the
    fields are flat, and 100,000 runs are generated)."""
    event = cls(*args, **kwargs)
    return {"type": event.type, **vars(event)}

WORKFLOWS = {
    "workflows/weather.yaml": ["get_current_temperature", "get_rain_probability"],
    "workflows/city_weather.yaml": ["get_temperature"],
    "workflows/open_meteo.yaml": ["forecast"],
    "workflows/support_triage.yaml": ["lookup_customer", "search_tickets", "open_ticket"],
    "workflows/release_notes.yaml": ["list_commits", "summarize_diff"],
}
MODELS = {"responses": ["gpt-4o-mini", "gpt-4.1"], "chat": ["qwen3", "llama3.1:8b"], "assistants": ["gpt-4o-mini"]}
CITIES = ["Paris", "San Francisco, CA", "Lagos", "Osaka", "Lima", "Reykjavik", "Perth", "Nairobi"]
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
WORKFLOW_TEXT = """version: 1
name: {name}
model:
  api: responses
  name: gpt-4o-mini
instructions: You answer with the tools.
tools:
  - name: {tool}
    description: {desc}
    parameters: {{type: object, properties: {{location: {{type: string}}}}}}
    resolve:
      static: "{value}"
"""


def workflow_text(path: str, version: int) -> str:
    tool = WORKFLOWS[path][0]
    return WORKFLOW_TEXT.format(name=Path(path).stem, tool=tool, desc=f"Look up {tool} (v{version})",
                                value=f"{version * 7}")


def _events(rng: random.Random, run_id: str, workflow: str, api: str, model: str, text: str,
            t0: float, status: str, hostile: bool) -> tuple[list[dict], dict]:
    """One run's events and the summary the recorder would store in ``runs``."""
    tools = WORKFLOWS[workflow]
    events: list[dict] = [_d(RunStarted, run_id, workflow, api, model, text, False, ts=t0)]
    t = t0 + rng.uniform(0.001, 0.01)
    calls = 0
    usage = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    turns = rng.choice([1, 2, 2, 2, 3])
    for turn in range(1, turns + 1):
        events.append(_d(TurnStarted, turn, ts=t))
        t += rng.uniform(0.2, 1.2)
        last = turn == turns
        turn_usage = {"input_tokens": rng.randint(200, 900), "output_tokens": rng.randint(10, 120)}
        turn_usage["total_tokens"] = turn_usage["input_tokens"] + turn_usage["output_tokens"]
        if not last:
            # As the loop records it: the model's turn ends, then its tool calls run.
            events.append(_d(TurnCompleted, turn, "tool_calls", turn_usage, ts=t))
            batch = [rng.choice(tools) for _ in range(rng.choice([1, 2, 2, 3]))]
            started = []
            for i, name in enumerate(batch):
                call_id = f"call_{run_id[-6:]}_{turn}_{i}"
                args = json.dumps({"location": rng.choice(CITIES)})
                events.append(_d(ToolCallRequested, call_id, name, args, ts=t))
                started.append((call_id, name, t))
                t += rng.uniform(0.0005, 0.003)
            ends = []
            for call_id, name, begun in started:
                ms = rng.uniform(15, 900)
                failed = rng.random() < 0.08
                output = (f"error: {name} timed out after 10 s" if failed else
                          HOSTILE if hostile else json.dumps({"value": round(rng.uniform(0, 40), 1)}))
                ends.append((begun + ms / 1000, _d(ToolCallCompleted, call_id, name, output, failed, ms,
                                                                  ts=begun + ms / 1000)))
                calls += 1
            ends.sort(key=lambda pair: pair[0])
            events += [e for _, e in ends]
            t = max(end for end, _ in ends) + 0.002
        else:
            answer = (f"In {rng.choice(CITIES)} it is {rng.randint(-5, 35)}°C; "
                      f"rain chance {rng.randint(0, 100)}%." if status == "completed" else "")
            if hostile:
                answer = "Here you go: " + HOSTILE
            for piece in [answer[i:i + 12] for i in range(0, len(answer), 12)]:
                events.append(_d(TextDelta, piece, ts=t))
                t += rng.uniform(0.005, 0.03)
            events.append(_d(TurnCompleted, turn, "completed" if status == "completed" else status, turn_usage,
                                        ts=t))
        for k, v in turn_usage.items():
            usage[k] += v
    duration = (t - t0) * 1000
    answer = "".join(e["text"] for e in events if e["type"] == "text.delta")
    if status == "completed":
        events.append(_d(RunCompleted, run_id, "completed", answer, turns, calls, usage, duration, ts=t))
    else:
        events.append(_d(RunFailed, run_id, status, f"the run ended: {status}", 1, answer, turns, calls, usage,
                                duration, ts=t))
    return events, {"calls": calls, "usage": usage, "end": t, "answer": answer}


VERSIONS = 3  # each workflow file changes twice over the log's life


def write_workflow_repo(root: Path) -> None:
    """The workflow files as a git repository with VERSIONS commits, the last one checked out,
    as a team's repository looks after a few edits."""
    root.mkdir(parents=True, exist_ok=True)
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
           "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True)
    for version in range(1, VERSIONS + 1):
        for rel in WORKFLOWS:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(workflow_text(rel, version))
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", f"version {version}"], check=True)


def generate(path: Path, runs: int, *, seed: int = 7, now: float | None = None, days: float = 30,
             hostile_every: int = 0, workflow_root: Path | None = None) -> list[str]:
    """Write ``runs`` runs into a fresh log at ``path``; return their ids, newest first.

    With ``workflow_root``, the runs name workflow files under it (see ``write_workflow_repo``).
    """
    rng = random.Random(seed)
    now = time.time() if now is None else now
    conn = connect(path, create=True)
    ids = []
    run_rows, event_rows, call_rows = [], [], []
    starts = sorted(now - rng.uniform(60, days * 86400) for _ in range(runs))
    for n, t0 in enumerate(starts):
        run_id = f"run_{n:06d}{rng.getrandbits(32):08x}"
        workflow = rng.choice(list(WORKFLOWS))
        api = rng.choice(list(MODELS))
        model = rng.choice(MODELS[api])
        status = rng.choices(["completed", "failed", "max_turns", "cancelled"], [86, 9, 3, 2])[0]
        hostile = bool(hostile_every) and n % hostile_every == 0
        text = f"What's the weather in {rng.choice(CITIES)} today? (request {n})"
        if hostile:
            text = "Show me " + HOSTILE
        events, summary = _events(rng, run_id, workflow, api, model, text, t0, status, hostile)
        version = 1 + n * VERSIONS // max(runs, 1)
        sha = hashlib.sha256(workflow_text(workflow, version).encode()).hexdigest()
        recorded_path = str(workflow_root / workflow) if workflow_root else workflow
        error = None if status == "completed" else f"run {status}"
        events[0]["workflow"] = recorded_path
        run_rows.append((run_id, recorded_path, sha, api, model, text, 0, status, t0, summary["end"],
                         (summary["end"] - t0) * 1000, summary["answer"], json.dumps(summary["usage"]),
                         0 if status == "completed" else 1, error, 1, "generated-host", None))
        for seq, e in enumerate(events):
            event_rows.append((run_id, seq, e["ts"], e["type"], json.dumps(e)))
            if e["type"] == "tool_call.completed":
                args = next(x["arguments"] for x in events
                            if x["type"] == "tool_call.requested" and x["call_id"] == e["call_id"])
                call_rows.append((run_id, e["call_id"], e["name"], args, e["output"], int(e["is_error"]),
                                  e["duration_ms"], seq))
        ids.append(run_id)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO runs (run_id, workflow_path, workflow_sha256, api, model, input, offline,"
                     " status, started_at, finished_at, duration_ms, final_text, usage, exit_code, error,"
                     " pid, hostname, pid_start) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", run_rows)
    conn.executemany("INSERT INTO events VALUES (?,?,?,?,?)", event_rows)
    conn.executemany("INSERT INTO tool_calls VALUES (?,?,?,?,?,?,?,?)", call_rows)
    conn.execute("COMMIT")
    conn.close()
    return list(reversed(ids))
