"""LSSTSpawner against the dev cluster over HTTP: identity, home volume, stop."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kubernetes_asyncio.client.rest import ApiException

from lsst_hub.spawner import SpawnError
from tests.spawner.conftest import Env
from tests.spawner.pss import restricted_violations
from tests.spawner.support import identity


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    container = pod["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container.get("env") or []}


async def test_pod_runs_as_the_person_with_home(env: Env) -> None:
    person = identity("alice", uid=20001)
    spawner = env.spawner("alice", person=person)
    url = await spawner.start()
    assert url.startswith("http://")
    pod = await env.pod(spawner.pod_name)
    assert pod is not None
    assert pod["status"]["phase"] == "Running"
    psc = pod["spec"]["securityContext"]
    assert (psc["runAsUser"], psc["runAsGroup"]) == (20001, 20001)
    assert psc["supplementalGroups"] == [20001, 30000]
    assert "fsGroup" not in psc
    assert restricted_violations(pod) == []
    environment = env_of(pod)
    assert environment["NB_USER"] == "alice"
    assert environment["NB_UID"] == "20001"
    assert environment["HOME"] == "/gpfs/home/alice"
    container = pod["spec"]["containers"][0]
    assert container["workingDir"] == "/gpfs/home/alice"
    assert {"name": "home", "mountPath": "/gpfs/home/alice"} in container["volumeMounts"]
    assert {"name": "home", "persistentVolumeClaim": {"claimName": "home-alice"}} in pod["spec"][
        "volumes"
    ]
    assert pod["metadata"]["labels"]["lsst-hub/instance"] == "test-hub"

    pv = await env.core.read_persistent_volume("gpfs-home-alice")
    assert pv.spec.host_path.path == "/gpfs/home/alice"
    assert pv.spec.persistent_volume_reclaim_policy == "Retain"
    assert pv.status.phase == "Bound"
    pvc = await env.core.read_namespaced_persistent_volume_claim("home-alice", env.namespace)
    assert pvc.status.phase == "Bound"
    assert pvc.spec.volume_name == "gpfs-home-alice"

    await spawner.stop()
    assert await env.pod(spawner.pod_name) is None
    # the home is untouched by stop
    pvc = await env.core.read_namespaced_persistent_volume_claim("home-alice", env.namespace)
    assert pvc.status.phase == "Bound"
    assert (await env.core.read_persistent_volume("gpfs-home-alice")).status.phase == "Bound"
    assert await spawner.poll() == 1


async def test_second_start_reuses_the_home(env: Env) -> None:
    person = identity("bob")
    first = env.spawner("bob", person=person)
    await first.start()
    pv_uid = (await env.core.read_persistent_volume("gpfs-home-bob")).metadata.uid
    await first.stop()
    second = env.spawner("bob", person=person)
    await second.start()
    assert (await env.core.read_persistent_volume("gpfs-home-bob")).metadata.uid == pv_uid
    await second.stop()


async def test_missing_auth_state_says_what_to_configure(env: Env) -> None:
    spawner = env.spawner("carol", auth_state=None)
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    message = str(info.value)
    assert "enable_auth_state" in message
    assert "JUPYTERHUB_CRYPT_KEY" in message
    assert info.value.jupyterhub_message == message
    assert await env.pod_names() == []


async def test_incomplete_auth_state_is_refused(env: Env) -> None:
    spawner = env.spawner(
        "dave", auth_state={"ldap_dn": "uid=dave", "home_directory": "/gpfs/home/dave"}
    )
    with pytest.raises(SpawnError, match="uid_number"):
        await spawner.start()
    assert await env.pod_names() == []


async def test_home_outside_roots_is_refused_before_any_object(env: Env) -> None:
    spawner = env.spawner("eve", person=identity("eve", home="/etc"))
    with pytest.raises(SpawnError, match="not under any allowed home root"):
        await spawner.start()
    assert await env.pod_names() == []
    with pytest.raises(ApiException) as info:
        await env.core.read_persistent_volume("gpfs-home-eve")
    assert info.value.status == 404


async def test_existing_pv_with_other_path_is_refused(env: Env) -> None:
    await env.core.create_persistent_volume(
        {
            "metadata": {"name": "gpfs-home-frank"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": "/gpfs/home/somebody-else", "type": "Directory"},
                "claimRef": {"namespace": env.namespace, "name": "home-frank"},
            },
        }
    )
    spawner = env.spawner("frank", person=identity("frank"))
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    assert "gpfs-home-frank is not this person's home" in str(info.value)
    assert "/gpfs/home/somebody-else" in str(info.value)
    assert await env.pod_names() == []


async def test_existing_claim_bound_elsewhere_is_refused(env: Env) -> None:
    await env.core.create_namespaced_persistent_volume_claim(
        env.namespace,
        {
            "metadata": {"name": "home-gina"},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": "some-other-volume",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    spawner = env.spawner("gina", person=identity("gina"))
    with pytest.raises(SpawnError, match="bound to some-other-volume"):
        await spawner.start()
    assert await env.pod_names() == []


async def test_released_home_is_rebound_after_claim_deleted_by_hand(env: Env) -> None:
    person = identity("hank")
    spawner = env.spawner("hank", person=person)
    await spawner.start()
    await spawner.stop()
    await env.core.delete_namespaced_persistent_volume_claim("home-hank", env.namespace)
    again = env.spawner("hank", person=person)
    await again.start()
    pv = await env.core.read_persistent_volume("gpfs-home-hank")
    assert pv.status.phase == "Bound"
    assert pv.spec.host_path.path == "/gpfs/home/hank"
    await again.stop()


async def test_delete_forever_keeps_the_home(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    spawner = env.spawner("ivy", person=identity("ivy"))
    await spawner.start()
    await spawner.stop()
    with caplog.at_level(logging.INFO):
        await spawner.delete_forever()
    assert "kubectl -n jhub delete pvc home-ivy && kubectl delete pv gpfs-home-ivy" in caplog.text
    assert (await env.core.read_persistent_volume("gpfs-home-ivy")).status.phase == "Bound"
    await env.core.read_namespaced_persistent_volume_claim("home-ivy", env.namespace)


async def test_delete_pvc_cannot_be_turned_on(env: Env) -> None:
    spawner = env.spawner("jo", config=env.config(delete_pvc=True, storage_pvc_ensure=True))
    assert spawner.delete_pvc is False
    assert spawner.storage_pvc_ensure is False


async def make_shared_claim(env: Env) -> None:
    await env.core.create_persistent_volume(
        {
            "metadata": {"name": "gpfs-homes"},
            "spec": {
                "capacity": {"storage": "100Ti"},
                "accessModes": ["ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": "/gpfs/home", "type": "Directory"},
            },
        }
    )
    await env.core.create_namespaced_persistent_volume_claim(
        env.namespace,
        {
            "metadata": {"name": "gpfs-homes"},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": "gpfs-homes",
                "resources": {"requests": {"storage": "100Ti"}},
            },
        },
    )


async def test_shared_claim_mounts_home_by_subpath(env: Env) -> None:
    await make_shared_claim(env)
    config = env.config(
        home_volume_mode="shared-claim",
        shared_home_claim="gpfs-homes",
        home_directory_pattern="/gpfs/home/[a-z]/{username}",
    )
    spawner = env.spawner("kim", config=config, person=identity("kim", home="/gpfs/home/k/kim"))
    await spawner.start()
    pod = await env.pod(spawner.pod_name)
    assert pod is not None
    mount = next(m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == "home")
    assert mount == {"name": "home", "mountPath": "/gpfs/home/k/kim", "subPath": "k/kim"}
    assert restricted_violations(pod) == []
    # no per-user volume in this mode
    with pytest.raises(ApiException):
        await env.core.read_persistent_volume("gpfs-home-kim")
    await spawner.stop()
    assert (await env.core.read_persistent_volume("gpfs-homes")).status.phase == "Bound"


async def test_shared_claim_without_name_is_a_config_error(env: Env) -> None:
    spawner = env.spawner("lee", config=env.config(home_volume_mode="shared-claim"))
    with pytest.raises(SpawnError, match="shared_home_claim is not set"):
        await spawner.start()


async def test_mount_path_can_differ_from_gpfs_path(env: Env) -> None:
    spawner = env.spawner("max", config=env.config(home_mount_path="/home/{username}"))
    await spawner.start()
    pod = await env.pod(spawner.pod_name)
    assert pod is not None
    container = pod["spec"]["containers"][0]
    assert container["workingDir"] == "/home/max"
    assert env_of(pod)["HOME"] == "/home/max"
    pv = await env.core.read_persistent_volume("gpfs-home-max")
    assert pv.spec.host_path.path == "/gpfs/home/max"
    await spawner.stop()


async def test_synthesized_passwd_and_group(env: Env) -> None:
    person = identity("nia", uid=20077)
    spawner = env.spawner("nia", config=env.config(synthesize_passwd=True), person=person)
    await spawner.start()
    configmap = await env.core.read_namespaced_config_map("passwd-nia", env.namespace)
    assert "nia:x:20077:20077:Nia Test:/gpfs/home/nia:/bin/bash" in configmap.data["passwd"]
    assert "hpcusers:x:30000:nia" in configmap.data["group"]
    pod = await env.pod(spawner.pod_name)
    assert pod is not None
    paths = {m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert {"/etc/passwd", "/etc/group"} <= paths
    assert restricted_violations(pod) == []
    await spawner.stop()


async def test_csi_home_source_with_placeholders(env: Env) -> None:
    source = {
        "csi": {
            "driver": "spectrumscale.csi.ibm.com",
            "volumeHandle": "fs1;{uid};{home_directory}",
            "volumeAttributes": {"user": "{username}"},
        }
    }
    spawner = env.spawner(
        "oli", config=env.config(home_pv_source=source), person=identity("oli", uid=20123)
    )
    await spawner.start()
    pv = await env.core.read_persistent_volume("gpfs-home-oli")
    assert pv.spec.csi.volume_handle == "fs1;20123;/gpfs/home/oli"
    assert pv.spec.csi.volume_attributes == {"user": "oli"}
    await spawner.stop()


async def test_bad_mount_path_is_refused(env: Env) -> None:
    spawner = env.spawner("pat", config=env.config(home_mount_path="/home/../{username}"))
    with pytest.raises(SpawnError, match="not a plain absolute path"):
        await spawner.start()
    assert await env.pod_names() == []
