"""The stand-in's own node-affinity matcher, against the Kubernetes API reference's rules."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.affinity import (
    expression_matches,
    node_selector_matches,
    required_terms,
    term_matches,
)

pytestmark = pytest.mark.line_independent

LABELS = {"zone": "a", "gpu": "", "cores": "64"}


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": operator, "values": list(values)}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (expr("zone", "In", "a", "b"), True),
        (expr("zone", "In", "b"), False),
        (expr("missing", "In", "a"), False),
        (expr("zone", "NotIn", "b"), True),
        (expr("zone", "NotIn", "a"), False),
        (expr("missing", "NotIn", "a"), True),  # a missing label is "not in"
        (expr("gpu", "Exists"), True),  # an empty value still exists
        (expr("missing", "Exists"), False),
        (expr("missing", "DoesNotExist"), True),
        (expr("gpu", "DoesNotExist"), False),
        (expr("cores", "Gt", "32"), True),
        (expr("cores", "Gt", "64"), False),
        (expr("cores", "Lt", "65"), True),
        (expr("cores", "Lt", "-1"), False),
        (expr("missing", "Gt", "1"), False),
        (expr("zone", "Gt", "1"), False),  # the label is not an integer
        (expr("cores", "Gt", "x"), False),  # nor is the bound
        (expr("cores", "Gt", "1", "2"), False),  # Gt takes exactly one value
        (expr("cores", "Gt", str(2**63)), False),  # past int64: ParseInt fails
        (expr("zone", "Equals", "a"), False),  # not a NodeSelectorOperator
    ],
)
def test_expression_operators(expression: dict[str, Any], expected: bool) -> None:
    assert expression_matches(expression, LABELS) is expected


def test_term_ands_its_requirements() -> None:
    term = {"matchExpressions": [expr("zone", "In", "a"), expr("cores", "Gt", "100")]}
    assert not term_matches(term, "node-1", LABELS)
    term["matchExpressions"][1] = expr("cores", "Gt", "10")
    assert term_matches(term, "node-1", LABELS)
    term["matchFields"] = [expr("metadata.name", "In", "node-2")]
    assert not term_matches(term, "node-1", LABELS)
    assert term_matches(term, "node-2", LABELS)


def test_empty_or_null_term_matches_nothing() -> None:
    assert not term_matches({}, "node-1", LABELS)
    assert not term_matches(None, "node-1", LABELS)
    assert not term_matches({"matchExpressions": [], "matchFields": []}, "node-1", LABELS)


def test_match_fields_on_the_node_name() -> None:
    assert term_matches({"matchFields": [expr("metadata.name", "In", "n1")]}, "n1", {})
    assert not term_matches({"matchFields": [expr("metadata.name", "In", "n1")]}, "n2", {})
    assert term_matches({"matchFields": [expr("metadata.name", "NotIn", "n1")]}, "n2", {})
    assert not term_matches({"matchFields": [expr("metadata.name", "NotIn", "n1")]}, "n1", {})


@pytest.mark.parametrize(
    "requirement",
    [
        expr("metadata.labels", "In", "n1"),  # the only field is metadata.name
        expr("metadata.name", "Exists"),  # only In and NotIn
        expr("metadata.name", "In", "n1", "n2"),  # exactly one value
    ],
)
def test_unusable_field_requirement_makes_the_term_match_nothing(
    requirement: dict[str, Any],
) -> None:
    assert not term_matches({"matchFields": [requirement]}, "n1", {"zone": "a"})


def test_terms_are_ored() -> None:
    terms: list[dict[str, Any] | None] = [
        {"matchExpressions": [expr("zone", "In", "b")]},
        None,
        {"matchExpressions": [expr("zone", "In", "a")]},
    ]
    assert node_selector_matches(terms, "node-1", LABELS)
    assert not node_selector_matches(terms[:2], "node-1", LABELS)
    assert not node_selector_matches([], "node-1", LABELS)


def test_required_terms_of_a_pod_spec() -> None:
    assert required_terms({}) is None
    assert required_terms({"affinity": {"nodeAffinity": {}}}) is None
    term = {"matchExpressions": [expr("zone", "In", "a")]}
    spec = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "preference": {"matchExpressions": [expr("x", "Exists")]}}
                ],
            }
        }
    }
    assert required_terms(spec) == [term]
