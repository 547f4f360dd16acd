"""A pod name held by another hub user's pod: the spawn is refused and the pod kept.

KubeSpawner deletes any pod that has the name it is about to create. A user
renamed while their server runs (alice -> alice2) keeps their pod "jupyter-alice";
a new user "alice" gets the same pod name, and must not delete alice2's server.
"""

from __future__ import annotations

from typing import Any

import pytest

from lsst_hub.spawner import LSSTSpawner, SpawnError
from lsst_hub.spawner.errors import PodNameTakenError
from lsst_hub.spawner.podcheck import pod_owner_conflict
from tests.spawner.conftest import Env


def pod(annotations: dict[str, str] | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "jupyter-alice", "namespace": "jhub"}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta}


ALICE2 = {"lsst-hub/user-id": "7", "hub.jupyter.org/username": "alice"}
LEGACY = {"hub.jupyter.org/username": "alice"}


@pytest.mark.parametrize(
    ("existing", "user_id", "username", "recorded_only", "expected"),
    [
        (None, "8", "alice", False, None),
        (pod(ALICE2), "7", "alice2", False, None),  # the renamed owner
        (pod(ALICE2), "8", "alice", False, "belongs to hub user id 7 (started as 'alice')"),
        (pod(ALICE2), "8", "alice", True, "belongs to hub user id 7 (started as 'alice')"),
        (pod(LEGACY), "8", "alice", False, None),  # no id recorded: judged by name
        (pod(LEGACY), "8", "bob", False, "belongs to hub user 'alice'"),
        (pod(LEGACY), "8", "bob", True, None),
        (pod(None), "8", "alice", False, "belongs to no hub user"),
        (pod(None), "8", "alice", True, None),
    ],
)
def test_pod_owner_conflict(
    existing: dict[str, Any] | None,
    user_id: str,
    username: str,
    recorded_only: bool,
    expected: str | None,
) -> None:
    conflict = pod_owner_conflict(
        existing, user_id=user_id, username=username, recorded_only=recorded_only
    )
    if expected is None:
        assert conflict is None
    else:
        assert conflict is not None
        assert conflict.startswith("pod jhub/jupyter-alice ")
        assert expected in conflict


async def uid_of(env: Env, name: str) -> str | None:
    found = await env.pod(name)
    return None if found is None else str(found["metadata"]["uid"])


async def test_a_renamed_users_pod_is_kept_when_a_new_user_takes_the_name(env: Env) -> None:
    renamed = env.spawner("alice")
    await renamed.start()
    kept = await uid_of(env, "jupyter-alice")
    annotations = (await env.pod("jupyter-alice") or {})["metadata"]["annotations"]
    assert annotations["lsst-hub/user-id"] == str(renamed.user.id)
    # alice is renamed alice2 (her spawner keeps its pod name); a new user "alice" starts.
    renamed.user.name = "alice2"
    newcomer = env.spawner("alice")
    assert newcomer.user.id != renamed.user.id
    with pytest.raises(SpawnError) as info:
        await newcomer.start()
    message = info.value.jupyterhub_message
    assert "pod name jupyter-alice is taken" in message
    assert f"belongs to hub user id {renamed.user.id} (started as 'alice')" in message
    # JupyterHub stops a server whose start failed: that deletes nothing either.
    await newcomer.stop()
    assert await uid_of(env, "jupyter-alice") == kept
    # The pod's owner still stops it.
    await renamed.stop()
    assert await env.pod("jupyter-alice") is None


async def test_a_spawn_reads_no_pod_before_creating_its_own(env: Env) -> None:
    # The owner of a pod holding the name is checked when the create meets it (409):
    # a read of the pod before the create would hit this fault and fail the spawn.
    env.cluster.faults.add(verb="get", resource="pods", status=500, name="jupyter-ann")
    spawner = env.spawner("ann")
    await spawner.start()
    assert len(env.cluster.faults.describe()) == 1
    env.cluster.faults.clear()
    await spawner.stop()


async def test_a_pod_taking_the_name_just_before_the_create_is_kept(env: Env) -> None:
    # The pod appears after everything the spawner read and before KubeSpawner
    # creates its own (the admin's hook runs last): the create meets it (409).
    async def someone_takes_the_name(spawner: LSSTSpawner, pod: Any) -> Any:
        body = {
            "metadata": {"name": "jupyter-ivy"},
            "spec": {"containers": [{"name": "debug", "image": "busybox"}]},
        }
        await env.core.create_namespaced_pod(env.namespace, body)
        return pod

    spawner = env.spawner("ivy", config=env.config(modify_pod_hook=someone_takes_the_name))
    with pytest.raises(PodNameTakenError, match="belongs to no hub user"):
        await spawner.start()
    kept = await env.pod("jupyter-ivy")
    assert kept is not None
    assert kept["spec"]["containers"][0]["name"] == "debug"


async def test_the_users_own_leftover_pod_is_replaced(env: Env) -> None:
    first = env.spawner("lia")
    await first.start()
    old = await uid_of(env, "jupyter-lia")
    # The hub lost track of the server (a crash); the same user starts again.
    again = env.spawner("lia")
    again.user = first.user
    await again.start()
    new = await uid_of(env, "jupyter-lia")
    assert new is not None
    assert new != old
    await again.stop()


async def test_a_pod_that_is_no_notebook_server_is_not_deleted(env: Env) -> None:
    body = {
        "metadata": {"name": "jupyter-mo"},
        "spec": {"containers": [{"name": "debug", "image": "busybox"}]},
    }
    await env.core.create_namespaced_pod(env.namespace, body)
    kept = await uid_of(env, "jupyter-mo")
    spawner = env.spawner("mo")
    with pytest.raises(SpawnError, match="belongs to no hub user"):
        await spawner.start()
    assert await uid_of(env, "jupyter-mo") == kept
