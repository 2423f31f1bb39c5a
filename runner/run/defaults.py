"""Defaults for the model settings a person would otherwise pass on every run.

Highest first, each of api, base_url and model comes from:

1. the command line (``--api``, ``--base-url``, ``-m/--model``);
2. the environment: ``FLOWRUN_API``, ``FLOWRUN_BASE_URL``, ``FLOWRUN_MODEL``;
3. a profile (``--profile NAME``, else ``FLOWRUN_PROFILE``, else the config's ``default_profile``)
   from the repository's ``.flowrun.yaml`` (the nearest one from the current folder up to the
   folder holding ``.git``), which overrides the user's ``~/.config/flowrun/config.yaml`` key by key;
4. the workflow file's ``model:`` section (then ``OPENAI_BASE_URL``, then OpenAI itself).

A config file holds only these names, never a key::

    default_profile: local
    profiles:
      local: {api: chat, base_url: http://localhost:11434/v1, model: llama3.2}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from runner.errors import UsageError
from runner.suggest import suggest

KEYS = ("api", "base_url", "model")
ENV = {"api": "FLOWRUN_API", "base_url": "FLOWRUN_BASE_URL", "model": "FLOWRUN_MODEL"}
REPO_CONFIG = ".flowrun.yaml"


@dataclass(frozen=True)
class Defaults:
    values: dict[str, str] = field(default_factory=dict)  # api/base_url/model -> value
    origins: dict[str, str] = field(default_factory=dict)  # the same keys -> where it came from

    def describe(self) -> str:
        """For ``flowrun run -v``: each setting that did not come from the workflow file."""
        if not self.values:
            return "model settings: all from the workflow file"
        return "model settings: " + ", ".join(f"{k}={self.values[k]} (from {self.origins[k]})" for k in KEYS
                                              if k in self.values)


def user_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "flowrun" / "config.yaml"


def repo_config_path(start: Path) -> Path | None:
    """The nearest ``.flowrun.yaml`` from ``start`` up to the repository's root (``.git``)."""
    for folder in [start, *start.parents]:
        if (folder / REPO_CONFIG).is_file():
            return folder / REPO_CONFIG
        if (folder / ".git").exists():
            return None
    return None


def resolve(given: Mapping[str, str | None], *, profile: str | None, env: Mapping[str, str],
            cwd: Path | None = None) -> Defaults:
    """api/base_url/model from the command line (``given``), the environment and the config
    files, with where each came from. UsageError for a bad config file or an unknown profile."""
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    configs = [(p, _read(p)) for p in (user_config_path(env), repo_config_path(cwd or Path.cwd())) if p is not None]
    profiles: dict[str, tuple[dict, Path]] = {}
    default_profile, default_from = None, None
    for path, data in configs:
        for name, body in (data.get("profiles") or {}).items():
            merged = {**profiles.get(name, ({}, path))[0], **body}
            profiles[name] = (merged, path)
        if data.get("default_profile"):
            default_profile, default_from = str(data["default_profile"]), path
    name = profile or env.get("FLOWRUN_PROFILE") or default_profile
    chosen: dict = {}
    if name:
        if name not in profiles:
            guess = suggest(name, profiles)
            where = "--profile" if profile else "FLOWRUN_PROFILE" if env.get("FLOWRUN_PROFILE") else str(default_from)
            raise UsageError(f"no profile {name!r} (asked for by {where})" + (f"; did you mean {guess!r}?" if guess else ""),
                             hint="define it under profiles: in " + " or ".join(str(p) for p, _ in configs))
        chosen, chosen_from = profiles[name]
    for key in KEYS:
        if given.get(key):
            values[key], origins[key] = str(given[key]), "the command line"
        elif env.get(ENV[key]):
            values[key], origins[key] = env[ENV[key]], ENV[key]
        elif chosen.get(key):
            values[key], origins[key] = str(chosen[key]), f"profile {name!r} in {chosen_from}"
    return Defaults(values, origins)


def _read(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read the config file: {exc}", hint="fix its YAML, or remove it") from None
    if not isinstance(data, dict) or not isinstance(data.get("profiles", {}), dict):
        raise UsageError(f"{path}: the config file must be a mapping with profiles: NAME: {{api, base_url, model}}")
    for name, body in data.get("profiles", {}).items():
        if not isinstance(body, dict):
            raise UsageError(f"{path}: profile {name!r} must be a mapping of api, base_url, model")
        unknown = [k for k in body if k not in KEYS]
        if unknown:
            guess = suggest(str(unknown[0]), KEYS)
            raise UsageError(f"{path}: profile {name!r} has unknown key {unknown[0]!r}"
                             + (f" (did you mean {guess!r}?)" if guess else ""),
                             hint="a profile sets api, base_url and model; keys stay in environment variables")
    unknown_top = [k for k in data if k not in ("profiles", "default_profile")]
    if unknown_top:
        raise UsageError(f"{path}: unknown key {unknown_top[0]!r}", hint="a config file has profiles: and default_profile:")
    return data
