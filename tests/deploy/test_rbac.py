"""The chart's hub Role plus helm-values/cluster-rbac.yaml let the hub do its job.

A devcluster with RBAC enforced gets the chart's hub ServiceAccount, Role and
RoleBinding (helm-values/chart-hub-rbac.yaml) and our cluster RBAC; then the
spawner's own code (:class:`lsst_hub.spawner.kube.Kube`, the placement cache) and
the calls KubeSpawner makes run with the hub ServiceAccount's token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiException

from lsst_hub.identity import Group, Identity
from lsst_hub.spawner import builders
from lsst_hub.spawner.kube import Kube

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "jupyterhub"
ALICE = Identity(
    username="alice",
    ldap_dn="uid=alice,ou=people,dc=example,dc=org",
    uid_number=10001,
    gid_number=10000,
    home_directory="/gpfs/home/alice",
    groups=(Group("hpcusers", 10000),),
)
LABELS = {"app.kubernetes.io/managed-by": "lsst-hub"}


def manifests(name: str) -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all((ROOT / "helm-values" / name).read_text()) if o]


async def apply(api_client: Any, obj: dict[str, Any]) -> None:
    """Create one object with the admin client (the few kinds these files hold)."""
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    ns = obj["metadata"].get("namespace", "")
    create = {
        "Namespace": lambda: core.create_namespace(obj),
        "ServiceAccount": lambda: core.create_namespaced_service_account(ns, obj),
        "Role": lambda: rbac.create_namespaced_role(ns, obj),
        "RoleBinding": lambda: rbac.create_namespaced_role_binding(ns, obj),
        "ClusterRole": lambda: rbac.create_cluster_role(obj),
        "ClusterRoleBinding": lambda: rbac.create_cluster_role_binding(obj),
    }[obj["kind"]]
    await create()


def notebook_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"component": "singleuser-server", **LABELS},
        },
        "spec": {
            "securityContext": builders.pod_security_context(ALICE),
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/jupyter/base-notebook:latest",
                    "securityContext": builders.container_security_context(ALICE),
                    "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                }
            ],
        },
    }


async def watch(list_call: Any, *args: Any, **kwargs: Any) -> None:
    """Open a watch as KubeSpawner's reflectors do; fail unless the server accepts it."""
    response = await list_call(
        *args, watch=True, timeout_seconds=1, _preload_content=False, **kwargs
    )
    try:
        assert response.status == 200
    finally:
        response.release()


@pytest.fixture
async def hub_api(make_devcluster: Callable[..., Awaitable[Any]]) -> Any:
    cluster = await make_devcluster(rbac=True, nodes=2)
    async with cluster.api_client() as admin:
        await apply(
            admin, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        )
        for obj in manifests("chart-hub-rbac.yaml") + manifests("cluster-rbac.yaml"):
            await apply(admin, obj)
    token = cluster.authorizer.issue(NAMESPACE, "hub")
    async with cluster.api_client(token=token) as api:
        yield cluster, api


async def test_hub_can_make_every_spawner_call(hub_api: Any) -> None:
    cluster, api = hub_api
    core = client.CoreV1Api(api)
    kube = Kube(core, NAMESPACE, request_timeout=10, retry_timeout=5)

    # Placement: nodes and every namespace's pods, listed and watched, plus node metrics.
    from lsst_hub.placement import ClusterCache

    cache = ClusterCache(api, metrics_interval=30)
    async with asyncio.timeout(30):  # a refused list would be retried for ever
        await cache.start()
    try:
        assert cache.metrics_available is True
        placement = cache.choose(0.5, 512 * 2**20)
        assert placement.node is not None, placement.reason
    finally:
        await cache.stop()

    # The home: PersistentVolume (cluster-scoped) and claim, created then re-read.
    pv = builders.home_pv(
        name="gpfs-home-alice",
        source={"hostPath": {"path": ALICE.home_directory, "type": "Directory"}},
        claim_namespace=NAMESPACE,
        claim_name="home-alice",
        capacity="1Gi",
        labels=LABELS,
    )
    pvc = builders.home_pvc(
        name="home-alice", namespace=NAMESPACE, pv_name="gpfs-home-alice", capacity="1Gi",
        labels=LABELS,
    )  # fmt: skip
    for _ in range(2):  # the second time finds them and checks them
        await kube.ensure_home_pv(pv)
        await kube.ensure_home_pvc(pvc)
    await kube.wait_pvc_bound("home-alice", 10)

    # synthesize_passwd's ConfigMap: created, then replaced.
    configmap = builders.passwd_configmap(
        ALICE, name="passwd-alice", namespace=NAMESPACE, home=ALICE.home_directory, labels=LABELS
    )
    await kube.apply_configmap(configmap)
    await kube.apply_configmap(configmap)

    # KubeSpawner's pod life cycle: create, list and watch pods and events, delete.
    await core.create_namespaced_pod(NAMESPACE, notebook_pod("jupyter-alice"))
    pods = await core.list_namespaced_pod(NAMESPACE, label_selector="component=singleuser-server")
    await watch(
        core.list_namespaced_pod, NAMESPACE, label_selector="component=singleuser-server",
        resource_version=pods.metadata.resource_version,
    )  # fmt: skip
    events = await core.list_namespaced_event(NAMESPACE, field_selector="involvedObject.kind=Pod")
    await watch(
        core.list_namespaced_event, NAMESPACE, field_selector="involvedObject.kind=Pod",
        resource_version=events.metadata.resource_version,
    )  # fmt: skip
    assert [p["metadata"]["name"] for p in await kube.list_pods(f"{next(iter(LABELS))}=lsst-hub")]
    await kube.delete_pod("jupyter-alice", 0)

    # An administrator removed the claim by hand; the volume is Released. A new spawn
    # re-creates the claim and points the Released volume at it.
    async with cluster.api_client() as admin:
        await client.CoreV1Api(admin).delete_namespaced_persistent_volume_claim(
            "home-alice", NAMESPACE
        )
    await kube.ensure_home_pvc(pvc)
    await kube.rebind_released_pv("gpfs-home-alice", await kube.read_pvc("home-alice"))


@pytest.mark.parametrize(
    ("what", "call"),
    [
        ("delete a home volume", lambda core: core.delete_persistent_volume("gpfs-home-x")),
        ("delete a node", lambda core: core.delete_node("node-1")),
        ("delete another namespace's pod", lambda core: core.delete_namespaced_pod("p", "default")),
        ("create a pod elsewhere", lambda core: core.create_namespaced_pod("default", {})),
        ("read secrets elsewhere", lambda core: core.list_namespaced_secret("default")),
    ],
)
async def test_hub_cannot_do_more(hub_api: Any, what: str, call: Any) -> None:
    _, api = hub_api
    with pytest.raises(ApiException) as caught:
        await call(client.CoreV1Api(api))
    assert caught.value.status == 403, what
