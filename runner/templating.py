"""``${{ context.name }}`` expressions: the one templating syntax of workflow files.

Contexts: ``args`` (the model's arguments), ``env`` (environment variables), ``inputs`` (values
given with ``--var`` or their defaults) and, in scripted test turns only, ``outputs`` (what a tool
returned). There is no code in expressions: a dotted name is looked up, nothing else.

Rendering is a single pass. Substituted values are data and are never scanned again, so a model
that sends ``${{ env.OPENAI_API_KEY }}`` as an argument gets that literal text back, not the key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

CONTEXTS = ("args", "env", "inputs", "outputs")

# ${{ ctx.name.sub }} with optional spaces. Anything else inside ${{ }} is an error.
_EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_OPERATOR = re.compile(r"\|\||&&|==|!=|<=|>=|\?\?|\s[-+*/<>]\s|!(?=\s*[A-Za-z])")  # what people write from GitHub Actions
_REF = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)\s*$")


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered. ``expression`` is the offending text."""

    def __init__(self, message: str, expression: str = "", offset: int = 0, hint: str | None = None):
        super().__init__(message)
        self.expression = expression
        self.offset = offset
        self.hint = hint  # how to fix it, when the mistake says more than "malformed"


@dataclass(frozen=True)
class Reference:
    context: str  # args | env | inputs | outputs
    path: tuple[str, ...]  # ("location",) or ("address", "city")
    text: str  # the whole "${{ ... }}" text
    offset: int  # where it starts in the template string

    @property
    def name(self) -> str:
        return self.path[0]

    def __str__(self) -> str:
        return f"{self.context}.{'.'.join(self.path)}"


MISSING = object()


def find_references(template: str) -> list[Reference]:
    """Every expression in ``template``. Raises TemplateError for malformed ones."""
    refs = []
    for m in _EXPR.finditer(template):
        inner = m.group(1)
        ref = _REF.match(inner)
        operator = _OPERATOR.search(inner) if not ref else None
        if operator:
            raise TemplateError(
                f"{m.group(0)!r} uses the operator {operator.group().strip()!r}: expressions name one value "
                "and have no operators",
                m.group(0),
                m.start(),
                _fallback_hint(inner) if operator.group().strip() in ("||", "??") else
                "write one name, such as ${{ inputs.NAME }}; a decision or a calculation belongs in a python: tool",
            )
        if not ref:
            raise TemplateError(
                f"cannot read the expression {m.group(0)!r}: write ${{{{ args.NAME }}}}, "
                "${{ env.NAME }} or ${{ inputs.NAME }}",
                m.group(0),
                m.start(),
            )
        context = ref.group(1)
        if context not in CONTEXTS:
            raise TemplateError(
                f"unknown context {context!r} in {m.group(0)!r}: use one of args, env, inputs",
                m.group(0),
                m.start(),
            )
        path = tuple(ref.group(2)[1:].split("."))
        refs.append(Reference(context, path, m.group(0), m.start()))
    # A lone "${{" without a closing "}}" is a typo worth reporting.
    stripped = _EXPR.sub("", template)
    if "${{" in stripped:
        pos = template.rfind("${{")
        raise TemplateError("an expression opened with ${{ is never closed with }}", "${{", pos)
    return refs


def _fallback_hint(inner: str) -> str:
    """What to write instead of ``a || 'b'``, for the value it was meant to fall back from."""
    name = re.match(r"\s*(inputs|env)\.([A-Za-z_][A-Za-z0-9_-]*)", inner)
    if name and name.group(1) == "inputs":
        return (f"for a fallback, give the input a default (inputs: {{{name.group(2)}: {{default: ...}}}}) "
                f"and write ${{{{ inputs.{name.group(2)} }}}}")
    if name:
        return (f"an environment variable has no fallback in the file: set {name.group(2)} before running, "
                "or use an input with a default: (inputs:) instead")
    return "write one name, such as ${{ inputs.NAME }}; for a fallback, give the input a default: under inputs:"


def references_in(value: Any) -> list[Reference]:
    """Every expression in every string inside a (nested) JSON-like value."""
    if isinstance(value, str):
        return find_references(value)
    if isinstance(value, Mapping):
        return [r for v in value.values() for r in references_in(v)]
    if isinstance(value, (list, tuple)):
        return [r for v in value for r in references_in(v)]
    return []


def lookup(ref: Reference, context: Mapping[str, Mapping[str, Any]]) -> Any:
    """The value a reference names, or MISSING."""
    value: Any = context.get(ref.context, {})
    for part in ref.path:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return MISSING
    return value


def to_text(value: Any) -> str:
    """How a value reads when placed inside text: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render_string(
    template: str,
    context: Mapping[str, Mapping[str, Any]],
    *,
    encode: Callable[[str], str] | None = None,
    missing: Callable[[Reference], str] | None = None,
) -> str:
    """Fill every expression in ``template``. ``encode`` is applied to substituted values only
    (never to the template's own text): percent-encoding for URLs, for example. ``missing`` says
    what to put for a name with no value; by default that is an error."""
    out = []
    last = 0
    for ref in find_references(template):
        out.append(template[last : ref.offset])
        value = lookup(ref, context)
        if value is MISSING:
            if missing is None:
                raise TemplateError(f"{ref} has no value", ref.text, ref.offset)
            text = missing(ref)
        else:
            text = to_text(value)
            if encode is not None:
                text = encode(text)
        out.append(text)
        last = ref.offset + len(ref.text)
    out.append(template[last:])
    return "".join(out)


def sole_reference(template: str) -> Reference | None:
    """The reference if ``template`` is exactly one expression and nothing else."""
    refs = find_references(template)
    if len(refs) == 1 and template.strip() == refs[0].text:
        return refs[0]
    return None


def render_value(value: Any, context: Mapping[str, Mapping[str, Any]]) -> Any:
    """Fill a JSON-like value. A string that is one expression alone keeps the value's JSON type
    (``"${{ args.count }}"`` gives the number 3, not "3"); a mapping entry whose sole expression
    names an argument the model did not send is left out."""
    if isinstance(value, str):
        ref = sole_reference(value)
        if ref is not None:
            found = lookup(ref, context)
            if found is MISSING:
                if ref.context == "args":
                    return MISSING
                raise TemplateError(f"{ref} has no value", ref.text, ref.offset)
            return found
        return render_string(value, context, missing=_empty_for_args)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            rendered = render_value(v, context)
            if rendered is not MISSING:
                out[k] = rendered
        return out
    if isinstance(value, (list, tuple)):
        return [r for r in (render_value(v, context) for v in value) if r is not MISSING]
    return value


def _empty_for_args(ref: Reference) -> str:
    if ref.context == "args":
        return ""
    raise TemplateError(f"{ref} has no value", ref.text, ref.offset)
