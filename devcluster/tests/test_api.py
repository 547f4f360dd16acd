"""REST semantics of the dev cluster, through kubernetes_asyncio over real HTTP."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from devcluster import DevCluster

from helpers import pod, raw

pytestmark = pytest.mark.line_independent


@pytest.fixture
def core(kube_api: Any) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


def status_of(exc: client.ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


async def test_nodes_are_registered_with_labels_capacity_and_ready(core: client.CoreV1Api) -> None:
    nodes = (await core.list_node()).items
    assert [n.metadata.name for n in nodes] == ["node-1", "node-2", "node-3"]
    node = nodes[0]
    assert node.metadata.labels["kubernetes.io/hostname"] == "node-1"
    assert "node-role.kubernetes.io/worker" in node.metadata.labels
    assert node.status.allocatable == {
        "cpu": "4",
        "memory": "16Gi",
        "pods": "110",
        "ephemeral-storage": "100Gi",
    }
    ready = [c for c in node.status.conditions if c.type == "Ready"]
    assert ready[0].status == "True"


async def test_create_sets_server_metadata_and_answers_201(core: client.CoreV1Api) -> None:
    created, code, _ = await core.create_namespaced_pod_with_http_info("default", pod("p"))
    assert code == 201
    meta = created.metadata
    assert meta.uid and meta.creation_timestamp is not None
    assert meta.namespace == "default"
    assert int(meta.resource_version) > 0
    again = await core.create_namespaced_config_map(
        "default", {"metadata": {"name": "c"}, "data": {"a": "b"}}
    )
    assert int(again.metadata.resource_version) > int(meta.resource_version)


async def test_generate_name_makes_a_unique_name(core: client.CoreV1Api) -> None:
    a = await core.create_namespaced_config_map("default", {"metadata": {"generateName": "cm-"}})
    b = await core.create_namespaced_config_map("default", {"metadata": {"generateName": "cm-"}})
    assert a.metadata.name.startswith("cm-") and len(a.metadata.name) == 8
    assert a.metadata.name != b.metadata.name


async def test_duplicate_create_is_409_already_exists(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod("dup"))
    with pytest.raises(client.ApiException) as info:
        await core.create_namespaced_pod("default", pod("dup"))
    assert info.value.status == 409
    status = status_of(info.value)
    assert status["kind"] == "Status"
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'pods "dup" already exists'


async def test_missing_object_is_404_not_found(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as info:
        await core.read_namespaced_pod("nope", "default")
    assert info.value.status == 404
    assert status_of(info.value)["reason"] == "NotFound"
    assert status_of(info.value)["message"] == 'pods "nope" not found'


async def test_create_in_missing_namespace_is_404(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as info:
        await core.create_namespaced_pod("elsewhere", pod("p"))
    assert info.value.status == 404
    assert status_of(info.value)["message"] == 'namespaces "elsewhere" not found'
    await core.create_namespace({"metadata": {"name": "elsewhere"}})
    await core.create_namespaced_pod("elsewhere", pod("p"))


async def test_default_namespaces_exist(core: client.CoreV1Api) -> None:
    names = {n.metadata.name for n in (await core.list_namespace()).items}
    assert {"default", "kube-system"} <= names


async def test_schema_violation_is_422_with_the_schema_message(devcluster: DevCluster) -> None:
    # Raw HTTP: the typed client would drop the unknown field itself.
    bad = pod("bad")
    bad["spec"]["containers"][0]["imagee"] = "typo"
    code, status = await raw(devcluster, "POST", "/api/v1/namespaces/default/pods", bad)
    assert code == 422
    assert status["kind"] == "Status" and status["reason"] == "Invalid"
    assert status["message"].startswith('Pod "bad" is invalid: spec.containers[0]')
    assert "'imagee' was unexpected" in status["message"]


async def test_missing_required_field_is_422(core: client.CoreV1Api) -> None:
    body = pod("noname")
    del body["spec"]["containers"][0]["name"]
    with pytest.raises(client.ApiException) as info:
        await core.create_namespaced_pod("default", body)
    assert info.value.status == 422
    assert "'name' is a required property" in status_of(info.value)["message"]


@pytest.mark.parametrize(
    ("name", "labels"),
    [("Upper", {}), ("ok", {"user": "alice@example.org"}), ("ok2", {"k": "x" * 64})],
)
async def test_bad_names_and_label_values_are_422(
    core: client.CoreV1Api, name: str, labels: dict[str, str]
) -> None:
    with pytest.raises(client.ApiException) as info:
        await core.create_namespaced_config_map(
            "default", {"metadata": {"name": name, "labels": labels}}
        )
    assert info.value.status == 422


async def test_stale_resource_version_update_is_409_conflict(core: client.CoreV1Api) -> None:
    cm = await core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    stale = cm.metadata.resource_version
    cm.data = {"x": "1"}
    fresh = await core.replace_namespaced_config_map("c", "default", cm)
    assert fresh.metadata.resource_version != stale
    cm.metadata.resource_version = stale
    cm.data = {"x": "2"}
    with pytest.raises(client.ApiException) as info:
        await core.replace_namespaced_config_map("c", "default", cm)
    assert info.value.status == 409
    status = status_of(info.value)
    assert status["reason"] == "Conflict"
    assert "the object has been modified" in status["message"]


async def test_update_keeps_uid_and_status_of_main_resource(core: client.CoreV1Api) -> None:
    created = await core.create_namespaced_pod("default", pod("keep"))
    body = await core.read_namespaced_pod("keep", "default")
    body.metadata.labels = {"new": "label"}
    body.status.phase = "Failed"  # ignored: status is a subresource
    updated = await core.replace_namespaced_pod("keep", "default", body)
    assert updated.metadata.uid == created.metadata.uid
    assert updated.metadata.labels == {"new": "label"}
    assert updated.status.phase != "Failed"


async def test_status_subresource_changes_only_status(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod("st", node_selector={"none": "x"}))
    patched = await core.patch_namespaced_pod_status(
        "st",
        "default",
        {"status": {"message": "hello"}, "metadata": {"labels": {"ignored": "yes"}}},
    )
    assert patched.status.message == "hello"
    assert "ignored" not in (patched.metadata.labels or {})


async def test_noop_update_keeps_resource_version(core: client.CoreV1Api) -> None:
    cm = await core.create_namespaced_config_map(
        "default", {"metadata": {"name": "same"}, "data": {"a": "1"}}
    )
    again = await core.patch_namespaced_config_map("same", "default", {"data": {"a": "1"}})
    assert again.metadata.resource_version == cm.metadata.resource_version


async def test_merge_patch_strategic_patch_and_json_patch(
    devcluster: DevCluster, core: client.CoreV1Api
) -> None:
    await core.create_namespaced_pod(
        "default",
        {
            **pod("pp", labels={"a": "1", "b": "2"}),
            "spec": {
                "containers": [
                    {"name": "one", "image": "x:1", "env": [{"name": "A", "value": "1"}]},
                    {"name": "two", "image": "y:1"},
                ]
            },
        },
    )

    async def patch(body: Any, content_type: str) -> dict[str, Any]:
        path = "/api/v1/namespaces/default/pods/pp"
        code, data = await raw(devcluster, "PATCH", path, body, content_type)
        assert code == 200, data
        result: dict[str, Any] = data
        return result

    merged = await patch(
        {"metadata": {"labels": {"a": None, "c": "3"}}}, "application/merge-patch+json"
    )
    assert merged["metadata"]["labels"] == {"b": "2", "c": "3"}
    # strategic merge: containers merge by name (only the image may change on a pod)
    strategic = await patch(
        {"spec": {"containers": [{"name": "two", "image": "y:2"}]}},
        "application/strategic-merge-patch+json",
    )
    containers = strategic["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("one", "x:1"), ("two", "y:2")]
    assert containers[0]["env"] == [{"name": "A", "value": "1"}]
    # the same body as a merge patch replaces the list
    replaced = await patch(
        {"metadata": {"annotations": {"x": "y"}}}, "application/merge-patch+json"
    )
    assert replaced["metadata"]["annotations"] == {"x": "y"}
    jp = await patch(
        [{"op": "add", "path": "/metadata/labels/d", "value": "4"}],
        "application/json-patch+json",
    )
    assert jp["metadata"]["labels"]["d"] == "4"


async def test_label_selectors(core: client.CoreV1Api) -> None:
    for name, labels in [
        ("a", {"app": "hub", "tier": "front"}),
        ("b", {"app": "hub", "tier": "back"}),
        ("c", {"app": "db"}),
    ]:
        await core.create_namespaced_config_map(
            "default", {"metadata": {"name": name, "labels": labels}}
        )

    async def names(selector: str) -> list[str]:
        items = (await core.list_namespaced_config_map("default", label_selector=selector)).items
        return sorted(i.metadata.name for i in items)

    assert await names("app=hub") == ["a", "b"]
    assert await names("app==hub,tier!=back") == ["a"]
    assert await names("tier in (front, back)") == ["a", "b"]
    assert await names("app notin (hub)") == ["c"]
    assert await names("tier") == ["a", "b"]
    assert await names("!tier") == ["c"]


async def test_field_selectors(core: client.CoreV1Api) -> None:
    await core.create_namespace({"metadata": {"name": "other"}})
    await core.create_namespaced_pod("default", pod("x", node_selector={"no": "match"}))
    await core.create_namespaced_pod("other", pod("x", node_selector={"no": "match"}))
    everywhere = await core.list_pod_for_all_namespaces(field_selector="metadata.name=x")
    assert len(everywhere.items) == 2
    only = await core.list_pod_for_all_namespaces(
        field_selector="metadata.name=x,metadata.namespace=other"
    )
    assert [p.metadata.namespace for p in only.items] == ["other"]
    pending = await core.list_pod_for_all_namespaces(field_selector="status.phase=Pending")
    assert len(pending.items) == 2
    running = await core.list_pod_for_all_namespaces(field_selector="status.phase!=Pending")
    assert running.items == []


async def test_field_selector_on_node_name_and_events(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod("bound", nodeName="node-2"))
    on_node = await core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-2")
    assert [p.metadata.name for p in on_node.items] == ["bound"]
    assert (
        await core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-1")
    ).items == []
    events = await core.list_namespaced_event(
        "default", field_selector="involvedObject.kind=Pod,involvedObject.name=bound"
    )
    assert all(e.involved_object.name == "bound" for e in events.items)


async def test_bad_selector_is_400(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as info:
        await core.list_namespaced_pod("default", field_selector="nonsense")
    assert info.value.status == 400


async def test_discovery_and_version(kube_api: Any) -> None:
    version = await client.VersionApi(kube_api).get_code()
    assert (version.major, version.minor) == ("1", "32")
    groups = await client.ApisApi(kube_api).get_api_versions()
    names = {g.name for g in groups.groups}
    assert {"rbac.authorization.k8s.io", "metrics.k8s.io"} <= names
    resources = await client.CoreV1Api(kube_api).get_api_resources()
    by_name = {r.name: r for r in resources.resources}
    assert by_name["pods"].namespaced and not by_name["nodes"].namespaced
    assert "pods/status" in by_name


async def test_delete_collection_with_label_selector(core: client.CoreV1Api) -> None:
    for name, app in (("a", "x"), ("b", "x"), ("c", "y")):
        await core.create_namespaced_config_map(
            "default", {"metadata": {"name": name, "labels": {"app": app}}}
        )
    await core.delete_collection_namespaced_config_map("default", label_selector="app=x")
    left = (await core.list_namespaced_config_map("default")).items
    assert [c.metadata.name for c in left] == ["c"]


async def test_dry_run_validates_but_stores_nothing(devcluster: DevCluster) -> None:
    path = "/api/v1/namespaces/default/configmaps?dryRun=All"
    code, _ = await raw(devcluster, "POST", path, {"metadata": {"name": "dry"}})
    assert code == 201
    code, _ = await raw(devcluster, "GET", "/api/v1/namespaces/default/configmaps/dry")
    assert code == 404


async def test_kind_mismatch_is_400(devcluster: DevCluster) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}
    code, status = await raw(devcluster, "POST", "/api/v1/namespaces/default/configmaps", body)
    assert code == 400 and status["reason"] == "BadRequest"


async def test_unknown_path_is_404_status(devcluster: DevCluster) -> None:
    code, status = await raw(devcluster, "GET", "/api/v1/widgets")
    assert code == 404 and status["kind"] == "Status"
    code, _ = await raw(devcluster, "GET", "/api/v1/namespaces/default/pods/x/nonsense")
    assert code == 404


async def test_watch_flag_spellings(devcluster: DevCluster) -> None:
    for flag in ("true", "1", "True"):
        path = f"/api/v1/namespaces?watch={flag}&timeoutSeconds=1"
        headers = {"Authorization": f"Bearer {devcluster.admin_token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(devcluster.url + path, headers=headers) as r,
        ):
            first = await r.content.readline()
        assert json.loads(first)["type"] == "ADDED"


async def test_pod_spec_is_immutable_except_image(core: client.CoreV1Api) -> None:
    await core.create_namespaced_pod("default", pod("imm", node_selector={"x": "y"}))
    await core.patch_namespaced_pod(
        "imm", "default", {"spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}}
    )
    with pytest.raises(client.ApiException) as info:
        await core.patch_namespaced_pod("imm", "default", {"spec": {"nodeSelector": {"x": "z"}}})
    assert info.value.status == 422
    assert (
        "Forbidden: pod updates may not change fields other than"
        in (status_of(info.value)["message"])
    )


async def test_patch_with_stale_resource_version_is_409(core: client.CoreV1Api) -> None:
    cm = await core.create_namespaced_config_map("default", {"metadata": {"name": "pv"}})
    await core.patch_namespaced_config_map("pv", "default", {"data": {"a": "1"}})
    stale = {"metadata": {"resourceVersion": cm.metadata.resource_version}, "data": {"a": "2"}}
    with pytest.raises(client.ApiException) as info:
        await core.patch_namespaced_config_map("pv", "default", stale)
    assert info.value.status == 409
    assert status_of(info.value)["reason"] == "Conflict"
