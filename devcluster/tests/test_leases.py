"""``coordination.k8s.io/v1`` Leases, as kube-apiserver 1.32 serves them, over real HTTP.

What leader election relies on: discovery, the verbs, the schema and
``ValidateLeaseSpec``, MicroTime decoding, optimistic concurrency (409 on a
stale resourceVersion, AlreadyExists on a second create), the Lease strategy's
update rules (a PUT needs a resourceVersion, and may create), RBAC, and
``kubernetes_asyncio.leaderelection`` itself electing one of two candidates.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.leaderelection import electionconfig, leaderelection
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock

from devcluster import DevCluster
from devcluster.gotime import micro_time_error
from devcluster.testing import kubectl_env

from helpers import eventually, raw

pytestmark = pytest.mark.line_independent

GROUP = "coordination.k8s.io"
LEASES = f"/apis/{GROUP}/v1/namespaces/default/leases"
MICRO = "2026-11-30T12:00:00.123456Z"


def lease(name: str = "hub", **spec: Any) -> dict[str, Any]:
    """A Lease manifest; ``spec`` in the API's own field names."""
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Lease",
        "metadata": {"name": name},
    }
    body["spec"] = spec or {
        "holderIdentity": "hub-0",
        "leaseDurationSeconds": 10,
        "acquireTime": MICRO,
        "renewTime": MICRO,
        "leaseTransitions": 0,
    }
    return body


# -- discovery and the verbs -------------------------------------------------------------
async def test_discovery_lists_leases(devcluster: DevCluster) -> None:
    code, groups = await raw(devcluster, "GET", "/apis")
    assert code == 200
    coordination = [g for g in groups["groups"] if g["name"] == GROUP]
    assert coordination and coordination[0]["preferredVersion"]["groupVersion"] == f"{GROUP}/v1"
    code, resources = await raw(devcluster, "GET", f"/apis/{GROUP}/v1")
    assert code == 200 and resources["groupVersion"] == f"{GROUP}/v1"
    (entry,) = [r for r in resources["resources"] if r["name"] == "leases"]
    assert entry["kind"] == "Lease" and entry["namespaced"] is True
    assert entry["singularName"] == "lease" and "shortNames" not in entry
    assert sorted(entry["verbs"]) == [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ]


async def test_verbs_and_microtime_round_trip(devcluster: DevCluster, kube_api: Any) -> None:
    coordination = client.CoordinationV1Api(kube_api)
    start = (await coordination.list_namespaced_lease("default")).metadata.resource_version
    created = await coordination.create_namespaced_lease("default", lease())
    assert created.metadata.resource_version and created.metadata.uid
    # the strategy sets no generation on a Lease
    assert created.metadata.generation is None
    # MicroTime fields come back as written, to the microsecond
    code, stored = await raw(devcluster, "GET", f"{LEASES}/hub")
    assert code == 200
    assert stored["spec"]["acquireTime"] == MICRO and stored["spec"]["renewTime"] == MICRO
    assert "generation" not in stored["metadata"]

    got = await coordination.read_namespaced_lease("hub", "default")
    assert got.spec.holder_identity == "hub-0"
    assert got.spec.renew_time == dt.datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=dt.UTC)
    got.spec.holder_identity = "hub-1"
    got.spec.lease_transitions = 1
    replaced = await coordination.replace_namespaced_lease("hub", "default", got)
    assert replaced.spec.holder_identity == "hub-1"
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    patched = await coordination.patch_namespaced_lease(
        "hub", "default", {"spec": {"renewTime": "2026-11-30T12:00:05.000001Z"}}
    )
    assert patched.spec.renew_time.microsecond == 1
    listed = await coordination.list_namespaced_lease("default")
    assert [item.metadata.name for item in listed.items] == ["hub"]
    await coordination.create_namespaced_lease("default", lease("other"))
    await coordination.delete_namespaced_lease("other", "default")
    # a watch from the version before the first write replays every change since
    stream = watch.Watch().stream(
        coordination.list_namespaced_lease, "default", resource_version=start, timeout_seconds=30
    )
    events = []
    async for event in stream:
        events.append((event["type"], event["object"].metadata.name))
        if len(events) == 5:
            break
    assert events == [
        ("ADDED", "hub"),
        ("MODIFIED", "hub"),
        ("MODIFIED", "hub"),
        ("ADDED", "other"),
        ("DELETED", "other"),
    ]
    await coordination.delete_collection_namespaced_lease("default")
    assert (await coordination.list_namespaced_lease("default")).items == []


# -- validation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (
            {"leaseDurationSeconds": -1},
            "spec.leaseDurationSeconds",
            "Invalid value: -1: must be greater than 0",
        ),
        (
            {"leaseDurationSeconds": 0},
            "spec.leaseDurationSeconds",
            "Invalid value: 0: must be greater than 0",
        ),
        (
            {"leaseTransitions": -2},
            "spec.leaseTransitions",
            "Invalid value: -2: must be greater than or equal to 0",
        ),
    ],
)
async def test_lease_spec_validation_refuses(
    devcluster: DevCluster, spec: dict[str, Any], field: str, message: str
) -> None:
    code, status = await raw(devcluster, "POST", LEASES, lease("bad", holderIdentity="a", **spec))
    assert code == 422 and status["reason"] == "Invalid"
    assert status["message"] == f'Lease.{GROUP} "bad" is invalid: {field}: {message}'
    assert status["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "message": message, "field": field}
    ]
    assert status["details"]["group"] == GROUP and status["details"]["kind"] == "Lease"


async def test_validation_on_update_and_both_causes(devcluster: DevCluster) -> None:
    code, created = await raw(devcluster, "POST", LEASES, lease())
    assert code == 201
    created["spec"].update(leaseDurationSeconds=-5, leaseTransitions=-1)
    code, status = await raw(devcluster, "PUT", f"{LEASES}/hub", created)
    assert code == 422
    assert status["message"] == (
        f'Lease.{GROUP} "hub" is invalid: [spec.leaseDurationSeconds: Invalid value: -5: must '
        "be greater than 0, spec.leaseTransitions: Invalid value: -1: must be greater than or "
        "equal to 0]"
    )
    code, _ = await raw(
        devcluster,
        "PATCH",
        f"{LEASES}/hub",
        {"spec": {"leaseDurationSeconds": 0}},
        "application/merge-patch+json",
    )
    assert code == 422


async def test_schema_refuses_unknown_fields_and_wrong_types(devcluster: DevCluster) -> None:
    code, status = await raw(
        devcluster, "POST", LEASES, lease("x", holderIdentity="a", leaseDuration=10)
    )
    assert code == 422 and "leaseDuration" in status["message"]
    code, status = await raw(
        devcluster, "POST", LEASES, lease("x", holderIdentity="a", leaseDurationSeconds="10")
    )
    assert code == 422 and "spec.leaseDurationSeconds" in status["message"]
    body = lease("Not_A_Name")
    code, status = await raw(devcluster, "POST", LEASES, body)
    assert code == 422 and status["details"]["causes"][0]["field"] == "metadata.name"


@pytest.mark.parametrize(
    ("stamp", "why"),
    [
        ("2026-11-30T12:00:00Z", 'cannot parse "Z" as ".000000"'),
        ("2026-11-30T12:00:00.123Z", 'cannot parse ".123Z" as ".000000"'),
        ("2026-11-30T12:00:00.123456789Z", 'cannot parse "789Z" as "Z07:00"'),
        ("2026-11-30 12:00:00.123456Z", 'cannot parse " 12:00:00.123456Z" as "T"'),
    ],
)
async def test_microtime_not_in_rfc3339_micro_is_a_decode_error(
    devcluster: DevCluster, stamp: str, why: str
) -> None:
    body = lease("x", holderIdentity="a", renewTime=stamp)
    code, status = await raw(devcluster, "POST", LEASES, body)
    assert code == 400 and status["reason"] == "BadRequest"
    assert status["message"] == (
        f'Lease in version "v1" cannot be handled as a Lease: parsing time "{stamp}" as '
        f'"2006-01-02T15:04:05.000000Z07:00": {why}'
    )


@pytest.mark.parametrize(
    ("stamp", "error"),
    [
        ("2026-11-30T12:00:00.000001-07:30", None),
        ("2024-02-29T23:59:59.999999Z", None),
        ("2026-11-30T1:00:00.000000Z", None),  # Go reads the hour with one digit or two
        ("2023-02-29T12:00:00.000000Z", ": day out of range"),
        ("2026-00-10T12:00:00.000000Z", ": month out of range"),
        ("2026-11-30T12:60:00.000000Z", ": minute out of range"),
        ("2026-11-30T12:00:60.000000Z", ": second out of range"),
        ("2026-11-30T12:00:00.000000+10:61", ": time zone offset minute out of range"),
        ("2026-11-30T12:00:00.000000Zjunk", ': extra text: "junk"'),
        ("2026-11-30T12:00:00.000000 +01:00", 'cannot parse " +01:00" as "Z07:00"'),
        ("2026-11-30T12:00:00.-00001Z", ": fractional second out of range"),
        ("26-11-30T12:00:00.000000Z", 'cannot parse "26-11-30T12:00:00.000000Z" as "2006"'),
        ("2026-1-30T12:00:00.000000Z", 'cannot parse "1-30T12:00:00.000000Z" as "01"'),
        ("2026-11-30T12:00:00,000000Z", None),  # Go takes a comma for the point
    ],
)
def test_micro_time_parse_follows_go(stamp: str, error: str | None) -> None:
    found = micro_time_error(stamp)
    if error is None:
        assert found is None
    else:
        assert found is not None and found.startswith(f'parsing time "{stamp}"')
        assert found.endswith(error)


async def test_microtime_forms_the_server_accepts(devcluster: DevCluster) -> None:
    stamps = ["2026-11-30T12:00:00.000000Z", "2026-11-30T13:00:00.123456+01:00", None]
    for i, stamp in enumerate(stamps):
        code, created = await raw(
            devcluster, "POST", LEASES, lease(f"ok{i}", holderIdentity="a", acquireTime=stamp)
        )
        assert code == 201, created
    # a range error is Go's other wording
    code, status = await raw(
        devcluster,
        "POST",
        LEASES,
        lease("feb", holderIdentity="a", acquireTime="2026-02-30T12:00:00.000000Z"),
    )
    assert code == 400
    assert status["message"].endswith(
        'parsing time "2026-02-30T12:00:00.000000Z": day out of range'
    )


async def test_coordinated_election_fields_are_dropped(devcluster: DevCluster) -> None:
    # CoordinatedLeaderElection is off by default: the strategy clears both fields,
    # before validation (an unknown strategy is not refused)
    body = lease("hub", holderIdentity="a", strategy="NoSuchStrategy", preferredHolder="b")
    code, created = await raw(devcluster, "POST", LEASES, body)
    assert code == 201 and created["spec"] == {"holderIdentity": "a"}
    created["spec"]["strategy"] = "OldestEmulationVersion"
    code, updated = await raw(devcluster, "PUT", f"{LEASES}/hub", created)
    assert code == 200 and "strategy" not in updated["spec"]


# -- concurrency -----------------------------------------------------------------------------
async def test_stale_resource_version_conflicts(devcluster: DevCluster) -> None:
    code, first = await raw(devcluster, "POST", LEASES, lease())
    assert code == 201
    # two writers read the same version; the first write wins, the second is refused
    mine, theirs = json.loads(json.dumps(first)), json.loads(json.dumps(first))
    mine["spec"]["holderIdentity"] = "hub-1"
    theirs["spec"]["holderIdentity"] = "hub-2"
    code, won = await raw(devcluster, "PUT", f"{LEASES}/hub", mine)
    assert (
        code == 200 and won["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    )
    code, status = await raw(devcluster, "PUT", f"{LEASES}/hub", theirs)
    assert code == 409 and status["reason"] == "Conflict"
    assert status["message"] == (
        f'Operation cannot be fulfilled on leases.{GROUP} "hub": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert status["details"] == {"name": "hub", "group": GROUP, "kind": "leases"}
    code, now = await raw(devcluster, "GET", f"{LEASES}/hub")
    assert now["spec"]["holderIdentity"] == "hub-1"
    # a delete with a stale resourceVersion precondition is refused too
    code, status = await raw(
        devcluster,
        "DELETE",
        f"{LEASES}/hub",
        {"preconditions": {"resourceVersion": first["metadata"]["resourceVersion"]}},
    )
    assert code == 409


async def test_second_create_is_already_exists(kube_api: Any) -> None:
    coordination = client.CoordinationV1Api(kube_api)
    await coordination.create_namespaced_lease("default", lease())
    with pytest.raises(client.ApiException) as info:
        await coordination.create_namespaced_lease("default", lease())
    status = json.loads(info.value.body)
    assert info.value.status == 409 and status["reason"] == "AlreadyExists"
    assert status["message"] == f'leases.{GROUP} "hub" already exists'


async def test_put_needs_a_resource_version(devcluster: DevCluster) -> None:
    code, created = await raw(devcluster, "POST", LEASES, lease())
    assert code == 201
    del created["metadata"]["resourceVersion"]
    code, status = await raw(devcluster, "PUT", f"{LEASES}/hub", created)
    # the Lease strategy does not allow unconditional updates (a Pod's would)
    assert code == 422 and status["reason"] == "Invalid"
    assert status["message"] == (
        f'leases.{GROUP} "hub" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
        "must be specified for an update"
    )


async def test_put_to_a_missing_name_creates(devcluster: DevCluster) -> None:
    body = lease("new")
    body["metadata"]["resourceVersion"] = "12345"  # ignored on this path, as by the storage
    code, created = await raw(devcluster, "PUT", f"{LEASES}/new", body)
    assert code == 201 and created["metadata"]["uid"]
    assert created["metadata"]["resourceVersion"] != "12345"
    code, _ = await raw(devcluster, "PUT", f"{LEASES}/other", lease("new"))
    assert code == 400
    code, status = await raw(
        devcluster, "PUT", f"{LEASES}/bad", lease("bad", leaseDurationSeconds=-1)
    )
    assert code == 422 and status["message"].startswith(f'Lease.{GROUP} "bad" is invalid')


# -- RBAC ------------------------------------------------------------------------------------
ELECTION_ROLE = {
    "metadata": {"name": "hub-lease"},
    "rules": [
        {"apiGroups": [GROUP], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": [GROUP],
            "resources": ["leases"],
            "resourceNames": ["jupyterhub-hub"],
            "verbs": ["get", "update"],
        },
    ],
}


async def service_account_token(cluster: DevCluster, name: str) -> str:
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_service_account("default", {"metadata": {"name": name}})
        request = await core.create_namespaced_service_account_token(
            name, "default", {"spec": {"audiences": []}}
        )
    return str(request.status.token)


async def grant_election_role(cluster: DevCluster, account: str) -> None:
    async with cluster.api_client() as api:
        rbac = client.RbacAuthorizationV1Api(api)
        await rbac.create_namespaced_role("default", ELECTION_ROLE)
        await rbac.create_namespaced_role_binding(
            "default",
            {
                "metadata": {"name": "hub-lease"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "hub-lease",
                },
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": "default"}],
            },
        )


async def test_rbac_without_a_role_is_forbidden(make_devcluster: Any) -> None:
    cluster: DevCluster = await make_devcluster(nodes=1, rbac=True)
    token = await service_account_token(cluster, "hub")
    await raw(cluster, "POST", LEASES, lease("jupyterhub-hub"))  # as admin
    code, current = await raw(cluster, "GET", f"{LEASES}/jupyterhub-hub")
    user = "system:serviceaccount:default:hub"
    for method, path, body, verb in (
        ("GET", f"{LEASES}/jupyterhub-hub", None, "get"),
        ("POST", LEASES, lease("jupyterhub-hub"), "create"),
        ("PUT", f"{LEASES}/jupyterhub-hub", current, "update"),
    ):
        code, status = await raw(cluster, method, path, body, token=token)
        assert code == 403 and status["reason"] == "Forbidden", (method, status)
        assert (
            f'User "{user}" cannot {verb} resource "leases" in API group "{GROUP}"'
            in (status["message"])
        )


async def test_rbac_election_role_allows_exactly_its_verbs(make_devcluster: Any) -> None:
    cluster: DevCluster = await make_devcluster(nodes=1, rbac=True)
    token = await service_account_token(cluster, "hub")
    await grant_election_role(cluster, "hub")
    code, _ = await raw(cluster, "POST", LEASES, lease("jupyterhub-hub"), token=token)
    assert code == 201
    code, got = await raw(cluster, "GET", f"{LEASES}/jupyterhub-hub", token=token)
    assert code == 200
    got["spec"]["holderIdentity"] = "hub-1"
    code, _ = await raw(cluster, "PUT", f"{LEASES}/jupyterhub-hub", got, token=token)
    assert code == 200
    # resourceNames narrow get and update to the one lease; list, watch and delete are not granted
    denied = [
        ("GET", f"{LEASES}/other"),
        ("GET", LEASES),
        ("GET", f"{LEASES}?watch=true"),
        ("DELETE", f"{LEASES}/jupyterhub-hub"),
    ]
    for method, path in denied:
        code, _ = await raw(cluster, method, path, token=token)
        assert code == 403, (method, path)


async def test_rbac_put_that_creates_needs_create(make_devcluster: Any) -> None:
    cluster: DevCluster = await make_devcluster(nodes=1, rbac=True)
    token = await service_account_token(cluster, "hub")
    async with cluster.api_client() as api:
        rbac = client.RbacAuthorizationV1Api(api)
        await rbac.create_namespaced_role(
            "default",
            {
                "metadata": {"name": "update-only"},
                "rules": [{"apiGroups": [GROUP], "resources": ["leases"], "verbs": ["update"]}],
            },
        )
        await rbac.create_namespaced_role_binding(
            "default",
            {
                "metadata": {"name": "update-only"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "update-only",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": "default"}],
            },
        )
    code, status = await raw(cluster, "PUT", f"{LEASES}/new", lease("new"), token=token)
    # the server's create check inside the update: no reason from RBAC after the colon
    assert code == 403 and status["message"] == f'leases.{GROUP} "new" is forbidden: '
    assert status["details"] == {"name": "new", "group": GROUP, "kind": "leases"}
    code, _ = await raw(cluster, "GET", f"{LEASES}/new")
    assert code == 404


# -- kubectl ---------------------------------------------------------------------------------
def test_kubectl_get_leases_prints_the_holder(
    kubectl: Path, make_threaded_devcluster: Callable[..., DevCluster], tmp_path: Path
) -> None:
    cluster = make_threaded_devcluster(nodes=1)
    manifest = tmp_path / "lease.json"
    manifest.write_text(json.dumps(lease("jupyterhub-hub")))
    env = kubectl_env(cluster.kubeconfig)

    def run(*args: str) -> str:
        return subprocess.run(
            [str(kubectl), *args], env=env, capture_output=True, text=True, timeout=60, check=True
        ).stdout

    assert (
        run("create", "-f", str(manifest)).strip()
        == "lease.coordination.k8s.io/jupyterhub-hub created"
    )
    lines = run("get", "leases").splitlines()
    assert lines[0].split() == ["NAME", "HOLDER", "AGE"]
    assert lines[1].split()[:2] == ["jupyterhub-hub", "hub-0"]
    resources = run("api-resources", f"--api-group={GROUP}").splitlines()
    assert resources[1].split() == ["leases", f"{GROUP}/v1", "true", "Lease"]


# -- leader election -------------------------------------------------------------------------
@pytest.mark.slow
async def test_leader_election_one_leader_then_takeover(make_devcluster: Any) -> None:
    """Two LeaseLock candidates, each with the election Role only: one leads; when
    its renewals stop (its election task is cancelled, as a killed process would
    stop, without releasing), the other takes the lease over once it has expired.
    """
    cluster: DevCluster = await make_devcluster(nodes=1, rbac=True)
    token = await service_account_token(cluster, "hub")
    await grant_election_role(cluster, "hub")
    duration = 3  # the library's floor is 1 s retry, a deadline above 1.2 retries, a longer lease
    started: list[str] = []
    stopped_leading: list[str] = []
    forever = asyncio.Event()
    seen: list[dict[str, Any]] = []

    async def observe() -> None:
        async with cluster.api_client() as admin:
            coordination = client.CoordinationV1Api(admin)
            stream = watch.Watch().stream(
                coordination.list_namespaced_lease, "default", timeout_seconds=120
            )
            async for event in stream:
                spec = event["object"].spec
                seen.append(
                    {
                        "holder": spec.holder_identity,
                        "acquire": spec.acquire_time,
                        "renew": spec.renew_time,
                    }
                )

    async def candidate(identity: str) -> None:
        async with cluster.api_client(token) as api:

            async def lead() -> None:
                started.append(identity)
                await forever.wait()

            async def stopped() -> None:
                stopped_leading.append(identity)

            config = electionconfig.Config(
                LeaseLock("jupyterhub-hub", "default", identity, api),
                lease_duration=duration,
                renew_deadline=2,
                retry_period=1,
                onstarted_leading=lead,
                onstopped_leading=stopped,
            )
            await leaderelection.LeaderElection(config).run()

    observer = asyncio.create_task(observe())
    tasks = {name: asyncio.create_task(candidate(name)) for name in ("hub-a", "hub-b")}
    try:
        await eventually(lambda: _true(started))
        leader = started[0]
        follower = "hub-b" if leader == "hub-a" else "hub-a"
        # while the leader renews, the follower (retrying every second) never leads
        await eventually(lambda: _renewals(seen, leader, 3), within=30)
        assert started == [leader]
        assert {s["holder"] for s in seen} == {leader}

        tasks[leader].cancel()
        await eventually(lambda: _true(follower in started), within=30)
        assert started == [leader, follower]
        assert stopped_leading == []  # the leader was cut off, it did not step down
        holders = [s["holder"] for s in seen]
        switch = holders.index(follower)
        # one hand-over, never back
        assert set(holders[:switch]) == {leader} and set(holders[switch:]) == {follower}
        last_renewal = seen[switch - 1]["renew"]
        taken = seen[switch]["acquire"]
        # the follower waited out the lease from the leader's last renewal
        assert (taken - last_renewal).total_seconds() >= duration
    finally:
        forever.set()  # ends the leaders' own tasks, which run() does not own once cancelled
        for task in (*tasks.values(), observer):
            task.cancel()
        await asyncio.gather(*tasks.values(), observer, return_exceptions=True)


async def _true(value: Any) -> Any:
    return value


async def _renewals(seen: list[dict[str, Any]], holder: str, count: int) -> bool:
    return len({s["renew"] for s in seen if s["holder"] == holder}) >= count
