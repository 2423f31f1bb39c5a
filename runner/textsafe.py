"""Make text from outside encodable, once, where it enters.

JSON may spell a lone UTF-16 surrogate (``"\\udcff"``) and Python decodes it into a ``str`` that no
UTF-8 encoder accepts: the SDK's request body, the run log, stdout and ``-o jsonl`` would all raise
on it. Every place where text from a model, a tool or a server enters flowrun (the providers'
stream mappers, the dispatcher's outputs, the server's error messages) passes it through
``encodable``, so nothing past those points has to care. A lone surrogate becomes U+FFFD, the
replacement character, as a UTF-8 decoder would do with an invalid byte.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def encodable(text: Any) -> Any:
    """``text`` with every surrogate replaced by U+FFFD; anything not a ``str`` as it is."""
    if not isinstance(text, str) or text.isascii():
        return text
    return _SURROGATE.sub(REPLACEMENT, text)


def encodable_value(value: Any) -> Any:
    """``encodable`` applied to every string (keys included) inside a JSON-like value."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, dict):
        return {encodable(k): encodable_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encodable_value(v) for v in value]
    return value
