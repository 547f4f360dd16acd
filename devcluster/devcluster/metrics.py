"""The ``metrics.k8s.io/v1beta1`` API (what metrics-server serves), test-writable.

A real metrics API is read-only and fed by kubelets. Here ``NodeMetrics`` and
``PodMetrics`` objects may also be created, replaced, patched and deleted
through the API (``POST /apis/metrics.k8s.io/v1beta1/nodes`` with
``{"metadata": {"name": "node-1"}, "usage": {"cpu": "3", "memory": "10Gi"}}``)
so tests can set usage. For nodes and running pods without a stored object the
usage is synthesised from what is scheduled: the sum of the requests of the
pods on the node (a pod uses what it asked for).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import resources as res
from .registry import PODS, Registry, now, require
from .scheduler import Scheduler, pod_requests
from .store import Entry, Obj

__all__ = ["NODE_METRICS", "POD_METRICS", "metrics_entries"]

NODE_METRICS = require(res.find("metrics.k8s.io", "v1beta1", "nodes"))
POD_METRICS = require(res.find("metrics.k8s.io", "v1beta1", "pods"))


def _usage(milli: int, memory: int) -> dict[str, str]:
    return {"cpu": f"{milli * 1_000_000}n", "memory": f"{memory // 1024}Ki"}


def _metrics_object(kind: str, name: str, namespace: str | None, **extra: Any) -> Obj:
    meta: Obj = {"name": name, "creationTimestamp": now()}
    if namespace is not None:
        meta["namespace"] = namespace
    return {
        "kind": kind,
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": meta,
        "timestamp": now(),
        "window": "30s",
        **extra,
    }


def metrics_entries(
    registry: Registry, scheduler: Scheduler, resource: Any, namespace: str | None
) -> Iterator[Entry]:
    """Stored metrics objects, then synthesised ones for what has none."""
    store = registry.store
    stored = list(store.entries(resource, namespace))
    yield from stored
    have = {(e.obj["metadata"].get("namespace", ""), e.obj["metadata"]["name"]) for e in stored}
    if resource is NODE_METRICS:
        for info in scheduler.nodes.values():
            if ("", info.name) not in have:
                yield Entry(
                    _metrics_object(
                        "NodeMetrics",
                        info.name,
                        None,
                        usage=_usage(info.used_cpu, info.used_memory),
                    )
                )
        return
    for pod in store.objects(PODS, namespace):
        meta = pod["metadata"]
        if (
            pod.get("status", {}).get("phase") != "Running"
            or (meta["namespace"], meta["name"]) in have
        ):
            continue
        containers = []
        for c in pod["spec"].get("containers", []):
            cpu, mem = pod_requests({"spec": {"containers": [c]}})
            containers.append({"name": c["name"], "usage": _usage(cpu, mem)})
        yield Entry(
            _metrics_object("PodMetrics", meta["name"], meta["namespace"], containers=containers)
        )
