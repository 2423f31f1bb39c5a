"""An MCP tool result as the one text a model receives.

Text content is passed as is; structured content becomes compact JSON (and a text block that only
repeats it, as the spec asks servers to send for old clients, is not sent twice); images, audio,
resource links and embedded resources are described in one bracketed line each rather than
dropped, because a model can still tell the user that a picture came back. ``isError`` makes the
whole output an error output. Works on plain dicts (the wire form), so a test case's canned
result (``mock_mcp``) goes through exactly the same conversion as a real one.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from runner.tools.outputs import error_text

NO_CONTENT = "(the tool returned no content)"


def convert(result: Any) -> tuple[str, bool]:
    """(output, is_error) for a CallToolResult as a dict (``content``, ``structuredContent``,
    ``isError``). Anything that is not of that shape is described, never trusted."""
    if not isinstance(result, dict):
        return error_text("the MCP server sent a result flowrun cannot read"), True
    structured = result.get("structuredContent")
    content = result.get("content") if isinstance(result.get("content"), list) else []
    parts: list[str] = []
    if structured is not None:
        parts.append(_json(structured))
    for block in content:
        if structured is not None and _repeats(block, structured):
            continue
        parts.append(describe(block))
    text = "\n".join(p for p in parts if p != "") or NO_CONTENT
    if result.get("isError") is True:
        return error_text(text if text != NO_CONTENT else "the tool reported an error without a message"), True
    return text, False


def from_mock(mock: dict[str, Any]) -> dict[str, Any]:
    """A test case's canned result (``text``, ``structured``, ``is_error``) in the wire form."""
    result: dict[str, Any] = {"content": []}
    if "text" in mock:
        result["content"].append({"type": "text", "text": mock["text"]})
    if "structured" in mock:
        result["structuredContent"] = mock["structured"]
    if mock.get("is_error"):
        result["isError"] = True
    return result


def describe(block: Any) -> str:
    """One content block as text."""
    if not isinstance(block, dict):
        return "[content flowrun cannot read]"
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind in ("image", "audio"):
        return f"[{kind}: {_mime(block)}, {_decoded_size(block.get('data'))}]"
    if kind == "resource_link":
        name = block.get("name") or block.get("title") or ""
        label = f"{name} " if name else ""
        extra = f", {block['mimeType']}" if isinstance(block.get("mimeType"), str) else ""
        return f"[resource link: {label}{block.get('uri', '')}{extra}]"
    if kind == "resource":
        res = block.get("resource") if isinstance(block.get("resource"), dict) else {}
        uri = res.get("uri", "")
        if isinstance(res.get("text"), str):
            return f"[resource {uri}]\n{res['text']}"
        return f"[resource {uri}: {_mime(res)}, {_decoded_size(res.get('blob'))}]"
    return f"[{str(kind)[:40]} content, not shown]"


def _mime(block: dict) -> str:
    mime = block.get("mimeType")
    return mime if isinstance(mime, str) and mime else "unknown type"


def _decoded_size(data: Any) -> str:
    if not isinstance(data, str):
        return "no data"
    try:
        return f"{len(base64.b64decode(data, validate=False))} bytes"
    except (binascii.Error, ValueError):
        return f"{len(data)} characters of undecodable base64"


def _repeats(block: Any, structured: Any) -> bool:
    if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
        return False
    try:
        return json.loads(block["text"]) == structured
    except ValueError:
        return False


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
