"""ClusterCache over real HTTP against the dev cluster: lists, watches, metrics, 410s."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from kubernetes_asyncio.client import CoreV1Api, CustomObjectsApi

from lsst_hub.placement import ClusterCache

from .oracle import oracle_choose

pytestmark = pytest.mark.line_independent

GiB = 1 << 30
MakeCluster = Callable[..., Awaitable[Any]]


async def eventually(check: Callable[[], bool], within: float = 30.0) -> None:
    """Wait until ``check()`` holds (watch events arrive asynchronously)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def pod_body(name: str, node: str | None, cpu: str, memory: str = "1Gi") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [
            {
                "name": "notebook",
                "image": "jupyter/base-notebook",
                "resources": {"requests": {"cpu": cpu, "memory": memory}},
            }
        ]
    }
    if node is not None:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


class Harness:
    def __init__(self, cluster: Any, api: Any) -> None:
        self.cluster = cluster
        self.api = api
        self.core = CoreV1Api(api)
        self.custom = CustomObjectsApi(api)

    async def namespace(self, name: str) -> None:
        await self.core.create_namespace({"metadata": {"name": name}})

    async def pod(
        self, ns: str, name: str, node: str | None, cpu: str, memory: str = "1Gi"
    ) -> None:
        await self.core.create_namespaced_pod(ns, pod_body(name, node, cpu, memory))

    async def lists(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        import json

        nodes = await self.core.list_node(_preload_content=False)
        pods = await self.core.list_pod_for_all_namespaces(_preload_content=False)
        return json.loads(await nodes.read())["items"], json.loads(await pods.read())["items"]

    async def node_metrics(self, node: str, cpu: str, memory: str, stamp: str) -> None:
        await self.custom.create_cluster_custom_object(
            "metrics.k8s.io",
            "v1beta1",
            "nodes",
            {
                "apiVersion": "metrics.k8s.io/v1beta1",
                "kind": "NodeMetrics",
                "metadata": {"name": node},
                "timestamp": stamp,
                "window": "30s",
                "usage": {"cpu": cpu, "memory": memory},
            },
        )


@pytest.fixture
async def harness(make_devcluster: MakeCluster) -> AsyncIterator[Harness]:
    cluster = await make_devcluster(nodes=3, node_cpu="4", node_memory="16Gi")
    async with cluster.api_client() as api:
        yield Harness(cluster, api)


@pytest.fixture
async def started(harness: Harness) -> AsyncIterator[tuple[Harness, ClusterCache]]:
    cache = ClusterCache(harness.api, metrics_interval=None, watch_timeout=30)
    await asyncio.wait_for(cache.start(), 60)
    yield harness, cache
    await cache.stop()


async def test_start_loads_nodes_and_pods_of_all_namespaces(harness: Harness) -> None:
    await harness.namespace("jhub")
    await harness.namespace("other-service")
    await harness.pod("jhub", "jupyter-alice", "node-1", "1")
    await harness.pod("other-service", "db", "node-1", "2", "4Gi")
    await harness.pod("other-service", "web", "node-2", "500m")
    cache = ClusterCache(harness.api, metrics_interval=None)
    await asyncio.wait_for(cache.start(), 60)
    try:
        assert cache.node_names() == ["node-1", "node-2", "node-3"]
        totals = cache.totals("node-1")
        assert (totals.cpu_requested, totals.memory_requested, totals.pods) == (3000, 5 * GiB, 2)
        nodes, pods = await harness.lists()
        for cpu, memory in [(1, GiB), (2, 8 * GiB), (0.5, 12 * GiB), (4, GiB)]:
            assert cache.choose(cpu, memory) == oracle_choose(nodes, pods, cpu, memory)
        assert cache.choose(1, GiB).node == "node-3"
    finally:
        await cache.stop()


async def test_watch_events_update_totals(started: tuple[Harness, ClusterCache]) -> None:
    harness, cache = started
    await harness.pod("default", "busy", "node-3", "3")
    await eventually(lambda: cache.totals("node-3").cpu_requested == 3000)
    assert cache.choose(1, GiB).node == "node-1"
    # A pod created without a node is bound by the dev cluster's scheduler; the
    # cache counts it once the binding arrives.
    await harness.pod("default", "scheduled", None, "1")
    await eventually(lambda: sum(cache.totals(n).pods for n in cache.node_names()) == 2)
    await harness.core.delete_namespaced_pod("busy", "default", grace_period_seconds=0)
    await eventually(lambda: cache.totals("node-3").cpu_requested == 0)
    nodes, pods = await harness.lists()
    assert cache.choose(2, GiB) == oracle_choose(nodes, pods, 2, GiB)


async def test_terminated_pods_stop_counting(started: tuple[Harness, ClusterCache]) -> None:
    harness, cache = started
    await harness.pod("default", "job", "node-2", "2")
    await eventually(lambda: cache.totals("node-2").pods == 1)
    await harness.core.patch_namespaced_pod_status(
        "job", "default", {"status": {"phase": "Succeeded"}}
    )
    await eventually(lambda: cache.totals("node-2").pods == 0)


async def test_node_added_while_running_gets_the_next_placements(
    started: tuple[Harness, ClusterCache],
) -> None:
    harness, cache = started
    for i, node in enumerate(["node-1", "node-2", "node-3"]):
        await harness.pod("default", f"p{i}", node, "1")
    harness.cluster.add_node("node-4", cpu="16", memory="64Gi")
    await eventually(lambda: "node-4" in cache.node_names())
    chosen = []
    for i in range(5):
        placement = cache.choose(1, GiB)
        assert placement.node is not None
        cache.reserve(f"default/new-{i}", placement.node, 1, GiB)
        chosen.append(placement.node)
    assert chosen == ["node-4"] * 5


async def test_deleted_or_not_ready_nodes_are_never_chosen(
    started: tuple[Harness, ClusterCache],
) -> None:
    harness, cache = started
    await harness.core.delete_node("node-1")
    await harness.core.patch_node_status(
        "node-2",
        {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletDown"}]}},
    )
    await eventually(lambda: cache.node_names() == ["node-2", "node-3"])
    await eventually(lambda: cache.choose(0, 0).node == "node-3")
    for i in range(3):
        placement = cache.choose(1, GiB)
        assert placement.node == "node-3"
        cache.reserve(f"default/s{i}", "node-3", 1, GiB)
    placement = cache.choose(2, GiB)
    assert placement.node is None
    assert placement.reason == (
        "No node can start a server with 2 CPU and 1 GiB memory: "
        "of 2 nodes, 1 is not ready, 1 has too little free CPU."
    )


async def test_usage_from_the_metrics_api(harness: Harness) -> None:
    # By requests node-1 is the emptiest; by measured usage it is the busiest.
    await harness.pod("default", "idle-a", "node-2", "2")
    await harness.pod("default", "idle-b", "node-3", "2")
    # A sample whose 30 s window began after the pods started: they are in it.
    stamp = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await harness.node_metrics("node-1", "3500m", "12Gi", stamp)
    await harness.node_metrics("node-2", "100m", "1Gi", stamp)
    await harness.node_metrics("node-3", "200m", "1Gi", stamp)
    cache = ClusterCache(harness.api, metrics_interval=3600)
    await asyncio.wait_for(cache.start(), 60)
    try:
        assert cache.metrics_available is True
        usage = cache.totals("node-1").usage
        assert usage is not None
        assert (usage.cpu, usage.memory) == (3.5, 12 * GiB)
        assert cache.choose(1, GiB).node == "node-1"
        placement = cache.choose(1, GiB, load_metric="usage")
        assert placement.node == "node-2"
        assert placement.reason == (
            "Starting on node-2 (CPU 75%, memory 12% requested; CPU 28%, memory 12% in use)"
        )
    finally:
        await cache.stop()


async def test_pods_newer_than_the_usage_sample_count_by_request(harness: Harness) -> None:
    await harness.node_metrics("node-1", "100m", "1Gi", "2026-01-01T00:00:00Z")
    await harness.node_metrics("node-2", "500m", "1Gi", "2026-01-01T00:00:00Z")
    await harness.node_metrics("node-3", "500m", "1Gi", "2026-01-01T00:00:00Z")
    cache = ClusterCache(harness.api, metrics_interval=3600)
    await asyncio.wait_for(cache.start(), 60)
    try:
        assert cache.choose(1, GiB, load_metric="usage").node == "node-1"
        # A server started after that sample: the sample cannot show it yet.
        await harness.pod("default", "fresh", "node-1", "2")
        await eventually(lambda: cache.totals("node-1").cpu_unmeasured == 2000)
        placement = cache.choose(1, GiB, load_metric="usage")
        assert placement.node == "node-2"
    finally:
        await cache.stop()


async def test_absent_metrics_api_falls_back_to_requests_and_logs_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ClusterCache(harness.api, metrics_interval=3600)
    await asyncio.wait_for(cache.start(), 60)
    try:
        assert cache.metrics_available is True  # the dev cluster serves metrics
        # What a cluster without metrics-server answers for the metrics API.
        harness.cluster.faults.add(verb="list", resource="nodes", status=404, count=2)
        caplog.set_level(logging.INFO, logger="lsst_hub.placement")
        await cache.refresh_usage()
        await cache.refresh_usage()
        assert cache.metrics_available is False
        absent = [r for r in caplog.records if "metrics.k8s.io is not available" in r.message]
        assert len(absent) == 1
        assert cache.totals("node-1").usage is None
        placement = cache.choose(1, GiB, load_metric="usage")
        assert placement.node == "node-1"
        assert placement.reason.endswith("; usage not measured)")
    finally:
        await cache.stop()


async def test_reservations_spread_a_burst_of_spawns(started: tuple[Harness, ClusterCache]) -> None:
    harness, cache = started

    async def spawn(i: int) -> str:
        # What the spawner does: decide and reserve without yielding, then create.
        placement = cache.choose(1, 2 * GiB)
        assert placement.node is not None
        cache.reserve(f"default/jupyter-{i}", placement.node, 1, 2 * GiB)
        await harness.pod("default", f"jupyter-{i}", placement.node, "1", "2Gi")
        return placement.node

    chosen = await asyncio.gather(*(spawn(i) for i in range(9)))
    assert Counter(chosen) == {"node-1": 3, "node-2": 3, "node-3": 3}
    # Each reservation is handed over to its pod once the watch delivers it.
    await eventually(lambda: cache.book.reservations() == {})
    assert [cache.totals(n).pods for n in ("node-1", "node-2", "node-3")] == [3, 3, 3]


async def test_relists_after_410_gone(make_devcluster: MakeCluster) -> None:
    cluster = await make_devcluster(nodes=2, history=5)
    async with cluster.api_client() as api:
        harness = Harness(cluster, api)
        cache = ClusterCache(api, metrics_interval=None, watch_timeout=1)
        await asyncio.wait_for(cache.start(), 60)
        try:
            assert cache.list_counts["pods"] == 1
            # Hold the cache's next pod watch while more events happen than the
            # server keeps: when it resumes from its resourceVersion it gets 410.
            cluster.faults.add(verb="watch", resource="pods", delay=3.0, count=1)
            await eventually(lambda: not cluster.faults.armed or cluster.faults.armed[0].count == 0)
            for i in range(8):
                await harness.pod("default", f"p{i}", "node-1", "100m")
            await eventually(lambda: cache.list_counts["pods"] >= 2)
            await eventually(lambda: cache.totals("node-1").pods == 8)
            assert cache.totals("node-1").cpu_requested == 800
        finally:
            await cache.stop()


async def test_survives_api_errors(make_devcluster: MakeCluster) -> None:
    cluster = await make_devcluster(nodes=2)
    async with cluster.api_client() as api:
        harness = Harness(cluster, api)
        # The first two lists fail: start() still returns once the retry succeeds.
        cluster.faults.add(verb="list", resource="pods", status=500, count=2)
        cache = ClusterCache(api, metrics_interval=None, watch_timeout=1, backoff_max=0.5)
        await asyncio.wait_for(cache.start(), 60)
        try:
            cluster.faults.add(verb="watch", resource="pods", status=503, count=3)
            await harness.pod("default", "late", "node-2", "1")
            await eventually(lambda: cache.totals("node-2").pods == 1)
        finally:
            await cache.stop()


async def test_start_can_be_bounded_and_stops_its_loops(make_devcluster: MakeCluster) -> None:
    cluster = await make_devcluster(nodes=1)
    async with cluster.api_client() as api:
        cluster.faults.add(verb="list", resource="pods", status=500, count=1000)
        cache = ClusterCache(api, metrics_interval=None, backoff_max=0.2)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(cache.start(), 1.0)
        assert cache._tasks == []
        assert cache.list_counts["pods"] == 0
