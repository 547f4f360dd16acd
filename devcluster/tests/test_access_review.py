"""Access reviews and impersonation: what ``kubectl auth can-i --as=...`` needs.

The cluster enforces RBAC and holds a ServiceAccount ``jhub/hub`` with a Role in
``jhub`` (pods, pods/log, one named config map), a ClusterRole for persistent
volumes, and a Role bound to the group of every ServiceAccount in ``jhub``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client

from devcluster import DevCluster
from devcluster.reviews import RBAC_OFF_REASON
from devcluster.testing import kubectl_env

from helpers import raw

pytestmark = pytest.mark.line_independent

SA = "system:serviceaccount:jhub:hub"
REVIEWS = "/apis/authorization.k8s.io/v1"

MANIFESTS = """
apiVersion: v1
kind: Namespace
metadata: {name: jhub}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: hub, namespace: jhub}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: spawner, namespace: jhub}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list, watch, create]}
- {apiGroups: [""], resources: [pods/log], verbs: [get]}
- {apiGroups: [""], resources: [configmaps], verbs: [get], resourceNames: [hub-config]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: hub-spawner, namespace: jhub}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: spawner}
subjects:
- {kind: ServiceAccount, name: hub, namespace: jhub}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pv-reader}
rules:
- {apiGroups: [""], resources: [persistentvolumes], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: hub-pv-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pv-reader}
subjects:
- {kind: ServiceAccount, name: hub, namespace: jhub}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: event-reader, namespace: jhub}
rules:
- {apiGroups: [""], resources: [events], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jhub-accounts-events, namespace: jhub}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: event-reader}
subjects:
- {kind: Group, name: "system:serviceaccounts:jhub"}
"""

# Lets one user impersonate users only (not groups): the group check is separate.
USER_IMPERSONATOR = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: user-impersonator}
rules:
- {apiGroups: [""], resources: [users], verbs: [impersonate]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: hub-user-impersonator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: user-impersonator}
subjects:
- {kind: ServiceAccount, name: hub, namespace: jhub}
"""

# kubectl sends no credentials over plain HTTP: it is system:anonymous there, and
# may use --as only once anonymous may impersonate (with tls=True it sends the token).
ANONYMOUS_IMPERSONATOR = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonator}
rules:
- {apiGroups: [""], resources: [users, groups, serviceaccounts], verbs: [impersonate]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: anonymous-impersonator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonator}
subjects:
- {kind: User, name: "system:anonymous"}
"""

SPAWNER_REASON = (
    'RBAC: allowed by RoleBinding "hub-spawner/jhub" of Role "spawner" to ServiceAccount "hub/jhub"'
)


async def review_cluster(make_devcluster: Any, rbac: bool = True) -> tuple[DevCluster, str]:
    """An RBAC-enforcing cluster with :data:`MANIFESTS` and a token for ``jhub/hub``."""
    cluster: DevCluster = await make_devcluster(nodes=1, rbac=rbac)
    cluster.create_objects(MANIFESTS)
    return cluster, cluster.authorizer.issue("jhub", "hub")


def attributes(verb: str, resource: str, namespace: str = "jhub", **more: str) -> dict[str, Any]:
    return {
        "resourceAttributes": {"verb": verb, "resource": resource, "namespace": namespace, **more}
    }


# (spec, allowed) for the ServiceAccount jhub/hub
CASES: list[tuple[dict[str, Any], bool]] = [
    (attributes("list", "pods"), True),
    (attributes("delete", "pods"), False),
    (attributes("list", "pods", namespace=""), False),  # all namespaces: a Role is not enough
    (attributes("list", "pods", namespace="default"), False),
    (attributes("get", "pods", subresource="log"), True),
    (attributes("create", "pods", subresource="exec"), False),
    (attributes("get", "configmaps", name="hub-config"), True),
    (attributes("get", "configmaps", name="other"), False),
    (attributes("get", "configmaps"), False),  # resourceNames never match "every name"
    (attributes("list", "persistentvolumes", namespace=""), True),  # ClusterRoleBinding
    (attributes("delete", "persistentvolumes", namespace=""), False),
    (attributes("list", "events"), True),  # through the group system:serviceaccounts:jhub
    (attributes("create", "selfsubjectaccessreviews", "", group="authorization.k8s.io"), True),
    ({"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}, False),
]


async def test_self_subject_access_review_answers_for_the_requesting_account(
    make_devcluster: Any,
) -> None:
    cluster, token = await review_cluster(make_devcluster)
    answers = []
    async with cluster.api_client(token) as api:
        authz = client.AuthorizationV1Api(api)
        for spec, _ in CASES:
            review = await authz.create_self_subject_access_review({"spec": spec})
            answers.append(review.status.allowed)
        first = await authz.create_self_subject_access_review({"spec": CASES[0][0]})
        denied = await authz.create_self_subject_access_review({"spec": CASES[1][0]})
    assert answers == [allowed for _, allowed in CASES]
    # the answer is the request with status filled in; allowed by which binding
    assert first.kind == "SelfSubjectAccessReview"
    assert first.spec.resource_attributes.resource == "pods"
    assert first.status.reason == SPAWNER_REASON
    assert denied.status.reason is None


async def test_review_create_answers_201_and_is_not_stored(make_devcluster: Any) -> None:
    cluster, token = await review_cluster(make_devcluster)
    body = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1"}
    body["spec"] = attributes("get", "persistentvolumes", namespace="")
    code, answer = await raw(
        cluster, "POST", f"{REVIEWS}/selfsubjectaccessreviews", body, token=token
    )
    assert code == 201
    assert answer == {
        **body,
        "metadata": {},
        "status": {
            "allowed": True,
            "reason": 'RBAC: allowed by ClusterRoleBinding "hub-pv-reader" of ClusterRole '
            '"pv-reader" to ServiceAccount "hub/jhub"',
        },
    }
    code, status = await raw(cluster, "GET", f"{REVIEWS}/selfsubjectaccessreviews")
    assert (code, status["reason"]) == (405, "MethodNotAllowed")


async def test_reviews_are_in_discovery_with_create_only(make_devcluster: Any) -> None:
    cluster, _ = await review_cluster(make_devcluster)
    _, groups = await raw(cluster, "GET", "/apis")
    _, group = await raw(cluster, "GET", "/apis/authorization.k8s.io")
    _, resources = await raw(cluster, "GET", REVIEWS)
    _, openapi = await raw(cluster, "GET", f"/openapi/v3{REVIEWS}")
    assert "authorization.k8s.io" in [g["name"] for g in groups["groups"]]
    assert group["preferredVersion"] == {"groupVersion": "authorization.k8s.io/v1", "version": "v1"}
    assert {
        (r["name"], r["kind"], r["namespaced"], tuple(r["verbs"])) for r in resources["resources"]
    } == {
        ("selfsubjectaccessreviews", "SelfSubjectAccessReview", False, ("create",)),
        ("subjectaccessreviews", "SubjectAccessReview", False, ("create",)),
    }
    assert {path: list(ops) for path, ops in openapi["paths"].items()} == {
        f"{REVIEWS}/selfsubjectaccessreviews": ["post"],
        f"{REVIEWS}/subjectaccessreviews": ["post"],
    }


async def test_subject_access_review_evaluates_spec_user_and_groups(make_devcluster: Any) -> None:
    cluster, _ = await review_cluster(make_devcluster)

    def review(user: str, *groups: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "spec": {**(spec or attributes("list", "events")), "user": user, "groups": list(groups)}
        }

    async with cluster.api_client() as api:
        authz = client.AuthorizationV1Api(api)
        answers = [
            (await authz.create_subject_access_review(body)).status.allowed
            for body in (
                # the account's name alone: its Role binding applies, not the group binding
                review(SA, spec=attributes("list", "pods")),
                review(SA),
                # groups as given: the group binding applies to anyone in the group
                review("someone", "system:serviceaccounts:jhub"),
                review("someone"),
                review("someone", "system:masters", spec=attributes("delete", "nodes", "")),
                review(
                    "admin", spec={"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}
                ),
                review("x", "system:masters", spec={"nonResourceAttributes": {"path": "/x"}}),
            )
        ]
    assert answers == [True, False, True, False, True, False, True]


async def test_subject_access_review_needs_the_create_verb(make_devcluster: Any) -> None:
    cluster, token = await review_cluster(make_devcluster)
    async with cluster.api_client(token) as api:
        with pytest.raises(client.ApiException) as info:
            await client.AuthorizationV1Api(api).create_subject_access_review(
                {"spec": {**attributes("list", "pods"), "user": SA}}
            )
    assert info.value.status == 403
    assert json.loads(info.value.body)["message"] == (
        f'subjectaccessreviews.authorization.k8s.io is forbidden: User "{SA}" cannot create '
        'resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope'
    )


@pytest.mark.parametrize(
    ("kind", "spec", "field"),
    [
        ("SelfSubjectAccessReview", {}, "spec.resourceAttributes"),
        (
            "SelfSubjectAccessReview",
            {**attributes("get", "pods"), "nonResourceAttributes": {"path": "/x"}},
            "spec.nonResourceAttributes",
        ),
        ("SubjectAccessReview", attributes("get", "pods"), "spec.user"),
        # the schema: a SelfSubjectAccessReview names no user
        ("SelfSubjectAccessReview", {**attributes("get", "pods"), "user": SA}, "spec"),
    ],
)
async def test_invalid_reviews_are_refused(
    make_devcluster: Any, kind: str, spec: dict[str, Any], field: str
) -> None:
    cluster, _ = await review_cluster(make_devcluster)
    body = {"kind": kind, "apiVersion": "authorization.k8s.io/v1", "spec": spec}
    code, status = await raw(cluster, "POST", f"{REVIEWS}/{kind.lower()}s", body)
    assert (code, status["reason"]) == (422, "Invalid")
    assert [c["field"] for c in status["details"]["causes"]] == [field]


async def test_without_rbac_everything_is_allowed_and_the_reason_says_so(
    make_devcluster: Any,
) -> None:
    cluster, token = await review_cluster(make_devcluster, rbac=False)
    async with cluster.api_client(token) as api:
        review = await client.AuthorizationV1Api(api).create_self_subject_access_review(
            {"spec": attributes("delete", "nodes", "")}
        )
    assert (review.status.allowed, review.status.reason) == (True, RBAC_OFF_REASON)


# -- impersonation -------------------------------------------------------------------


async def test_admin_impersonating_the_account_gets_its_rights_everywhere(
    make_devcluster: Any,
) -> None:
    cluster, _ = await review_cluster(make_devcluster)
    async with cluster.api_client() as api:
        api.set_default_header("Impersonate-User", SA)
        core, authz = client.CoreV1Api(api), client.AuthorizationV1Api(api)
        can_list = await authz.create_self_subject_access_review(
            {"spec": attributes("list", "pods")}
        )
        can_delete = await authz.create_self_subject_access_review(
            {"spec": attributes("delete", "pods")}
        )
        assert (await core.list_namespaced_pod("jhub")).items == []
        # the impersonated account has the ServiceAccount groups: the group binding applies
        assert (await core.list_namespaced_event("jhub")).items == []
        with pytest.raises(client.ApiException) as info:
            await core.list_namespaced_secret("jhub")
    assert (can_list.status.allowed, can_delete.status.allowed) == (True, False)
    assert info.value.status == 403
    assert json.loads(info.value.body)["message"] == (
        f'secrets is forbidden: User "{SA}" cannot list resource "secrets" in API group "" '
        'in the namespace "jhub"'
    )


async def test_impersonated_groups_replace_the_account_groups(make_devcluster: Any) -> None:
    cluster, _ = await review_cluster(make_devcluster)
    events = "/api/v1/namespaces/jhub/events"
    as_account = [("Impersonate-User", SA)]
    with_groups = [*as_account, ("Impersonate-Group", "a"), ("Impersonate-Group", "b")]
    code_default, _ = await raw(cluster, "GET", events, headers=as_account)
    code_groups, status = await raw(cluster, "GET", events, headers=with_groups)
    # a user named "admin" is not the admin: that is the group system:masters
    code_name, _ = await raw(cluster, "GET", events, headers=[("Impersonate-User", "admin")])
    code_master, _ = await raw(
        cluster,
        "GET",
        events,
        headers=[("Impersonate-User", "x"), ("Impersonate-Group", "system:masters")],
    )
    assert (code_default, code_groups, code_name, code_master) == (200, 403, 403, 200)
    assert f'User "{SA}" cannot list' in status["message"]


async def test_impersonation_needs_the_impersonate_verb(make_devcluster: Any) -> None:
    cluster, token = await review_cluster(make_devcluster)
    messages = []
    for headers in (
        [("Impersonate-User", "admin")],
        [("Impersonate-User", "system:serviceaccount:jhub:other")],
    ):
        code, status = await raw(cluster, "GET", "/api/v1/nodes", token=token, headers=headers)
        messages.append((code, status["reason"], status["message"]))
    assert messages == [
        (
            403,
            "Forbidden",
            f'users "admin" is forbidden: User "{SA}" cannot impersonate resource "users" in '
            'API group "" at the cluster scope',
        ),
        (
            403,
            "Forbidden",
            f'serviceaccounts "other" is forbidden: User "{SA}" cannot impersonate resource '
            '"serviceaccounts" in API group "" in the namespace "jhub"',
        ),
    ]
    # discovery is impersonated too, as by the API server's filter
    code, _ = await raw(cluster, "GET", "/api", token=token, headers=[("Impersonate-User", "x")])
    assert code == 403


async def test_each_impersonated_group_is_checked(make_devcluster: Any) -> None:
    cluster, token = await review_cluster(make_devcluster)
    cluster.create_objects(USER_IMPERSONATOR)
    as_user = [("Impersonate-User", "someone")]
    code_user, _ = await raw(cluster, "GET", "/api/v1/nodes", token=token, headers=as_user)
    code, status = await raw(
        cluster,
        "GET",
        "/api/v1/nodes",
        token=token,
        headers=[*as_user, ("Impersonate-Group", "system:masters")],
    )
    # allowed to become "someone", who may not list nodes; not allowed to join system:masters
    assert code_user == 403
    assert (code, status["message"]) == (
        403,
        f'groups "system:masters" is forbidden: User "{SA}" cannot impersonate resource '
        '"groups" in API group "" at the cluster scope',
    )


async def test_impersonating_groups_without_a_user_is_an_error(make_devcluster: Any) -> None:
    cluster, _ = await review_cluster(make_devcluster)
    code, status = await raw(
        cluster, "GET", "/api/v1/nodes", headers=[("Impersonate-Group", "system:masters")]
    )
    assert code == 500
    assert "without impersonating a user" in status["message"]


# -- protobuf bodies (what kubectl's typed clients send) ------------------------------


def _field(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    assert len(data) < 128  # one-byte lengths keep this encoder short
    return bytes([number << 3 | 2, len(data)]) + data


def _envelope(api_version: str, kind: str, raw_object: bytes) -> bytes:
    type_meta = _field(1, api_version) + _field(2, kind)
    return b"k8s\x00" + _field(1, type_meta) + _field(2, raw_object)


async def test_protobuf_subject_access_review_with_groups(make_devcluster: Any) -> None:
    cluster, _ = await review_cluster(make_devcluster)
    resource = _field(1, "jhub") + _field(2, "list") + _field(5, "events")
    # as Go writes it: empty metadata name, an unset status with allowed=false
    spec = (
        _field(1, resource)
        + _field(3, "someone")
        + _field(4, "x")
        + _field(4, "system:serviceaccounts:jhub")
    )
    review = _field(1, _field(1, "")) + _field(2, spec) + _field(3, b"\x08\x00")
    body = _envelope("authorization.k8s.io/v1", "SubjectAccessReview", review)
    code, answer = await raw(
        cluster,
        "POST",
        f"{REVIEWS}/subjectaccessreviews",
        body,
        content_type="application/vnd.kubernetes.protobuf",
    )
    assert code == 201
    assert answer["spec"] == {
        "resourceAttributes": {"namespace": "jhub", "verb": "list", "resource": "events"},
        "user": "someone",
        "groups": ["x", "system:serviceaccounts:jhub"],
    }
    assert answer["status"]["allowed"] is True


async def test_protobuf_bodies_of_other_kinds_are_unsupported(make_devcluster: Any) -> None:
    cluster, _ = await review_cluster(make_devcluster)
    path = "/api/v1/namespaces/jhub/configmaps"
    proto = "application/vnd.kubernetes.protobuf"
    configmap = _envelope("v1", "ConfigMap", b"")
    code, status = await raw(cluster, "POST", path, configmap, content_type=proto)
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")
    code, status = await raw(cluster, "POST", path, b"not protobuf", content_type=proto)
    assert (code, status["reason"]) == (400, "BadRequest")


# -- the real kubectl ----------------------------------------------------------------


async def kubectl_run(kubectl: Path, kubeconfig: Path, *args: str) -> tuple[int, str, str]:
    """``kubectl ARGS`` with ``kubeconfig``: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        str(kubectl),
        *args,
        env=kubectl_env(kubeconfig),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def can_i(kubectl: Path, cluster: DevCluster, *args: str) -> tuple[int, str, str]:
    """``kubectl auth can-i ARGS`` with the cluster's (admin) kubeconfig."""
    return await kubectl_run(kubectl, cluster.kubeconfig, "auth", "can-i", *args)


async def test_kubectl_auth_can_i_as_the_service_account(
    kubectl: Path, make_devcluster: Any
) -> None:
    cluster, _ = await review_cluster(make_devcluster)
    # kubectl is system:anonymous over plain HTTP, which may not impersonate yet
    refused = await can_i(kubectl, cluster, "list", "pods", "-n", "jhub", f"--as={SA}")
    assert refused[0] == 1
    assert (
        'serviceaccounts "hub" is forbidden: User "system:anonymous" cannot impersonate '
        'resource "serviceaccounts"' in refused[2]
    )
    cluster.create_objects(ANONYMOUS_IMPERSONATOR)
    questions = [
        (["list", "pods", "-n", "jhub"], "yes"),
        (["list", "pods", "--all-namespaces"], "no"),
        (["delete", "pods", "-n", "jhub"], "no"),
        (["get", "pods", "--subresource=log", "-n", "jhub"], "yes"),
        (["get", "configmaps/hub-config", "-n", "jhub"], "yes"),
        (["get", "configmaps/other", "-n", "jhub"], "no"),
        (["list", "persistentvolumes"], "yes"),
        (["delete", "persistentvolumes"], "no"),
    ]
    answers = []
    for args, _ in questions:
        code, out, err = await can_i(kubectl, cluster, *args, f"--as={SA}")
        answers.append((code, out.strip()))
        assert "Error" not in err, err
    assert answers == [(0 if a == "yes" else 1, a) for _, a in questions]


async def test_over_tls_kubectl_sends_the_token(
    kubectl: Path, make_devcluster: Any, tmp_path: Path
) -> None:
    cluster: DevCluster = await make_devcluster(nodes=2, rbac=True, tls=True)
    cluster.create_objects(MANIFESTS)
    assert cluster.url.startswith("https://127.0.0.1:")
    # The admin's kubeconfig: the token arrives, so kubectl is the admin, not anonymous,
    # and may impersonate the hub's account without any extra binding.
    code, out, err = await kubectl_run(kubectl, cluster.kubeconfig, "get", "nodes", "-o", "name")
    assert code == 0, err
    assert out.split() == ["node/node-1", "node/node-2"]
    assert await can_i(kubectl, cluster, "list", "pods", "-n", "jhub", f"--as={SA}") == (
        0,
        "yes\n",
        "",
    )
    # The hub account's own token: its Role applies, nothing more.
    hub = cluster.write_kubeconfig(tmp_path / "hub", cluster.authorizer.issue("jhub", "hub"))
    code, _, err = await kubectl_run(kubectl, hub, "get", "pods", "-n", "jhub")
    assert code == 0, err
    code, _, err = await kubectl_run(kubectl, hub, "get", "secrets", "-n", "default")
    assert code == 1
    assert f'User "{SA}" cannot list resource "secrets"' in err
    # Python clients use the same CA.
    async with cluster.api_client() as api:
        nodes = await client.CoreV1Api(api).list_node()
    assert [n.metadata.name for n in nodes.items] == ["node-1", "node-2"]


async def test_kubectl_create_token_and_use_it(
    kubectl: Path, make_devcluster: Any, tmp_path: Path
) -> None:
    # kubectl sends the TokenRequest as protobuf; the token it prints is the account's.
    cluster: DevCluster = await make_devcluster(nodes=1, rbac=True, tls=True)
    cluster.create_objects(MANIFESTS)
    code, out, err = await kubectl_run(
        kubectl, cluster.kubeconfig, "create", "token", "hub", "-n", "jhub", "--duration=600s"
    )
    assert code == 0, err
    token = out.strip()
    assert token and "\n" not in token
    hub = cluster.write_kubeconfig(tmp_path / "hub", token)
    assert (await kubectl_run(kubectl, hub, "get", "pods", "-n", "jhub"))[0] == 0
    code, _, err = await kubectl_run(kubectl, hub, "get", "nodes")
    assert code == 1 and f'User "{SA}" cannot list resource "nodes"' in err
