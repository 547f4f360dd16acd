"""Scheduling: filters, scoring, failure messages worded as kube-scheduler words them."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client

from devcluster import DevCluster

from helpers import eventually, pod

pytestmark = pytest.mark.line_independent


async def node_of(core: client.CoreV1Api, name: str) -> str | None:
    p = await core.read_namespaced_pod(name, "default")
    return p.spec.node_name


async def scheduled(core: client.CoreV1Api, name: str) -> str | None:
    return await node_of(core, name)


async def unschedulable_message(core: client.CoreV1Api, name: str) -> str | None:
    p = await core.read_namespaced_pod(name, "default")
    for c in p.status.conditions or []:
        if c.type == "PodScheduled" and c.status == "False":
            assert c.reason == "Unschedulable"
            return str(c.message)
    return None


async def failed_scheduling_events(core: client.CoreV1Api, name: str) -> list[Any]:
    events = await core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={name},reason=FailedScheduling"
    )
    return list(events.items)


async def test_pod_is_bound_runs_and_gets_scheduler_and_kubelet_events(
    kube_api: Any,
) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_pod("default", pod("web", "500m", "1Gi"))

    async def running() -> Any:
        p = await core.read_namespaced_pod("web", "default")
        return p if p.status.phase == "Running" else None

    p = await eventually(running)
    assert p.spec.node_name.startswith("node-")
    assert p.status.pod_ip.startswith("10.244.")
    assert all(cs.ready for cs in p.status.container_statuses)
    conditions = {c.type: c.status for c in p.status.conditions}
    assert conditions == {
        "PodScheduled": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
        "PodReadyToStartContainers": "True",
    }
    events = (
        await core.list_namespaced_event("default", field_selector="involvedObject.name=web")
    ).items
    reasons = [e.reason for e in events]
    assert reasons[0] == "Scheduled"
    assert reasons[1:] == ["Pulled", "Created", "Started"]
    sched = events[0]
    assert sched.reporting_component == "default-scheduler"
    assert sched.message == f"Successfully assigned default/web to {p.spec.node_name}"
    kubelet = events[-1]
    assert kubelet.source.component == "kubelet" and kubelet.source.host == p.spec.node_name
    assert kubelet.involved_object.field_path == "spec.containers{main}"
    assert kubelet.involved_object.uid == p.metadata.uid


async def test_least_allocated_spreads_and_most_allocated_packs(make_devcluster: Any) -> None:
    for scoring, expect_spread in (("least", True), ("most", False)):
        cluster: DevCluster = await make_devcluster(nodes=3, scoring=scoring)
        async with cluster.api_client() as api:
            core = client.CoreV1Api(api)
            for i in range(3):
                await core.create_namespaced_pod("default", pod(f"p{i}", "1", "1Gi"))
                await eventually(lambda i=i, core=core: scheduled(core, f"p{i}"))
            nodes = {await node_of(core, f"p{i}") for i in range(3)}
        assert (len(nodes) == 3) is expect_spread, (scoring, nodes)


async def test_least_allocated_prefers_the_emptiest_node(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_pod("default", pod("big1", "3", nodeName="node-1"))
    await core.create_namespaced_pod("default", pod("big3", "2", nodeName="node-3"))
    await core.create_namespaced_pod("default", pod("new", "1"))
    assert await eventually(lambda: scheduled(core, "new")) == "node-2"


async def test_insufficient_cpu_and_unschedulable_message(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.patch_node("node-3", {"spec": {"unschedulable": True}})
    await core.create_namespaced_pod("default", pod("huge", "5"))
    message = await eventually(lambda: unschedulable_message(core, "huge"))
    assert message == (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu. "
        "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod."
    )
    events = await eventually(lambda: failed_scheduling_events(core, "huge"))
    assert events[0].type == "Warning"
    assert events[0].message == message


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"nodeSelector": {"disk": "ssd"}}, "3 node(s) didn't match Pod's node affinity/selector"),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {
                                            "key": "kubernetes.io/hostname",
                                            "operator": "In",
                                            "values": ["x"],
                                        }
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            "3 node(s) didn't match Pod's node affinity/selector",
        ),
    ],
)
async def test_selector_and_affinity_failures(
    kube_api: Any, spec: dict[str, Any], reason: str
) -> None:
    core = client.CoreV1Api(kube_api)
    body = pod("picky")
    body["spec"].update(spec)
    await core.create_namespaced_pod("default", body)
    message = await eventually(lambda: unschedulable_message(core, "picky"))
    assert message.startswith(f"0/3 nodes are available: {reason}. preemption: ")


async def test_taints_not_ready_and_tolerations(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.patch_node(
        "node-1",
        {"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}},
    )
    await core.patch_node_status(
        "node-2", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    )
    await core.patch_node("node-3", {"spec": {"unschedulable": True}})
    await core.create_namespaced_pod("default", pod("p"))
    message = await eventually(lambda: unschedulable_message(core, "p"))
    assert message.startswith(
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
        "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
        "1 node(s) were unschedulable. "
    )
    tolerant = pod("tolerant")
    tolerant["spec"]["tolerations"] = [
        {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    ]
    await core.create_namespaced_pod("default", tolerant)
    assert await eventually(lambda: scheduled(core, "tolerant")) == "node-1"


@pytest.mark.parametrize(
    ("operator", "values", "expected"),
    [
        ("In", ["node-2"], {"node-2"}),
        ("NotIn", ["node-1", "node-2"], {"node-3"}),
        ("Exists", None, {"node-1", "node-2", "node-3"}),
        ("Gt", ["2"], {"node-3"}),
        ("Lt", ["2"], {"node-1"}),
    ],
)
async def test_required_node_affinity_operators(
    devcluster: DevCluster,
    kube_api: Any,
    operator: str,
    values: list[str] | None,
    expected: set[str],
) -> None:
    core = client.CoreV1Api(kube_api)
    for i in (1, 2, 3):
        await core.patch_node(f"node-{i}", {"metadata": {"labels": {"rank": str(i)}}})
    key = "kubernetes.io/hostname" if operator in ("In", "NotIn") else "rank"
    expr: dict[str, Any] = {"key": key, "operator": operator}
    if values is not None:
        expr["values"] = values
    body = pod("aff")
    body["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [expr]}]
            }
        }
    }
    await core.create_namespaced_pod("default", body)
    assert await eventually(lambda: scheduled(core, "aff")) in expected


async def test_match_fields_on_metadata_name_and_does_not_exist(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.patch_node("node-1", {"metadata": {"labels": {"busy": "yes"}}})
    body = pod("fields")
    body["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                # a field requirement takes exactly one value (the API server's rule):
                # two terms, ORed, name node-1 or node-3
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [{"key": "busy", "operator": "DoesNotExist"}],
                        "matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": [node]}
                        ],
                    }
                    for node in ("node-1", "node-3")
                ]
            }
        }
    }
    await core.create_namespaced_pod("default", body)
    assert await eventually(lambda: scheduled(core, "fields")) == "node-3"


async def test_memory_and_pod_count_limits(make_devcluster: Any) -> None:
    cluster: DevCluster = await make_devcluster(nodes=2, node_memory="1Gi", node_pods=1)
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod("default", pod("a", memory="512Mi"))
        await eventually(lambda: scheduled(core, "a"))
        await core.create_namespaced_pod("default", pod("b", memory="2Gi"))
        message = await eventually(lambda: unschedulable_message(core, "b"))
        # node with "a" fails both checks; the other one memory only
        assert message == (
            "0/2 nodes are available: 1 Too many pods, 2 Insufficient memory. preemption: "
            "0/2 nodes are available: 2 No preemption victims found for incoming pod."
        )


async def test_pending_pod_is_retried_when_a_node_is_added(
    devcluster: DevCluster, kube_api: Any
) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_pod("default", pod("waiting", "8"))
    await eventually(lambda: unschedulable_message(core, "waiting"))
    node = (await core.read_node("node-1")).to_dict()
    big = {
        "metadata": {"name": "node-big", "labels": {"kubernetes.io/hostname": "node-big"}},
        "status": {
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    assert node  # the API is the way nodes come and go
    await core.create_node(big)
    assert await eventually(lambda: scheduled(core, "waiting")) == "node-big"


async def test_pending_pod_is_retried_when_capacity_frees(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    for i in (1, 2, 3):
        await core.create_namespaced_pod("default", pod(f"fill{i}", "4", nodeName=f"node-{i}"))
    await core.create_namespaced_pod("default", pod("next", "2"))
    await eventually(lambda: unschedulable_message(core, "next"))
    await core.delete_namespaced_pod("fill2", "default", grace_period_seconds=0)
    assert await eventually(lambda: scheduled(core, "next")) == "node-2"


async def test_no_nodes(make_devcluster: Any) -> None:
    cluster: DevCluster = await make_devcluster(nodes=0)
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod("default", pod("alone"))
        assert await eventually(lambda: unschedulable_message(core, "alone")) == (
            "no nodes available to schedule pods"
        )


async def test_deleting_a_node_removes_its_pods(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_pod("default", pod("orphan", nodeName="node-2"))
    await core.delete_node("node-2")

    async def orphan_gone() -> bool:
        return not (await core.list_namespaced_pod("default")).items

    await eventually(orphan_gone)
