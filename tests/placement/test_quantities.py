"""Kubernetes quantity parsing, as a table."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lsst_hub.placement.quantities import (
    QuantityError,
    cpu_cores,
    cpu_millicores,
    memory_bytes,
    parse_quantity,
)

pytestmark = pytest.mark.line_independent


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100m", Decimal("0.1")),
        ("1.5", Decimal("1.5")),
        ("2Ki", Decimal(2048)),
        ("1Gi", Decimal(1 << 30)),
        ("1G", Decimal(10**9)),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("2e-3", Decimal("0.002")),
        ("500Mi", Decimal(500 << 20)),
        ("1Ei", Decimal(1 << 60)),
        ("1E", Decimal(10**18)),
        ("250000000n", Decimal("0.25")),
        ("5u", Decimal("0.000005")),
        ("3k", Decimal(3000)),
        ("0", Decimal(0)),
        (".5", Decimal("0.5")),
        ("+2", Decimal(2)),
        ("-1", Decimal(-1)),
        (7, Decimal(7)),
        (0.25, Decimal("0.25")),
    ],
)
def test_parse_quantity(text: str | int | float, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 1",
        "1 ",
        "1 Gi",
        "abc",
        "Ki",
        "1KiB",
        "1gi",
        "1e",
        "1e3Ki",
        "1.2.3",
        "--1",
        "1m5",
        "0x10",
    ],
)
def test_invalid_quantities_raise(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


@pytest.mark.parametrize("value", [None, True, float("nan"), float("inf"), [1]])
def test_non_quantities_raise(value: object) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "cores", "millicores"),
    [
        ("100m", 0.1, 100),
        ("1.5", 1.5, 1500),
        ("2", 2.0, 2000),
        ("0.1m", 0.0001, 1),
        (0.5, 0.5, 500),
    ],
)
def test_cpu(text: str | float, cores: float, millicores: int) -> None:
    assert cpu_cores(text) == cores
    # Millicores round up, as Kubernetes' MilliValue() does.
    assert cpu_millicores(text) == millicores


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("1Gi", 1 << 30),
        ("1G", 10**9),
        ("1.5", 2),
        ("100m", 1),
        ("128974848", 128974848),
        ("129e6", 129 * 10**6),
    ],
)
def test_memory_bytes_round_up(text: str, nbytes: int) -> None:
    assert memory_bytes(text) == nbytes


def test_quantity_error_is_a_value_error() -> None:
    # Callers that already handle ValueError for bad configuration catch it too.
    assert issubclass(QuantityError, ValueError)
