"""Required node affinity, matched as kube-scheduler's NodeAffinity plugin matches it.

From the Kubernetes API reference (``NodeSelector``, ``NodeSelectorTerm``,
``NodeSelectorRequirement``):

* the ``nodeSelectorTerms`` of a NodeSelector are ORed: a node that matches one
  term is eligible;
* within a term, ``matchExpressions`` (on the node's labels) and
  ``matchFields`` (on the node's fields) are ANDed; a null or empty term
  matches no node;
* an expression's operator is ``In`` or ``NotIn`` (a value list), ``Exists`` or
  ``DoesNotExist`` (no values), ``Gt`` or ``Lt`` (one value, compared as an
  integer with the label's value); ``NotIn`` and ``DoesNotExist`` match a node
  without the label, the others do not;
* the only field is ``metadata.name``, with ``In`` or ``NotIn`` and exactly one
  value; any other field requirement makes its term unusable (it matches nothing),
  as in ``k8s.io/component-helpers`` ``nodeaffinity``.

This is the stand-in's own reading of those rules, written apart from the
product's: a mistake in one shows up in the tests of the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["expression_matches", "node_selector_matches", "required_terms", "term_matches"]

NODE_NAME_FIELD = "metadata.name"


def _int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``, or None if it fails."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body.isascii() or not body.isdigit():
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


def expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether one ``NodeSelectorRequirement`` holds for a node's ``labels``."""
    key = expression.get("key")
    operator = expression.get("operator")
    values = [str(v) for v in expression.get("values") or ()]
    present = key in labels
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator == "NotIn":
        return not present or labels[str(key)] not in values
    if not present:
        return False
    label = labels[str(key)]
    if operator == "In":
        return label in values
    if operator in ("Gt", "Lt") and len(values) == 1:
        have, bound = _int64(label), _int64(values[0])
        if have is None or bound is None:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def _field_matches(requirement: Mapping[str, Any], node_name: str) -> bool | None:
    """A ``matchFields`` requirement on the node; None when it is not one the scheduler reads."""
    values = list(requirement.get("values") or ())
    operator = str(requirement.get("operator"))
    if (
        requirement.get("key") != NODE_NAME_FIELD
        or operator not in ("In", "NotIn")
        or len(values) != 1
    ):
        return None
    return (str(values[0]) == node_name) == (operator == "In")


def term_matches(term: Mapping[str, Any] | None, node_name: str, labels: Mapping[str, str]) -> bool:
    """Whether one ``NodeSelectorTerm`` matches the node (all its requirements hold)."""
    if not term:
        return False
    expressions = term.get("matchExpressions") or ()
    fields = term.get("matchFields") or ()
    if not expressions and not fields:
        return False
    for field in fields:
        if not _field_matches(field, node_name):
            return False
    return all(expression_matches(e, labels) for e in expressions)


def node_selector_matches(
    terms: Sequence[Mapping[str, Any] | None], node_name: str, labels: Mapping[str, str]
) -> bool:
    """Whether any of the ``nodeSelectorTerms`` matches the node (no terms: none matches)."""
    return any(term_matches(t, node_name, labels) for t in terms)


def required_terms(pod_spec: Mapping[str, Any]) -> list[Mapping[str, Any] | None] | None:
    """The pod's required ``nodeSelectorTerms``, or None when it requires no node affinity."""
    node_affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    return list(required.get("nodeSelectorTerms") or ())
