"""Reading a notebook pod's state (pure): rejected by the scheduler, finished."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["pod_finished", "unschedulable_reason"]


def unschedulable_reason(
    pod: Mapping[str, Any] | None, events: Iterable[Mapping[str, Any]] = ()
) -> str | None:
    """The scheduler's reason if it rejected the pod, else None.

    Looks at the ``PodScheduled=False/Unschedulable`` condition the scheduler
    writes on the pod, then at ``FailedScheduling`` events about it (KubeSpawner's
    event reflector). A pod already bound to a node is never unschedulable.
    """
    if pod is None:
        return None
    if (pod.get("spec") or {}).get("nodeName"):
        return None
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return str(condition.get("message") or "the scheduler found no node for the pod")
    name = (pod.get("metadata") or {}).get("name")
    for event in events:
        if event.get("reason") == "FailedScheduling" and (
            (event.get("involvedObject") or {}).get("name") == name
        ):
            return str(event.get("message") or "the scheduler found no node for the pod")
    return None


def pod_finished(pod: Mapping[str, Any] | None) -> bool:
    """Whether the pod's server has exited (phase Succeeded/Failed, or the
    notebook container terminated) and the pod is not already being deleted."""
    if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    for container in status.get("containerStatuses") or []:
        if container.get("name") == "notebook" and "terminated" in (container.get("state") or {}):
            return True
    return False
