"""The whole-process baseline for figure 1w: a seed-style program on the bare ``openai`` SDK,
started as its own process the way a user starts ``flowrun FILE``. It reads the workflow file
with plain ``yaml.safe_load`` (no validation), makes one client, runs the loop of
``bench/rawloop.py`` once with the file's static tool values, prints the answer and exits.

    python bench/rawproc.py workflows/weather.yaml --api chat --base-url http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rawloop  # noqa: E402  (imports openai, as any such program does)


class _Tool:
    def __init__(self, raw: dict):
        self.name, self.description, self.parameters = raw["name"], raw.get("description", ""), raw["parameters"]


class _Model:
    def __init__(self, raw: dict):
        self.name, self.temperature = raw["name"], raw.get("temperature")


class _Workflow:
    """Just what ``rawloop.spec_for`` reads, from the parsed YAML."""

    def __init__(self, raw: dict):
        self.model = _Model(raw["model"])
        self.instructions = raw.get("instructions")
        self.tools = [_Tool(t) for t in raw.get("tools", [])]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("file")
    p.add_argument("--api", required=True, choices=list(rawloop.RUNS))
    p.add_argument("--base-url", required=True)
    args = p.parse_args()
    raw = yaml.safe_load(Path(args.file).read_text())
    static = {t["name"]: t["resolve"]["static"] for t in raw["tools"]}
    spec = rawloop.spec_for(args.api, _Workflow(raw))

    async def call_tool(name: str, arguments: dict) -> str:
        return static[name]

    async def run() -> str:
        client = rawloop.openai.AsyncOpenAI(base_url=args.base_url, api_key="bench")
        try:
            return await rawloop.RUNS[args.api](client, spec, raw["input"], call_tool)
        finally:
            await client.close()

    print(asyncio.run(run()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
