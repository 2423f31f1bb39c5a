"""flowrun performance figures, each a ratio measured side by side in this one run.

    .venv/bin/python bench/run.py            # all five figures (about two minutes on 2 cores)
    .venv/bin/python bench/run.py --only 1,4 --quick

1. Run overhead: the weather workflow (2 turns, 2 parallel tools) 200 times through flowrun
   (the batch engine's path for one input, one run at a time) vs a hand-written loop on the raw
   ``openai`` SDK sending the same requests, per API, against the same scripted server with no
   latency; runs interleaved one by one, ratio of the median run times (1a-c). Then the same run
   as whole processes: ``flowrun workflows/weather.yaml`` vs a seed-style program on the bare SDK
   (bench/rawproc.py), start-up and exit included; ratio of the median walls (1d-f) and of the
   median CPU times of the two processes (1g-i, steadier than the wall on a loaded machine).
2. Start-up: ``flowrun validate`` and ``flowrun --help`` vs ``python -c "import yaml, jsonschema, click"``.
3. Parallel tools: one turn of 8 HTTP tool calls, each answered after 200 ms.
4. Batch: ``flowrun batch`` over 1,000 inputs, concurrency 100, 100 ms per model turn, with one
   worker process and with one per core, against the floor: a bare httpx2 loop (no SDK at all)
   doing the same runs in-process; and the scaling from one worker to one per core. The batches
   record their runs in a run log in the bench's temporary folder, as `flowrun batch` does by
   default (bench/batch_log.py measures what that costs against --no-log).
5. Cost growth: flowrun's client CPU per tool round for 10 / 100 / 1,000 rounds, and per MB of
   tool output for outputs of 1 KB / 100 KB / 1 MB (both flat unless something is quadratic).

The scripted server runs in its own process (bench/serve.py) so each side has a core; a benchmark,
not a test: figures vary a little from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PY = ROOT / ".venv" / "bin" / "python"

try:
    import openai  # noqa: F401
except ImportError:  # run with a Python that lacks the project: use the project's venv
    if VENV_PY.exists() and Path(sys.executable) != VENV_PY:
        os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])
    raise

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import rawloop  # noqa: E402

from runner.batch.scheduler import Batch, BatchOptions  # noqa: E402
from runner.workflow.validate import load_workflow  # noqa: E402

WEATHER = ROOT / "workflows" / "weather.yaml"
APIS = ("responses", "chat", "assistants")


@dataclass
class Row:
    key: str
    figure: str
    measured: str
    target: str
    ok: bool
    note: str = ""


# --- helpers ------------------------------------------------------------------------------------


@contextmanager
def server_process(script: str, *, latency_turn: float = 0.0):
    """bench/serve.py in a child process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "serve.py"), script, "--latency-turn", str(latency_turn)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("bench/serve.py did not start")
        yield url
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def flowrun_cmd() -> list[str]:
    script = Path(sys.executable).parent / "flowrun"
    return [str(script)] if script.exists() else [sys.executable, "-m", "runner"]


def write_inputs(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def show_progress(text: str) -> None:
    sys.stderr.write(f"  {text}\n")
    sys.stderr.flush()


# --- 1. run overhead --------------------------------------------------------------------------


def paired_runs(workflow_file: Path, api: str, url: str, message: str, runs: int, call_tool, expect: str,
                tmp: Path, *, clock=time.perf_counter, max_turns: int = 10, warm: int = 10):
    """``runs`` flowrun runs and as many raw-SDK runs, interleaved one by one and alternating
    who goes first (so load from anything else on the machine hits both alike); returns the
    per-run ``clock`` readings of each side, warm-up runs left out. flowrun's side is the batch
    engine's own path for one input (``Batch.run_input``), its set-up done once, as the raw
    loop makes its client once."""
    workflow = load_workflow(workflow_file)
    spec = rawloop.spec_for(api, workflow)
    line = json.dumps({"message": message})
    inputs = write_inputs(tmp / f"paired-{time.monotonic_ns()}.jsonl", [line] * (runs + warm))

    async def measure() -> tuple[list[float], list[float]]:
        out = tmp / f"paired-{time.monotonic_ns()}.out.jsonl"
        batch = Batch(BatchOptions(file=str(workflow_file), inputs=str(inputs), out=str(out), concurrency=1,
                                   api=api, base_url=url, max_turns=max_turns, env=_no_openai_env()))
        client = rawloop.openai.AsyncOpenAI(base_url=url, api_key="bench")
        flow, raw = [], []
        try:
            async with batch.session() as todo:
                for i, item in enumerate(todo):
                    for side in (("flow", "raw") if i % 2 == 0 else ("raw", "flow")):
                        t = clock()
                        if side == "flow":
                            await batch.run_input(item)
                            flow.append(clock() - t)
                        else:
                            text = await rawloop.RUNS[api](client, spec, message, call_tool)
                            raw.append(clock() - t)
                            if expect not in text:
                                raise RuntimeError(f"the raw loop answered {text!r}")
        finally:
            await client.close()
        if batch.summary.failed:
            raise RuntimeError(f"flowrun runs failed: {batch.summary.first_failure}")
        return flow[warm:], raw[warm:]

    return asyncio.run(measure())


def figure_1(runs: int, tmp: Path) -> list[Row]:
    """Per-run wall time; the ratio of the medians."""
    workflow = load_workflow(WEATHER)
    static = {"get_current_temperature": "57", "get_rain_probability": "0.06"}

    async def call_tool(name: str, args: dict) -> str:
        return static[name]

    rows = []
    with server_process("weather") as url:
        for api in APIS:
            flow, raw = paired_runs(WEATHER, api, url, workflow.input, runs, call_tool, "57", tmp)
            f, r = statistics.median(flow), statistics.median(raw)
            ratio = f / r
            show_progress(f"1 {api}: flowrun {f * 1000:.2f} ms/run, raw {r * 1000:.2f} ms/run (medians)")
            rows.append(Row(
                f"1{'abc'[APIS.index(api)]}", f"run overhead, {api} ({len(flow)} runs)", f"{ratio:.2f}x",
                "<= 1.10x", ratio <= 1.10,
                f"median run: flowrun {f * 1000:.2f} ms vs raw openai loop {r * 1000:.2f} ms "
                f"(means {statistics.mean(flow) * 1000:.2f} vs {statistics.mean(raw) * 1000:.2f})",
            ))
    return rows


def figure_1w(runs: int, tmp: Path) -> list[Row]:
    """The same weather run as whole processes, as a user starts them: ``flowrun
    workflows/weather.yaml --api X`` (run log on, in a temporary database) against
    ``bench/rawproc.py``, a seed-style program on the bare SDK (plain ``yaml.safe_load``, one
    client, the loop of ``rawloop.py``), same server and turns. Start-up and exit included:
    interpreter, imports, validation, run log, client set-up, teardown. Both read their modules'
    cached bytecode, as an installed program does (``PYTHONDONTWRITEBYTECODE``, set on some
    machines, would otherwise make flowrun compile its own modules on every start: a cost a
    user's install does not have); the cache is this run's temporary directory, so the tree is
    not written. Alternating runs; the ratio of the median walls, and of the median CPU times
    (user + system of the process, from ``wait4``), which load from other processes on the
    machine disturbs much less than the wall."""
    env = {**_no_openai_env(), "OPENAI_API_KEY": "bench", "FLOWRUN_LOG_DB": str(tmp / "whole-runs.sqlite3"),
           "PYTHONPYCACHEPREFIX": str(tmp / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    walls, cpus = [], []
    with server_process("weather") as url:
        for api in APIS:
            sides = {
                "flow": [*flowrun_cmd(), str(WEATHER), "--api", api, "--base-url", url],
                "raw": [sys.executable, str(ROOT / "bench" / "rawproc.py"), str(WEATHER), "--api", api,
                        "--base-url", url],
            }
            took: dict[str, list[tuple[float, float]]] = {"flow": [], "raw": []}
            for i in range(runs + 1):  # the first pair fills the bytecode cache and the run log
                for side in (("flow", "raw") if i % 2 == 0 else ("raw", "flow")):
                    wall_s, cpu_s, code, out = whole_process(sides[side], env)
                    if code != 0 or "57" not in out:
                        raise RuntimeError(f"{side} process for {api} exited {code}: {out[-300:]!r}")
                    if i:
                        took[side].append((wall_s, cpu_s))
            f = statistics.median(w for w, _ in took["flow"])
            r = statistics.median(w for w, _ in took["raw"])
            fc = statistics.median(c for _, c in took["flow"])
            rc = statistics.median(c for _, c in took["raw"])
            show_progress(f"1w {api}: flowrun process {f * 1000:.0f} ms, raw process {r * 1000:.0f} ms; "
                          f"CPU {fc * 1000:.0f} vs {rc * 1000:.0f} ms (medians)")
            key = APIS.index(api)
            walls.append(Row(
                f"1{'def'[key]}", f"whole process, {api} ({runs} runs)", f"{f / r:.2f}x", "<= 1.10x", f / r <= 1.10,
                f"median process: flowrun {f * 1000:.0f} ms vs seed-style openai program {r * 1000:.0f} ms; "
                f"CPU {fc * 1000:.0f} vs {rc * 1000:.0f} ms",
            ))
            cpus.append(Row(
                f"1{'ghi'[key]}", f"whole process CPU, {api} ({runs} runs)", f"{fc / rc:.2f}x", "<= 1.10x",
                fc / rc <= 1.10,
                f"median CPU (user + system) per process: flowrun {fc * 1000:.0f} ms vs seed-style openai program "
                f"{rc * 1000:.0f} ms (means {statistics.mean(c for _, c in took['flow']) * 1000:.0f} vs "
                f"{statistics.mean(c for _, c in took['raw']) * 1000:.0f})",
            ))
    return walls + cpus


def whole_process(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds of the child, exit code, stdout) of one process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    return took, usage.ru_utime + usage.ru_stime, proc.returncode, out


# --- 2. start-up --------------------------------------------------------------------------------


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def imports_openai(args: list[str]) -> bool:
    probe = ("import sys, runpy; sys.argv = ['flowrun', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('runner', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "sys.stderr.write('OPENAI=%s' % ('openai' in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True)
    return "OPENAI=True" in done.stderr


def figure_2(repeat: int) -> list[Row]:
    base = [sys.executable, "-c", "import yaml, jsonschema, click"]
    flowrun = flowrun_cmd()
    cases = {"validate": [*flowrun, "validate", "workflows/weather.yaml"], "--help": [*flowrun, "--help"]}
    times: dict[str, list[float]] = {"base": [], **{k: [] for k in cases}}
    for cmd in [base, *cases.values()]:
        wall(cmd)  # warm the file cache
    for _ in range(repeat):
        times["base"].append(wall(base))
        for name, cmd in cases.items():
            times[name].append(wall(cmd))
    b = statistics.median(times["base"])
    rows = []
    for i, (name, cmd) in enumerate(cases.items()):
        m = statistics.median(times[name])
        heavy = imports_openai(cmd[len(flowrun):])
        ratio = m / b
        rows.append(Row(
            f"2{'ab'[i]}", f"start-up, flowrun {name}", f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5 and not heavy,
            f"{m * 1000:.0f} ms vs {b * 1000:.0f} ms for the imports alone (median of {repeat});"
            f" openai imported: {'YES' if heavy else 'no'}",
        ))
    return rows


# --- 3. parallel tools --------------------------------------------------------------------------


class _SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        time.sleep(0.2)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _SlowServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops simultaneous connects (a 1 s SYN retry)


def figure_3(tmp: Path, calls: int = 8, delay: float = 0.2) -> list[Row]:
    from runner.calls import ToolCall
    from runner.tools.dispatcher import Dispatcher

    server = _SlowServer(("127.0.0.1", 0), _SlowHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        path = tmp / "fanout.yaml"
        path.write_text(f"""version: 1
name: fanout
model: {{api: chat, name: m}}
input: go
tools:
  - name: slow
    description: answers after 200 ms
    parameters: {{type: object, properties: {{i: {{type: integer}}}}, required: [i], additionalProperties: false}}
    resolve:
      http:
        url: http://127.0.0.1:{server.server_address[1]}/slow
        query: {{i: "${{{{ args.i }}}}"}}
        allow_private_network: true
""")
        workflow = load_workflow(path)

        async def measure() -> list[float]:
            dispatcher = Dispatcher(workflow, env={})
            try:
                batch = [ToolCall(f"call_{i}", "slow", f'{{"i": {i}}}') for i in range(calls)]
                await dispatcher.run_all(batch[:1])  # warm-up: client and imports
                took = []
                for _ in range(3):
                    t = time.perf_counter()
                    results = await dispatcher.run_all(batch)
                    took.append(time.perf_counter() - t)
                    bad = [r.output for r in results if r.is_error]
                    if bad:
                        raise RuntimeError(f"tool failed: {bad[0]}")
                return took
            finally:
                await dispatcher.aclose()

        took = asyncio.run(measure())
    finally:
        server.shutdown()
        server.server_close()
    m = statistics.median(took)
    ratio = m / delay
    return [Row("3", f"parallel tools, {calls} HTTP calls x {delay * 1000:.0f} ms", f"{ratio:.2f}x", "<= 1.3x",
                ratio <= 1.3, f"one turn's dispatch took {m * 1000:.0f} ms (median of 3); serial would be "
                f"{calls * delay * 1000:.0f} ms")]


# --- 4. batch -----------------------------------------------------------------------------------


def figure_4(tmp: Path, n: int, concurrency: int, latency: float, reps: int) -> list[Row]:
    """``flowrun batch`` as a user runs it (a child process, start-up included) with one worker
    process and with one per core, against the floor: a bare httpx2 loop doing the same n
    two-turn runs at the same concurrency in this process (post, read SSE lines, json.loads;
    no SDK, no flowrun). Alternating, ``reps`` times, medians."""
    inputs = write_inputs(tmp / "batch-inputs.jsonl",
                          [f'{{"message": "Weather in city {i}?", "id": {i}}}' for i in range(n)])
    ideal = n / concurrency * 2 * latency
    cores = os.cpu_count() or 1
    sides = {"w1": 1, f"w{cores}": cores} if cores > 1 else {"w1": 1}
    runs: dict[str, list[dict]] = {k: [] for k in sides}
    floor: list[tuple[float, float]] = []
    with server_process("weather", latency_turn=latency) as url:
        for rep in range(reps):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))
            for key in order:
                runs[key].append(batch_process(tmp, inputs, url, concurrency, sides[key]))
                show_progress(f"4 --workers {sides[key]}: {runs[key][-1]['wall']:.2f} s, "
                              f"{runs[key][-1]['cpu_ms']:.1f} ms CPU per input")
            floor.append(bare_http_concurrent(url, n, concurrency))
            show_progress(f"4 bare httpx2 loop: {floor[-1][0]:.2f} s, {floor[-1][1]:.1f} ms CPU per run")
    bare = statistics.median(t for t, _ in floor)
    bare_cpu = statistics.median(c for _, c in floor)
    rows = []
    med = {}
    for key, workers in sides.items():
        took = statistics.median(r["wall"] for r in runs[key])
        last = runs[key][-1]
        med[key] = took
        ok = took / bare <= 1.2 and all(r["code"] == 0 and r["lines"] == n for r in runs[key])
        rows.append(Row(
            f"4{'ab'[list(sides).index(key)]}",
            f"batch vs bare-HTTP floor, {n} inputs, concurrency {concurrency}, {latency * 1000:.0f} ms/turn, "
            f"--workers {workers}", f"{took / bare:.2f}x", "<= 1.2x", ok,
            f"{took:.2f} s wall (process start included; median of {reps}) vs the bare httpx2 loop {bare:.2f} s "
            f"({bare_cpu:.1f} ms CPU per run, one process) and the ideal {ideal:.1f} s; flowrun {last['cpu_ms']:.1f} ms "
            f"CPU per input over all its processes; peak RSS {last['peak_mb']:.0f} MB per process; "
            f"{last['lines']} result lines; exit {last['code']}; it said: {last['said']!r}",
        ))
    if len(sides) == 2:
        one, many = med["w1"], med[f"w{cores}"]
        rows.append(Row("4c", f"batch scaling, --workers 1 -> {cores} on {cores} cores", f"{one / many:.2f}x",
                        f">= {0.8 * cores:.1f}x", one / many >= 0.8 * cores,
                        f"{one:.2f} s -> {many:.2f} s; the scripted server (its own process) shares these cores"))
    return rows


def batch_process(tmp: Path, inputs: Path, url: str, concurrency: int, workers: int) -> dict:
    """One ``flowrun batch`` child process; its wall time, CPU (children included) and outcome."""
    out = tmp / f"batch-results-{time.monotonic_ns()}.jsonl"
    err = open(tmp / "batch-stderr.txt", "w+")
    t = time.perf_counter()
    proc = subprocess.Popen([*flowrun_cmd(), "batch", str(WEATHER), "--inputs", str(inputs), "--out", str(out),
                             "--concurrency", str(concurrency), "--workers", str(workers), "--base-url", url],
                            cwd=tmp, stdout=subprocess.DEVNULL, stderr=err,
                            env={**_no_openai_env(), "FLOWRUN_LOG_DB": str(tmp / "batch-runs.sqlite3")})
    _, status, usage = os.wait4(proc.pid, 0)  # on Linux this includes the workers it reaped
    took = time.perf_counter() - t
    n = max(1, sum(1 for _ in open(inputs)))
    cpu = usage.ru_utime + usage.ru_stime
    err.seek(0)
    said = err.read().strip().splitlines()
    lines = len(out.read_text().splitlines()) if out.exists() else 0
    return {"wall": took, "code": os.waitstatus_to_exitcode(status), "lines": lines, "cpu_ms": cpu / n * 1000,
            "peak_mb": usage.ru_maxrss / 1024, "said": said[-1] if said else "(no summary)"}


def bare_http_concurrent(url: str, n: int, concurrency: int) -> tuple[float, float]:
    """The floor under figure 4 on this machine: the same two Responses turns per run with
    nothing but the HTTP library (what any Python client pays at least)."""
    import httpx2

    workflow = load_workflow(WEATHER)
    tools = rawloop.tools_for("responses", workflow)

    async def main() -> None:
        client = httpx2.AsyncClient(limits=httpx2.Limits(max_connections=concurrency + 10,
                                                         max_keepalive_connections=concurrency + 10), timeout=60)
        gate = asyncio.Semaphore(concurrency)

        async def turn(body: dict) -> list[dict]:
            events = []
            async with client.stream("POST", url + "/responses", json=body,
                                     headers={"authorization": "Bearer bench"}) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))
            return events

        async def one(i: int) -> None:
            async with gate:
                base = {"model": workflow.model.name, "instructions": workflow.instructions, "tools": tools,
                        "stream": True}
                events = await turn({**base, "input": [{"role": "user", "content": f"Weather in city {i}?"}]})
                done = [e for e in events if e.get("type") == "response.completed"]
                calls = [e["item"] for e in events
                         if e.get("type") == "response.output_item.done" and e["item"].get("type") == "function_call"]
                outputs = [{"type": "function_call_output", "call_id": c["call_id"], "output": "57"} for c in calls]
                await turn({**base, "input": outputs, "previous_response_id": done[0]["response"]["id"]})

        try:
            await asyncio.gather(*(one(i) for i in range(n)))
        finally:
            await client.aclose()

    t, c = time.perf_counter(), time.process_time()
    asyncio.run(main())
    return time.perf_counter() - t, (time.process_time() - c) / n * 1000


def _no_openai_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}


# --- 5. cost growth -----------------------------------------------------------------------------


def blob_workflow(tmp: Path) -> Path:
    (tmp / "benchtools.py").write_text(
        "async def blob(size: int, round: int = 0) -> str:\n    return 'x' * size\n")
    path = tmp / "blob.yaml"
    path.write_text("""version: 1
name: blob
model: {api: responses, name: scripted}
instructions: Call blob until told otherwise.
input: rounds=1 size=1000
tools:
  - name: blob
    description: returns size bytes
    parameters: {type: object, properties: {size: {type: integer}, round: {type: integer}}, required: [size]}
    resolve:
      python: benchtools:blob
""")
    return path


def figure_5(tmp: Path, quick: bool) -> list[Row]:
    """Client CPU (``process_time``: the server is another process), per run, medians."""
    workflow_file = blob_workflow(tmp)

    async def call_tool(name: str, args: dict) -> str:
        return "x" * int(args["size"])

    def cpu(url: str, rounds: int, size: int, runs: int) -> tuple[float, float]:
        flow, raw = paired_runs(workflow_file, "responses", url, f"rounds={rounds} size={size}", runs, call_tool,
                                "done", tmp, clock=time.process_time, max_turns=rounds + 1, warm=min(3, runs))
        return statistics.median(flow), statistics.median(raw)

    rows = []
    with server_process("rounds") as url:
        per_round = {}
        for rounds, runs in ((10, 30), (100, 5), (300 if quick else 1000, 1)):
            flow, raw = cpu(url, rounds, 1000, runs)
            per_round[rounds] = (flow / rounds, raw / rounds)
            show_progress(f"5 rounds={rounds}: flowrun {flow / rounds * 1000:.2f} ms CPU/round, "
                          f"raw {raw / rounds * 1000:.2f}")
        lo, hi = min(per_round), max(per_round)
        growth = per_round[hi][0] / per_round[lo][0]
        detail = ", ".join(f"{r} rounds {v[0] * 1000:.2f} ms" for r, v in per_round.items())
        raw_detail = ", ".join(f"{v[1] * 1000:.2f}" for v in per_round.values())
        rows.append(Row("5a", f"cost per tool round, {hi} vs {lo} rounds", f"{growth:.2f}x", "<= 1.5x",
                        growth <= 1.5, f"flowrun client CPU per round: {detail} (raw loop: {raw_detail} ms)"))
        per_size = {}
        for size in (1_000, 100_000, 1_000_000):
            per_size[size] = cpu(url, 1, size, 10 if quick else 40)
            show_progress(f"5 size={size}: flowrun {per_size[size][0] * 1000:.2f} ms CPU/run, "
                          f"raw {per_size[size][1] * 1000:.2f}")
        # cost per output MB from 100 KB to 1 MB against the same from 1 KB to 100 KB: about 1x
        # (or less) when the cost is linear in the output size, about 11x if it were quadratic
        per_mb_low = (per_size[100_000][0] - per_size[1_000][0]) / 0.099
        per_mb_top = (per_size[1_000_000][0] - per_size[100_000][0]) / 0.9
        growth = per_mb_top / per_mb_low if per_mb_low > 0 else 0.0
        detail = ", ".join(f"{_size(s)} {v[0] * 1000:.1f} ms" for s, v in per_size.items())
        raw_detail = ", ".join(f"{v[1] * 1000:.1f}" for v in per_size.values())
        rows.append(Row("5b", "cost per output MB, 0.1-1 MB vs 1-100 KB", f"{growth:.2f}x", "<= 1.5x",
                        growth <= 1.5, f"flowrun client CPU per run: {detail}; {per_mb_low * 1000:.1f} then "
                        f"{per_mb_top * 1000:.1f} ms per MB of output (raw loop: {raw_detail} ms; flowrun sends "
                        "at most 100,000 characters of a tool's output)"))
    return rows


def _size(n: int) -> str:
    return f"{n // 1_000_000} MB" if n >= 1_000_000 else f"{n // 1000} KB"


# --- main ---------------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    head = ("#", "figure", "measured", "target", "mark")
    body = [(r.key, r.figure, r.measured, r.target, "PASS" if r.ok else "SHORT") for r in rows]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]

    def fmt(cells) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    lines = [fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, body)]
    lines.append("")
    lines += [f"{r.key}: {r.note}" for r in rows if r.note]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", help="comma-separated figure numbers, e.g. 1,4")
    p.add_argument("--quick", action="store_true", help="fewer runs (a smoke test of the bench itself)")
    args = p.parse_args()
    only = {int(x) for x in args.only.split(",")} if args.only else {1, 2, 3, 4, 5}
    started = time.perf_counter()
    rows: list[Row] = []
    import platform

    print(f"flowrun bench: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"openai {rawloop.openai.__version__}, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-") as name:
        tmp = Path(name)
        steps = {
            1: lambda: figure_1(40 if args.quick else 200, tmp) + figure_1w(5 if args.quick else 21, tmp),
            2: lambda: figure_2(3 if args.quick else 7),
            3: lambda: figure_3(tmp),
            4: lambda: figure_4(tmp, 200 if args.quick else 1000, 100, 0.1, 1 if args.quick else 3),
            5: lambda: figure_5(tmp, args.quick),
        }
        for number in sorted(only):
            show_progress(f"figure {number}...")
            rows += steps[number]()
    print(table(rows))
    print(f"\n{sum(r.ok for r in rows)}/{len(rows)} on target; bench took {time.perf_counter() - started:.0f} s")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
