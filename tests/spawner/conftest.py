"""Fixtures for spawner tests: a dev cluster in the test's event loop, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.config import kube_config
from kubespawner import KubeSpawner, clients

from devcluster import DevCluster
from lsst_hub.spawner import LSSTSpawner

from .support import HubDB, base_config, make_spawner

NAMESPACE = "jhub"


class Env:
    """A dev cluster, an admin API client and a spawner factory."""

    def __init__(self, cluster: DevCluster, api: Any) -> None:
        self.cluster = cluster
        self.core = client.CoreV1Api(api)
        self.namespace = NAMESPACE
        self.hub_db = HubDB()

    def config(self, **traits: Any) -> Any:
        return base_config(self.namespace, self.cluster.url, **traits)

    def spawner(self, name: str, config: Any = None, **kw: Any) -> LSSTSpawner:
        kw.setdefault("hub_db", self.hub_db)
        return make_spawner(config or self.config(), name, **kw)

    async def pod(self, name: str) -> dict[str, Any] | None:
        pods = await self.core.list_namespaced_pod(self.namespace)
        for pod in pods.items:
            if pod.metadata.name == name:
                result: dict[str, Any] = self.core.api_client.sanitize_for_serialization(pod)
                return result
        return None

    async def pod_names(self) -> list[str]:
        pods = await self.core.list_namespaced_pod(self.namespace)
        return sorted(p.metadata.name for p in pods.items)


@pytest.fixture
def cluster_options() -> dict[str, Any]:
    """DevCluster arguments; override in a test module or with parametrize."""
    return {"nodes": 3}


@pytest.fixture
async def env(
    cluster_options: dict[str, Any],
    make_devcluster: Callable[..., Awaitable[DevCluster]],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Env]:
    """A dev cluster (``cluster_options``) with namespace ``jhub``, KubeSpawner pointed at it."""
    cluster = await make_devcluster(**cluster_options)
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    # kubernetes_asyncio reads $KUBECONFIG once, at import: point it at this cluster.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(cluster.kubeconfig))
    clients.load_config.cache_clear()
    async with cluster.api_client() as api:
        environment = Env(cluster, api)
        await environment.core.create_namespace({"metadata": {"name": NAMESPACE}})
        try:
            yield environment
        finally:
            await LSSTSpawner.stop_placement_cache()
            await KubeSpawner._stop_all_reflectors()


@pytest.fixture
def spawner_factory(env: Env) -> Callable[..., LSSTSpawner]:
    return env.spawner
