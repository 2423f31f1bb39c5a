"""Soak test: thousands of workflow runs with random faults, checking that nothing is lost,
nothing leaks and nothing hangs. Not part of the default test suite (it takes minutes).

    .venv/bin/python bench/soak.py                    # 2,000 runs, concurrency 16, seed 1
    .venv/bin/python bench/soak.py --runs 200 --seed 7

Every run goes through ``runner.run.session.run_conversation`` (the path the CLI takes) with the
real ``openai`` client, against one of several scripted model servers on 127.0.0.1, each
injecting a different fault (429s, 5xx, streams cut mid-answer or before the first event,
stalls with keepalives past the model timeout, error events, failed or incomplete runs, 401,
outputs rejected with 400), for a random API. Tools: a Python tool with a side effect, one
that raises with the secret in its message, a static one, an HTTP tool that sends the secret
in a header to an echo server that quotes it back, and one whose server answers 503; the model
also sends an unknown tool name and invalid JSON, and (issue 11) arguments holding a lone surrogate
or nested 5,000 levels deep, a tool returns a lone surrogate with the token, and the answer holds
a lone surrogate and base64("Bearer " + token).

Figures printed (and checked; the exit status is 1 if any check fails):
- runs completed (exit 0), runs failed cleanly with the exit code the fault calls for;
- wrong exit codes, crashes (an exception escaping the run): must be 0;
- hangs: runs not finished within --deadline seconds (``asyncio.wait``): must be 0;
- lost log records: events emitted minus events in the run log (SQLite), per run: must be 0;
- secrets leaked: the API key or the tool token (raw, base64, URL-encoded, JSON-escaped) found
  in any emitted event, the JSONL and terminal renderings, the outcome messages, the run-log
  files or any body a model server received: must be 0.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

ROOT = Path(__file__).resolve().parents[1]
VENV_PY = ROOT / ".venv" / "bin" / "python"

try:
    import openai  # noqa: F401
except ImportError:  # run with a Python that lacks the project: use the project's venv
    if VENV_PY.exists() and Path(sys.executable) != VENV_PY:
        os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])
    raise

sys.path.insert(0, str(ROOT))

from runner.errors import FlowrunError  # noqa: E402
from runner.events import RunStarted  # noqa: E402
from runner.run.loop import new_run_id  # noqa: E402
from runner.render.jsonl import JsonlRenderer  # noqa: E402
from runner.render.terminal import TerminalRenderer  # noqa: E402
from runner.run.session import run_conversation  # noqa: E402
from runner.runlog.log import RunLog  # noqa: E402
from runner.scripted import EchoServer, Fault, ScriptedServer  # noqa: E402
from runner.secrets.sources import build_masker  # noqa: E402
from runner.run.settings import Overrides, model_settings, resolve_inputs  # noqa: E402
from runner.run.fanout import FanOut  # noqa: E402
from runner.workflow.model import ScriptedCall, ScriptedTurn  # noqa: E402
from runner.secrets.masker import base64_forms  # noqa: E402
from runner.workflow.validate import load_workflow  # noqa: E402

APIS = ("responses", "chat", "assistants")
API_KEY = "sk-soak-canary-" + os.urandom(12).hex()
TOKEN = "tok-soak+/=" + os.urandom(10).hex()
MODEL_TIMEOUT = 2  # seconds; stalls last longer than this

TOOLS_PY = '''
import os, threading
_lock = threading.Lock()
COUNT = {"n": 0}

def note(text: str = "x"):
    with _lock:
        COUNT["n"] += 1
    return "noted " + text

def boom():
    raise RuntimeError("backend refused token " + os.environ.get("TOOL_TOKEN", "?"))

def shout():
    print("stray print from a tool")  # routed to stderr by the stdout guard
    return "lone \\udcff " + os.environ.get("TOOL_TOKEN", "?")
'''


def workflow_yaml(echo: EchoServer) -> str:
    return f"""version: 1
name: soak
model: {{api: chat, name: soak-model, timeout: {MODEL_TIMEOUT}}}
input: go
tools:
  - name: note
    description: a side effect
    parameters: {{type: object, properties: {{text: {{type: string}}}}, required: [text], additionalProperties: false}}
    resolve: {{python: "soak_tools:note"}}
  - name: boom
    description: raises with the secret in its message
    parameters: {{type: object, properties: {{}}}}
    resolve: {{python: "soak_tools:boom"}}
  - name: shout
    description: prints, returns a lone surrogate and the token
    parameters: {{type: object, properties: {{}}}}
    resolve: {{python: "soak_tools:shout"}}
  - name: lookup
    description: static
    parameters: {{type: object, properties: {{key: {{type: string}}}}}}
    resolve: {{static: "value of ${{{{ args.key }}}}"}}
  - name: fetch
    description: sends the token; the server quotes it back
    parameters: {{type: object, properties: {{}}}}
    resolve:
      http:
        url: "{echo.url('/echo')}"
        headers: {{Authorization: "Bearer ${{{{ env.TOOL_TOKEN }}}}"}}
        allow_private_network: true
  - name: busy
    description: the server answers 503 and quotes the token
    parameters: {{type: object, properties: {{}}}}
    resolve:
      http:
        url: "{echo.url('/status/503')}"
        headers: {{X-Key: "${{{{ env.TOOL_TOKEN }}}}"}}
        retries: 0
        allow_private_network: true
"""


TURNS = [
    ScriptedTurn(tool_calls=(
        ScriptedCall("note", {"text": "a"}),
        ScriptedCall("lookup", {"key": "k"}),
        ScriptedCall("fetch", {}),
        ScriptedCall("boom", {}),
        ScriptedCall("busy", {}),
        ScriptedCall("no_such_tool", {}),
        ScriptedCall("note", '{"text": "unterminated'),
        ScriptedCall("lookup", '{"key": "lone \\udcff surrogate"}'),  # issue 11: hostile input
        ScriptedCall("lookup", '{"key": ' + "[" * 5000 + "]" * 5000 + "}"),
        ScriptedCall("shout", {}),
    )),
    ScriptedTurn(text="Done: ${{ outputs.fetch }} / ${{ outputs.lookup }} \udcff "
                      + base64.b64encode(("Bearer " + TOKEN).encode()).decode()),
]

_400 = {"error": {"message": f"tool output rejected (it quoted {TOKEN})", "type": "invalid_request_error",
                  "param": None, "code": None}}
_401 = {"error": {"message": f"Incorrect API key provided: {API_KEY}", "type": "invalid_request_error",
                  "param": None, "code": "invalid_api_key"}}

# name -> (faults, expected exit code per API)
SCENARIOS: dict[str, tuple[list[Fault], dict[str, int]]] = {
    "clean": ([], {"responses": 0, "chat": 0, "assistants": 0}),
    "429 then ok": ([Fault(kind="http_error", status=429, headers={"retry-after": "0.05"}, turn=0, times=1)],
                    {"responses": 0, "chat": 0, "assistants": 0}),
    "5xx on submit then ok": ([Fault(kind="http_error", status=503, turn=1, times=1)],
                              {"responses": 0, "chat": 0, "assistants": 0}),
    "cut before first event": ([Fault(kind="drop_after", turn=1, after=0, times=1)],
                               {"responses": 0, "chat": 0, "assistants": 0}),
    "cut mid-answer": ([Fault(kind="drop_after", turn=1, after=6, times=1)],
                       {"responses": 3, "chat": 3, "assistants": 0}),
    "cut in tool turn": ([Fault(kind="drop_after", turn=0, after=5, times=1)],
                         {"responses": 3, "chat": 3, "assistants": 0}),
    "stall with keepalives": ([Fault(kind="stall", turn=1, after=4, seconds=6, keepalive=0.25, times=1)],
                              {"responses": 3, "chat": 3, "assistants": 0}),
    "error event": ([Fault(kind="error_event", turn=1, after=3, message="overloaded")],
                    {"responses": 1, "chat": 1, "assistants": 1}),
    "run failed": ([Fault(kind="terminal", terminal="failed", turn=1)], {"responses": 1, "assistants": 1}),
    "incomplete": ([Fault(kind="terminal", terminal="incomplete", turn=1), Fault(kind="terminal", terminal="length", turn=1)],
                   {"responses": 1, "chat": 1, "assistants": 1}),
    "401": ([Fault(kind="http_error", status=401, body=_401, match="/v1/")], {"responses": 3, "chat": 3, "assistants": 3}),
    "outputs rejected": ([Fault(kind="http_error", status=400, turn=1, body=_400)],
                         {"responses": 1, "chat": 1, "assistants": 1}),
}


def canary_forms() -> list[str]:
    out = set()
    for s in (API_KEY, TOKEN):
        b64 = base64.b64encode(s.encode()).decode()
        out |= {s, b64.rstrip("="), quote(s, safe=""), quote_plus(s), json.dumps(s)[1:-1]}
        out |= base64_forms(s.encode())  # at each of the three alignments (issue 11)
    return sorted(out)


@dataclass
class Tally:
    by_outcome: Counter = field(default_factory=Counter)
    scenarios: Counter = field(default_factory=Counter)  # (scenario, api, exit code) -> runs
    wrong: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    emitted: dict[str, int] = field(default_factory=dict)
    leaks: list[str] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)


def resources() -> tuple[int, float]:
    """(open file descriptors, resident memory in MB) of this process; Linux only, else (0, 0)."""
    try:
        fds = len(os.listdir("/proc/self/fd"))
        with open("/proc/self/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
        return fds, rss
    except (OSError, StopIteration, ValueError):
        return 0, 0.0


class LeakScanner:
    def __init__(self, forms: list[str]):
        self.forms = forms

    def scan(self, text: str, where: str, tally: Tally) -> None:
        for form in self.forms:
            if form in text:
                tally.leaks.append(f"{where}: {form[:12]}…")


async def one_run(i: int, scenario: str, api: str, server: ScriptedServer, ctx: dict, tally: Tally) -> None:
    workflow, env, log, scanner = ctx["workflow"], ctx["env"], ctx["log"], ctx["scanner"]
    inputs = resolve_inputs(workflow, {})
    settings = model_settings(workflow, Overrides(api=api, base_url=server.base_url), inputs, env)
    masker = build_masker(workflow, env, settings.api_key)
    run_id = new_run_id() + f"_{i}"
    out, err = io.StringIO(), io.StringIO()
    count = 0

    def counted(_event) -> None:
        nonlocal count
        count += 1

    message = f"go (run {i})"  # distinct first requests: the server counts faults per conversation
    log.start_run(run_id=run_id, workflow_path=str(workflow.path), workflow_sha256=workflow.source_sha256,
                  api=api, model=settings.model, input=message, offline=False)
    jsonl, terminal = JsonlRenderer(out), TerminalRenderer(io.StringIO(), err, verbose=True)
    emit = FanOut([counted, jsonl, terminal, lambda ev: log.record(run_id, ev)], masker)
    emit(RunStarted(run_id, str(workflow.path), api, settings.model, message))
    tally.emitted[run_id] = 0
    started = time.monotonic()
    try:
        outcome = await run_conversation(workflow, settings, [message], emit, run_id=run_id, inputs=inputs,
                                         env=env, masker=masker)
        code, said, status = outcome.exit_code, outcome.message, outcome.status
    except FlowrunError as exc:  # what the CLI turns into "flowrun: error: ..." and its exit code
        code, said, status = exc.exit_code, masker.mask(str(exc)), "error"
    except Exception as exc:  # noqa: BLE001 - a crash is a finding, not the end of the soak
        tally.crashes.append(f"run {i} ({scenario}, {api}): {type(exc).__name__}: {exc}")
        code, said, status = -1, "", "crashed"
    tally.durations.append(time.monotonic() - started)
    log.finish_run(run_id, status=status, final_text="", usage=None, exit_code=code, error=said or None)
    tally.emitted[run_id] = count
    expected = SCENARIOS[scenario][1][api]
    tally.scenarios[(scenario, api, code)] += 1
    if code == -1:
        pass
    elif code != expected:
        tally.wrong.append(f"run {i} ({scenario}, {api}): exit {code}, expected {expected}: {said[:200]}")
    else:
        tally.by_outcome["completed" if code == 0 else "failed cleanly"] += 1
    scanner.scan(out.getvalue(), f"jsonl of run {i}", tally)
    scanner.scan(err.getvalue(), f"terminal of run {i}", tally)
    scanner.scan(said, f"outcome of run {i}", tally)


async def soak(args: argparse.Namespace, folder: Path) -> tuple[Tally, dict]:
    rng = random.Random(args.seed)
    tally = Tally()
    (folder / "soak_tools.py").write_text(TOOLS_PY)
    scanner = LeakScanner(canary_forms())
    with EchoServer() as echo:
        wf_path = folder / "soak.yaml"
        wf_path.write_text(workflow_yaml(echo))
        workflow = load_workflow(wf_path)
        servers = {name: ScriptedServer(TURNS, faults=faults).start() for name, (faults, _) in SCENARIOS.items()}
        env = {"OPENAI_API_KEY": API_KEY, "TOOL_TOKEN": TOKEN}
        os.environ["TOOL_TOKEN"] = TOKEN  # the python tool reads it from the process environment
        db = folder / "runs.sqlite3"
        log = RunLog.open(db, masker=build_masker(workflow, env, API_KEY))
        ctx = {"workflow": workflow, "env": env, "log": log, "scanner": scanner}
        plan = []
        for i in range(args.runs):
            scenario = rng.choice(list(SCENARIOS))
            api = rng.choice([a for a in APIS if a in SCENARIOS[scenario][1]])
            plan.append((i, scenario, api))
        limit = asyncio.Semaphore(args.concurrency)
        started = time.monotonic()
        done = 0

        probes: dict[str, tuple[int, float]] = {}

        async def guarded(i: int, scenario: str, api: str) -> None:
            nonlocal done
            async with limit:
                task = asyncio.ensure_future(one_run(i, scenario, api, servers[scenario], ctx, tally))
                finished, _ = await asyncio.wait({task}, timeout=args.deadline)
                if not finished:
                    tally.hangs.append(f"run {i} ({scenario}, {api}) still running after {args.deadline:g}s")
                    task.cancel()
                    await asyncio.wait({task}, timeout=5)
                elif task.exception() is not None:
                    tally.crashes.append(f"run {i}: {task.exception()!r}")
            done += 1
            if done == min(200, args.runs):
                probes["warm"] = resources()
            if not args.quiet and done % 100 == 0:
                print(f"  {done}/{args.runs} runs, {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)

        await asyncio.gather(*(guarded(*p) for p in plan))
        elapsed = time.monotonic() - started
        probes["end"] = resources()
        log.close()
        for server in servers.values():
            for req in server.requests:
                scanner.scan(json.dumps([req.path, req.query, req.body]), f"body received by {req.path}", tally)
            server.stop()
    reader = RunLog.open_reader(db)
    lost = 0
    try:
        for run_id, count in tally.emitted.items():
            rows = len(reader.get_run(run_id)["events"])
            lost += max(0, count - rows)
    finally:
        reader.close()
    for path in folder.glob("runs.sqlite3*"):
        scanner.scan(path.read_bytes().decode("utf-8", "replace"), path.name, tally)
    stats = {"elapsed": elapsed, "lost": lost, "plan": Counter((s, a) for _, s, a in plan), "probes": probes}
    return tally, stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds before a run counts as hung")
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.add_argument("--by-scenario", action="store_true", help="also print runs per scenario, API and exit code")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flowrun-soak-") as tmp:
        tally, stats = asyncio.run(soak(args, Path(tmp)))
    completed = tally.by_outcome["completed"]
    clean = tally.by_outcome["failed cleanly"]
    print(f"flowrun soak: {args.runs} runs, seed {args.seed}, concurrency {args.concurrency}, "
          f"{len(SCENARIOS)} fault scenarios x 3 APIs, {stats['elapsed']:.0f}s")
    print(f"  runs completed:                        {completed}")
    print(f"  runs failed cleanly (right exit code): {clean}")
    print(f"  wrong exit code:                       {len(tally.wrong)}")
    print(f"  crashes:                               {len(tally.crashes)}")
    print(f"  hangs (>{args.deadline:g}s):                        {len(tally.hangs)}")
    print(f"  lost log records:                      {stats['lost']}")
    print(f"  secrets leaked:                        {len(tally.leaks)}")
    warm, end = stats["probes"].get("warm"), stats["probes"].get("end")
    if warm and end and warm[0]:
        print(f"  open fds after 200 runs / at the end:  {warm[0]} / {end[0]}")
        print(f"  RSS after 200 runs / at the end:       {warm[1]:.0f} MB / {end[1]:.0f} MB "
              "(includes the scripted servers, which keep every request)")
    if args.by_scenario:
        for (scenario, api, code), n in sorted(tally.scenarios.items()):
            print(f"    {scenario:24} {api:10} exit {code:3}  {n} runs")
    if tally.durations:
        ds = sorted(tally.durations)
        print(f"  run duration p50 {ds[len(ds) // 2]:.2f}s, p99 {ds[int(len(ds) * 0.99)]:.2f}s, max {ds[-1]:.2f}s")
    for title, items in (("wrong exit codes", tally.wrong), ("crashes", tally.crashes), ("hangs", tally.hangs),
                         ("leaks", tally.leaks)):
        for line in items[:10]:
            print(f"  {title}: {line}")
    ok = not (tally.wrong or tally.crashes or tally.hangs or tally.leaks or stats["lost"])
    print("  result:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
