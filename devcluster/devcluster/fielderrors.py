"""Field errors worded as apimachinery's ``field.Error`` words them.

The API server's validation collects ``field.Error`` values (a type, a path, the
bad value, a detail) and answers 422 ``Invalid`` with one ``Status`` cause per
error: ``{"reason": "FieldValueDuplicate", "message": "Duplicate value: \\"main\\"",
"field": "spec.containers[1].name"}``. :class:`FieldErrors` collects them the
same way and turns them into that answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

__all__ = ["FieldError", "FieldErrors", "go_value"]


def go_value(value: Any) -> str:
    """A bad value as ``field.Error`` prints it: strings quoted, numbers bare."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class FieldError:
    """One cause: ``reason`` is the Status cause type (``FieldValueInvalid``, ...)."""

    field: str
    reason: str
    body: str

    @property
    def text(self) -> str:
        """``field: body``, as in the Status message."""
        return f"{self.field}: {self.body}" if self.field else self.body


class FieldErrors:
    """An ordered list of field errors (``field.ErrorList``)."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def _add(self, path: str, reason: str, body: str) -> None:
        self.items.append(FieldError(path, reason, body))

    def invalid(self, path: str, value: Any, detail: str) -> None:
        """``field.Invalid``: ``Invalid value: "x": detail``."""
        self._add(path, "FieldValueInvalid", f"Invalid value: {go_value(value)}: {detail}")

    def invalid_all(self, path: str, value: Any, details: Iterable[str]) -> None:
        """One ``field.Invalid`` per message of a name check (as the server adds them)."""
        for detail in details:
            self.invalid(path, value, detail)

    def required(self, path: str, detail: str = "") -> None:
        """``field.Required``: ``Required value`` (``: detail``)."""
        self._add(path, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))

    def duplicate(self, path: str, value: Any) -> None:
        """``field.Duplicate``: ``Duplicate value: "x"``."""
        self._add(path, "FieldValueDuplicate", f"Duplicate value: {go_value(value)}")

    def not_found(self, path: str, value: Any) -> None:
        """``field.NotFound``: ``Not found: "x"``."""
        self._add(path, "FieldValueNotFound", f"Not found: {go_value(value)}")

    def forbidden(self, path: str, detail: str) -> None:
        """``field.Forbidden``: ``Forbidden: detail``."""
        self._add(path, "FieldValueForbidden", f"Forbidden: {detail}")

    def too_long(self, path: str, limit: int) -> None:
        """``field.TooLong``: ``Too long: must have at most N bytes``."""
        self._add(path, "FieldValueTooLong", f"Too long: must have at most {limit} bytes")

    def not_supported(self, path: str, value: Any, supported: Iterable[str]) -> None:
        """``field.NotSupported``: ``Unsupported value: "x": supported values: "a", "b"``."""
        choices = ", ".join(json.dumps(s) for s in supported)
        self._add(
            path,
            "FieldValueNotSupported",
            f"Unsupported value: {go_value(value)}: supported values: {choices}",
        )

    def error(self, kind: str, name: str, group: str = "") -> ApiError:
        """The 422 ``Invalid`` answer: ``Kind "name" is invalid: [cause, cause]``.

        A kind of a named group is qualified as the server's ``GroupKind`` prints
        it: ``Lease.coordination.k8s.io "x" is invalid: ...``.
        """
        texts = [e.text for e in self.items]
        summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
        details: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "causes": [
                {"reason": e.reason, "message": e.body, "field": e.field} for e in self.items
            ],
        }
        if group:
            details["group"] = group
        qualified = f"{kind}.{group}" if group else kind
        return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {summary}', details)

    def raise_if_any(self, kind: str, name: str, group: str = "") -> None:
        """Raise :meth:`error` if anything was collected."""
        if self.items:
            raise self.error(kind, name, group)
