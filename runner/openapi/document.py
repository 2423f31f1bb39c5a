"""Read an OpenAPI description (JSON or YAML, 3.0 or 3.1) and follow its local ``$ref``s.

A spec is input from outside: it is parsed with a safe loader, its size is capped, and a ``$ref``
that leaves the file (another file, a URL) is refused rather than fetched, so an import never
touches the network or reads a file the user did not name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from runner.errors import UsageError

MAX_SPEC_BYTES = 50 * 1024 * 1024
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class SpecError(UsageError):
    """The spec cannot be imported; the message names the place in the spec."""


class _NoDatesLoader(yaml.SafeLoader):
    """Safe YAML without timestamps: ``2024-01-01`` in an example stays text (JSON has no dates)."""


_NoDatesLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class Spec:
    """A loaded OpenAPI document: its data, its version and a ``$ref`` resolver."""

    def __init__(self, data: dict, path: Path):
        self.data = data
        self.path = path
        version = str(data.get("openapi", ""))
        self.version = version
        self.is_30 = version.startswith("3.0")
        self._id_index: dict[str, Any] | None = None

    @property
    def title(self) -> str:
        info = self.data.get("info") if isinstance(self.data.get("info"), dict) else {}
        return str(info.get("title") or self.path.stem)

    def deref(self, value: Any, where: str) -> tuple[Any, str | None]:
        """``value`` with a chain of ``$ref``s followed: (target, last ref) or (value, None)."""
        seen: list[str] = []
        while isinstance(value, dict) and isinstance(value.get("$ref"), str):
            ref = value["$ref"]
            if ref in seen:
                raise SpecError(f"{self.path.name}: $ref cycle at {where}: " + " -> ".join(seen + [ref]))
            seen.append(ref)
            value = self.pointer(ref, where)
        return value, (seen[-1] if seen else None)

    def pointer(self, ref: str, where: str) -> Any:
        """The value a local ``$ref`` names: ``#/components/...``, or (OpenAPI 3.1) the ``$id`` of
        a schema in this file, with an optional ``#/pointer`` or ``#anchor``. Refuses any other."""
        if not ref.startswith("#"):
            base, _, fragment = ref.partition("#")
            target = self._ids().get(base)
            if target is not None:
                if not fragment:
                    return target
                if fragment.startswith("/"):
                    return _walk(target, fragment, ref, where, self.path.name)
                anchored = _find_anchor(target, fragment)
                if anchored is not None:
                    return anchored
            raise SpecError(
                f"{self.path.name}: {where} refers to {ref!r}, outside this file",
                hint="only local references (#/components/...) are followed; bundle the spec into one "
                     "file first (for example with `redocly bundle` or `swagger-cli bundle`)")
        if ref != "#" and not ref.startswith("#/"):
            raise SpecError(f"{self.path.name}: {where}: {ref!r} is not a JSON Pointer")
        return _walk(self.data, ref[1:], ref, where, self.path.name)

    def _ids(self) -> dict[str, Any]:
        """Schemas by ``$id`` (OpenAPI 3.1), indexed once, on first need."""
        if self._id_index is None:
            self._id_index = {}
            stack = [self.data]
            while stack:
                node = stack.pop()
                if isinstance(node, dict):
                    if isinstance(node.get("$id"), str):
                        self._id_index.setdefault(node["$id"], node)
                    stack.extend(node.values())
                elif isinstance(node, list):
                    stack.extend(node)
        return self._id_index


def _walk(value: Any, pointer: str, ref: str, where: str, file: str) -> Any:
    for part in pointer.split("/")[1:] if pointer else []:
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise SpecError(f"{file}: {where} refers to {ref!r}, which does not exist")
    return value


def _find_anchor(node: Any, anchor: str) -> Any:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("$anchor") == anchor:
                return item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def load_spec(path: str | Path) -> Spec:
    """The spec in ``path``. Raises SpecError for anything but a readable OpenAPI 3.0/3.1 file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e.strerror or e}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(f"{p.name} is {len(raw)} bytes; the limit is {MAX_SPEC_BYTES}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpecError(f"{p.name} is not UTF-8 text") from None
    data = _parse(text, p)
    if not isinstance(data, dict):
        raise SpecError(f"{p.name} is not an OpenAPI description (expected a mapping at the top)")
    if "swagger" in data:
        raise SpecError(
            f"{p.name} is Swagger {data.get('swagger')} (OpenAPI 2.0); flowrun imports OpenAPI 3.0 and 3.1",
            hint="convert it first, e.g. `npx swagger2openapi {0} -o openapi.yaml` or the "
                 "'Convert to OpenAPI 3' menu of editor.swagger.io".format(p.name))
    version = str(data.get("openapi", ""))
    if not version:
        raise SpecError(f"{p.name} has no `openapi:` version field; is it an OpenAPI description?")
    if not (version.startswith("3.0") or version.startswith("3.1")):
        raise SpecError(f"{p.name} is OpenAPI {version}; flowrun imports OpenAPI 3.0 and 3.1")
    if not isinstance(data.get("paths"), dict) or not data["paths"]:
        raise SpecError(f"{p.name} describes no paths, so there is nothing to import")
    return Spec(data, p)


def _parse(text: str, p: Path) -> Any:
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as e:
            raise SpecError(f"{p.name} is not valid JSON: {e}") from None
    try:
        return yaml.load(text, Loader=_NoDatesLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise SpecError(f"{p.name}{where} is not valid YAML: {getattr(e, 'problem', None) or e}") from None
