"""What a spawn refuses against the dev cluster: system ids, someone else's home,
containers that need privileges; and which pods the orphan clean-up keeps (two hubs
in one namespace, a renamed user)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from jupyterhub import orm
from jupyterhub.objects import Hub
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException
from traitlets import TraitError

from lsst_hub.identity import Group
from lsst_hub.spawner import LSSTSpawner, SpawnError
from lsst_hub.spawner.reconcile_service import ReconcileService
from tests.spawner.conftest import Env
from tests.spawner.support import HubDB, identity


async def no_home_volume(env: Env, user: str) -> bool:
    try:
        await env.core.read_persistent_volume(f"gpfs-home-{user}")
    except ApiException as exc:
        return exc.status == 404
    return False


# -- no root, no system ids ------------------------------------------------------------

SYSTEM_IDS = [
    ("uid 1", {"uid_number": 1}, "uidNumber 1 is below min_uid (1000)"),
    ("uid 999", {"uid_number": 999}, "uidNumber 999 is below min_uid (1000)"),
    ("gid 0", {"gid_number": 0}, "gidNumber 0 is below min_gid (1000)"),
    ("group 0", {"groups": (Group("wheel", 0),)}, "group id 0 is in refused_gids"),
    ("negative group", {"groups": (Group("odd", -2),)}, "group id -2 is negative"),
]


@pytest.mark.parametrize(
    ("change", "sentence"), [s[1:] for s in SYSTEM_IDS], ids=[s[0] for s in SYSTEM_IDS]
)
async def test_system_ids_get_no_server(env: Env, change: dict[str, Any], sentence: str) -> None:
    person = dataclasses.replace(identity("root"), **change)
    spawner = env.spawner("root", person=person)
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    assert sentence in info.value.jupyterhub_message
    assert await env.pod_names() == []
    assert await no_home_volume(env, "root")


async def test_a_site_may_lower_the_limits_but_never_allow_root(env: Env) -> None:
    person = dataclasses.replace(identity("sys"), uid_number=500, gid_number=500)
    spawner = env.spawner("sys", config=env.config(min_uid=100, min_gid=100), person=person)
    await spawner.start()
    pod = await env.pod(spawner.pod_name)
    assert pod is not None
    assert pod["spec"]["securityContext"]["runAsUser"] == 500
    await spawner.stop()
    for trait in ("min_uid", "min_gid"):
        with pytest.raises(TraitError, match="root is never allowed"):
            env.spawner("x", config=env.config(**{trait: 0}))


async def test_refused_gids_are_configurable(env: Env) -> None:
    person = dataclasses.replace(identity("ops"), groups=(Group("docker", 30500),))
    spawner = env.spawner("ops", config=env.config(refused_gids={0, 30500}), person=person)
    with pytest.raises(SpawnError, match="group id 30500 is in refused_gids"):
        await spawner.start()
    assert await env.pod_names() == []


# -- a home belongs to its person ------------------------------------------------------


@pytest.mark.parametrize(
    "home",
    [
        "/gpfs/home/bob",  # another person's home
        "/gpfs/home/bob/alice",  # a directory inside it
        "/gpfs/home/{uid}",  # checked as written, was mounted as /gpfs/home/<uid>
    ],
)
async def test_someone_elses_home_is_refused(env: Env, home: str) -> None:
    spawner = env.spawner("alice", person=identity("alice", home=home))
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    assert "is not the home of 'alice'" in info.value.jupyterhub_message
    assert "home_directory_pattern" in info.value.jupyterhub_message
    assert await env.pod_names() == []
    assert await no_home_volume(env, "alice")


async def test_another_layout_is_configured(env: Env) -> None:
    config = env.config(home_directory_pattern="/gpfs/home/[a-z]/{username}")
    spawner = env.spawner("amy", config=config, person=identity("amy", home="/gpfs/home/a/amy"))
    await spawner.start()
    pv = await env.core.read_persistent_volume("gpfs-home-amy")
    assert pv.spec.host_path.path == "/gpfs/home/a/amy"
    await spawner.stop()
    other = env.spawner("bea", config=config, person=identity("bea", home="/gpfs/home/a/amy"))
    with pytest.raises(SpawnError, match="is not the home of 'bea'"):
        await other.start()


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/gpfs/home", "the home root itself"),  # every home at once
        ("/gpfs/home/bob", "is not the home of 'cal'"),
        ("/gpfs/home/{username}/../bob", "contains '..'"),
    ],
)
async def test_the_expanded_volume_path_is_checked(env: Env, path: str, why: str) -> None:
    source = {"hostPath": {"path": path, "type": "Directory"}}
    spawner = env.spawner("cal", config=env.config(home_pv_source=source))
    with pytest.raises(SpawnError, match=why):
        await spawner.start()
    assert await env.pod_names() == []
    assert await no_home_volume(env, "cal")


async def test_a_volume_template_naming_the_person_is_fine(env: Env) -> None:
    source = {"hostPath": {"path": "/gpfs/home/{username}", "type": "Directory"}}
    spawner = env.spawner("dee", config=env.config(home_pv_source=source))
    await spawner.start()
    pv = await env.core.read_persistent_volume("gpfs-home-dee")
    assert pv.spec.host_path.path == "/gpfs/home/dee"
    await spawner.stop()


# -- containers the configuration adds -------------------------------------------------


def metadata_blocker() -> Any:
    """Zero to JupyterHub's singleuser.cloudMetadata.blockWithIptables init container,
    as its jupyterhub_config.py appends it to c.KubeSpawner.init_containers."""
    return client.V1Container(
        name="block-cloud-metadata",
        image="quay.io/jupyterhub/k8s-network-tools:4.3.0",
        command=["iptables", "-A", "OUTPUT", "-d", "169.254.169.254", "-j", "DROP"],
        security_context=client.V1SecurityContext(
            privileged=True,
            run_as_user=0,
            capabilities=client.V1Capabilities(add=["NET_ADMIN"]),
        ),
    )


async def test_a_privileged_init_container_is_refused_at_start(env: Env) -> None:
    spawner = env.spawner("eve", config=env.config(init_containers=[metadata_blocker()]))
    with pytest.raises(SpawnError) as info:
        await spawner.start()
    message = info.value.jupyterhub_message
    assert "c.KubeSpawner.init_containers / singleuser.cloudMetadata.blockWithIptables" in message
    assert "NetworkPolicy" in message
    assert "runAsUser 0 (root), privileged, capabilities ['NET_ADMIN']" in message
    # Refused before anything was made.
    assert await env.pod_names() == []
    assert await no_home_volume(env, "eve")


async def test_a_privileged_sidecar_in_snake_case_is_refused(env: Env) -> None:
    sidecar = {
        "name": "vpn",
        "image": "x",
        "security_context": {"capabilities": {"add": ["NET_ADMIN"]}},
    }
    spawner = env.spawner("fay", config=env.config(extra_containers=[sidecar]))
    with pytest.raises(SpawnError, match=r"c.KubeSpawner.extra_containers: container 'vpn'"):
        await spawner.start()
    assert await env.pod_names() == []


async def test_a_profile_adding_a_privileged_init_container_is_refused(env: Env) -> None:
    profiles = [
        {"display_name": "Default", "slug": "default", "default": True},
        {"display_name": "Net", "slug": "net",
         "kubespawner_override": {"init_containers": [metadata_blocker()]}},
    ]  # fmt: skip
    spawner = env.spawner("gus", config=env.config(profile_list=profiles))
    spawner.user_options = {"profile": "net"}
    with pytest.raises(SpawnError, match="blockWithIptables"):
        await spawner.start()
    assert await env.pod_names() == []


async def test_an_unprivileged_init_container_runs_as_the_person(env: Env) -> None:
    setup = {"name": "setup", "image": "busybox", "command": ["true"]}
    spawner = env.spawner("hal", config=env.config(init_containers=[setup]))
    await spawner.start()
    pod = await env.pod(spawner.pod_name)
    assert pod is not None
    (init,) = pod["spec"]["initContainers"]
    assert init["securityContext"]["runAsUser"] == pod["spec"]["securityContext"]["runAsUser"]
    assert init["securityContext"]["privileged"] is False
    await spawner.stop()


# -- two hubs in one namespace -----------------------------------------------------------


def without_instance(env: Env) -> Any:
    config = env.config()
    del config.LSSTSpawner["hub_instance"]
    return config


async def test_two_hubs_with_the_default_instance_keep_each_others_pods(env: Env) -> None:
    config = without_instance(env)
    hubs = {"a": (Hub(port=18081), HubDB()), "b": (Hub(port=18082), HubDB())}
    spawners: dict[str, LSSTSpawner] = {}
    for (key, (hub, db)), user in zip(hubs.items(), ("ann", "ben"), strict=True):
        spawners[key] = env.spawner(user, config=config, hub=hub, hub_db=db)
        await spawners[key].start()
    # Each hub's orphan pass knows only its own server.
    for spawner in spawners.values():
        assert await spawner._reconcile_once() == []
    assert await env.pod_names() == ["jupyter-ann", "jupyter-ben"]
    labels = {}
    for key, spawner in spawners.items():
        pod = await env.pod(spawner.pod_name)
        assert pod is not None
        labels[key] = pod["metadata"]["labels"]["lsst-hub/instance"]
    assert labels["a"] != labels["b"]
    # The service started by each hub looks for the same label as its spawner.
    for key, (hub, _) in hubs.items():
        assert ReconcileService(hub_api_url=hub.api_url).hub_instance == labels[key]
    for spawner in spawners.values():
        await spawner.stop()


# -- renaming a user while the server runs ---------------------------------------------


async def test_a_renamed_users_pod_is_no_orphan(env: Env) -> None:
    spawner = env.spawner("ivy", person=identity("ivy"))
    await spawner.start()
    pod = await env.pod(spawner.pod_name)
    assert pod is not None
    # What the hub does once start has returned, then PATCH /users/ivy {"name": "ivy2"}.
    spawner.orm_spawner.state = spawner.get_state()
    user = env.hub_db.db.query(orm.User).filter_by(name="ivy").one()
    user.name = "ivy2"
    env.hub_db.db.commit()
    assert await spawner._reconcile_once() == []
    kept = await env.pod(spawner.pod_name)
    assert kept is not None
    assert kept["metadata"]["uid"] == pod["metadata"]["uid"]
    await spawner.stop()
