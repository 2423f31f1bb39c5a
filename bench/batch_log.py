"""What the run log costs a batch: the same ``flowrun batch`` with the log on, with only failed runs
kept, and with ``--no-log``, side by side in this one sitting.

    .venv/bin/python bench/batch_log.py                 # 1,000 inputs, 5 rounds
    .venv/bin/python bench/batch_log.py --inputs 300 --rounds 1 --workers 2

Each side is a whole ``flowrun batch`` child process (start-up included) over the weather workflow
(2 turns, 2 tool calls, so 2 tool calls and ~13 events per run) against the scripted server of
bench/serve.py in its own process, with no latency per turn: the batch is CPU-bound, so what the
log costs shows in the wall time as well as in the CPU time (the child's and its workers', from
wait4). The sides alternate in each round (load from elsewhere hits them alike); medians.
Every input completes, so "failed only" writes the batch's row and no run: the floor of the switch.
Then, less sensitive to other load: ``RunLog.write_run`` alone, in this process, over one of the
logged runs, as CPU per run against the batch's CPU per input.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import ROOT, WEATHER, flowrun_cmd, server_process, write_inputs  # noqa: E402  (re-execs into the venv)

sys.path.insert(0, str(ROOT))

SIDES = {"no log": ("--no-log",), "log every run": (), "log failed only": ("--log-failed-only",)}


def one_batch(tmp: Path, inputs: Path, url: str, concurrency: int, workers: int, flags: tuple[str, ...]) -> dict:
    stamp = time.monotonic_ns()
    out, db = tmp / f"out-{stamp}.jsonl", tmp / f"log-{stamp}.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["FLOWRUN_LOG_DB"] = str(db)
    err = open(tmp / "stderr.txt", "w+")
    t = time.perf_counter()
    proc = subprocess.Popen([*flowrun_cmd(), "batch", str(WEATHER), "--inputs", str(inputs), "--out", str(out),
                             "--concurrency", str(concurrency), "--workers", str(workers), "--base-url", url,
                             *flags], cwd=tmp, stdout=subprocess.DEVNULL, stderr=err, env=env)
    _, status, usage = os.wait4(proc.pid, 0)  # includes the workers it reaped
    wall = time.perf_counter() - t
    err.seek(0)
    said = err.read().strip().splitlines()
    n = sum(1 for _ in open(inputs))
    lines = len(out.read_text().splitlines()) if out.exists() else 0
    size = sum(p.stat().st_size for p in tmp.glob(f"log-{stamp}.sqlite3*"))
    if os.waitstatus_to_exitcode(status) != 0 or lines != n:
        raise RuntimeError(f"the batch failed: {said[-1] if said else '(nothing said)'}")
    return {"wall": wall, "cpu_ms": (usage.ru_utime + usage.ru_stime) / n * 1000, "log_kb": size / 1024}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--inputs", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    print(f"flowrun bench (batch log): Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at start; {args.inputs} inputs, concurrency {args.concurrency}, "
          f"--workers {args.workers}, {args.rounds} rounds", flush=True)
    got: dict[str, list[dict]] = {k: [] for k in SIDES}
    with tempfile.TemporaryDirectory(prefix="flowrun-bench-log-") as name, server_process("weather") as url:
        tmp = Path(name)
        inputs = write_inputs(tmp / "inputs.jsonl",
                              [f'{{"message": "Weather in city {i}?", "id": {i}}}' for i in range(args.inputs)])
        one_batch(tmp, inputs, url, args.concurrency, args.workers, ("--no-log",))  # warm-up: caches, server
        for r in range(args.rounds):
            order = list(SIDES) if r % 2 == 0 else list(reversed(SIDES))
            for side in order:
                got[side].append(one_batch(tmp, inputs, url, args.concurrency, args.workers, SIDES[side]))
                last = got[side][-1]
                sys.stderr.write(f"  round {r + 1} {side}: {last['wall']:.2f} s, {last['cpu_ms']:.2f} ms CPU/input\n")
        write_ms = write_cost(tmp)
    base_wall = statistics.median(x["wall"] for x in got["no log"])
    base_cpu = statistics.median(x["cpu_ms"] for x in got["no log"])
    print(f"| side | wall (median) | vs --no-log | CPU per input (median) | vs --no-log | log file |")
    print("|---|---|---|---|---|---|")
    for side, runs in got.items():
        wall = statistics.median(x["wall"] for x in runs)
        cpu = statistics.median(x["cpu_ms"] for x in runs)
        kb = statistics.median(x["log_kb"] for x in runs)
        print(f"| {side} | {wall:.2f} s | {wall / base_wall:.3f}x | {cpu:.2f} ms | {cpu / base_cpu:.3f}x | "
              f"{kb / args.inputs:.2f} KB per input |")
    print(f"\nThe log's own share, in this process: one run of that batch (its row, events and tool calls, one "
          f"transaction) written {WRITES} times into a fresh log: {write_ms:.3f} ms CPU per run, "
          f"{write_ms / base_cpu * 100:.1f}% of the --no-log batch's CPU per input.")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


WRITES = 2000


def write_cost(tmp: Path) -> float:
    """CPU per run of ``RunLog.write_run`` alone, with the events of a run the batches logged."""
    import json
    import sqlite3

    from runner.runlog.log import RunLog

    source = max(tmp.glob("log-*.sqlite3"), key=lambda p: p.stat().st_size)
    conn = sqlite3.connect(source)
    run_id = conn.execute("SELECT run_id FROM runs WHERE status = 'completed' LIMIT 1").fetchone()[0]
    events = [json.loads(d) for (d,) in conn.execute("SELECT data FROM events WHERE run_id = ? ORDER BY seq",
                                                     (run_id,))]
    conn.close()
    log = RunLog.open(tmp / "write-cost.sqlite3")
    log.write_run("run_warm", events, batch_id="batch_bench", batch_index=0)
    started = time.process_time()
    for i in range(WRITES):
        log.write_run(f"run_{i}", events, batch_id="batch_bench", batch_index=i)
    took = time.process_time() - started
    log.close()
    return took / WRITES * 1000


if __name__ == "__main__":
    sys.exit(main())
