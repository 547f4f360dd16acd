"""Small builders and waiters shared by the dev cluster tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from multidict import CIMultiDict

from devcluster import DevCluster


def pod(
    name: str,
    cpu: str | None = None,
    memory: str | None = None,
    *,
    labels: dict[str, str] | None = None,
    node_selector: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A minimal valid Pod manifest."""
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: dict[str, Any] = {"name": "main", "image": "busybox:1.36"}
    if requests:
        container["resources"] = {"requests": requests}
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [container], **spec},
    }
    if node_selector:
        body["spec"]["nodeSelector"] = node_selector
    return body


def pv(name: str, size: str = "10Gi", claim: dict[str, str] | None = None, **spec: Any) -> Any:
    """A static RWX PersistentVolume on hostPath /gpfs/home/NAME (``spec`` overrides)."""
    body: dict[str, Any] = {
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": f"/gpfs/home/{name}"},
            **spec,
        },
    }
    if claim:
        body["spec"]["claimRef"] = claim
    return body


def pvc(name: str, volume: str | None = None, size: str = "1Gi") -> Any:
    """A RWX claim without storage class, naming ``volume`` if given."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": size}},
        "storageClassName": "",
    }
    if volume:
        spec["volumeName"] = volume
    return {"metadata": {"name": name}, "spec": spec}


async def eventually(
    check: Callable[[], Awaitable[Any]], within: float = 20.0, interval: float = 0.02
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds.

    The bound only stops a hang on a loaded machine; it is not what is tested.
    """
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within}s (last: {result!r})")
        await asyncio.sleep(interval)


async def pod_phase(core: client.CoreV1Api, name: str, namespace: str = "default") -> str | None:
    """The pod's phase, or None if it does not exist."""
    try:
        p = await core.read_namespaced_pod(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return str(p.status.phase)


async def gone(core: client.CoreV1Api, name: str, namespace: str = "default") -> bool:
    """True once the pod is not found."""
    return await pod_phase(core, name, namespace) is None


async def raw(
    cluster: DevCluster,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    token: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, Any]:
    """One plain HTTP request to the cluster; returns (status, decoded JSON body).

    ``headers`` are sent as well, repeated names included; a ``bytes`` body is sent as is.
    """
    sent = CIMultiDict({"Authorization": f"Bearer {token or cluster.admin_token}"})
    if body is not None:
        sent["Content-Type"] = content_type
    for name, value in headers or []:
        sent.add(name, value)
    data = body if isinstance(body, bytes) or body is None else json.dumps(body)
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, cluster.url + path, data=data, headers=sent) as response,
    ):
        text = await response.text()
        return response.status, (json.loads(text) if text else None)
