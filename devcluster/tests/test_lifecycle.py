"""Deletion with grace periods and finalizers, namespaces, PV/PVC binding, metrics."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes_asyncio import client

from devcluster import DevCluster

from helpers import eventually, gone, pod, pod_phase, pv, pvc, raw

pytestmark = pytest.mark.line_independent


async def running(core: client.CoreV1Api, name: str) -> bool:
    return await pod_phase(core, name) == "Running"


async def test_graceful_delete_sets_deletion_timestamp_then_pod_goes(
    make_devcluster: Any,
) -> None:
    cluster: DevCluster = await make_devcluster(nodes=1)
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod("default", pod("g"))
        await eventually(lambda: running(core, "g"))
        deleted = await core.delete_namespaced_pod("g", "default", grace_period_seconds=30)
        assert deleted.metadata.deletion_timestamp is not None
        assert deleted.metadata.deletion_grace_period_seconds == 30
        await eventually(lambda: gone(core, "g"))
        events = await core.list_namespaced_event(
            "default", field_selector="involvedObject.name=g,reason=Killing"
        )
        assert [e.message for e in events.items] == ["Stopping container main"]


async def test_zero_grace_delete_of_unscheduled_pod_is_immediate(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_pod("default", pod("u", node_selector={"no": "where"}))
    await core.delete_namespaced_pod("u", "default", grace_period_seconds=0)
    assert await gone(core, "u")


async def test_finalizers_hold_deletion_until_removed(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    body = {"metadata": {"name": "held", "finalizers": ["example.org/keep"]}}
    await core.create_namespaced_config_map("default", body)
    await core.delete_namespaced_config_map("held", "default")
    held = await core.read_namespaced_config_map("held", "default")
    assert held.metadata.deletion_timestamp is not None
    await core.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}})
    # the object is gone once its finalizers are removed
    with pytest.raises(client.ApiException) as info:
        await core.read_namespaced_config_map("held", "default")
    assert info.value.status == 404


async def test_pod_with_finalizer_stays_after_kubelet_stopped_it(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    body = pod("fin")
    body["metadata"]["finalizers"] = ["example.org/keep"]
    await core.create_namespaced_pod("default", body)
    await eventually(lambda: running(core, "fin"))
    await core.delete_namespaced_pod("fin", "default")

    async def stopped() -> bool:
        p = await core.read_namespaced_pod("fin", "default")
        return p.metadata.deletion_grace_period_seconds == 0

    await eventually(stopped)
    await core.patch_namespaced_pod("fin", "default", {"metadata": {"finalizers": None}})
    assert await gone(core, "fin")


async def test_delete_preconditions_conflict(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_config_map("default", {"metadata": {"name": "pre"}})
    with pytest.raises(client.ApiException) as info:
        await core.delete_namespaced_config_map(
            "pre", "default", body=client.V1DeleteOptions(preconditions={"uid": "not-the-uid"})
        )
    assert info.value.status == 409


async def test_deleting_a_namespace_deletes_its_objects(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_namespace({"metadata": {"name": "temp"}})
    await core.create_namespaced_config_map("temp", {"metadata": {"name": "c"}})
    await core.delete_namespace("temp")

    # The namespace controller empties it in the background, then it goes.
    async def emptied() -> bool:
        return (await core.list_namespaced_config_map("temp")).items == []

    async def namespace_gone() -> bool:
        return "temp" not in {n.metadata.name for n in (await core.list_namespace()).items}

    assert await eventually(emptied)
    assert await eventually(namespace_gone)


async def phase(read: Any, *args: str) -> str:
    return str((await read(*args)).status.phase)


async def test_pvc_binds_to_named_pv_and_both_are_bound(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_persistent_volume(
        pv("home-alice", claim={"namespace": "default", "name": "claim-alice"})
    )
    await eventually(lambda: _eq(phase(core.read_persistent_volume, "home-alice"), "Available"))
    await core.create_namespaced_persistent_volume_claim(
        "default", pvc("claim-alice", "home-alice")
    )
    await eventually(
        lambda: _eq(
            phase(core.read_namespaced_persistent_volume_claim, "claim-alice", "default"), "Bound"
        )
    )
    volume = await core.read_persistent_volume("home-alice")
    claim = await core.read_namespaced_persistent_volume_claim("claim-alice", "default")
    assert volume.status.phase == "Bound"
    assert volume.spec.claim_ref.name == "claim-alice"
    assert volume.spec.claim_ref.uid == claim.metadata.uid
    assert claim.status.capacity == {"storage": "10Gi"}


async def failed_binding_events(core: client.CoreV1Api, claim: str) -> list[Any]:
    """The claim's FailedBinding events."""
    events = await core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={claim},reason=FailedBinding"
    )
    return list(events.items)


async def _eq(value: Any, expected: str) -> bool:
    return bool(await value == expected)


async def test_pvc_naming_a_pv_claimed_by_another_stays_pending_with_event(
    kube_api: Any,
) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_persistent_volume(pv("home-bob", claim={"namespace": "default", "name": "x"}))
    await core.create_namespaced_persistent_volume_claim("default", pvc("thief", "home-bob"))
    events = await eventually(lambda: failed_binding_events(core, "thief"))
    assert events[0].message == 'volume "home-bob" already bound to a different claim.'
    assert events[0].type == "Warning"
    claim = await core.read_namespaced_persistent_volume_claim("thief", "default")
    assert claim.status.phase == "Pending"


async def test_pvc_too_big_for_pv_stays_pending(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_persistent_volume(pv("small", size="1Gi"))
    await core.create_namespaced_persistent_volume_claim("default", pvc("big", "small", "5Gi"))
    events = await eventually(lambda: failed_binding_events(core, "big"))
    assert events[0].message == 'Cannot bind to requested volume "small": requested PV is too small'


async def test_pvc_without_volume_name_binds_smallest_fitting_pv(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_persistent_volume(pv("pv-large", size="100Gi"))
    await core.create_persistent_volume(pv("pv-small", size="2Gi"))
    await core.create_namespaced_persistent_volume_claim("default", pvc("any", size="1Gi"))

    async def bound_to() -> str | None:
        claim = await core.read_namespaced_persistent_volume_claim("any", "default")
        return claim.spec.volume_name if claim.status.phase == "Bound" else None

    assert await eventually(bound_to) == "pv-small"


async def test_deleting_claim_releases_retained_pv_without_deleting_it(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_persistent_volume(pv("home-carol"))
    await core.create_namespaced_persistent_volume_claim("default", pvc("c", "home-carol"))
    await eventually(
        lambda: _eq(phase(core.read_namespaced_persistent_volume_claim, "c", "default"), "Bound")
    )
    await core.delete_namespaced_persistent_volume_claim("c", "default")
    await eventually(lambda: _eq(phase(core.read_persistent_volume, "home-carol"), "Released"))


async def test_pod_with_unbound_claim_waits_then_schedules(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    body = pod("uses-claim")
    body["spec"]["volumes"] = [{"name": "home", "persistentVolumeClaim": {"claimName": "later"}}]
    await core.create_namespaced_pod("default", body)

    async def message() -> str | None:
        p = await core.read_namespaced_pod("uses-claim", "default")
        for c in p.status.conditions or []:
            if c.type == "PodScheduled" and c.status == "False":
                return str(c.message)
        return None

    assert (await eventually(message)).startswith(
        '0/3 nodes are available: persistentvolumeclaim "later" not found. '
    )
    await core.create_persistent_volume(pv("vol-later"))
    await core.create_namespaced_persistent_volume_claim("default", pvc("later", "vol-later"))
    await eventually(lambda: running(core, "uses-claim"))


async def test_metrics_are_synthesised_from_requests_and_settable(
    devcluster: DevCluster, kube_api: Any
) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_pod("default", pod("m", "1500m", "1Gi", nodeName="node-1"))
    await eventually(lambda: running(core, "m"))
    custom = client.CustomObjectsApi(kube_api)
    nodes = await custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")
    usage = {n["metadata"]["name"]: n["usage"] for n in nodes["items"]}
    assert usage["node-1"] == {"cpu": "1500000000n", "memory": "1048576Ki"}
    assert usage["node-2"] == {"cpu": "0n", "memory": "0Ki"}
    pods = await custom.list_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", "default", "pods"
    )
    assert pods["items"][0]["containers"][0]["usage"]["cpu"] == "1500000000n"
    # tests may set usage explicitly
    code, _ = await raw(
        devcluster,
        "POST",
        "/apis/metrics.k8s.io/v1beta1/nodes",
        {"metadata": {"name": "node-2"}, "usage": {"cpu": "3", "memory": "10Gi"}},
    )
    assert code == 201
    node2 = await custom.get_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes", "node-2")
    assert node2["usage"] == {"cpu": "3", "memory": "10Gi"}


async def test_binding_subresource_assigns_a_node(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    body = pod("bindme")
    body["spec"]["schedulerName"] = "my-scheduler"  # the default scheduler leaves it alone
    await core.create_namespaced_pod("default", body)
    await core.create_namespaced_pod_binding(
        "bindme",
        "default",
        {"metadata": {"name": "bindme"}, "target": {"kind": "Node", "name": "node-3"}},
        _preload_content=False,
    )
    await eventually(lambda: running(core, "bindme"))
    assert (await core.read_namespaced_pod("bindme", "default")).spec.node_name == "node-3"


async def test_pod_bound_to_a_missing_node_waits_for_it(
    devcluster: DevCluster, kube_api: Any
) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_namespaced_pod("default", pod("early", nodeName="node-9"))
    assert await pod_phase(core, "early") == "Pending"
    devcluster.add_node("node-9")
    await eventually(lambda: running(core, "early"))
