"""How the ``flowrun`` process ends: without the interpreter's last garbage collections (they walk
every object the SDK built, after the answer was shown), and with nothing of a normal exit lost.
Real processes: what happens at interpreter exit cannot be seen in-process."""

from __future__ import annotations

import subprocess
import sys

from support.cli import flowrun_process
from support.paths import REPO

from runner.runlog.log import RunLog


def test_the_heap_is_frozen_before_the_exit_collections():
    # An exit hook registered before flowrun's own runs after them, just before the interpreter's
    # final collections: by then flowrun has frozen the heap, so those collections skip it.
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: sys.stderr.write('frozen=%d\\n' % gc.get_freeze_count()))\n"
            "from runner.cli import main\n"
            "main(['--version'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "flowrun" in done.stdout
    frozen = int(done.stderr.split("frozen=")[1].split()[0])
    assert frozen > 1000


def test_a_whole_run_still_prints_and_records_everything(tmp_path):
    db = tmp_path / "runs.sqlite3"
    result = flowrun_process("workflows/weather.yaml", "--offline", "-o", "jsonl", "--log-db", str(db))
    assert result.code == 0, result.err
    events = result.jsonl()
    assert events[-1]["type"] == "run.completed"
    with RunLog.open_reader(db) as log:
        run = log.get_run(events[-1]["run_id"])
    assert run["status"] == "completed"
    assert [e["type"] for e in run["events"]] == [e["type"] for e in events]
    assert "57°F" in run["final_text"]
