"""The stand-in refuses over HTTP what kube-apiserver refuses, with the real answers.

Field validation (422 with one Status cause per problem), decoding (400),
resourceVersion on create, immutable fields, server-side apply (415), garbage
collection by ownerReferences and namespace termination.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from kubernetes_asyncio import client

from devcluster import DevCluster

from helpers import eventually, pod, pv, raw

pytestmark = pytest.mark.line_independent

PODS = "/api/v1/namespaces/default/pods"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


async def test_invalid_pod_is_422_with_a_cause_per_problem(devcluster: DevCluster) -> None:
    body = pod("dup")
    body["spec"]["containers"].append({"name": "main", "image": "busybox:1.36"})
    body["spec"]["containers"][0]["volumeMounts"] = [{"name": "nowhere", "mountPath": "/x"}]
    code, status = await raw(devcluster, "POST", PODS, body)
    assert code == 422
    assert status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Pod "dup" is invalid: [spec.containers[0].volumeMounts[0].name: '
        'Not found: "nowhere", spec.containers[1].name: Duplicate value: "main"]',
        "reason": "Invalid",
        "code": 422,
        "details": {
            "name": "dup",
            "kind": "Pod",
            "causes": [
                {
                    "reason": "FieldValueNotFound",
                    "message": 'Not found: "nowhere"',
                    "field": "spec.containers[0].volumeMounts[0].name",
                },
                {
                    "reason": "FieldValueDuplicate",
                    "message": 'Duplicate value: "main"',
                    "field": "spec.containers[1].name",
                },
            ],
        },
    }
    code, _ = await raw(devcluster, "GET", f"{PODS}/dup")
    assert code == 404  # nothing was stored


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["spec"].update(containers=[]), "spec.containers"),
        (
            lambda b: b["spec"]["containers"][0].update(
                ports=[{"name": "jupyterhub-notebook", "containerPort": 8888}]
            ),
            "spec.containers[0].ports[0].name",
        ),
        (
            lambda b: b["spec"]["containers"][0].update(
                resources={"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}
            ),
            "spec.containers[0].resources.requests[memory]",
        ),
    ],
)
async def test_more_pod_rules_over_http(devcluster: DevCluster, change: Any, field: str) -> None:
    body = pod("p")
    change(body)
    code, status = await raw(devcluster, "POST", PODS, body)
    assert (code, status["reason"]) == (422, "Invalid")
    assert [c["field"] for c in status["details"]["causes"]] == [field]


async def test_secret_data_not_base64_is_400_and_string_data_is_encoded(
    kube_api: Any, devcluster: DevCluster
) -> None:
    secrets = "/api/v1/namespaces/default/secrets"
    bad = {"metadata": {"name": "s"}, "data": {"token": "not base64!"}}
    code, status = await raw(devcluster, "POST", secrets, bad)
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"] == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'
    )
    good = {"metadata": {"name": "s"}, "stringData": {"token": "abc"}}
    code, stored = await raw(devcluster, "POST", secrets, good)
    assert code == 201
    assert stored["data"] == {"token": base64.b64encode(b"abc").decode()}
    assert "stringData" not in stored and stored["type"] == "Opaque"


async def test_bad_quantity_is_400(devcluster: DevCluster) -> None:
    code, status = await raw(devcluster, "POST", PODS, pod("q", cpu="1 core"))
    assert (code, status["reason"]) == (400, "BadRequest")
    assert status["message"].startswith(
        'Pod in version "v1" cannot be handled as a Pod: quantities must match'
    )


async def test_resource_version_set_on_create_is_refused(devcluster: DevCluster) -> None:
    body = {"metadata": {"name": "rv", "resourceVersion": "7"}}
    code, status = await raw(devcluster, "POST", CONFIGMAPS, body)
    assert code == 500
    assert status["message"] == "resourceVersion should not be set on objects to be created"
    assert "reason" not in status  # StatusReasonUnknown, as the real server sends it
    code, _ = await raw(devcluster, "GET", f"{CONFIGMAPS}/rv")
    assert code == 404


async def test_persistent_volume_source_is_immutable(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    await core.create_persistent_volume(pv("home-a"))
    with pytest.raises(client.ApiException) as info:
        await core.patch_persistent_volume("home-a", {"spec": {"hostPath": {"path": "/elsewhere"}}})
    assert info.value.status == 422
    assert "spec.persistentvolumesource is immutable after creation" in info.value.body
    # capacity is not part of the source: it may change
    await core.patch_persistent_volume("home-a", {"spec": {"capacity": {"storage": "20Gi"}}})


async def test_server_side_apply_is_refused_plainly_never_404(devcluster: DevCluster) -> None:
    apply = "application/apply-patch+yaml"
    for name in ("missing", "present"):
        if name == "present":
            await raw(devcluster, "POST", CONFIGMAPS, {"metadata": {"name": name}})
        body = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n".encode()
        code, status = await raw(
            devcluster, "PATCH", f"{CONFIGMAPS}/{name}?fieldManager=t", body, content_type=apply
        )
        assert (code, status["reason"]) == (415, "UnsupportedMediaType")
        assert "server-side apply" in status["message"]


def owned(name: str, *owners: dict[str, Any]) -> dict[str, Any]:
    refs = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": o["metadata"]["name"],
            "uid": o["metadata"]["uid"],
        }
        for o in owners
    ]
    return {"metadata": {"name": name, "ownerReferences": refs}}


async def test_dependents_are_deleted_after_their_owner(devcluster: DevCluster) -> None:
    _, owner = await raw(devcluster, "POST", PODS, pod("owner"))
    _, other = await raw(devcluster, "POST", PODS, pod("other"))
    await raw(devcluster, "POST", CONFIGMAPS, owned("only-owner", owner))
    await raw(devcluster, "POST", CONFIGMAPS, owned("two-owners", owner, other))
    await raw(devcluster, "DELETE", f"{PODS}/owner?gracePeriodSeconds=0")

    async def dependent_gone() -> bool:
        code, _ = await raw(devcluster, "GET", f"{CONFIGMAPS}/only-owner")
        return code == 404

    assert await eventually(dependent_gone)

    async def reference_trimmed() -> Any:
        _, cm = await raw(devcluster, "GET", f"{CONFIGMAPS}/two-owners")
        refs = cm["metadata"]["ownerReferences"]
        return [r["name"] for r in refs] if len(refs) == 1 else None

    # still owned by "other": kept, the reference to the deleted owner removed
    assert await eventually(reference_trimmed) == ["other"]


async def test_dependent_of_an_owner_that_never_existed_is_collected(
    devcluster: DevCluster,
) -> None:
    ghost = {"metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"}}
    code, _ = await raw(devcluster, "POST", CONFIGMAPS, owned("orphan", ghost))
    assert code == 201

    async def collected() -> bool:
        code, _ = await raw(devcluster, "GET", f"{CONFIGMAPS}/orphan")
        return code == 404

    assert await eventually(collected)


async def test_terminating_namespace_refuses_new_objects_then_goes(
    devcluster: DevCluster,
) -> None:
    await raw(devcluster, "POST", "/api/v1/namespaces", {"metadata": {"name": "temp"}})
    temp_cms = "/api/v1/namespaces/temp/configmaps"
    await raw(
        devcluster, "POST", temp_cms, {"metadata": {"name": "c", "finalizers": ["x.io/hold"]}}
    )
    code, ns = await raw(devcluster, "DELETE", "/api/v1/namespaces/temp")
    assert code == 200
    assert ns["status"]["phase"] == "Terminating" and ns["metadata"]["deletionTimestamp"]

    code, status = await raw(devcluster, "POST", temp_cms, {"metadata": {"name": "new"}})
    assert (code, status["reason"]) == (403, "Forbidden")
    assert status["message"] == (
        'configmaps "new" is forbidden: unable to create new content in namespace temp '
        "because it is being terminated"
    )
    # the finalizer holds the config map, and so the namespace
    _, cm = await raw(devcluster, "GET", f"{temp_cms}/c")
    assert cm["metadata"]["deletionTimestamp"]
    code, ns = await raw(devcluster, "GET", "/api/v1/namespaces/temp")
    assert (code, ns["status"]["phase"]) == (200, "Terminating")
    await raw(
        devcluster,
        "PATCH",
        f"{temp_cms}/c",
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )

    async def namespace_gone() -> bool:
        code, _ = await raw(devcluster, "GET", "/api/v1/namespaces/temp")
        return code == 404

    assert await eventually(namespace_gone)
    code, _ = await raw(devcluster, "POST", "/api/v1/namespaces", {"metadata": {"name": "temp"}})
    assert code == 201  # the name is free again
