"""`flowrun view` in a real browser: Debian's chromium, headless, driven by Playwright for Python.

Over a generated log of thousands of runs: the list and its filters, paging, one run's timeline,
hostile text staying text, a comparison with the workflow diff, a run updating live. Screenshots
go to a temporary folder, or to $FLOWRUN_VIEW_SHOTS (how docs/view-*.png were made).
Skipped, with the reason printed (-rs), where chromium or playwright is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from support.generated_log import generate, write_workflow_repo
from runner.events import (ApprovalDecided, ApprovalRequested, RunCompleted, RunPaused, RunResumed, RunStarted,
                           TextDelta, ToolCallCompleted, ToolCallRequested, TurnCompleted, TurnStarted)
from runner.runlog.log import RunLog
from runner.view.server import serve

CHROMIUM = os.environ.get("FLOWRUN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("no chromium: install it with `apt-get install -y chromium` (see the README's set-up)",
                allow_module_level=True)
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    pytest.skip("playwright is not installed: pip install -e '.[test]'", allow_module_level=True)

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
RUNS = 3000
WAIT_MS = 30_000  # how long a condition may take to appear on a loaded machine (not a speed check)
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    write_workflow_repo(root / "repo")
    log = root / "runs.sqlite3"
    ids = generate(log, RUNS, workflow_root=root / "repo", hostile_every=250)
    server = serve(log)
    yield {"server": server, "ids": ids, "log": log, "root": root}
    server.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith("http://127.0.0.1:") else outside.append(r.url))
    yield page
    context.close()
    assert problems == [], problems
    assert outside == [], f"the page asked for something outside the view: {outside}"


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("FLOWRUN_VIEW_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sql(world, query: str, *params):
    conn = sqlite3.connect(world["log"])
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def test_the_list_filters_and_pages(world, page, shots):
    page.goto(world["server"].url)
    rows = page.locator("table.runs tbody tr")
    expect(rows).to_have_count(50)
    expect(page.locator(".count")).to_have_text(f"{RUNS:,} runs")
    assert rows.first.get_attribute("data-run") == world["ids"][0]
    page.screenshot(path=str(shots / "view-list.png"))

    page.select_option("select[name=status]", "failed")
    expect(page.locator(".count")).not_to_have_text(f"{RUNS:,} runs")
    expect(page.locator("table.runs tbody tr .badge").first).to_have_text("failed")
    badges = page.locator("table.runs tbody tr .badge").all_inner_texts()
    assert badges and set(badges) == {"failed"}
    failed = sql(world, "SELECT COUNT(*) FROM runs WHERE status = 'failed'")[0][0]
    expect(page.locator(".count")).to_have_text(f"{failed:,} runs")

    page.fill("input[name=q]", "(request 2999)")
    expect(page.locator(".empty")).to_have_text("No run matches these filters.")  # 2999 did not fail
    page.select_option("select[name=status]", "")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("(request 2999)")

    page.click("text=Clear filters")
    expect(rows).to_have_count(50)
    page.click("#older")
    expect(rows.first).to_have_attribute("data-run", world["ids"][50])
    page.click("#older")
    expect(rows.first).to_have_attribute("data-run", world["ids"][100])
    page.click("#newer")
    expect(rows.first).to_have_attribute("data-run", world["ids"][50])


def test_one_run_timeline_parallel_calls_and_errors(world, page, shots):
    # A run whose first turn asked for several tools at once and one of them failed.
    run_id = sql(world, "SELECT run_id FROM tool_calls GROUP BY run_id"
                        " HAVING SUM(is_error) >= 1 AND COUNT(*) >= 3 ORDER BY run_id LIMIT 1")[0][0]
    calls = sql(world, "SELECT name, is_error FROM tool_calls WHERE run_id = ? ORDER BY seq", run_id)
    page.goto(world["server"].url + "#/run/" + run_id)
    lanes = page.locator(".timeline .lane")
    turns = sql(world, "SELECT COUNT(*) FROM events WHERE run_id = ? AND type = 'turn.started'", run_id)[0][0]
    expect(lanes).to_have_count(1 + turns + len(calls))
    expect(page.locator(".timeline .bar.tool")).to_have_count(len(calls))
    expect(page.locator(".timeline .bar.err")).to_have_count(sum(e for _, e in calls))
    assert page.locator(".timeline .par").count() >= 2  # calls that ran side by side say so
    expect(page.locator(".call.err")).to_have_count(sum(e for _, e in calls))
    expect(page.locator(".call.err pre").nth(1)).to_contain_text("timed out")

    # Bars of parallel calls overlap on the time axis.
    boxes = [b.bounding_box() for b in page.locator(".timeline .bar.tool").all()]
    assert any(a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] for a, b in zip(boxes, boxes[1:]))

    error_lane = page.locator(".lane", has=page.locator(".bar.err")).first
    error_lane.click()
    key = error_lane.get_attribute("data-key")
    expect(page.locator(f".call.active#{key}")).to_have_count(1)
    expect(page.locator("#workflow pre.src")).to_contain_text("version: 1")
    expect(page.locator("#workflow")).to_contain_text("git commit")  # an old run: found in the history
    page.screenshot(path=str(shots / "view-run.png"), full_page=True)


def test_hostile_text_stays_text(world, page):
    run_id = sql(world, "SELECT run_id FROM runs WHERE input LIKE '%onerror%' ORDER BY started_at DESC LIMIT 1")[0][0]
    page.goto(world["server"].url + "#/?q=onerror")
    expect(page.locator("table.runs tbody tr").first).to_contain_text("<img src=x onerror=")
    page.goto(world["server"].url + "#/run/" + run_id)
    expect(page.locator("#answer")).to_contain_text("<script>window.__pwned=2</script>")
    expect(page.locator("#input")).to_contain_text('<img src=x onerror="window.__pwned=1">')
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main script").count() == 0


def test_compare_two_runs_with_the_workflow_diff(world, page, shots):
    weather = [r[0] for r in sql(world, "SELECT run_id FROM runs WHERE workflow_path LIKE '%/weather.yaml'"
                                        " ORDER BY started_at DESC")]
    newest, oldest = weather[0], weather[-1]
    page.goto(world["server"].url + "#/?workflow=" + str(world["root"] / "repo/workflows/weather.yaml"))
    rows = page.locator("table.runs tbody tr")
    expect(rows.first).to_have_attribute("data-run", newest)
    rows.first.locator("input[type=checkbox]").check()
    expect(page.locator("#compare")).to_be_disabled()
    # The oldest run of the file is on the last page.
    while page.locator("#older").is_enabled():
        first = rows.first.get_attribute("data-run")
        page.click("#older")
        expect(rows.first).not_to_have_attribute("data-run", first)
    rows.last.locator("input[type=checkbox]").check()
    expect(page.locator("#compare")).to_be_enabled()
    page.click("#compare")
    expect(page.locator("#workflow-diff .diff .del").first).to_contain_text("(v1)")
    expect(page.locator("#workflow-diff .diff .add").first).to_contain_text("(v3)")
    expect(page.locator(".cmp .colhead a")).to_have_text([oldest, newest])  # the older run on the left
    assert page.locator(".cmp .differs").count() > 0
    page.screenshot(path=str(shots / "view-compare.png"), full_page=True)


def test_a_run_in_progress_updates_live(tmp_path, browser):
    log_path = tmp_path / "live.sqlite3"
    log = RunLog.open(log_path)
    run_id = "run_live_0001"
    log.start_run(run_id=run_id, workflow_path="w.yaml", workflow_sha256="0" * 64, api="responses",
                  model="gpt-test", input="How warm is it?", offline=False)
    log.record(run_id, RunStarted(run_id, "w.yaml", "responses", "gpt-test", "How warm is it?"))
    log.record(run_id, TurnStarted(1))
    log.record(run_id, TurnCompleted(1, "tool_calls", {"input_tokens": 5, "output_tokens": 2}))
    log.record(run_id, ToolCallRequested("c1", "get_temperature", '{"city": "Oslo"}'))
    server = serve(log_path)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(server.url + "#/run/" + run_id)
        expect(page.locator("h1 .badge")).to_have_text("running")
        expect(page.locator(".bar.tool.open")).to_have_count(1)
        expect(page.locator(".call")).to_contain_text("not finished")

        log.record(run_id, ToolCallCompleted("c1", "get_temperature", '{"temp": 4}', False, 40.0))
        expect(page.locator(".bar.tool.open")).to_have_count(0)
        expect(page.locator(".call pre").nth(1)).to_contain_text('"temp": 4')
        log.record(run_id, TurnStarted(2))
        for piece in ("It is ", "4 °C in Oslo."):
            log.record(run_id, TextDelta(piece))
        expect(page.locator("#answer")).to_have_text("It is 4 °C in Oslo.")
        log.record(run_id, TurnCompleted(2, "completed", {"input_tokens": 9, "output_tokens": 6}))
        log.record(run_id, RunCompleted(run_id, "completed", "It is 4 °C in Oslo.", 2, 1, None, 80.0))
        log.finish_run(run_id, status="completed", final_text="It is 4 °C in Oslo.", usage=None, exit_code=0,
                       error=None)
        expect(page.locator("h1 .badge")).to_have_text("completed")
        expect(page.locator(".timeline .lane")).to_have_count(4)
    finally:
        context.close()
        server.stop()
        log.close()


def test_a_run_s_approvals_are_shown_with_who_decided(tmp_path, page):
    log_path = tmp_path / "approvals.sqlite3"
    log = RunLog.open(log_path)
    run_id = "run_approvals_01"
    log.start_run(run_id=run_id, workflow_path="office.yaml", workflow_sha256="0" * 64, api="chat",
                  model="gpt-test", input="Mail Eve and Bob", offline=False)
    for event in (
        RunStarted(run_id, "office.yaml", "chat", "gpt-test", "Mail Eve and Bob"),
        TurnStarted(1),
        TurnCompleted(1, "tool_calls", None),
        ToolCallRequested("c1", "send_email", '{"to": "bob@example.com"}'),
        ToolCallRequested("c2", "send_email", '{"to": "eve@evil.test"}'),
        ApprovalRequested("c1", "send_email", '{"to": "bob@example.com"}', "POST https://mail.example.com/send",
                          "the file says approval: ask"),
        ApprovalDecided("c1", "send_email", "approved", "prompt", ""),
        ApprovalDecided("c2", "send_email", "denied", "rule", "the workflow file refuses this call"),
        ToolCallCompleted("c1", "send_email", '{"sent": true}', False, 30.0),
        ToolCallCompleted("c2", "send_email", "error: tool 'send_email' was not run", True, 0.0),
        # the outputs could not be sent: a pause that waits for no decision, then the resume that sent them
        RunPaused(run_id, [], [{"call_id": "c1", "name": "send_email", "arguments": "{}"}],
                  "flowrun resume run_approvals_01", {}),
        RunResumed(run_id, [], [], False, "0" * 64),
        TurnStarted(2),
        TextDelta("Bob is mailed; Eve is not."),
        TurnCompleted(2, "completed", None),
        RunCompleted(run_id, "completed", "Bob is mailed; Eve is not.", 2, 2, None, 90.0),
    ):
        log.record(run_id, event)
    log.finish_run(run_id, status="completed", final_text="Bob is mailed; Eve is not.", usage=None, exit_code=0,
                   error=None)
    server = serve(log_path)
    try:
        page.goto(server.url + "#/run/" + run_id)
        panel = page.locator("#approvals")
        expect(panel).to_contain_text("asked")
        expect(panel).to_contain_text("POST https://mail.example.com/send")
        expect(panel).to_contain_text("denied")
        expect(panel).to_contain_text("by rule")
        expect(panel).to_contain_text("paused outputs saved, nothing waits for a decision: flowrun resume run_approvals_01")
        expect(page.locator("#call-c1 .badge.approval-approved")).to_have_text("approved by prompt")
        expect(page.locator("#call-c2 .badge.approval-denied")).to_have_text("denied by rule")
    finally:
        server.stop()
        log.close()


def test_a_batch_page_failures_first_and_each_run_s_timeline(tmp_path, page, shots):
    from support.batch import WORKFLOW, echo_script
    from support.cli import flowrun_process  # a process: Playwright's loop already runs in this thread
    from runner.scripted import ScriptedServer

    workflow = tmp_path / "echo.yaml"
    workflow.write_text(WORKFLOW)
    lines = [{"city": f"City {i}"} for i in range(30)]
    lines[4], lines[17] = {"message": "explode now"}, {"country": "Peru"}
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps(x) + "\n" for x in lines))
    log_path = tmp_path / "batch.sqlite3"
    with ScriptedServer(echo_script) as scripted:
        done = flowrun_process("batch", "echo.yaml", "--inputs", "in.jsonl", "--out", "out.jsonl",
                               "--base-url", scripted.base_url, "--log-db", str(log_path), cwd=tmp_path)
    assert done.code == 1, done.err
    server = serve(log_path)
    try:
        page.goto(server.url)
        tags = page.locator("table.runs tbody tr .batch-tag")  # each run of it says so in the list
        expect(tags).to_have_count(30)
        expect(tags.first).to_contain_text("batch · input ")
        page.screenshot(path=str(shots / "view-runs-of-a-batch.png"))
        tags.first.click()  # and links to it
        expect(page.locator("table.batch-runs tbody tr")).to_have_count(30)
        page.goto(server.url)
        page.click("#to-batches")  # reachable from the runs list
        batches = page.locator("table.batches tbody tr")
        expect(batches).to_have_count(1)
        expect(batches.first).to_contain_text("30 / 30")
        batches.first.click()
        expect(page.locator("h1 .badge")).to_have_text("failed")
        expect(page.locator(".cards")).to_contain_text("30 / 30")
        rows = page.locator("table.batch-runs tbody tr")
        expect(rows).to_have_count(30)
        # Failures first, in input order; then the completed runs.
        expect(rows.nth(0).locator(".badge")).to_have_text("error")
        expect(rows.nth(0).locator("td").first).to_have_text("4")
        expect(rows.nth(1).locator(".badge")).to_have_text("invalid_input")
        expect(rows.nth(2).locator(".badge")).to_have_text("completed")
        page.screenshot(path=str(shots / "view-batch.png"), full_page=True)

        rows.nth(2).click()  # a run of the batch opens as any run, with its timeline
        expect(page.locator(".timeline .bar.tool")).to_have_count(1)
        expect(page.locator("#answer")).to_contain_text("21C in City 0")
        page.click("#run-batch")
        expect(page.locator("table.batch-runs tbody tr")).to_have_count(30)
    finally:
        server.stop()
