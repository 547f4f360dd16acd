"""The chart's hub Role plus helm-values/cluster-rbac.yaml let the hub do its job.

A devcluster with RBAC enforced gets the chart's hub ServiceAccount, Role and
RoleBinding (helm-values/chart-hub-rbac.yaml) and our cluster RBAC; then the
spawner's own code (:class:`lsst_hub.spawner.kube.Kube`, the placement cache) and
the calls KubeSpawner makes run with the hub ServiceAccount's token.

Each rule (API group, resource, verb) that cluster-rbac.yaml grants is needed: with
that one removed, the operation named for it fails with 403, while with the file as
shipped every named operation works.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client import ApiException

from lsst_hub.identity import Group, Identity
from lsst_hub.placement import ClusterCache
from lsst_hub.spawner import builders
from lsst_hub.spawner.kube import Kube, KubeRefusedError

pytestmark = pytest.mark.line_independent

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


async def hub_cluster(
    make_devcluster: Callable[..., Awaitable[Any]], cluster_rbac: list[dict[str, Any]]
) -> tuple[Any, str]:
    """An RBAC-enforcing devcluster with the chart's hub RBAC and ``cluster_rbac``."""
    cluster = await make_devcluster(rbac=True, nodes=2)
    async with cluster.api_client() as admin:
        await apply(
            admin, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        )
        for obj in manifests("chart-hub-rbac.yaml") + cluster_rbac:
            await apply(admin, obj)
    return cluster, cluster.authorizer.issue(NAMESPACE, "hub")


@pytest.fixture
async def hub_api(make_devcluster: Callable[..., Awaitable[Any]]) -> Any:
    cluster, token = await hub_cluster(make_devcluster, manifests("cluster-rbac.yaml"))
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


# -- each granted rule is needed -----------------------------------------------------

Rule = tuple[str, str, str]  # (API group, resource, verb)


def granted_rules() -> set[Rule]:
    return {
        (group, resource, verb)
        for obj in manifests("cluster-rbac.yaml")
        if obj["kind"] in ("ClusterRole", "Role")
        for rule in obj["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def without(rule: Rule) -> list[dict[str, Any]]:
    """cluster-rbac.yaml with one (group, resource, verb) taken out."""
    group, resource, verb = rule
    objects = copy.deepcopy(manifests("cluster-rbac.yaml"))
    for obj in objects:
        if obj["kind"] not in ("ClusterRole", "Role"):
            continue
        rules = []
        for granted in obj["rules"]:
            if group in granted["apiGroups"] and resource in granted["resources"]:
                # Split so that only this resource loses the verb.
                others = [r for r in granted["resources"] if r != resource]
                if others:
                    rules.append({**granted, "resources": others})
                verbs = [v for v in granted["verbs"] if v != verb]
                if verbs:
                    rules.append({**granted, "resources": [resource], "verbs": verbs})
            else:
                rules.append(granted)
        obj["rules"] = rules
    return objects


class ForbiddenError(Exception):
    """The cache logged a 403 for one of its calls (it retries; it never raises)."""


class _Refusals(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "403" in message:
            self.messages.append(message)
            self.seen.set()


@dataclass
class Ops:
    """What an operation needs: the cluster, the hub's and the admin's API access."""

    cluster: Any
    api: Any  # the hub ServiceAccount's ApiClient
    admin: Any
    kube: Kube  # the spawner's Kubernetes calls, as the hub
    admin_kube: Kube  # the same calls as admin: setup only
    refusals: _Refusals
    log: logging.Logger
    #: How long to wait for what an operation should bring (a refused call is
    #: logged with its 403 at once, so this only bounds a hang).
    patience: float = 60.0

    async def until(self, awaitable: Awaitable[Any]) -> Any:
        """Await ``awaitable``; raise :class:`ForbiddenError` as soon as the cache logs a 403."""
        task = asyncio.ensure_future(awaitable)
        refused = asyncio.ensure_future(self.refusals.seen.wait())
        try:
            done, _ = await asyncio.wait(
                {task, refused}, timeout=self.patience, return_when=asyncio.FIRST_COMPLETED
            )
            if refused in done:
                raise ForbiddenError("; ".join(self.refusals.messages))
            if task in done:
                return task.result()
            raise TimeoutError(f"not done after {self.patience} s")
        finally:
            for pending in (task, refused):
                pending.cancel()

    async def cache(self) -> ClusterCache:
        cache = ClusterCache(self.api, metrics_interval=30, log=self.log)
        await self.until(cache.start())
        return cache


def home(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    pv = builders.home_pv(
        name=f"gpfs-home-{name}",
        source={"hostPath": {"path": f"/gpfs/home/{name}", "type": "Directory"}},
        claim_namespace=NAMESPACE, claim_name=f"home-{name}", capacity="1Gi", labels=LABELS,
    )  # fmt: skip
    pvc = builders.home_pvc(
        name=f"home-{name}", namespace=NAMESPACE, pv_name=f"gpfs-home-{name}", capacity="1Gi",
        labels=LABELS,
    )  # fmt: skip
    return pv, pvc


def passwd(name: str) -> dict[str, Any]:
    return builders.passwd_configmap(
        ALICE, name=f"passwd-{name}", namespace=NAMESPACE, home=ALICE.home_directory,
        labels=LABELS,
    )  # fmt: skip


async def list_nodes(ops: Ops) -> None:
    cache = await ops.cache()
    await cache.stop()
    assert cache.node_names()


async def follow_nodes(ops: Ops) -> None:
    cache = await ops.cache()
    try:
        ops.cluster.add_node("node-late")

        async def counted() -> None:
            while "node-late" not in cache.node_names():  # noqa: ASYNC110 - polls the cache
                await asyncio.sleep(0.05)

        await ops.until(counted())
    finally:
        await cache.stop()


async def follow_pods(ops: Ops) -> None:
    cache = await ops.cache()
    try:
        before = sum(cache.totals(n).pods for n in cache.node_names())
        other = {**notebook_pod("batch-job"), "metadata": {"name": "batch-job"}}
        await client.CoreV1Api(ops.admin).create_namespaced_pod("default", other)

        async def counted() -> None:
            while sum(cache.totals(n).pods for n in cache.node_names()) <= before:  # noqa: ASYNC110
                await asyncio.sleep(0.05)

        await ops.until(counted())
    finally:
        await cache.stop()


async def node_usage(ops: Ops) -> None:
    cache = await ops.cache()
    await cache.stop()
    if ops.refusals.messages:
        raise ForbiddenError("; ".join(ops.refusals.messages))
    assert cache.metrics_available is True


async def create_home(ops: Ops) -> None:
    pv, _ = home("create")
    await ops.kube.ensure_home_pv(pv)


async def check_existing_home(ops: Ops) -> None:
    pv, _ = home("check")
    await ops.admin_kube.ensure_home_pv(pv)
    await ops.kube.ensure_home_pv(pv)  # exists: read back and compared


async def rebind_released_home(ops: Ops) -> None:
    pv, pvc = home("rebind")
    await ops.admin_kube.ensure_home_pv(pv)
    await ops.admin_kube.ensure_home_pvc(pvc)
    await ops.admin_kube.wait_pvc_bound(pvc["metadata"]["name"], 10)
    core = client.CoreV1Api(ops.admin)
    await core.delete_namespaced_persistent_volume_claim(pvc["metadata"]["name"], NAMESPACE)
    await ops.admin_kube.ensure_home_pvc(pvc)  # the person's claim, re-created
    claim = await ops.admin_kube.read_pvc(pvc["metadata"]["name"])
    assert await ops.kube.rebind_released_pv(pv["metadata"]["name"], claim)


async def write_passwd(ops: Ops) -> None:
    await ops.kube.apply_configmap(passwd("new"))


async def rewrite_passwd(ops: Ops) -> None:
    await ops.admin_kube.apply_configmap(passwd("again"))
    await ops.kube.apply_configmap(passwd("again"))  # exists: replaced


#: Each granted rule and the operation that needs it.
OPERATIONS: dict[Rule, tuple[str, Callable[[Ops], Awaitable[None]]]] = {
    ("", "nodes", "list"): ("placement lists the nodes", list_nodes),
    ("", "nodes", "watch"): ("placement counts a node added later", follow_nodes),
    ("", "pods", "list"): ("placement lists every namespace's pods", list_nodes),
    ("", "pods", "watch"): ("placement counts a pod started later elsewhere", follow_pods),
    ("metrics.k8s.io", "nodes", "list"): ("placement reads live node usage", node_usage),
    ("", "persistentvolumes", "create"): ("spawn creates the home volume", create_home),
    ("", "persistentvolumes", "get"): ("spawn checks an existing home volume",
                                       check_existing_home),
    ("", "persistentvolumes", "update"): ("spawn rebinds a Released home volume",
                                          rebind_released_home),
    ("", "configmaps", "create"): ("spawn writes the passwd/group ConfigMap", write_passwd),
    ("", "configmaps", "update"): ("spawn rewrites the passwd/group ConfigMap",
                                   rewrite_passwd),
}  # fmt: skip


def test_every_granted_rule_has_a_named_operation() -> None:
    assert set(OPERATIONS) == granted_rules()


async def run_ops(
    make_devcluster: Callable[..., Awaitable[Any]], cluster_rbac: list[dict[str, Any]],
    operation: Callable[[Ops], Awaitable[None]], patience: float = 60.0,
) -> None:  # fmt: skip
    cluster, token = await hub_cluster(make_devcluster, cluster_rbac)
    log = logging.getLogger(f"{__name__}.cache.{id(cluster)}")
    log.propagate = False
    refusals = _Refusals()
    log.addHandler(refusals)
    async with cluster.api_client(token=token) as api, cluster.api_client() as admin:
        kube = Kube(client.CoreV1Api(api), NAMESPACE, request_timeout=10, retry_timeout=5)
        admin_kube = Kube(client.CoreV1Api(admin), NAMESPACE, request_timeout=10, retry_timeout=5)
        await operation(Ops(cluster, api, admin, kube, admin_kube, refusals, log, patience))


async def test_every_named_operation_works_with_the_shipped_rbac(
    make_devcluster: Callable[..., Awaitable[Any]],
) -> None:
    for _, operation in OPERATIONS.values():
        await run_ops(make_devcluster, manifests("cluster-rbac.yaml"), operation)


@pytest.mark.parametrize(
    "rule", sorted(OPERATIONS), ids=["/".join(filter(None, r)) for r in sorted(OPERATIONS)]
)
async def test_each_granted_rule_is_needed(
    make_devcluster: Callable[..., Awaitable[Any]], rule: Rule
) -> None:
    name, operation = OPERATIONS[rule]
    _, resource, verb = rule
    # A refused watch, too, must be logged with its 403 (the cache retries it), not
    # retried in silence while the change it should bring never comes.
    with pytest.raises((ForbiddenError, KubeRefusedError)) as refused:
        await run_ops(make_devcluster, without(rule), operation)
    message = str(refused.value)
    assert "403" in message, f"{name}: {message}"
    if isinstance(refused.value, KubeRefusedError):
        # The devcluster's Status names the refused verb and resource, as Kubernetes does.
        assert f'cannot {verb} resource "{resource}"' in message, message
    else:
        assert resource.rstrip("s") in message, message
