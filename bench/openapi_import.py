"""Import of a large OpenAPI description: time and peak memory, with baselines from this sitting.

    .venv/bin/python bench/openapi_import.py                 # the Discord spec, every operation
    .venv/bin/python bench/openapi_import.py --spec FILE --repeat 3

Each figure comes from a fresh Python process (so peak memory is that step's own), median of
``--repeat`` runs:

- baseline: ``json``/``yaml`` parse of the spec alone, and ``flowrun validate`` of the result;
- import: ``flowrun import openapi SPEC --all`` into a new file, split into its phases (read the
  spec, build the tools, splice them into the file, validate the result before writing);
- re-import: the same command again on the written file (every tool matched, nothing changes).

A benchmark, not a test: figures vary with the machine's load; the ratios are the point.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PY = ROOT / ".venv" / "bin" / "python"
DEFAULT_SPEC = ROOT / "tests" / "fixtures" / "openapi" / "discord-3.1.json"


def child(step: str, spec: Path, target: Path) -> dict:
    """One step in this process; returns seconds per phase and the peak RSS."""
    sys.path.insert(0, str(ROOT))
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    if step == "parse":
        text = spec.read_text(encoding="utf-8")
        if text.lstrip().startswith("{"):
            json.loads(text)
        else:
            import yaml

            yaml.safe_load(text)
        phases["parse"] = time.perf_counter() - t0
    elif step == "validate":
        from runner.workflow.validate import validate_file

        _, problems = validate_file(target)
        assert not [p for p in problems if p.severity == "error"], problems[:3]
        phases["validate"] = time.perf_counter() - t0
    elif step in ("import", "reimport"):
        import runner.commands.import_openapi as command
        import runner.openapi.tools as tools
        from runner.openapi import writer
        from runner.openapi.document import load_spec
        from runner.openapi.operations import operations, select

        def timed(owner, name: str, label: str) -> None:
            fn = getattr(owner, name)

            def inner(*a, **k):
                start = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    phases[label] = phases.get(label, 0.0) + time.perf_counter() - start

            setattr(owner, name, inner)

        timed(tools, "build_tools", "build")
        timed(writer, "place_tools", "splice")
        timed(command, "_check_and_write", "validate+write")
        start = time.perf_counter()
        loaded = load_spec(spec)
        chosen = select(operations(loaded), everything=True)
        phases["read spec"] = time.perf_counter() - start
        lines = command.import_into(loaded, chosen, target)
        phases["tools"] = float(sum(int(line.split()[1]) for line in lines
                                    if line.startswith(("added ", "unchanged ", "updated "))))
    phases["total"] = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"phases": phases, "peak_mb": peak_kb / 1024}


def measure(step: str, spec: Path, target: Path, repeat: int, fresh: bool) -> dict:
    runs = []
    for _ in range(repeat):
        if fresh and target.exists():
            target.unlink()
        out = subprocess.run([str(VENV_PY), __file__, "--child", step, "--spec", str(spec), "--target", str(target)],
                             capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = runs[0]["phases"].keys()
    return {"phases": {k: statistics.median(r["phases"][k] for r in runs) for k in keys},
            "peak_mb": statistics.median(r["peak_mb"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child")
    parser.add_argument("--target", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.spec, args.target)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "imported.yaml"
        parse = measure("parse", args.spec, target, args.repeat, False)
        imp = measure("import", args.spec, target, 1, True)  # leaves the file for the next steps
        if args.repeat > 1:
            imp = measure("import", args.spec, target, args.repeat, True)
        size = target.stat().st_size
        lines = target.read_text().count("\n")
        validate = measure("validate", args.spec, target, args.repeat, False)
        again = measure("reimport", args.spec, target, args.repeat, False)
    tools = int(imp["phases"].pop("tools"))
    again["phases"].pop("tools", None)
    spec_mb = args.spec.stat().st_size / 1e6
    print(f"spec: {args.spec.name}, {spec_mb:.2f} MB; result: {tools} tools, {lines} lines, {size / 1e6:.2f} MB"
          f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'step':<34}{'seconds':>9}{'peak MB':>9}")
    print(f"{'baseline: parse the spec':<34}{parse['phases']['total']:>9.2f}{parse['peak_mb']:>9.0f}")
    print(f"{'baseline: flowrun validate result':<34}{validate['phases']['total']:>9.2f}{validate['peak_mb']:>9.0f}")
    print(f"{'import --all (new file)':<34}{imp['phases']['total']:>9.2f}{imp['peak_mb']:>9.0f}")
    for phase, seconds in imp["phases"].items():
        if phase != "total":
            print(f"{'  ' + phase:<34}{seconds:>9.2f}")
    print(f"{'re-import (nothing changes)':<34}{again['phases']['total']:>9.2f}{again['peak_mb']:>9.0f}")
    print(f"ratios: import / validate = {imp['phases']['total'] / validate['phases']['total']:.1f}x, "
          f"import / parse = {imp['phases']['total'] / parse['phases']['total']:.0f}x, "
          f"per tool = {1000 * imp['phases']['total'] / max(tools, 1):.0f} ms")


if __name__ == "__main__":
    main()
