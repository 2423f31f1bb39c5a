"""What the worst workflow file costs to validate, as ratios against workflows/weather.yaml.

    .venv/bin/python bench/validate_cost.py           # about a minute on 2 cores
    .venv/bin/python bench/validate_cost.py --quick

Three hostile shapes, each as large as the limits let it be: dense values (``- [1, 2, 3, a, b]``
lines), one long scalar, and comments. Each is validated with today's limits ("bounded") and, for
comparison, with the node limit lifted and the size limit at its old 10 MB, on a 1 MB file
("unbounded, per MB": multiply by ten for what the old limit allowed). All in this process, in
this sitting; the figures are ratios, so they hold on a slower or busier machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.workflow import yaml_loader  # noqa: E402
from runner.workflow.validate import validate_file  # noqa: E402

HEAD = ("version: 1\nname: big\nmodel: {api: chat, name: m}\ninput: hi\ntools:\n  - name: t\n"
        "    description: d\n    parameters: {type: object, properties: {}}\n    resolve:\n      static:\n")


def shapes(size: int) -> dict[str, str]:
    def fill(line_of) -> str:
        lines, total, i = [], len(HEAD), 0
        while True:
            line = line_of(i)
            if total + len(line) > size:
                return HEAD + "".join(lines)
            lines.append(line)
            total += len(line)
            i += 1

    return {
        "dense values": fill(lambda i: f"        - [{i}, {i + 1}, {i + 2}, a, b]\n"),
        "long scalar": HEAD + "        - " + "word " * ((size - len(HEAD) - 20) // 5) + "\n",
        "comments": fill(lambda i: "# " + "x" * 97 + "\n"),
    }


@contextmanager
def unbounded():
    saved = yaml_loader.MAX_BYTES, yaml_loader.MAX_NODES
    yaml_loader.MAX_BYTES, yaml_loader.MAX_NODES = 10 * 1024 * 1024, 10**12
    try:
        yield
    finally:
        yaml_loader.MAX_BYTES, yaml_loader.MAX_NODES = saved


def cost(path: Path, repeat: int) -> tuple[float, int]:
    """Median seconds and peak traced bytes of ``validate_file(path)``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        validate_file(path)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    validate_file(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    opts = parser.parse_args()
    repeat = 1 if opts.quick else 3
    base_t, base_m = cost(ROOT / "workflows" / "weather.yaml", 20)
    print(f"baseline: workflows/weather.yaml  {base_t * 1000:.1f} ms, peak {base_m / 1e6:.1f} MB")
    print(f"{'shape':<14} {'bounded (time, memory vs baseline)':>36} {'unbounded, per MB':>30}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in shapes(yaml_loader.MAX_BYTES).items():
            path = Path(tmp) / "at_limit.yaml"
            path.write_text(text)
            t, m = cost(path, repeat)
            with unbounded():
                problems = validate_file(path)[1]
                t_old, m_old = cost(path, 1)
            cut = "refused" if any(p.severity == "error" for p in problems) else "read"
            print(f"{name:<14} {t / base_t:>10.0f}x time {m / base_m:>8.0f}x mem  "
                  f"{t_old / base_t:>10.0f}x time {m_old / base_m:>7.0f}x mem  ({cut} unbounded; "
                  f"bounded/unbounded time {t / t_old:.2f})")


if __name__ == "__main__":
    main()
