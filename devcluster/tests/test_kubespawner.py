"""Unmodified ``kubespawner.KubeSpawner``: start, poll, progress, stop against the dev cluster."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from jupyterhub.objects import Hub, Server
from kubernetes_asyncio import client
from kubespawner import KubeSpawner
from traitlets.config import Config

from devcluster import DevCluster
from devcluster.testing import stop_kubespawner_reflectors

from helpers import eventually


def make_spawner(cluster: DevCluster, name: str = "alice") -> KubeSpawner:
    config = Config()
    config.KubeSpawner.namespace = "default"
    config.KubeSpawner.k8s_api_host = cluster.url
    config.KubeSpawner.start_timeout = 60
    config.KubeSpawner.http_timeout = 60
    config.KubeSpawner.image = "quay.io/jupyterhub/k8s-singleuser-sample:4.0.0"
    config.KubeSpawner.cpu_guarantee = 0.5
    config.KubeSpawner.mem_guarantee = "1G"
    user = SimpleNamespace(
        name=name,
        id=1,
        url=f"/user/{name}/",
        escaped_name=name,
        server=Server(base_url=f"/user/{name}/"),
        url_name=name,
    )
    hub = Hub(ip="127.0.0.1", port=8081, base_url="/hub/")
    return KubeSpawner(
        config=config,
        user=user,
        hub=hub,
        api_token="unused-token",
        oauth_client_id="jupyterhub-user-alice",
        _mock=True,
    )


async def test_kubespawner_start_poll_stop(kube_env: DevCluster) -> None:
    cluster = kube_env
    spawner = make_spawner(cluster)
    try:
        url = await asyncio.wait_for(spawner.start(), 120)
        async with cluster.api_client() as api:
            core = client.CoreV1Api(api)
            pod = await core.read_namespaced_pod(spawner.pod_name, "default")
        assert pod.status.phase == "Running"
        assert url == f"http://{pod.status.pod_ip}:8888"
        assert pod.spec.containers[0].resources.requests == {"cpu": "0.5", "memory": "1073741824"}
        assert await spawner.poll() is None
        messages = [e["message"] async for e in _progress(spawner)]
        assert any("Successfully assigned default/" in m for m in messages)
        assert any("Started container" in m for m in messages), messages

        await asyncio.wait_for(spawner.stop(), 120)

        async def pod_gone() -> bool:
            async with cluster.api_client() as api:
                pods = await client.CoreV1Api(api).list_namespaced_pod("default")
            return not pods.items

        await eventually(pod_gone)
        assert await spawner.poll() is not None
    finally:
        await stop_kubespawner_reflectors()


async def _progress(spawner: KubeSpawner) -> Any:
    # The progress generator follows events until the spawn future is done;
    # after start() it replays what it saw, then ends.
    async for event in spawner.progress():
        yield event
