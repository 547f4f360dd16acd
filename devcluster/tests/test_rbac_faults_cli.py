"""RBAC enforcement, fault injection and the ``python -m devcluster serve`` command."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import pytest
from kubernetes_asyncio import client

from devcluster import DevCluster

from helpers import pod, raw

pytestmark = pytest.mark.line_independent

ROLE = {
    "metadata": {"name": "spawner"},
    "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "create"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["ok"]},
    ],
}


def hub_binding(name: str, role_kind: str, role: str) -> dict[str, Any]:
    """A (Cluster)RoleBinding of ``role`` to the ServiceAccount default/hub."""
    return {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": "default"}],
    }


async def rbac_cluster(make_devcluster: Any) -> tuple[DevCluster, str]:
    cluster: DevCluster = await make_devcluster(nodes=1, rbac=True)
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        rbac = client.RbacAuthorizationV1Api(api)
        await core.create_namespaced_service_account("default", {"metadata": {"name": "hub"}})
        await rbac.create_namespaced_role("default", ROLE)
        await rbac.create_namespaced_role_binding(
            "default", hub_binding("hub-spawner", "Role", "spawner")
        )
        # the real TokenRequest API mints the ServiceAccount's token
        request = await core.create_namespaced_service_account_token(
            "hub", "default", {"spec": {"audiences": []}}
        )
    return cluster, request.status.token


async def test_rbac_allows_granted_verbs_and_denies_others(make_devcluster: Any) -> None:
    cluster, token = await rbac_cluster(make_devcluster)
    async with cluster.api_client(token) as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod("default", pod("allowed"))
        assert [p.metadata.name for p in (await core.list_namespaced_pod("default")).items] == [
            "allowed"
        ]
        await core.patch_namespaced_pod_status("allowed", "default", {"status": {"message": "x"}})
        with pytest.raises(client.ApiException) as info:
            await core.delete_namespaced_pod("allowed", "default")
    assert info.value.status == 403
    status = json.loads(info.value.body)
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        'pods "allowed" is forbidden: User "system:serviceaccount:default:hub" cannot delete '
        'resource "pods" in API group "" in the namespace "default"'
    )


async def test_rbac_subresources_cluster_scope_and_resource_names(make_devcluster: Any) -> None:
    cluster, token = await rbac_cluster(make_devcluster)
    async with cluster.api_client() as admin_api:
        await client.CoreV1Api(admin_api).create_namespaced_config_map(
            "default", {"metadata": {"name": "ok"}}
        )
        await client.CoreV1Api(admin_api).create_namespaced_config_map(
            "default", {"metadata": {"name": "secret-ish"}}
        )
    async with cluster.api_client(token) as api:
        core = client.CoreV1Api(api)
        await core.read_namespaced_config_map("ok", "default")
        denied = [
            core.read_namespaced_config_map("secret-ish", "default"),
            core.list_node(),
            core.replace_namespaced_pod_status("x", "default", {"metadata": {"name": "x"}}),
        ]
        codes = []
        for call in denied:
            try:
                await call
            except client.ApiException as exc:
                codes.append((exc.status, json.loads(exc.body)["message"]))
    assert [c for c, _ in codes] == [403, 403, 403]
    assert codes[1][1] == (
        'nodes is forbidden: User "system:serviceaccount:default:hub" cannot list resource '
        '"nodes" in API group "" at the cluster scope'
    )
    assert 'cannot update resource "pods/status"' in codes[2][1]


async def test_rbac_cluster_role_binding_and_unknown_token(make_devcluster: Any) -> None:
    cluster, token = await rbac_cluster(make_devcluster)
    async with cluster.api_client() as api:
        rbac = client.RbacAuthorizationV1Api(api)
        await rbac.create_cluster_role(
            {
                "metadata": {"name": "node-reader"},
                "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}],
            }
        )
        await rbac.create_cluster_role_binding(
            hub_binding("hub-nodes", "ClusterRole", "node-reader")
        )
    async with cluster.api_client(token) as api:
        assert len((await client.CoreV1Api(api).list_node()).items) == 1
    code, status = await raw(cluster, "GET", "/api/v1/nodes", token="not-a-token")
    assert code == 401 and status["reason"] == "Unauthorized"


async def test_fault_injection_fails_the_next_matching_requests(devcluster: DevCluster) -> None:
    devcluster.faults.add(verb="create", resource="pods", status=500, count=2)
    async with devcluster.api_client() as api:
        core = client.CoreV1Api(api)
        codes = []
        for _ in range(3):
            try:
                await core.create_namespaced_pod("default", pod("flaky"))
                codes.append(201)
            except client.ApiException as exc:
                codes.append(exc.status)
        # other verbs are untouched
        await core.read_namespaced_pod("flaky", "default")
    assert codes == [500, 500, 201]


async def test_fault_injection_over_http_with_delay(devcluster: DevCluster) -> None:
    code, _ = await raw(
        devcluster,
        "POST",
        "/_devcluster/faults",
        {"verb": "list", "resource": "pods", "delay": 2, "count": 1},
    )
    assert code == 201
    async with devcluster.api_client() as api:
        core = client.CoreV1Api(api)
        with pytest.raises(asyncio.TimeoutError):
            await core.list_namespaced_pod("default", _request_timeout=0.5)
        # the fault is used up: the next list answers
        await core.list_namespaced_pod("default", _request_timeout=30)
    _, armed = await raw(devcluster, "GET", "/_devcluster/faults")
    assert armed == []


async def test_fault_503_on_a_subresource(devcluster: DevCluster) -> None:
    devcluster.faults.add(verb="patch", resource="pods/status", status=503)
    async with devcluster.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod("default", pod("s", node_selector={"x": "y"}))
        with pytest.raises(client.ApiException) as info:
            await core.patch_namespaced_pod_status("s", "default", {"status": {"message": "m"}})
        assert info.value.status == 503
        await core.patch_namespaced_pod("s", "default", {"metadata": {"labels": {"a": "b"}}})


def test_cli_serves_writes_kubeconfig_and_exits_cleanly_on_sigterm(devcluster_process: Any) -> None:
    proc = devcluster_process(nodes=2, node_cpu="8")
    config = proc.kubeconfig.read_text()
    assert proc.url in config

    async def nodes() -> list[Any]:
        from kubernetes_asyncio import config as kconfig

        api = await kconfig.new_client_from_config(str(proc.kubeconfig))
        async with api:
            return list((await client.CoreV1Api(api).list_node()).items)

    items = asyncio.run(nodes())
    assert [n.metadata.name for n in items] == ["node-1", "node-2"]
    assert items[0].status.allocatable["cpu"] == "8"
    proc.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    while proc.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.process.returncode == 0


async def test_create_objects_loads_a_manifest_for_rbac_checks(make_devcluster: Any) -> None:
    cluster: DevCluster = await make_devcluster(nodes=1, rbac=True)
    cluster.create_objects(
        """
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: read-pods}
rules:
- {apiGroups: [""], resources: [pods], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader-read-pods}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-pods}
subjects:
- {kind: ServiceAccount, name: reader, namespace: default}
"""
    )
    token = cluster.authorizer.issue("default", "reader")
    async with cluster.api_client(token) as api:
        core = client.CoreV1Api(api)
        assert (await core.list_namespaced_pod("default")).items == []
        with pytest.raises(client.ApiException) as info:
            await core.list_namespaced_secret("default")
    assert info.value.status == 403
