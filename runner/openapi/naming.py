"""Tool and argument names from operations: snake_case, within the tool-name rules, unique."""

from __future__ import annotations

import hashlib
import re

MAX_TOOL_NAME = 64  # ^[a-zA-Z0-9_-]{1,64}$ in the workflow schema
_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")  # what ${{ args.NAME }} can name


def snake_case(text: str) -> str:
    """``listPets`` -> ``list_pets``, ``getHTTPStatus`` -> ``get_http_status``,
    ``GET /pets/{petId}`` -> ``get_pets_pet_id``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^A-Za-z0-9]+", "_", text)
    return text.strip("_").lower()


def tool_name(operation_ref: str, taken: set[str]) -> str:
    """A tool name for an operation, not in ``taken`` (which it is added to)."""
    base = snake_case(operation_ref) or "operation"
    if len(base) > MAX_TOOL_NAME:
        digest = hashlib.sha256(operation_ref.encode("utf-8")).hexdigest()[:8]
        base = base[: MAX_TOOL_NAME - 9].rstrip("_") + "_" + digest
    name, n = base, 2
    while name in taken:
        suffix = f"_{n}"
        name = base[: MAX_TOOL_NAME - len(suffix)] + suffix
        n += 1
    taken.add(name)
    return name


def argument_name(name: str, taken: set[str]) -> str:
    """``name`` itself when a template can name it, else a cleaned form; never one in ``taken``."""
    base = name if _ARG_NAME.match(name) else (re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "arg")
    if base[0].isdigit():
        base = "_" + base
    out, n = base, 2
    while out in taken:
        out, n = f"{base}_{n}", n + 1
    taken.add(out)
    return out
