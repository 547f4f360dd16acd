"""Label and field selectors, parsed once and matched against stored objects.

Label selectors take the equality forms (``k=v``, ``k==v``, ``k!=v``) and the
set forms (``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``); field selectors
the equality forms over dotted paths (``spec.nodeName=node-1``,
``involvedObject.kind=Pod``), as the API server accepts them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import bad_request

__all__ = ["Matcher", "field_value", "parse_field_selector", "parse_label_selector"]

Matcher = Callable[[Mapping[str, Any]], bool]

_SET_EXPR = re.compile(r"^\s*(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_EQ_EXPR = re.compile(r"^\s*(?P<key>[^\s!=()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)\s*$")
_EXISTS_EXPR = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=()]+)\s*$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``(...)``."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _label_requirement(expr: str) -> Callable[[Mapping[str, str]], bool]:
    if m := _SET_EXPR.match(expr):
        key, values = m["key"], {v.strip() for v in m["values"].split(",") if v.strip()}
        if m["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EQ_EXPR.match(expr):
        key, value = m["key"], m["value"]
        if m["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS_EXPR.match(expr):
        key = m["key"]
        if m["neg"]:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(f"unable to parse requirement: {expr.strip()!r}")


def _conjunction(
    text: str | None,
    parse: Callable[[str], list[Callable[[Any], bool]]],
    view: Callable[[Mapping[str, Any]], Any],
) -> Matcher | None:
    """A matcher true when every parsed term holds for ``view(obj)``; None for no terms."""
    if not text or not text.strip():
        return None
    terms = parse(text)

    def match(obj: Mapping[str, Any]) -> bool:
        seen = view(obj)
        return all(term(seen) for term in terms)

    return match


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels: Mapping[str, str] = obj.get("metadata", {}).get("labels") or {}
    return labels


def parse_label_selector(text: str | None) -> Matcher | None:
    """Compile a label selector; None when there is nothing to filter.

    Raises
    ------
    ApiError
        400 BadRequest for a selector that does not parse.
    """
    return _conjunction(
        text, lambda t: [_label_requirement(e) for e in _split_top_level(t)], _labels
    )


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The value at a dotted path, as a field selector compares it ("" when absent)."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field_terms(text: str) -> list[Callable[[Any], bool]]:
    terms: list[Callable[[Any], bool]] = []
    for expr in text.split(","):
        if not expr.strip():
            continue
        m = _EQ_EXPR.match(expr)
        if m is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{expr}'")
        terms.append(_field_term(m["key"], m["op"] != "!=", m["value"]))
    return terms


def _field_term(key: str, equal: bool, value: str) -> Callable[[Any], bool]:
    return lambda obj: (field_value(obj, key) == value) == equal


def parse_field_selector(text: str | None) -> Matcher | None:
    """Compile a field selector; None when there is nothing to filter.

    Raises
    ------
    ApiError
        400 BadRequest for a selector that does not parse.
    """
    return _conjunction(text, _field_terms, lambda obj: obj)
