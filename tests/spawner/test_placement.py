"""Least-loaded placement through the spawner, against the dev cluster's scheduler."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from kubernetes_asyncio import client

from devcluster import node_object
from lsst_hub.spawner import LSSTSpawner, SpawnError
from tests.spawner.conftest import Env


async def node_of(env: Env, pod_name: str) -> str:
    pod = await env.pod(pod_name)
    assert pod is not None
    return str(pod["spec"]["nodeName"])


async def test_progress_shows_the_chosen_node_first(env: Env) -> None:
    spawner = env.spawner("alice")
    start = spawner.start()
    messages = [event["message"] async for event in spawner.progress()]
    await start
    chosen = [m for m in messages if m.startswith("Starting on ")]
    assert len(chosen) == 1
    node = await node_of(env, spawner.pod_name)
    assert chosen[0].startswith(f"Starting on {node} (CPU ")
    assert "requested" in chosen[0]
    # the choice comes before KubeSpawner's pod events
    events = [i for i, m in enumerate(messages) if "[Normal]" in m]
    assert events and messages.index(chosen[0]) < events[0]
    pod = await env.pod(spawner.pod_name)
    assert pod is not None
    terms = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]} in terms[
        "nodeSelectorTerms"
    ][0]["matchExpressions"]
    await spawner.stop()


@pytest.mark.parametrize("cluster_options", [{"nodes": 3, "node_cpu": "4"}])
async def test_burst_of_spawns_spreads_evenly(env: Env) -> None:
    spawners = [env.spawner(f"user{i}") for i in range(12)]
    await asyncio.gather(*(s.start() for s in spawners))
    counts = Counter([await node_of(env, s.pod_name) for s in spawners])
    assert sorted(counts) == ["node-1", "node-2", "node-3"]
    assert max(counts.values()) - min(counts.values()) <= 1
    await asyncio.gather(*(s.stop() for s in spawners))


@pytest.mark.parametrize("cluster_options", [{"nodes": 2}])
async def test_node_added_later_gets_the_next_spawns_and_removed_node_is_never_chosen(
    env: Env,
) -> None:
    first = [env.spawner(f"early{i}") for i in range(4)]
    for s in first:
        await s.start()
    # a new, empty node joins while the hub runs
    await env.core.create_node(node_object("node-9", index=9))
    newcomer = env.spawner("late")
    await newcomer.start()
    assert await node_of(env, newcomer.pod_name) == "node-9"
    # node-1 goes away: nothing is placed there again
    await env.core.delete_node("node-1")
    later = [env.spawner(f"after{i}") for i in range(4)]
    for s in later:
        await s.start()
    nodes = {await node_of(env, s.pod_name) for s in later}
    assert "node-1" not in nodes
    for s in [*first, newcomer, *later]:
        await s.stop()


async def test_nothing_fits_fails_with_the_reason(env: Env) -> None:
    spawner = env.spawner("big", config=env.config(cpu_guarantee=64.0))
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    message = info.value.jupyterhub_message
    assert message.startswith("No node can start a server with 64 CPU")
    assert "of 3 nodes, 3 have too little free CPU" in message
    assert await env.pod_names() == []


async def test_scheduler_strategy_leaves_choice_to_the_scheduler(env: Env) -> None:
    spawner = env.spawner("sched", config=env.config(placement_strategy="scheduler"))
    await spawner.start()
    pod = await env.pod(spawner.pod_name)
    assert pod is not None
    assert "affinity" not in pod["spec"] or not pod["spec"]["affinity"]
    assert pod["spec"]["nodeName"].startswith("node-")
    await spawner.stop()


def gpu_affinity() -> list[dict[str, Any]]:
    return [{"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["yes"]}]}]


@pytest.mark.parametrize("cluster_options", [{"nodes": 1}])
async def test_admin_node_affinity_is_part_of_the_choice(env: Env) -> None:
    # node-1 is empty but lacks the label; the busier node-2 is the only one allowed.
    await env.core.create_node(node_object("node-2", index=2, labels={"gpu": "yes"}))
    busy = env.spawner("busy", config=env.config(node_affinity_required=gpu_affinity()))
    await busy.start()
    spawner = env.spawner("gpu", config=env.config(node_affinity_required=gpu_affinity()))
    start = spawner.start()
    messages = [event["message"] async for event in spawner.progress()]
    await start
    assert await node_of(env, busy.pod_name) == "node-2"
    assert await node_of(env, spawner.pod_name) == "node-2"
    assert not any("refused" in m for m in messages)
    # The admin's term keeps its own expression next to the hostname pin.
    pod = await env.pod(spawner.pod_name)
    assert pod is not None
    (term,) = pod["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert {e["key"] for e in term["matchExpressions"]} == {"gpu", "kubernetes.io/hostname"}
    await asyncio.gather(busy.stop(), spawner.stop())


@pytest.mark.parametrize("cluster_options", [{"nodes": 1}])
async def test_no_node_matching_the_affinity_fails_at_once(env: Env) -> None:
    spawner = env.spawner("nogpu", config=env.config(node_affinity_required=gpu_affinity()))
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    assert "1 does not match the node selector or affinity" in info.value.jupyterhub_message
    assert await env.pod_names() == []


def pinned_node(pod: Any) -> str:
    """The node the spawner pinned ``pod`` to (the hostname in its required affinity)."""
    terms = pod.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
    (value,) = {
        value
        for term in terms.node_selector_terms
        for expression in term.match_expressions
        if expression.key == "kubernetes.io/hostname"
        for value in expression.values
    }
    return str(value)


def unlabel_chosen_node(env: Env, times: int) -> Any:
    """A ``modify_pod_hook`` that takes ``gpu=yes`` off the chosen node before the pod
    is created: the node changes between the hub's choice and the scheduler's, so
    the scheduler refuses the pod (the race a real cluster can have)."""
    calls: list[str] = []

    async def hook(spawner: LSSTSpawner, pod: Any) -> Any:
        if len(calls) < times:
            node = pinned_node(pod)
            calls.append(node)
            await env.core.patch_node(node, {"metadata": {"labels": {"gpu": None}}})
        return pod

    return hook


async def racing_spawner(env: Env, name: str, refusals: int) -> LSSTSpawner:
    """Two gpu nodes next to node-1, and a spawner whose first ``refusals`` chosen
    nodes lose their gpu label before the pod reaches the scheduler."""
    for i in (2, 3):
        await env.core.create_node(node_object(f"node-{i}", index=i, labels={"gpu": "yes"}))
    hook = unlabel_chosen_node(env, refusals)
    return env.spawner(
        name, config=env.config(node_affinity_required=gpu_affinity(), modify_pod_hook=hook)
    )


@pytest.mark.parametrize("cluster_options", [{"nodes": 1}])
async def test_refused_node_is_replaced_once(env: Env) -> None:
    spawner = await racing_spawner(env, "gpu", refusals=1)
    start = spawner.start()
    messages = [event["message"] async for event in spawner.progress()]
    await start
    assert await node_of(env, spawner.pod_name) == "node-3"
    assert any(m.startswith("node-2 refused the server") for m in messages)
    assert any(m.startswith("Starting on node-3") for m in messages)
    await spawner.stop()


@pytest.mark.parametrize("cluster_options", [{"nodes": 1}])
async def test_twice_refused_fails_with_the_scheduler_reason(env: Env) -> None:
    spawner = await racing_spawner(env, "nogpu", refusals=2)
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    assert str(info.value).startswith("Kubernetes cannot schedule the server: ")
    assert "node(s) didn't match Pod's node affinity/selector" in str(info.value)
    # no pod is left pending
    for _ in range(50):
        if not await env.pod_names():
            break
        await asyncio.sleep(0.1)
    assert await env.pod_names() == []


@pytest.mark.parametrize("cluster_options", [{"nodes": 2}])
async def test_usage_metric_avoids_the_busy_node(env: Env) -> None:
    # node-1 is busy by measurement though nothing is requested on it
    custom = client.CustomObjectsApi(env.core.api_client)
    await custom.create_cluster_custom_object(
        "metrics.k8s.io",
        "v1beta1",
        "nodes",
        {"metadata": {"name": "node-1"}, "usage": {"cpu": "3500m", "memory": "12Gi"}},
    )
    by_requests = env.spawner("req")
    await by_requests.start()
    assert await node_of(env, by_requests.pod_name) == "node-1"  # tie: lower name
    await by_requests.stop()
    await LSSTSpawner.stop_placement_cache()

    by_usage = env.spawner("use", config=env.config(load_metric="usage"))
    start = by_usage.start()
    messages = [event["message"] async for event in by_usage.progress()]
    await start
    assert await node_of(env, by_usage.pod_name) == "node-2"
    chosen = next(m for m in messages if m.startswith("Starting on node-2"))
    assert "in use" in chosen
    await by_usage.stop()


async def test_scheduler_strategy_unschedulable_fails_with_scheduler_reason(env: Env) -> None:
    config = env.config(placement_strategy="scheduler", cpu_guarantee=64.0)
    spawner = env.spawner("huge", config=config)
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    assert str(info.value).startswith("Kubernetes cannot schedule the server: 0/3 nodes")
    assert "Insufficient cpu" in str(info.value)
    assert await env.pod_names() == []
    # The scheduler's FailedScheduling event, the other sign the spawner reads, is
    # found by its event reader too (which sorts the events only once it is there).
    name = spawner.pod_name
    for _ in range(100):
        events = list(spawner._failed_scheduling_events())
        if events:
            break
        await asyncio.sleep(0.1)
    assert any(
        e["reason"] == "FailedScheduling" and e["involvedObject"]["name"] == name for e in events
    )
    # Another pod's FailedScheduling is not this one's.
    spawner.pod_name = "jupyter-other"
    assert list(spawner._failed_scheduling_events()) == []
