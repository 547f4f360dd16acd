"""Watches: initial state, resume from a resourceVersion, selectors, timeout, 410 Gone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, watch

from devcluster import DevCluster

pytestmark = pytest.mark.line_independent


async def collect(cluster: DevCluster, path: str, count: int) -> list[dict[str, Any]]:
    """Read ``count`` watch events from a raw watch stream."""
    events: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {cluster.admin_token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(cluster.url + path, headers=headers) as r,
    ):
        assert r.status == 200
        async for line in r.content:
            events.append(json.loads(line))
            if len(events) >= count:
                break
    return events


def cm(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {"v": "1"}}


async def test_watch_without_version_starts_with_current_objects(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_config_map("default", cm("before"))
    seen: list[tuple[str, str]] = []
    async with watch.Watch().stream(
        core.list_namespaced_config_map, "default", timeout_seconds=5
    ) as stream:
        async for event in stream:
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 1:
                await core.create_namespaced_config_map("default", cm("after"))
            if len(seen) == 2:
                break
    assert seen == [("ADDED", "before"), ("ADDED", "after")]


async def test_watch_resumes_after_a_resource_version(
    devcluster: DevCluster, kube_api: Any
) -> None:
    core = client.CoreV1Api(kube_api)
    first = await core.create_namespaced_config_map("default", cm("one"))
    await core.patch_namespaced_config_map("one", "default", {"data": {"v": "2"}})
    await core.delete_namespaced_config_map("one", "default")
    rv = first.metadata.resource_version
    events = await collect(
        devcluster, f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}", 2
    )
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    assert events[0]["object"]["data"] == {"v": "2"}
    assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )


async def test_too_old_resource_version_gives_410_gone_error_event(
    make_devcluster: Any,
) -> None:
    cluster = await make_devcluster(nodes=0, history=5)
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        first = await core.create_namespaced_config_map("default", cm("c0"))
        for i in range(1, 10):
            await core.create_namespaced_config_map("default", cm(f"c{i}"))
    rv = first.metadata.resource_version
    events = await collect(
        cluster, f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}", 1
    )
    assert events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410
    assert status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {rv} (")


async def test_kubernetes_asyncio_watch_raises_410_for_old_version(make_devcluster: Any) -> None:
    cluster = await make_devcluster(nodes=0, history=2)
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        first = await core.create_namespaced_config_map("default", cm("a"))
        for name in ("b", "c", "d"):
            await core.create_namespaced_config_map("default", cm(name))
        stream = watch.Watch().stream(
            core.list_namespaced_config_map,
            "default",
            resource_version=first.metadata.resource_version,
            timeout_seconds=5,
        )
        try:
            async with stream:
                async for _ in stream:
                    raise AssertionError("no event expected before the error")
        except client.ApiException as exc:
            assert exc.status == 410
        else:
            raise AssertionError("expected 410")


async def test_watch_label_selector_reports_objects_leaving_and_entering(
    devcluster: DevCluster, kube_api: Any
) -> None:
    core = client.CoreV1Api(kube_api)
    start = await core.create_namespaced_config_map("default", cm("x", {"app": "hub"}))
    await core.create_namespaced_config_map("default", cm("other", {"app": "db"}))
    await core.patch_namespaced_config_map("x", "default", {"metadata": {"labels": {"app": "db"}}})
    await core.patch_namespaced_config_map("x", "default", {"metadata": {"labels": {"app": "hub"}}})
    rv = start.metadata.resource_version
    path = "/api/v1/namespaces/default/configmaps?watch=1&labelSelector=app%3Dhub"
    path += f"&resourceVersion={rv}"
    events = await collect(devcluster, path, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("DELETED", "x"),
        ("ADDED", "x"),
    ]


async def test_watch_ends_after_timeout_seconds(devcluster: DevCluster) -> None:
    headers = {"Authorization": f"Bearer {devcluster.admin_token}"}
    url = devcluster.url + "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as r:
        # The stream must end by itself: reading to EOF returns (the server closed it).
        body = await asyncio.wait_for(r.read(), 30)
    assert body == b""


async def test_watch_field_selector_on_node_name(devcluster: DevCluster, kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    pods: list[str] = []
    async with watch.Watch().stream(
        core.list_pod_for_all_namespaces, field_selector="spec.nodeName=node-3", timeout_seconds=5
    ) as stream:
        for node in ("node-1", "node-3"):
            await core.create_namespaced_pod(
                "default",
                {
                    "metadata": {"name": f"on-{node}"},
                    "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x:1"}]},
                },
            )
        async for event in stream:
            pods.append(event["object"].metadata.name)
            break
    assert pods == ["on-node-3"]
