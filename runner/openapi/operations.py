"""The operations of a spec, and the subset a person asked for (``--op``, ``--tag``, ``--path``)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from runner.openapi.document import HTTP_METHODS, Spec, SpecError


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str
    data: dict  # the operation object
    path_item: dict  # its path item (shared parameters, servers)

    @property
    def operation_id(self) -> str | None:
        value = self.data.get("operationId")
        return str(value) if value not in (None, "") else None

    @property
    def ref(self) -> str:
        """How the workflow file names the operation: its operationId, or ``METHOD /path``."""
        return self.operation_id or f"{self.method} {self.path}"

    @property
    def tags(self) -> list[str]:
        return [str(t) for t in self.data.get("tags") or [] if t is not None]

    @property
    def summary(self) -> str:
        return str(self.data.get("summary") or "").strip()


def operations(spec: Spec) -> list[Operation]:
    """Every operation in file order; a ``$ref``'d path item is followed."""
    out = []
    for path, item in spec.data["paths"].items():
        item, _ = spec.deref(item, f"paths.{path}")
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                out.append(Operation(method.upper(), str(path), op, item))
    return out


def select(ops: list[Operation], *, op_ids: tuple[str, ...] = (), tags: tuple[str, ...] = (),
           paths: tuple[str, ...] = (), everything: bool = False) -> list[Operation]:
    """The operations matching any of the selectors, in file order. An ``--op`` that names no
    operation is an error (with the closest names), so a typo never imports nothing silently."""
    if not (op_ids or tags or paths or everything):
        raise SpecError("choose the operations to import: --op ID, --tag TAG, --path GLOB or --all",
                        hint="list them first with --list")
    known = {o.ref for o in ops} | {o.operation_id for o in ops if o.operation_id}
    for wanted in op_ids:
        if wanted not in known:
            import difflib

            close = difflib.get_close_matches(wanted, sorted(known), n=3)
            raise SpecError(f"the spec has no operation {wanted!r}",
                            hint=("did you mean " + ", ".join(close) + "? " if close else "")
                            + "see them all with --list")
    chosen = []
    for o in ops:
        if (everything or o.ref in op_ids or o.operation_id in op_ids
                or any(t in o.tags for t in tags)
                or any(fnmatch.fnmatchcase(o.path, g) for g in paths)):
            chosen.append(o)
    if not chosen:
        raise SpecError("no operation matches the --tag/--path selection", hint="see them all with --list")
    return chosen


def listing(ops: list[Operation]) -> list[str]:
    """One line per operation: ``METHOD /path  operationId  [tags]  summary``."""
    if not ops:
        return []
    width = max(len(o.method) + 1 + len(o.path) for o in ops)
    id_width = max(len(o.operation_id or "-") for o in ops)
    lines = []
    for o in ops:
        where = f"{o.method} {o.path}"
        tags = f"[{', '.join(o.tags)}]" if o.tags else ""
        flag = " (deprecated)" if o.data.get("deprecated") is True else ""
        lines.append(f"{where:<{width}}  {o.operation_id or '-':<{id_width}}  {tags}  {o.summary}{flag}".rstrip())
    return lines


def as_mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}
