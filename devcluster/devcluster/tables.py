"""Server-side printing: ``meta.k8s.io/v1`` Table answers, which ``kubectl get`` asks for.

Columns follow the API server's printers for pods, nodes, events and leases,
and ``NAME``/``AGE`` for everything else.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from .resources import ResourceType

__all__ = ["table", "wants_table"]

Obj = dict[str, Any]


def wants_table(accept: str) -> bool:
    """Whether an ``Accept`` header asks for a Table."""
    return "as=Table" in accept


def _age(stamp: str | None) -> str:
    if not stamp:
        return "<unknown>"
    try:
        then = dt.datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return "<unknown>"
    seconds = max(0, int((dt.datetime.now(dt.UTC) - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _column(name: str, type_: str = "string", priority: int = 0) -> Obj:
    return {
        "name": name,
        "type": type_,
        "format": "name" if name == "Name" else "",
        "description": name,
        "priority": priority,
    }


def _pod_row(pod: Obj) -> list[Any]:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    phase = status.get("phase", "Unknown")
    if pod["metadata"].get("deletionTimestamp"):
        phase = "Terminating"
    else:
        for s in statuses:
            waiting = (s.get("state") or {}).get("waiting")
            terminated = (s.get("state") or {}).get("terminated")
            if waiting and waiting.get("reason"):
                phase = waiting["reason"]
            elif terminated and terminated.get("reason"):
                phase = terminated["reason"]
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        phase,
        restarts,
        _age(pod["metadata"].get("creationTimestamp")),
        status.get("podIP") or "<none>",
        pod.get("spec", {}).get("nodeName") or "<none>",
    ]


def _node_row(node: Obj) -> list[Any]:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c.get("status") for c in conditions if c.get("type") == "Ready"), "Unknown")
    state = "Ready" if ready == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = node["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    info = (node.get("status") or {}).get("nodeInfo") or {}
    return [
        node["metadata"]["name"],
        state,
        ",".join(roles) or "<none>",
        _age(node["metadata"].get("creationTimestamp")),
        info.get("kubeletVersion", ""),
    ]


def _event_row(event: Obj) -> list[Any]:
    ref = event.get("involvedObject") or {}
    return [
        _age(event.get("lastTimestamp") or event.get("eventTime")),
        event.get("type", ""),
        event.get("reason", ""),
        f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}",
        event.get("message", ""),
    ]


# The printer columns per kind; every other kind gets NAME and AGE.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "/pods": ("Name", "Ready", "Status", "Restarts", "Age", "IP", "Node"),
    "/nodes": ("Name", "Status", "Roles", "Age", "Version"),
    "/events": ("Last Seen", "Type", "Reason", "Object", "Message"),
    "coordination.k8s.io/leases": ("Name", "Holder", "Age"),
}
_INTEGER_COLUMNS = frozenset({"Restarts"})
_WIDE_COLUMNS = frozenset({"IP", "Node"})  # priority 1: shown with ``-o wide`` only


def _columns(resource: ResourceType) -> list[Obj]:
    return [
        _column(
            name,
            "integer" if name in _INTEGER_COLUMNS else "string",
            1 if name in _WIDE_COLUMNS else 0,
        )
        for name in _COLUMNS.get(resource.key, ("Name", "Age"))
    ]


def _row(resource: ResourceType, obj: Obj) -> list[Any]:
    if resource.key == "/pods":
        return _pod_row(obj)
    if resource.key == "/nodes":
        return _node_row(obj)
    if resource.key == "/events":
        return _event_row(obj)
    if resource.key == "coordination.k8s.io/leases":
        holder = (obj.get("spec") or {}).get("holderIdentity") or ""
        return [obj["metadata"]["name"], holder, _age(obj["metadata"].get("creationTimestamp"))]
    return [obj["metadata"]["name"], _age(obj["metadata"].get("creationTimestamp"))]


def table(
    resource: ResourceType,
    entries: list[Any],
    rv: int,
    with_columns: bool = True,
    meta: Obj | None = None,
) -> bytes:
    """A Table of ``entries`` (store entries with ``.obj`` and ``.raw``) as JSON bytes.

    ``meta`` is the ListMeta to send (a paged list's ``continue``), else just ``rv``.
    """
    head = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta if meta is not None else {"resourceVersion": str(rv)},
        "columnDefinitions": _columns(resource) if with_columns else [],
    }
    rows = [
        b'{"cells":%s,"object":%s}' % (json.dumps(_row(resource, e.obj)).encode(), e.raw)
        for e in entries
    ]
    return json.dumps(head)[:-1].encode() + b',"rows":[' + b",".join(rows) + b"]}"
