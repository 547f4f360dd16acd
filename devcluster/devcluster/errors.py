"""API errors as the Kubernetes API server reports them: ``kind: Status`` objects."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "already_exists",
    "bad_request",
    "conflict",
    "expired_continue",
    "forbidden",
    "forbidden_by",
    "gone",
    "invalid",
    "not_found",
    "status_object",
]


def status_object(
    code: int,
    reason: str,
    message: str,
    details: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``Status`` failure object with the fields a real API server fills."""
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": dict(metadata or {}),
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if not reason:
        del status["reason"]  # StatusReasonUnknown is "", which the server omits
    if details:
        status["details"] = details
    return status


class ApiError(Exception):
    """An error answer: HTTP ``code`` with a Status body.

    Parameters
    ----------
    code
        The HTTP status code.
    reason
        The ``StatusReason`` (``NotFound``, ``AlreadyExists``, ...).
    message
        The human-readable message, worded as the real server words it.
    details
        The Status ``details`` (name, group, kind, causes).
    metadata
        The Status ``metadata`` (a ListMeta: ``continue`` on an expired list).
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.metadata = metadata

    def status(self) -> dict[str, Any]:
        """The Status object to send."""
        return status_object(self.code, self.reason, self.message, self.details, self.metadata)


def _details(plural: str, name: str, group: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return details


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def _about(code: int, reason: str, plural: str, name: str, group: str, what: str) -> ApiError:
    """An error about one named object: ``pods "x" <what>``."""
    return ApiError(
        code, reason, f'{_qualified(plural, group)} "{name}" {what}', _details(plural, name, group)
    )


def not_found(plural: str, name: str, group: str = "") -> ApiError:
    """404: ``pods "x" not found``."""
    return _about(404, "NotFound", plural, name, group, "not found")


def already_exists(plural: str, name: str, group: str = "") -> ApiError:
    """409: ``pods "x" already exists``."""
    return _about(409, "AlreadyExists", plural, name, group, "already exists")


def conflict(plural: str, name: str, group: str = "", why: str = "") -> ApiError:
    """409 Conflict: the object was modified since the client read it."""
    why = why or (
        "the object has been modified; please apply your changes to the latest version "
        "and try again"
    )
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {why}',
        _details(plural, name, group),
    )


def invalid(kind: str, name: str, causes: list[tuple[str, str]], group: str = "") -> ApiError:
    """422 Invalid: ``Pod "x" is invalid: field: message`` (``Kind.group`` for named groups).

    Parameters
    ----------
    causes
        ``(field, message)`` pairs.
    """
    text = "; ".join(f"{f}: {m}" if f else m for f, m in causes)
    if len(causes) > 1:
        text = "[" + ", ".join(f"{f}: {m}" if f else m for f, m in causes) + "]"
    details = {
        "name": name,
        "kind": kind,
        "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
    }
    if group:
        details["group"] = group
    qualified = f"{kind}.{group}" if group else kind  # GroupKind.String()
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {text}', details)


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, "BadRequest", message)


def gone(requested: int, oldest: int) -> ApiError:
    """410 Expired: a watch asked for history the server no longer keeps."""
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")


def expired_continue(fresh_token: str) -> ApiError:
    """410 Expired: a list's continue token is older than the kept history.

    Like the API server, the answer carries a token (``metadata.continue``) that
    goes on with the rest of the list at the latest state, no longer consistent.
    """
    return ApiError(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. "
        "You can start a new list without the continue parameter, or use the continue "
        "token in this response to retrieve the remainder of the results. Continuing with "
        "the provided token results in an inconsistent list - objects that were created, "
        "modified, or deleted between the time the first chunk was returned and now may "
        "show up in the list.",
        metadata={"continue": fresh_token},
    )


def forbidden_by(plural: str, name: str, group: str = "", reason: str = "") -> ApiError:
    """403 as ``errors.NewForbidden`` words it: ``leases.coordination.k8s.io "x" is forbidden: ``.

    The server answers so when authorization runs inside a request (the create
    check of a PUT that creates); ``reason`` is the authorizer's, empty from RBAC.
    """
    return ApiError(
        403,
        "Forbidden",
        f'{_qualified(plural, group)} "{name}" is forbidden: {reason}',
        _details(plural, name, group),
    )


def forbidden(
    user: str,
    verb: str,
    plural: str,
    group: str,
    namespace: str | None,
    name: str | None,
    subresource: str = "",
) -> ApiError:
    """403 Forbidden, worded as the RBAC authorizer words it."""
    resource = f"{plural}/{subresource}" if subresource else plural
    subject = f'{_qualified(plural, group)} "{name}"' if name else _qualified(plural, group)
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{group}" {scope}'
    )
    return ApiError(403, "Forbidden", message, _details(plural, name or "", group))
