"""The stand-in's own quantity parser, against apimachinery's ParseQuantity."""

from __future__ import annotations

from decimal import Decimal

import pytest

from devcluster.quantity import (
    FORMAT_WRONG,
    SUFFIX_WRONG,
    QuantityError,
    milli_value,
    parse_quantity,
    value,
)

pytestmark = pytest.mark.line_independent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", "0"),
        ("000", "0"),
        ("1", "1"),
        ("+1", "1"),
        ("-1", "-1"),
        ("1.5", "1.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("250m", "0.25"),
        ("100n", "1E-7"),
        ("3u", "0.000003"),
        ("2k", "2000"),
        ("1M", "1000000"),
        ("1G", "1000000000"),
        ("1T", "1e12"),
        ("1P", "1e15"),
        ("1E", "1e18"),
        ("1Ki", "1024"),
        ("1.5Gi", "1610612736"),
        ("1Mi", "1048576"),
        ("1Ti", str(1024**4)),
        ("1Pi", str(1024**5)),
        ("1Ei", str(1024**6)),
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("1e-3", "0.001"),
        ("1e+3", "1000"),
        ("12e0", "12"),
        (1, "1"),
        (0.5, "0.5"),
    ],
)
def test_parses_what_the_api_server_parses(text: str | float, expected: str) -> None:
    assert parse_quantity(text) == Decimal(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", FORMAT_WRONG),
        ("abc", FORMAT_WRONG),
        ("1 Gi", FORMAT_WRONG),
        ("1.5.5", FORMAT_WRONG),
        ("1Gi ", FORMAT_WRONG),
        ("1GB", FORMAT_WRONG),
        ("Gi", FORMAT_WRONG),
        ("1e3x", FORMAT_WRONG),
        ("1K", SUFFIX_WRONG),  # kilo is lower-case k
        ("1Kii", SUFFIX_WRONG),
        ("1e", SUFFIX_WRONG),
        ("1ee3", SUFFIX_WRONG),
        ("1mi", SUFFIX_WRONG),
        ("1i", SUFFIX_WRONG),
        (True, FORMAT_WRONG),
        (None, FORMAT_WRONG),
        (float("nan"), FORMAT_WRONG),
    ],
)
def test_refuses_with_apimachinerys_words(text: object, message: str) -> None:
    with pytest.raises(QuantityError) as caught:
        parse_quantity(text)
    assert str(caught.value) == message


def test_value_and_milli_value_round_up() -> None:
    assert milli_value("100m") == 100
    assert milli_value("0.5") == 500
    assert milli_value("1n") == 1  # MilliValue rounds up
    assert value("1.5") == 2  # Value rounds up
    assert value("100m") == 1
    assert value("2Gi") == 2 * 1024**3
