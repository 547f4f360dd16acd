"""An admin's ``modify_pod_hook`` runs after our changes: the final pod is checked."""

from __future__ import annotations

from typing import Any

import pytest

from lsst_hub.spawner import LSSTSpawner, SpawnError
from tests.spawner.conftest import Env


def as_root(spawner: LSSTSpawner, pod: Any) -> Any:
    pod.spec.security_context.run_as_user = 0
    for container in pod.spec.containers:
        container.security_context.run_as_user = None
    return pod


async def annotate(spawner: LSSTSpawner, pod: Any) -> Any:
    pod.metadata.annotations = {**(pod.metadata.annotations or {}), "site/owner": "x"}
    return pod


async def test_hook_that_runs_the_pod_as_root_is_refused(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    spawner = env.spawner("alice", config=env.config(modify_pod_hook=as_root))
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    assert "would not run as you" in info.value.jupyterhub_message
    assert "runs as 0:" in caplog.text and "modify_pod_hook" in caplog.text
    assert await env.pod_names() == []


async def test_harmless_hook_is_kept(env: Env) -> None:
    spawner = env.spawner("alice", config=env.config(modify_pod_hook=annotate))
    await spawner.start()
    pod = await env.pod(spawner.pod_name)
    assert pod is not None
    assert pod["metadata"]["annotations"]["site/owner"] == "x"
    assert pod["spec"]["securityContext"]["runAsUser"] != 0
    await spawner.stop()


def mount_the_node(spawner: LSSTSpawner, pod: Any) -> Any:
    pod.spec.volumes.append({"name": "node", "hostPath": {"path": "/"}})
    return pod


def share_the_node(spawner: LSSTSpawner, pod: Any) -> Any:
    pod.spec.host_network = True
    pod.spec.host_pid = True
    return pod


def home_of_someone_else(spawner: LSSTSpawner, pod: Any) -> Any:
    for volume in pod.spec.volumes:
        if volume.name == "home":
            volume.persistent_volume_claim.claim_name = "home-bob"
    return pod


@pytest.mark.parametrize(
    ("hook", "logged"),
    [
        (mount_the_node, "volume 'node' is the node's directory /"),
        (share_the_node, "the pod sets hostNetwork"),
        (home_of_someone_else, "not the person's own"),
    ],
)
async def test_hook_that_reaches_beyond_the_person_is_refused(
    env: Env, caplog: pytest.LogCaptureFixture, hook: Any, logged: str
) -> None:
    spawner = env.spawner("alice", config=env.config(modify_pod_hook=hook))
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    assert "would not run as you" in info.value.jupyterhub_message
    assert logged in caplog.text
    assert await env.pod_names() == []


async def test_a_profiles_hook_is_checked_too(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    # A profile can set modify_pod_hook when the spawn starts (a callable override is
    # called with the spawner: it returns the hook); the final check still follows it.
    profiles = [
        {"display_name": "Root", "slug": "root", "default": True,
         "kubespawner_override": {"modify_pod_hook": lambda spawner: as_root}},
    ]  # fmt: skip
    spawner = env.spawner("alice", config=env.config(profile_list=profiles))
    spawner.user_options = {"profile": "root"}
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    assert "would not run as you" in info.value.jupyterhub_message
    assert "runs as 0:" in caplog.text
    assert await env.pod_names() == []
