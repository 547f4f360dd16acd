"""Kubernetes resource quantities ("100m", "1.5", "2Ki", "1e3") as numbers.

The grammar is the one of ``k8s.io/apimachinery/pkg/api/resource``::

    <quantity> ::= <signedNumber><suffix>
    <suffix>   ::= <binarySI> | <decimalExponent> | <decimalSI>
    binarySI   ::= Ki | Mi | Gi | Ti | Pi | Ei
    decimalSI  ::= n | u | m | "" | k | M | G | T | P | E
    decimalExponent ::= e<signedNumber> | E<signedNumber>

Parsing goes through :class:`decimal.Decimal` so that "0.1" CPU and "1Ei"
bytes are exact; callers convert once to the unit they compute in.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

__all__ = ["QuantityError", "cpu_cores", "cpu_millicores", "memory_bytes", "parse_quantity"]

_BINARY = {
    "Ki": Decimal(1024),
    "Mi": Decimal(1024) ** 2,
    "Gi": Decimal(1024) ** 3,
    "Ti": Decimal(1024) ** 4,
    "Pi": Decimal(1024) ** 5,
    "Ei": Decimal(1024) ** 6,
}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
# The number part: optional sign, digits with an optional fraction (".5" and "5."
# are accepted, as apimachinery does); then the suffix, matched separately below.
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<exp>[eE][+-]?[0-9]+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?))$"
)


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def parse_quantity(value: str | int | float | Decimal) -> Decimal:
    """Parse a Kubernetes quantity into an exact number of base units.

    Parameters
    ----------
    value
        A quantity string such as ``"250m"``, ``"1.5"``, ``"2Gi"`` or ``"1e3"``.
        Plain numbers (which a JSON document may carry) are accepted as they are.

    Returns
    -------
    Decimal
        The quantity in base units (cores for CPU, bytes for memory).

    Raises
    ------
    QuantityError
        If ``value`` does not follow the Kubernetes quantity grammar.
    """
    if isinstance(value, bool):
        raise QuantityError(f"not a quantity: {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"not a quantity: {value!r}")
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise QuantityError(f"not a quantity: {value!r}")
    match = _QUANTITY.match(value)
    if match is None:
        raise QuantityError(f"not a Kubernetes quantity: {value!r}")
    try:
        number = Decimal(match["num"])
        if match["exp"] is not None:
            return number.scaleb(int(match["exp"][1:]))
    except (InvalidOperation, ValueError) as exc:  # pragma: no cover - the regex guards
        raise QuantityError(f"not a Kubernetes quantity: {value!r}") from exc
    suffix = match["suffix"]
    return number * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])


def cpu_cores(value: str | int | float | Decimal) -> float:
    """Parse a CPU quantity into cores (``"250m"`` → ``0.25``).

    Raises
    ------
    QuantityError
        If ``value`` is not a quantity.
    """
    return float(parse_quantity(value))


def cpu_millicores(value: str | int | float | Decimal) -> int:
    """Parse a CPU quantity (or a number of cores) into whole millicores, rounding up.

    Kubernetes accounts CPU requests in millicores (``Quantity.MilliValue()``, which
    rounds up), so placement does too: integer sums stay exact however many pods
    are added and removed.

    Raises
    ------
    QuantityError
        If ``value`` is not a quantity.
    """
    return math.ceil(parse_quantity(value) * 1000)


def memory_bytes(value: str | int | float | Decimal) -> int:
    """Parse a memory (or any countable) quantity into a whole number, rounding up.

    Kubernetes rounds fractional byte counts up (``Quantity.Value()``), so ``"1.5"``
    bytes is 2 and ``"100m"`` bytes is 1.

    Raises
    ------
    QuantityError
        If ``value`` is not a quantity.
    """
    return math.ceil(parse_quantity(value))
