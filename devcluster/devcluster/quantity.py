"""Resource quantities (``"250m"``, ``"1.5Gi"``, ``"1e3"``) read as the API server reads them.

A port of ``k8s.io/apimachinery/pkg/api/resource`` ``ParseQuantity``: a sign,
digits with an optional fraction, then a suffix that is a binary SI one (``Ki``
to ``Ei``), a decimal SI one (``n u m "" k M G T P E``) or a decimal exponent
(``e3``, ``E-2``). The scan follows apimachinery's ``parseQuantityString`` step
by step, so what it refuses, and the words it refuses with, are the server's.

Written apart from the product's own parser on purpose: the stand-in is the
reference the product is tested against, and must not share its bugs.
"""

from __future__ import annotations

import math
from decimal import Decimal

__all__ = [
    "FORMAT_WRONG",
    "SUFFIX_WRONG",
    "QuantityError",
    "milli_value",
    "parse_quantity",
    "value",
]

# apimachinery's ErrFormatWrong and ErrSuffix, word for word.
FORMAT_WRONG = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
SUFFIX_WRONG = "unable to parse quantity's suffix"

_DIGITS = frozenset("0123456789")
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
# decimal SI suffixes are powers of ten, binary SI ones powers of 1024
_DECIMAL_SUFFIXES = ("n", "u", "m", "", "k", "M", "G", "T", "P", "E")  # 1e-9 .. 1e18
_SCALE = {
    **{s: Decimal(10) ** e for s, e in zip(_DECIMAL_SUFFIXES, range(-9, 19, 3), strict=True)},
    **{s + "i": Decimal(1024) ** (i + 1) for i, s in enumerate("KMGTPE")},
}


class QuantityError(ValueError):
    """Not a quantity; the message is apimachinery's."""


def _split(text: str) -> tuple[str, str]:
    """``"1.5Gi"`` → ``("1.5", "Gi")``: the number and the suffix, as apimachinery scans them."""
    end = len(text)
    pos = 1 if text[:1] in ("+", "-") else 0
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end and text[pos] == ".":
        pos += 1
        while pos < end and text[pos] in _DIGITS:
            pos += 1
    number, suffix_start = text[:pos], pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(FORMAT_WRONG)
    return number, text[suffix_start:]


def _scale(suffix: str) -> Decimal:
    known = _SCALE.get(suffix)
    if known is not None:
        return known
    exponent = suffix[1:]
    if len(suffix) > 1 and suffix[0] in "eE" and exponent.lstrip("+-").isdigit():
        return Decimal(1).scaleb(int(exponent))
    raise QuantityError(SUFFIX_WRONG)


def parse_quantity(quantity: object) -> Decimal:
    """The exact value of a quantity in base units (cores, bytes, pods).

    Parameters
    ----------
    quantity
        A string, or a JSON number (the API server reads ``1`` as ``"1"``).

    Raises
    ------
    QuantityError
        With apimachinery's message, for anything ``ParseQuantity`` refuses.
    """
    if isinstance(quantity, bool) or not isinstance(quantity, str | int | float):
        raise QuantityError(FORMAT_WRONG)
    if isinstance(quantity, float) and not math.isfinite(quantity):
        raise QuantityError(FORMAT_WRONG)
    text = quantity if isinstance(quantity, str) else repr(quantity)
    if not text:
        raise QuantityError(FORMAT_WRONG)
    number, suffix = _split(text)
    if not number:
        raise QuantityError(FORMAT_WRONG)
    scale = _scale(suffix)
    digits = number.lstrip("+-")
    if digits in ("", "."):
        # apimachinery reads a bare sign or point as zero, as its scan does
        return Decimal(0)
    return Decimal(number) * scale


def value(quantity: object) -> int:
    """``Quantity.Value()``: the value as a whole number, rounded up (bytes, pods)."""
    return math.ceil(parse_quantity(quantity))


def milli_value(quantity: object) -> int:
    """``Quantity.MilliValue()``: the value in thousandths, rounded up (millicpu)."""
    return math.ceil(parse_quantity(quantity) * 1000)
