"""List paging (``limit``/``continue``): through kubernetes_asyncio over real HTTP, and the
store-level snapshot and token format directly."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from kubernetes_asyncio import client

from devcluster import DevCluster
from devcluster.paging import decode_continue, encode_continue, list_page
from devcluster.registry import PODS
from devcluster.store import Store

from helpers import pod, raw

pytestmark = pytest.mark.line_independent

# Bound to a node that does not exist: the pods stay Pending and nothing writes to them.
PENDING = {"nodeName": "absent-node"}


@pytest.fixture
def core(kube_api: Any) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


async def make_pods(core: client.CoreV1Api, names: list[str], namespace: str = "default") -> None:
    for name in names:
        await core.create_namespaced_pod(namespace, pod(name, labels={"n": name}, **PENDING))


async def all_pages(list_call: Any, **kwargs: Any) -> list[Any]:
    """Every page of a list, following continue tokens."""
    pages = [await list_call(**kwargs)]
    while pages[-1].metadata._continue:
        pages.append(await list_call(_continue=pages[-1].metadata._continue, **kwargs))
    return pages


def names(page: Any) -> list[str]:
    return [i.metadata.name for i in page.items]


async def test_pages_cover_the_list_in_key_order_with_remaining_counts(
    core: client.CoreV1Api,
) -> None:
    await make_pods(core, ["e", "b", "d", "a", "c"])
    pages = await all_pages(core.list_namespaced_pod, namespace="default", limit=2)
    assert [names(p) for p in pages] == [["a", "b"], ["c", "d"], ["e"]]
    assert [p.metadata.remaining_item_count for p in pages] == [3, 1, None]
    assert pages[-1].metadata._continue is None
    # every page is at the first page's resourceVersion
    assert len({p.metadata.resource_version for p in pages}) == 1


async def test_a_list_that_fits_has_no_continue(core: client.CoreV1Api) -> None:
    await make_pods(core, ["a", "b"])
    page = await core.list_namespaced_pod("default", limit=2)
    assert names(page) == ["a", "b"]
    assert page.metadata._continue is None and page.metadata.remaining_item_count is None


async def test_later_pages_show_the_snapshot_of_the_first(core: client.CoreV1Api) -> None:
    await make_pods(core, ["a", "b", "c", "d"])
    first = await core.list_namespaced_pod("default", limit=2)
    before_c = await core.read_namespaced_pod("c", "default")
    # after the first page: one created, one deleted, one changed, all in the unread part
    await make_pods(core, ["cc"])
    await core.delete_namespaced_pod("d", "default", grace_period_seconds=0)
    await core.patch_namespaced_pod("c", "default", {"metadata": {"labels": {"n": "changed"}}})
    rest = await core.list_namespaced_pod("default", limit=5, _continue=first.metadata._continue)
    assert names(rest) == ["c", "d"]
    c = rest.items[0]
    assert c.metadata.labels == {"n": "c"}
    assert c.metadata.resource_version == before_c.metadata.resource_version
    # a new list sees the present
    assert names(await core.list_namespaced_pod("default")) == ["a", "b", "c", "cc"]


async def test_label_selector_pages_have_no_remaining_count(core: client.CoreV1Api) -> None:
    await make_pods(core, ["a", "b", "c", "d", "e"])
    pages = await all_pages(
        core.list_namespaced_pod, namespace="default", limit=2, label_selector="n notin (b)"
    )
    assert [names(p) for p in pages] == [["a", "c"], ["d", "e"]]
    assert all(p.metadata.remaining_item_count is None for p in pages)


async def test_paging_across_namespaces_and_within_one(core: client.CoreV1Api) -> None:
    await core.create_namespace({"metadata": {"name": "a-b"}})
    await make_pods(core, ["y", "x"], "a-b")
    await make_pods(core, ["z", "w"])
    pages = await all_pages(core.list_pod_for_all_namespaces, limit=3)
    keys = [f"{i.metadata.namespace}/{i.metadata.name}" for p in pages for i in p.items]
    # storage-key order, as etcd sorts: "a-b/..." before "default/..."
    assert keys == ["a-b/x", "a-b/y", "default/w", "default/z"]
    assert [p.metadata.remaining_item_count for p in pages] == [1, None]
    only = await all_pages(core.list_namespaced_pod, namespace="a-b", limit=1)
    assert [names(p) for p in only] == [["x"], ["y"]]


async def test_node_name_field_selector_pages(core: client.CoreV1Api) -> None:
    for name in ("p3", "p1", "p2"):
        await core.create_namespaced_pod("default", pod(name, nodeName="node-2"))
    await core.create_namespaced_pod("default", pod("other", nodeName="node-1"))
    pages = await all_pages(
        core.list_pod_for_all_namespaces, limit=2, field_selector="spec.nodeName=node-2"
    )
    assert [names(p) for p in pages] == [["p1", "p2"], ["p3"]]


async def test_cluster_scoped_kinds_page(core: client.CoreV1Api) -> None:
    pages = await all_pages(core.list_node, limit=2)
    assert [names(p) for p in pages] == [["node-1", "node-2"], ["node-3"]]


async def test_expired_continue_is_410_with_a_token_for_the_rest(
    make_devcluster: Any,
) -> None:
    cluster: DevCluster = await make_devcluster(nodes=1, history=3)
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        await make_pods(core, ["a", "b", "c"])
        first = await core.list_namespaced_pod("default", limit=1)
        await make_pods(core, ["d", "e", "f", "g"])  # more changes than the window keeps
        with pytest.raises(client.ApiException) as info:
            await core.list_namespaced_pod("default", limit=1, _continue=first.metadata._continue)
    assert info.value.status == 410
    status = json.loads(info.value.body)
    assert status["kind"] == "Status" and status["reason"] == "Expired"
    assert status["message"].startswith("The provided continue parameter is too old")
    path = f"/api/v1/namespaces/default/pods?continue={status['metadata']['continue']}"
    code, rest = await raw(cluster, "GET", path)
    assert code == 200
    # the rest of the list, at the latest state (the pods created since show up)
    assert [i["metadata"]["name"] for i in rest["items"]] == ["b", "c", "d", "e", "f", "g"]


@pytest.mark.parametrize(
    "token",
    [
        "not base64!",
        base64.urlsafe_b64encode(b"[1]").decode(),
        base64.urlsafe_b64encode(b'{"v":"meta.k8s.io/v1","rv":0,"start":"a"}').decode(),
        base64.urlsafe_b64encode(b'{"v":"meta.k8s.io/v2","rv":3,"start":"a"}').decode(),
        base64.urlsafe_b64encode(b'{"v":"meta.k8s.io/v1","rv":3,"start":""}').decode(),
    ],
)
async def test_malformed_continue_is_400(devcluster: DevCluster, token: str) -> None:
    code, status = await raw(devcluster, "GET", f"/api/v1/pods?limit=1&continue={token}")
    assert code == 400 and status["reason"] == "BadRequest"
    assert status["message"].startswith("invalid continue token")


async def test_continue_with_resource_version_and_bad_limit_are_400(
    core: client.CoreV1Api, devcluster: DevCluster
) -> None:
    await make_pods(core, ["a", "b"])
    first = await core.list_namespaced_pod("default", limit=1)
    path = f"/api/v1/pods?limit=1&resourceVersion=5&continue={first.metadata._continue}"
    code, status = await raw(devcluster, "GET", path)
    assert code == 400
    assert status["message"] == "specifying resource version is not allowed when using continue"
    code, _ = await raw(devcluster, "GET", "/api/v1/pods?limit=many")
    assert code == 400


def stored(store: Store, name: str, label: str) -> None:
    store.put(PODS, {"metadata": {"namespace": "ns", "name": name, "labels": {"v": label}}})


def test_snapshot_undoes_delete_and_recreate_in_the_store() -> None:
    store = Store()
    for name in ("a", "b", "c"):
        stored(store, name, "old")
    first = list_page(store, PODS, "ns", 1, None)
    store.remove(PODS, "ns", "b")
    stored(store, "b", "new")  # the same name again, after the snapshot
    stored(store, "c", "new")
    rest = list_page(store, PODS, "ns", 0, first.continue_token)
    assert [
        (e.obj["metadata"]["name"], e.obj["metadata"]["labels"]["v"]) for e in rest.entries
    ] == [
        ("b", "old"),
        ("c", "old"),
    ]
    assert rest.rv == first.rv and rest.continue_token is None


def test_continue_token_round_trips_in_the_api_server_format() -> None:
    token = encode_continue(42, "ns/pod\x00")
    assert "=" not in token
    assert json.loads(base64.urlsafe_b64decode(token + "==")) == {
        "v": "meta.k8s.io/v1",
        "rv": 42,
        "start": "ns/pod\x00",
    }
    assert decode_continue(token) == (42, "ns/pod\x00")
