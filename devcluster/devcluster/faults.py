"""Fault injection for tests: make matching requests fail or hang.

A fault matches requests by verb (``get``, ``list``, ``watch``, ``create``,
``update``, ``patch``, ``delete``, or ``*``), resource (``pods``,
``pods/status``, ``persistentvolumeclaims``, or ``*``) and optionally
namespace and name. The next ``count`` matching requests either answer with
``status`` (409, 500, 503, ...; a Status object with the matching reason) or
are held for ``delay`` seconds first (a delay with no status then proceeds
normally: a slow API server). Set them from Python
(``cluster.faults.add(...)``) or over HTTP::

    POST   /_devcluster/faults  {"verb": "create", "resource": "pods",
                                 "status": 500, "count": 2, "delay": 0}
    GET    /_devcluster/faults  -> the faults still armed
    DELETE /_devcluster/faults  -> disarm all
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .errors import ApiError

__all__ = ["Fault", "Faults"]

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class Fault:
    """One armed fault; see the module docstring."""

    verb: str = "*"
    resource: str = "*"
    status: int | None = None
    count: int = 1
    delay: float = 0.0
    namespace: str | None = None
    name: str | None = None

    def matches(self, verb: str, resource: str, namespace: str | None, name: str | None) -> bool:
        """Whether a request is hit by this fault."""
        return (
            self.count > 0
            and self.verb in ("*", verb)
            and self.resource in ("*", resource)
            and (self.namespace is None or self.namespace == namespace)
            and (self.name is None or self.name == name)
        )

    def error(self) -> ApiError | None:
        """The error to answer with, or None for a delay-only fault."""
        if self.status is None:
            return None
        reason = _REASONS.get(self.status, "InternalError")
        return ApiError(self.status, reason, f"injected fault: {self.status} {reason}")


class Faults:
    """The armed faults of one cluster."""

    def __init__(self) -> None:
        self.armed: list[Fault] = []

    def add(
        self,
        verb: str = "*",
        resource: str = "*",
        status: int | None = None,
        count: int = 1,
        delay: float = 0.0,
        namespace: str | None = None,
        name: str | None = None,
    ) -> Fault:
        """Arm a fault for the next ``count`` matching requests."""
        fault = Fault(verb, resource, status, count, delay, namespace, name)
        self.armed.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every fault."""
        self.armed.clear()

    def take(
        self, verb: str, resource: str, namespace: str | None, name: str | None
    ) -> Fault | None:
        """The first fault hitting this request (its count used up by one), or None."""
        for fault in self.armed:
            if fault.matches(verb, resource, namespace, name):
                fault.count -= 1
                if fault.count <= 0:
                    self.armed.remove(fault)
                return fault
        return None

    def describe(self) -> list[dict[str, object]]:
        """The armed faults as JSON-ready dicts."""
        return [asdict(f) for f in self.armed]
