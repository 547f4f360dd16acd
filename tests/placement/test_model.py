"""Reading objects: tolerations, selectors, timestamps and durations, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from lsst_hub.placement.model import (
    Taint,
    node_info,
    parse_duration,
    parse_time,
    pod_bound_node,
    selector_matches,
    tolerates,
)

from .objects import node, pod

pytestmark = pytest.mark.line_independent

GPU = Taint("dedicated", "gpu", "NoSchedule")
DRAIN = Taint("drain", "", "NoExecute")


@pytest.mark.parametrize(
    ("tolerations", "taints", "expected"),
    [
        ([], [], True),
        ([], [GPU], False),
        ([{"key": "dedicated", "value": "gpu"}], [GPU], True),  # operator defaults to Equal
        ([{"key": "dedicated", "operator": "Equal", "value": "cpu"}], [GPU], False),
        ([{"key": "dedicated", "operator": "Exists"}], [GPU], True),
        ([{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}], [GPU], True),
        ([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}], [GPU], False),
        ([{"operator": "Exists"}], [GPU, DRAIN], True),
        ([{"operator": "Exists", "effect": "NoExecute"}], [GPU, DRAIN], False),
        ([{"key": "drain", "operator": "Exists"}], [GPU, DRAIN], False),
        (
            [{"key": "drain", "operator": "Exists"}, {"key": "dedicated", "value": "gpu"}],
            [GPU, DRAIN],
            True,
        ),
        ([{"key": "dedicated", "operator": "Gt", "value": "1"}], [GPU], False),  # unknown operator
    ],
)
def test_tolerates(tolerations: list[dict[str, str]], taints: list[Taint], expected: bool) -> None:
    assert tolerates(tolerations, taints) is expected


def test_only_blocking_taints_are_read() -> None:
    info = node_info(
        node(
            "a",
            taints=[
                {"key": "soft", "effect": "PreferNoSchedule"},
                {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            ],
        )
    )
    assert info.taints == (GPU,)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (None, True),
        ({}, True),
        ({"zone": "a"}, True),
        ({"zone": "b"}, False),
        ({"zone": "a", "gpu": "yes"}, False),
    ],
)
def test_selector_matches(selector: dict[str, str] | None, expected: bool) -> None:
    assert selector_matches(selector, {"zone": "a"}) is expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("20.044s", 20.044),
        ("1m0.5s", 60.5),
        ("1h2m", 3720.0),
        ("5ms", 0.005),
        ("", None),
        ("10", None),
        ("s", None),
        ("1x", None),
        (None, None),
    ],
)
def test_parse_duration(text: Any, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("1970-01-01T00:01:00Z", 60.0),
        ("2026-01-01T00:00:00Z", 1767225600.0),
        ("2026-01-01T01:00:00+01:00", 1767225600.0),
        ("nonsense", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_time(text: Any, epoch: float | None) -> None:
    assert parse_time(text) == epoch


@pytest.mark.parametrize(
    ("phase", "node_name", "expected"),
    [
        ("Running", "a", "a"),
        ("Pending", "a", "a"),
        ("Unknown", "a", "a"),
        ("Succeeded", "a", None),
        ("Failed", "a", None),
        ("Pending", None, None),
    ],
)
def test_pod_bound_node(phase: str, node_name: str | None, expected: str | None) -> None:
    assert pod_bound_node(pod("p", node_name, phase=phase)) == expected
