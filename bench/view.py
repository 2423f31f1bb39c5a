"""How fast `flowrun view` answers over a large run log (100,000 runs by default).

    python bench/view.py                 generates the log once (minutes), keeps it in the temp dir
    python bench/view.py --runs 20000    a smaller log while iterating

Each figure is one request to the real server over HTTP on 127.0.0.1 (the median of --repeat),
measured on the log as flowrun writes it (schema 2, with the filter indexes) and, side by side,
on a copy without those indexes (schema 1, what `flowrun logs` had before), as the baseline.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.generated_log import generate  # noqa: E402
from runner.view.data import RunLogView  # noqa: E402
from runner.view.server import ViewServer, serve  # noqa: E402

INDEXES = ("runs_workflow", "runs_status", "runs_api", "runs_model")
TARGET_MS = 1000  # the issue: the list under a second


def log_for(runs: int) -> Path:
    path = Path(tempfile.gettempdir()) / f"flowrun-bench-view-{runs}.sqlite3"
    if path.exists():
        try:
            with sqlite3.connect(path) as conn:
                if conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == runs:
                    return path
        except sqlite3.Error:
            pass
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    print(f"generating {runs:,} runs into {path} …", file=sys.stderr, flush=True)
    generate(path, runs)
    print(f"  {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def without_indexes(path: Path) -> Path:
    """The same log as schema 1 left it: no filter indexes. (Served read-only, never migrated.)"""
    copy = path.with_name(path.stem + "-noindex.sqlite3")
    with sqlite3.connect(path) as src:
        src.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(path, copy)
    with sqlite3.connect(copy) as conn:
        for name in INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
    return copy


class Client:
    def __init__(self, server):
        self.port = server.server_address[1]
        self.token = server.token

    def ms(self, path: str, repeat: int) -> tuple[float, dict]:
        times, body = [], None
        for _ in range(repeat):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            started = time.perf_counter()
            conn.request("GET", f"/{self.token}/api/{path}")
            response = conn.getresponse()
            body = json.loads(response.read())
            times.append((time.perf_counter() - started) * 1000)
            conn.close()
            if response.status != 200:
                raise SystemExit(f"{path}: {response.status} {body}")
        return statistics.median(times), body


def serve_unmigrated(path: Path) -> ViewServer:
    """Serve a schema-1 copy as it is: the usual open would add the indexes back."""
    server = ViewServer(RunLogView(path, open_check=False))
    server.start()
    return server


def record_runs(path: Path, runs: int) -> float:
    """Seconds to record ``runs`` weather-like runs through the real recorder (RunLog)."""
    from runner.events import (RunCompleted, RunStarted, TextDelta, ToolCallCompleted, ToolCallRequested,
                               TurnCompleted, TurnStarted)
    from runner.runlog.log import RunLog

    usage = {"input_tokens": 300, "output_tokens": 40, "total_tokens": 340}
    started = time.perf_counter()
    with RunLog.open(path) as log:
        for n in range(runs):
            run_id = f"bench_{n:06d}"
            log.start_run(run_id=run_id, workflow_path="workflows/weather.yaml", workflow_sha256="0" * 64,
                          api="responses", model="gpt-4o-mini", input=f"weather? {n}", offline=False)
            for event in (RunStarted(run_id, "workflows/weather.yaml", "responses", "gpt-4o-mini", "weather?"),
                          TurnStarted(1), TurnCompleted(1, "tool_calls", usage),
                          ToolCallRequested("c1", "get_current_temperature", '{"location": "Paris"}'),
                          ToolCallRequested("c2", "get_rain_probability", '{"location": "Paris"}'),
                          ToolCallCompleted("c1", "get_current_temperature", "57", False, 3.0),
                          ToolCallCompleted("c2", "get_rain_probability", "0.06", False, 2.0),
                          TurnStarted(2), TextDelta("It is 57°F"), TurnCompleted(2, "completed", usage),
                          RunCompleted(run_id, "completed", "It is 57°F", 2, 2, usage, 40.0)):
                log.record(run_id, event)
            log.finish_run(run_id, status="completed", final_text="It is 57°F", usage=usage, exit_code=0,
                           error=None)
    return time.perf_counter() - started


def recording_figure(runs: int, rounds: int = 3) -> None:
    """What the filter indexes cost the recorder: the same runs into a log with and without them."""
    with tempfile.TemporaryDirectory() as tmp:
        with_idx, without = [], []
        for r in range(rounds):  # alternating, so load from elsewhere hits both alike
            for side in ((with_idx, without) if r % 2 == 0 else (without, with_idx)):
                path = Path(tmp) / f"rec-{r}-{id(side)}.sqlite3"
                if side is without:
                    from runner.runlog.db import connect

                    conn = connect(path, create=True)  # schema 2, then without its indexes
                    for name in INDEXES:
                        conn.execute(f"DROP INDEX {name}")
                    conn.close()
                side.append(record_runs(path, runs) / runs * 1000)
    w, wo = statistics.median(with_idx), statistics.median(without)
    print(f"| recording one run (11 events) through RunLog | {w:.2f} ms | {wo:.2f} ms | {w / wo:.2f}x | |")


def browser_figures(server: ViewServer, run_id: str, repeat: int) -> None:
    """The page in headless chromium: from navigation to the rows (or the timeline) on screen."""
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if not chromium:
        print("(browser figures skipped: needs chromium and playwright)")
        return
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=args)
        page = browser.new_page()

        def shown(url: str, selector: str) -> float:
            """Milliseconds from the start of navigation to the selector on screen (the page's clock)."""
            page.goto("about:blank")
            page.goto(url)
            page.wait_for_selector(selector, timeout=60_000)
            return page.evaluate("performance.now()")

        # The baseline: the page's own shell (its header, before any data is asked for).
        base = statistics.median(shown(server.url + "#/", "header .brand") for _ in range(repeat))
        for label, hash_, selector in (("page: runs list shown", "#/", "table.runs tbody tr"),
                                       ("page: filtered list (status failed)", "#/?status=failed", "table.runs tbody tr"),
                                       ("page: one run's timeline shown", f"#/run/{run_id}", ".timeline .lane")):
            ms = statistics.median(shown(server.url + hash_, selector) for _ in range(repeat))
            print(f"| {label} | {ms:.1f} ms | {base:.1f} ms (the bare page) | {ms / base:.2f}x |"
                  f" {'PASS' if ms < TARGET_MS else 'SLOW'} |", flush=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    log = log_for(args.runs)
    server = serve(log)  # opening migrates: the indexes exist from here
    baseline_log = without_indexes(log)
    baseline = serve_unmigrated(baseline_log)
    fast, slow = Client(server), Client(baseline)

    _, first = fast.ms("runs?limit=50", 1)
    deep = first["next"]
    for _ in range(20):  # the 21st page: keyset paging costs what the first does
        _, page = fast.ms(f"runs?limit=50&before={deep}", 1)
        deep = page["next"]
    some_run = first["runs"][0]["run_id"]
    figures = [
        ("list, first page (50 runs)", "runs?limit=50"),
        ("list, 21st page", f"runs?limit=50&before={deep}"),
        ("list, status failed", "runs?limit=50&status=failed"),
        ("list, workflow weather", "runs?limit=50&workflow=weather"),
        ("list, model + status (rare)", "runs?limit=50&model=llama3.1:8b&status=cancelled"),
        ("list, since 1d", "runs?limit=50&since=1d"),
        ("list, search (a word no run has)", "runs?limit=50&q=zzzz"),
        ("list, search (one run)", f"runs?limit=50&q=(request%20{args.runs // 2})"),
        ("count, all", "count"),
        ("count, status failed", "count?status=failed"),
        ("filter choices (facets)", "facets"),
        ("one run with its events", f"run/{some_run}"),
    ]
    print(f"run log: {args.runs:,} runs, {log.stat().st_size / 1e6:.0f} MB; median of {args.repeat} requests")
    print(f"| figure | with indexes | without (schema 1) | ratio | under {TARGET_MS} ms |")
    print("|---|---|---|---|---|")
    for label, path in figures:
        with_ms, _ = fast.ms(path, args.repeat)
        base_ms, _ = slow.ms(path, args.repeat)
        mark = "PASS" if with_ms < TARGET_MS else "SLOW"
        print(f"| {label} | {with_ms:.1f} ms | {base_ms:.1f} ms | {with_ms / base_ms:.2f}x | {mark} |", flush=True)
    recording_figure(300)
    browser_figures(server, some_run, args.repeat)
    server.stop()
    baseline.stop()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{baseline_log}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
