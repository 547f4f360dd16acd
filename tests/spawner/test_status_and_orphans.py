"""Pure rules: scheduler refusal, finished pods, orphan selection, error mapping."""

from __future__ import annotations

from typing import Any

import pytest
from jupyterhub import orm
from kubernetes_asyncio.client.rest import ApiException

from lsst_hub.spawner import kube
from lsst_hub.spawner.reconcile import (
    KnownServers,
    default_instance,
    known_servers_from_db,
    select_orphans,
)
from lsst_hub.spawner.status import pod_finished, unschedulable_reason


def pod(name: str = "jupyter-alice", **parts: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": name}, "spec": {}, "status": {}}
    for key, value in parts.items():
        obj[key].update(value)
    return obj


UNSCHEDULABLE = {
    "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available: 3 Insufficient cpu."}
    ]
}  # fmt: skip


def test_unschedulable_from_condition() -> None:
    assert (
        unschedulable_reason(pod(status=UNSCHEDULABLE))
        == "0/3 nodes are available: 3 Insufficient cpu."
    )


def test_unschedulable_from_event_for_this_pod_only() -> None:
    events = [
        {
            "reason": "FailedScheduling",
            "message": "other",
            "involvedObject": {"name": "jupyter-bob"},
        },
        {"reason": "Scheduled", "message": "ok", "involvedObject": {"name": "jupyter-alice"}},
    ]
    assert unschedulable_reason(pod(), events) is None
    events.append({"reason": "FailedScheduling", "message": "node(s) didn't match",
                   "involvedObject": {"name": "jupyter-alice"}})  # fmt: skip
    assert unschedulable_reason(pod(), events) == "node(s) didn't match"


def test_bound_pod_is_never_unschedulable() -> None:
    assert unschedulable_reason(pod(spec={"nodeName": "n1"}, status=UNSCHEDULABLE)) is None
    assert unschedulable_reason(None) is None
    assert unschedulable_reason(pod(status={"conditions": [{"type": "PodScheduled",
                                "status": "True"}]})) is None  # fmt: skip


@pytest.mark.parametrize(
    ("status", "meta", "finished"),
    [
        ({"phase": "Running"}, {}, False),
        ({"phase": "Pending"}, {}, False),
        ({"phase": "Failed"}, {}, True),
        ({"phase": "Succeeded"}, {}, True),
        ({"phase": "Failed"}, {"deletionTimestamp": "2026-01-01T00:00:00Z"}, False),
        ({"phase": "Running", "containerStatuses": [
            {"name": "notebook", "state": {"terminated": {"exitCode": 0}}}]}, {}, True),
        ({"phase": "Running", "containerStatuses": [
            {"name": "sidecar", "state": {"terminated": {"exitCode": 0}}}]}, {}, False),
    ],
)  # fmt: skip
def test_pod_finished(status: dict[str, Any], meta: dict[str, Any], finished: bool) -> None:
    assert pod_finished(pod(status=status, metadata=meta)) is finished


def labeled(name: str, user: str, server: str = "", instance: str = "hub-a",
             component: str = "singleuser-server", **meta: Any) -> dict[str, Any]:  # fmt: skip
    annotations = {"hub.jupyter.org/username": user}
    if server:
        annotations["hub.jupyter.org/servername"] = server
    return {
        "metadata": {
            "name": name,
            "labels": {"lsst-hub/instance": instance, "component": component},
            "annotations": annotations,
            **meta,
        }
    }


def test_select_orphans_only_ours_and_unknown() -> None:
    pods = [
        labeled("jupyter-alice", "alice"),  # known
        labeled("jupyter-bob", "bob"),  # orphan
        labeled("jupyter-alice--gpu", "alice", "gpu"),  # named server, orphan
        labeled("jupyter-carol", "carol", instance="hub-b"),  # another hub's
        labeled("jupyter-dave", "dave", component="other"),  # not a server
        labeled("jupyter-erin", "erin", deletionTimestamp="2026-01-01T00:00:00Z"),
        {"metadata": {"name": "unlabeled", "annotations": {"hub.jupyter.org/username": "x"}}},
        {"metadata": {"name": "no-annotation", "labels": {"lsst-hub/instance": "hub-a",
                                                          "component": "singleuser-server"}}},
    ]  # fmt: skip
    known = {("alice", ""), ("zoe", "")}
    assert select_orphans(pods, known, "hub-a") == ["jupyter-alice--gpu", "jupyter-bob"]
    assert select_orphans(pods, known | {("bob", ""), ("alice", "gpu")}, "hub-a") == []


def test_a_renamed_users_pod_is_known_by_the_pod_its_server_records() -> None:
    # alice was renamed alice2 while her server ran: the annotation still says alice,
    # the server's state still names its pod.
    pod = labeled("jupyter-alice", "alice", namespace="jhub")
    by_name = KnownServers(servers=frozenset({("alice2", "")}))
    assert select_orphans([pod], by_name, "hub-a") == ["jupyter-alice"]
    by_pod = KnownServers(
        servers=frozenset({("alice2", "")}), pods=frozenset({("jhub", "jupyter-alice")})
    )
    assert select_orphans([pod], by_pod, "hub-a") == []
    # The pod name counts in its namespace only.
    elsewhere = KnownServers(pods=frozenset({("other", "jupyter-alice")}))
    assert select_orphans([pod], elsewhere, "hub-a") == ["jupyter-alice"]


def test_default_instances_differ_per_hub() -> None:
    a = default_instance("http://hub-a:8081/hub/api")
    assert a == default_instance("http://hub-a:8081/hub/api/")
    assert a != default_instance("http://hub-b:8081/hub/api")
    assert a.startswith("jupyterhub-")
    assert len(a) <= 63


def test_known_servers_from_a_real_hub_database() -> None:
    db = orm.new_session_factory("sqlite:///:memory:")()
    for name, running in (("alice", True), ("bob", False)):
        user = orm.User(name=name)
        db.add(user)
        db.commit()
        spawner = orm.Spawner(user=user, name="")
        db.add(spawner)
        if running:
            spawner.server = orm.Server()
            # What the hub stores once KubeSpawner's start has returned.
            spawner.state = {"pod_name": "jupyter-alice", "namespace": "jhub"}
        db.commit()
    named = orm.Spawner(user=db.query(orm.User).filter_by(name="bob").one(), name="gpu")
    named.server = orm.Server()
    db.add(named)
    db.commit()
    known = known_servers_from_db(db)
    assert known.servers == {("alice", ""), ("bob", "gpu")}
    assert known.pods == {("jhub", "jupyter-alice")}


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (404, kube.KubeNotFoundError),
        (409, kube.KubeConflictError),
        (422, kube.KubeRefusedError),
        (403, kube.KubeRefusedError),
        (429, kube.KubeUnavailableError),
        (503, kube.KubeUnavailableError),
    ],
)
def test_api_errors_map_to_our_exceptions(status: int, cls: type[Exception]) -> None:
    exc = ApiException(status=status, reason="Reason")
    exc.body = '{"kind": "Status", "message": "pods \\"x\\" is forbidden: nope"}'
    mapped = kube.map_api_exception(exc, "create pod x")
    assert type(mapped) is cls
    assert str(mapped) == f'create pod x: Kubernetes answered {status} pods "x" is forbidden: nope'
