"""Small builders of Node and Pod JSON dicts (camelCase, as the API returns them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def node(
    name: str,
    cpu: str = "8",
    memory: str = "32Gi",
    pods: str | None = "110",
    *,
    ready: bool | None = True,
    unschedulable: bool = False,
    taints: Sequence[Mapping[str, str]] = (),
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Node; ``ready=None`` leaves out the Ready condition altogether."""
    allocatable = {"cpu": cpu, "memory": memory}
    if pods is not None:
        allocatable["pods"] = pods
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": "True" if ready else "False"})
    spec: dict[str, Any] = {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": dict(labels or {"kubernetes.io/hostname": name})},
        "spec": spec,
        "status": {
            "allocatable": allocatable,
            "capacity": dict(allocatable),
            "conditions": conditions,
        },
    }


def container(cpu: str | None = None, memory: str | None = None, **extra: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": "c", "image": "busybox", "resources": {"requests": requests}, **extra}


def pod(
    name: str,
    node_name: str | None,
    cpu: str | None = "1",
    memory: str | None = "1Gi",
    *,
    namespace: str = "default",
    phase: str = "Running",
    containers: Sequence[Mapping[str, Any]] | None = None,
    init_containers: Sequence[Mapping[str, Any]] = (),
    overhead: Mapping[str, str] | None = None,
    created: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    """A Pod bound to ``node_name`` (``None``: not yet scheduled)."""
    spec: dict[str, Any] = {
        "containers": [dict(c) for c in containers]
        if containers is not None
        else [container(cpu, memory)]
    }
    if node_name is not None:
        spec["nodeName"] = node_name
    if init_containers:
        spec["initContainers"] = [dict(c) for c in init_containers]
    if overhead:
        spec["overhead"] = dict(overhead)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": spec,
        "status": {"phase": phase},
    }
