"""`flowrun view`'s server: the token, the Host check, read-only answers, the JSON it serves."""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.generated_log import VERSIONS, generate, workflow_text, write_workflow_repo
from runner.view.server import serve
from runner.view.workflow_source import NOT_KEPT, find_source

RUNS = 300


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("view")
    write_workflow_repo(root / "repo")
    log = root / "runs.sqlite3"
    ids = generate(log, RUNS, workflow_root=root / "repo", hostile_every=50)
    server = serve(log)
    yield server, ids, log, root
    server.stop()


def get(server, path: str, *, host: str | None = None, method: str = "GET"):
    port = server.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Host": host} if host else {}
    conn.request(method, path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def api(server, path: str):
    response, body = get(server, f"/{server.token}/api/{path}")
    assert response.status == 200, body
    return json.loads(body)


def test_without_the_token_everything_is_403(setup):
    server = setup[0]
    wrong = server.token[:-1] + ("y" if server.token.endswith("x") else "x")  # one character off, never the token
    for path in ("/", "/index.html", "/app.js", "/api/runs", f"/{wrong}/", f"/x{server.token}/api/runs"):
        response, _ = get(server, path)
        assert response.status == 403, path


def test_with_the_token_the_page_and_its_files(setup):
    server = setup[0]
    response, body = get(server, f"/{server.token}/")
    assert response.status == 200 and b'<script src="app.js">' in body
    csp = response.getheader("Content-Security-Policy")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert response.getheader("Referrer-Policy") == "no-referrer"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    for name, ctype in (("app.js", "text/javascript"), ("app.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        response, body = get(server, f"/{server.token}/{name}")
        assert response.status == 200 and response.getheader("Content-Type").startswith(ctype) and body
    response, _ = get(server, f"/{server.token}")
    assert response.status == 301 and response.getheader("Location") == f"/{server.token}/"


def test_the_page_uses_no_network_and_no_html_injection(setup):
    server = setup[0]
    _, script = get(server, f"/{server.token}/app.js")
    _, page = get(server, f"/{server.token}/")
    for text in (script, page):
        assert b"http://" not in text and b"https://" not in text  # no CDN, nothing fetched from outside
    assert b"innerHTML" not in script and b"insertAdjacentHTML" not in script and b"document.write" not in script


def test_another_host_name_is_refused(setup):
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host."""
    server = setup[0]
    response, _ = get(server, f"/{server.token}/api/runs", host=f"evil.example:{server.server_address[1]}")
    assert response.status == 403
    response, _ = get(server, f"/{server.token}/api/runs", host=f"localhost:{server.server_address[1]}")
    assert response.status == 200


def test_read_only(setup):
    server, _, log, _ = setup
    before = hashlib.sha256(log.read_bytes()).hexdigest()
    for method in ("POST", "PUT", "DELETE"):
        response, _ = get(server, f"/{server.token}/api/runs", method=method)
        assert response.status == 405
    api(server, "runs?status=failed")
    api(server, "count")
    assert hashlib.sha256(log.read_bytes()).hexdigest() == before


def test_runs_pages_and_filters(setup):
    server, ids, _, _ = setup
    first = api(server, "runs?limit=25")
    assert [r["run_id"] for r in first["runs"]] == ids[:25]
    second = api(server, f"runs?limit=25&before={first['next']}")
    assert [r["run_id"] for r in second["runs"]] == ids[25:50]
    failed = api(server, "runs?status=failed&limit=200")["runs"]
    assert failed and all(r["status"] == "failed" for r in failed)
    assert api(server, "count?status=failed")["count"] == len(failed)
    assert api(server, "count")["count"] == RUNS
    assert set(api(server, "facets")) == {"workflow", "api", "model", "status"}


def test_bad_filters_are_400(setup):
    server = setup[0]
    response, body = get(server, f"/{server.token}/api/runs?since=yesterday")
    assert response.status == 400 and "cannot read 'yesterday'" in json.loads(body)["error"]
    response, _ = get(server, f"/{server.token}/api/run/no-such-run")
    assert response.status == 404


def test_one_run_and_only_newer_events(setup):
    server, ids, _, _ = setup
    run = api(server, f"run/{ids[3]}")
    assert run["events"][0]["type"] == "run.started" and run["events"][-1]["type"].startswith("run.")
    seqs = [e["seq"] for e in run["events"]]
    assert seqs == sorted(seqs)
    later = api(server, f"run/{ids[3]}?after={seqs[-3]}")
    assert [e["seq"] for e in later["events"]] == seqs[-2:]


def test_hostile_text_is_served_as_json_data(setup):
    server, ids, _, _ = setup
    hostile = api(server, "runs?q=onerror&limit=200")["runs"]
    assert hostile
    response, body = get(server, f"/{server.token}/api/run/{hostile[0]['run_id']}")
    assert response.getheader("Content-Type").startswith("application/json")
    assert "<script>" in json.loads(body)["input"]  # stored as it came; the page escapes it


def test_workflow_content_found_by_hash(setup):
    server, ids, _, root = setup
    newest, oldest = ids[0], ids[-1]
    now = api(server, f"run/{newest}/workflow")
    assert "unchanged since the run" in now["where"] and now["content"].startswith("version: 1")
    old = api(server, f"run/{oldest}/workflow")
    assert old["where"].startswith("git commit ")
    assert hashlib.sha256(old["content"].encode()).hexdigest() == old["sha256"]
    assert "(v1)" in old["content"] and f"(v{VERSIONS})" in now["content"]


def test_workflow_not_found_says_the_log_keeps_only_the_hash(tmp_path):
    missing = find_source(str(tmp_path / "gone.yaml"), "ab" * 32)
    assert missing.content is None and missing.where == NOT_KEPT
    edited = tmp_path / "w.yaml"
    edited.write_text(workflow_text("workflows/weather.yaml", 2))
    stale = find_source(str(edited), hashlib.sha256(b"another version").hexdigest())
    assert stale.content is None  # never the edited file in place of the one that ran


def test_compare_diffs_the_workflow_files(setup):
    server, ids, _, _ = setup
    page = api(server, "runs?limit=200&workflow=weather")
    runs = page["runs"]
    assert page["next"] == ""  # all of them: the oldest ran version 1 of the file, the newest the last
    newest, oldest = runs[0]["run_id"], runs[-1]["run_id"]
    data = api(server, f"compare?a={oldest}&b={newest}")
    assert data["same_workflow"]
    kinds = {line["kind"] for line in data["diff"]}
    assert {"del", "add", "hunk"} <= kinds
    assert any(line["kind"] == "del" and "(v1)" in line["text"] for line in data["diff"])
    assert any(line["kind"] == "add" and f"(v{VERSIONS})" in line["text"] for line in data["diff"])
    same = api(server, f"compare?a={runs[0]['run_id']}&b={runs[1]['run_id']}")
    assert same["diff"] == []


def test_the_view_is_not_imported_by_a_run():
    code = ("import sys, runner.run.session, runner.run.loop, runner.commands.run; "
            "print(sorted(m for m in sys.modules if m.startswith(('runner.view', 'runner.commands.view'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("command", [["view", "--no-open"], ["logs", "--web", "--no-open", "--status", "failed"],
                                     ["logs", "--web", "--no-open", "--batch", "batch_1f"]])
def test_the_command_prints_the_address_and_serves_until_ctrl_c(setup, command):
    import signal
    import urllib.request

    log = setup[2]
    proc = subprocess.Popen([sys.executable, "-m", "runner", *command, "--log-db", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        line = proc.stdout.readline()
        assert line.startswith("flowrun view: http://127.0.0.1:"), line + proc.stderr.read()
        url, _, fragment = line.split(": ", 1)[1].strip().partition("#")
        opens = {"--status": "/?status=failed", "--batch": "/batch/batch_1f"}  # logs --web: filtered, or a batch
        assert fragment == next((v for k, v in opens.items() if k in command), "")
        token = url.rstrip("/").rsplit("/", 1)[1]
        assert len(token) >= 32
        with urllib.request.urlopen(url + "api/count", timeout=30) as response:
            assert json.loads(response.read())["count"] == RUNS
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_the_command_without_a_log_says_so(tmp_path):
    result = subprocess.run([sys.executable, "-m", "runner", "view", "--no-open", "--log-db", str(tmp_path / "none.db")],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert result.returncode != 0 and "no run log at" in result.stderr and "Traceback" not in result.stderr
