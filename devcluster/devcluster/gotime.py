"""Go's ``time.Parse`` for the one layout the API server decodes MicroTimes with.

``metav1.MicroTime`` (a Lease's ``acquireTime`` and ``renewTime``, an Event's
``eventTime``) is decoded with ``time.Parse(RFC3339Micro, text)``, layout
``2006-01-02T15:04:05.000000Z07:00``: exactly six fractional digits, ``Z`` or a
``±hh:mm`` offset. ``2026-11-30T12:00:00Z`` (no fraction) and nanoseconds are
refused. :func:`micro_time_error` walks the layout as Go's parser does, chunk by
chunk over the bytes, so that a refusal carries Go's words::

    parsing time "2026-11-30T12:00:00Z" as "2006-01-02T15:04:05.000000Z07:00":
    cannot parse "Z" as ".000000"
"""

from __future__ import annotations

__all__ = ["RFC3339_MICRO", "micro_time_error"]

RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"

# The layout as Go's nextStdChunk splits it: (literal prefix, value chunk).
_CHUNKS = (
    ("", "2006"),
    ("-", "01"),
    ("-", "02"),
    ("T", "15"),
    (":", "04"),
    (":", "05"),
    ("", ".000000"),
    ("", "Z07:00"),
)
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class _BadError(Exception):
    """Go's ``errBad``: the value does not match the chunk."""


def _quote(value: bytes) -> str:
    """Go's ``time.quote``: non-ASCII and control bytes as ``\\xNN``."""
    out = []
    for byte in value:
        if byte >= 0x80 or byte < 0x20:
            out.append(f"\\x{byte:02x}")
        elif byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        else:
            out.append(chr(byte))
    return '"' + "".join(out) + '"'


def _digit(value: bytes, i: int) -> bool:
    return len(value) > i and 0x30 <= value[i] <= 0x39


def _getnum(value: bytes, fixed: bool) -> tuple[int, bytes]:
    if not _digit(value, 0):
        raise _BadError
    if not _digit(value, 1):
        if fixed:
            raise _BadError
        return value[0] - 0x30, value[1:]
    return (value[0] - 0x30) * 10 + value[1] - 0x30, value[2:]


def _atoi(value: bytes) -> int:
    """Go's ``time.atoi``: an optional sign, then digits only."""
    sign = 1
    if value[:1] in (b"-", b"+"):
        sign, value = (-1 if value[:1] == b"-" else 1), value[1:]
    if not all(0x30 <= b <= 0x39 for b in value):
        raise _BadError
    return sign * int(value or b"0")


def _days_in(month: int, year: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 29 if month == 2 and leap else _DAYS[month - 1]


def micro_time_error(text: str) -> str | None:
    """Go's error for ``time.Parse(RFC3339Micro, text)``, or None if it parses."""
    whole = text.encode("utf-8", "surrogatepass")
    value = whole
    fields: dict[str, int] = {}

    def fail(layout_elem: str, value_elem: bytes) -> str:
        return (
            f"parsing time {_quote(whole)} as {_quote(RFC3339_MICRO.encode())}: "
            f"cannot parse {_quote(value_elem)} as {_quote(layout_elem.encode())}"
        )

    def out_of_range(what: str) -> str:
        return f"parsing time {_quote(whole)}: {what} out of range"

    for prefix, chunk in _CHUNKS:
        for char in prefix.encode():
            if not value or value[0] != char:
                return fail(prefix, value)
            value = value[1:]
        hold = value
        try:
            if chunk == "2006":
                if len(value) < 4 or not _digit(value, 0):
                    raise _BadError
                fields["year"], value = _atoi(value[:4]), value[4:]
            elif chunk == "01":
                fields["month"], value = _getnum(value, True)
                if not 1 <= fields["month"] <= 12:
                    return out_of_range("month")
            elif chunk == "02":
                fields["day"], value = _getnum(value, True)  # checked against the month below
            elif chunk == "15":
                hour, value = _getnum(value, False)
                if hour >= 24:
                    return out_of_range("hour")
            elif chunk in ("04", "05"):
                number, value = _getnum(value, True)
                if number >= 60:
                    return out_of_range("minute" if chunk == "04" else "second")
            elif chunk == ".000000":
                if len(value) < 7 or value[:1] not in (b".", b","):
                    raise _BadError
                fraction, value = _atoi(value[1:7]), value[7:]
                if fraction < 0:
                    return out_of_range("fractional second")
            elif value[:1] == b"Z":
                value = value[1:]
            else:
                if len(value) < 6 or value[3:4] != b":":
                    raise _BadError
                sign, hours, minutes, value = value[:1], value[1:3], value[4:6], value[6:]
                # as Go: both numbers read, then the range (minutes win), then errors
                bad, offset_hours, offset_minutes = False, 0, 0
                try:
                    offset_hours, _ = _getnum(hours, True)
                    offset_minutes, _ = _getnum(minutes, True)
                except _BadError:
                    bad = True
                if offset_minutes > 60:
                    return out_of_range("time zone offset minute")
                if offset_hours > 24:
                    return out_of_range("time zone offset hour")
                if bad or sign not in (b"+", b"-"):
                    raise _BadError
        except _BadError:
            return fail(chunk, hold)
    if value:
        return f"parsing time {_quote(whole)}: extra text: {_quote(value)}"
    if not 1 <= fields["day"] <= _days_in(fields["month"], fields["year"]):
        return out_of_range("day")
    return None
