"""Each way a session ends deletes the pod and keeps the home; orphans; API faults."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from jupyterhub.objects import Hub

from lsst_hub.spawner import LSSTSpawner, SpawnError
from lsst_hub.spawner.reconcile import reconcile
from tests.spawner.conftest import Env
from tests.spawner.support import FakeUser


async def wait_gone(env: Env, name: str, seconds: float = 30.0) -> bool:
    for _ in range(int(seconds * 10)):
        if await env.pod(name) is None:
            return True
        await asyncio.sleep(0.1)
    return False


async def home_kept(env: Env, user: str) -> bool:
    pvc = await env.core.read_namespaced_persistent_volume_claim(f"home-{user}", env.namespace)
    pv = await env.core.read_persistent_volume(f"gpfs-home-{user}")
    return bool(pvc.status.phase == "Bound" and pv.status.phase == "Bound")


async def set_status(env: Env, name: str, status: dict[str, Any]) -> None:
    pod = await env.core.read_namespaced_pod(name, env.namespace)
    body = env.core.api_client.sanitize_for_serialization(pod)
    body["status"].update(status)
    await env.core.replace_namespaced_pod_status(name, env.namespace, body)


async def poll_until_stopped(spawner: LSSTSpawner, seconds: float = 30.0) -> int | None:
    status = None
    for _ in range(int(seconds * 10)):
        status = await spawner.poll()
        if status is not None:
            break
        await asyncio.sleep(0.1)
    return status


@pytest.mark.parametrize(
    "status",
    [
        pytest.param({"phase": "Failed", "containerStatuses": None}, id="pod-failed-no-status"),
        pytest.param({"phase": "Succeeded", "containerStatuses": None}, id="pod-succeeded"),
    ],
)
async def test_server_exit_deletes_the_pod(env: Env, status: dict[str, Any]) -> None:
    spawner = env.spawner("alice")
    await spawner.start()
    await set_status(env, spawner.pod_name, status)
    assert await poll_until_stopped(spawner) is not None
    assert await wait_gone(env, spawner.pod_name)
    assert await home_kept(env, "alice")


async def test_notebook_container_terminated_deletes_the_pod(env: Env) -> None:
    spawner = env.spawner("bob")
    await spawner.start()
    pod = await env.pod(spawner.pod_name)
    assert pod is not None
    statuses = pod["status"]["containerStatuses"]
    for cs in statuses:
        cs["state"] = {"terminated": {"exitCode": 3, "reason": "Error"}}
        cs["ready"] = False
    await set_status(env, spawner.pod_name, {"containerStatuses": statuses})
    assert await poll_until_stopped(spawner) == 3
    assert await wait_gone(env, spawner.pod_name)
    assert await home_kept(env, "bob")


async def test_stop_with_grace_period_deletes_pod_keeps_home(env: Env) -> None:
    spawner = env.spawner("carol", config=env.config(delete_grace_period=2))
    await spawner.start()
    await spawner.stop()
    assert await env.pod(spawner.pod_name) is None
    assert await home_kept(env, "carol")


def orphan_pod(name: str, user: str, instance: str = "test-hub", **labels: str) -> dict[str, Any]:
    all_labels = {"component": "singleuser-server", "lsst-hub/instance": instance, **labels}
    if not instance:
        del all_labels["lsst-hub/instance"]
    return {
        "metadata": {
            "name": name,
            "labels": all_labels,
            "annotations": {"hub.jupyter.org/username": user},
        },
        "spec": {"containers": [{"name": "notebook", "image": "busybox"}]},
    }


async def test_orphans_are_deleted_and_only_them(env: Env) -> None:
    for body in (
        orphan_pod("jupyter-zed", "zed"),
        orphan_pod("jupyter-other-hub", "yan", instance="other-hub"),
        orphan_pod("jupyter-unlabeled", "xia", instance=""),
    ):
        await env.core.create_namespaced_pod(env.namespace, body)
    # alice's server is known to the hub; the first spawn of this hub process
    # starts the reconciliation, concurrently with the spawn itself.
    spawner = env.spawner("alice")
    await spawner.start()
    task = LSSTSpawner._reconcile_task
    assert task is not None
    assert await task == ["jupyter-zed"]
    assert await wait_gone(env, "jupyter-zed")
    names = await env.pod_names()
    assert spawner.pod_name in names
    assert "jupyter-other-hub" in names
    assert "jupyter-unlabeled" in names
    await spawner.stop()


SHARED_SESSION_WARNING = "The shared database session at Spawner.db is deprecated"


async def test_only_the_first_poll_reads_the_hubs_shared_session(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    # The fallback pass reads the hub's database through Spawner.db, a session
    # JupyterHub hands over as deprecated: it logs a 6-line warning at each spawner's
    # first read. A restarted hub polls all its servers at once (5,000 warnings at
    # 5,000 servers); only the poll that starts the pass may read it.
    def hub_made(name: str) -> LSSTSpawner:
        # As JupyterHub's User makes spawners: the session as _deprecated_db_session.
        user = FakeUser(name, None)
        return LSSTSpawner(
            hub=Hub(), user=user, orm_spawner=env.hub_db.orm_spawner(name),
            _deprecated_db_session=env.hub_db.db, config=env.config(),
            api_token="abc123", oauth_client_id="unused",
        )  # fmt: skip

    spawners = [hub_made(name) for name in ("ann", "ben", "cid")]
    for spawner in spawners:
        assert await spawner.poll() == 1  # no pod: not running
    task = LSSTSpawner._reconcile_task
    assert task is not None
    assert await task == []
    warnings = [r for r in caplog.records if SHARED_SESSION_WARNING in r.getMessage()]
    assert len(warnings) == 1


async def test_reconcile_runner_keeps_known_servers(env: Env) -> None:
    spawner = env.spawner("dora")
    await spawner.start()
    await env.core.create_namespaced_pod(env.namespace, orphan_pod("jupyter-gone", "gone"))
    deleted = await reconcile(spawner.kube, "test-hub", lambda: {("dora", "")})
    assert deleted == ["jupyter-gone"]
    assert await env.pod(spawner.pod_name) is not None
    await spawner.stop()


# -- API faults -----------------------------------------------------------------


async def test_transient_api_errors_are_retried(env: Env) -> None:
    env.cluster.faults.add(verb="create", resource="persistentvolumes", status=500, count=2)
    env.cluster.faults.add(verb="create", resource="persistentvolumeclaims", status=503, count=1)
    spawner = env.spawner("erin")
    await spawner.start()
    assert await home_kept(env, "erin")
    assert env.cluster.faults.describe() == []
    await spawner.stop()


async def test_forbidden_is_a_clear_failure(env: Env) -> None:
    env.cluster.faults.add(verb="create", resource="persistentvolumes", status=403, count=1)
    spawner = env.spawner("fay")
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    assert "create PersistentVolume gpfs-home-fay: Kubernetes answered 403" in str(info.value)
    assert await env.pod_names() == []


async def test_pod_creation_failure_leaves_no_pod(env: Env) -> None:
    env.cluster.faults.add(verb="create", resource="pods", status=422, count=5)
    spawner = env.spawner("gus")
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    assert "cannot start the server" in str(info.value)
    assert "422" in str(info.value)
    assert await env.pod_names() == []


async def test_pod_conflict_replaces_the_stale_pod(env: Env) -> None:
    # A pod of the same name left from an earlier hub: KubeSpawner deletes it and retries.
    spawner = env.spawner("hal")
    stale = orphan_pod(spawner.pod_name, "hal")
    await env.core.create_namespaced_pod(env.namespace, stale)
    old_uid = (await env.core.read_namespaced_pod(spawner.pod_name, env.namespace)).metadata.uid
    await spawner.start()
    pod = await env.core.read_namespaced_pod(spawner.pod_name, env.namespace)
    assert pod.metadata.uid != old_uid
    assert pod.spec.security_context.run_as_user >= 20000
    await spawner.stop()
