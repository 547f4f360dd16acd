"""The API server's field validation (devcluster.rules), pure: each rule, its path and words.

Each case is a rule of kube-apiserver's validation (pkg/apis/core/validation,
pkg/apis/rbac/validation) with the field path and message a real server gives.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from devcluster import resources as res
from devcluster.names import (
    is_config_map_key,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    is_valid_path_segment_name,
    is_valid_port_name,
)
from devcluster.rules import decode_problem, validate, validate_update
from devcluster.validation import Validator

pytestmark = pytest.mark.line_independent

PODS = res.find("", "v1", "pods")
PVS = res.find("", "v1", "persistentvolumes")
PVCS = res.find("", "v1", "persistentvolumeclaims")
SECRETS = res.find("", "v1", "secrets")
CONFIGMAPS = res.find("", "v1", "configmaps")
SERVICES = res.find("", "v1", "services")
NAMESPACES = res.find("", "v1", "namespaces")
ROLES = res.find("rbac.authorization.k8s.io", "v1", "roles")
ROLEBINDINGS = res.find("rbac.authorization.k8s.io", "v1", "rolebindings")
CLUSTERROLEBINDINGS = res.find("rbac.authorization.k8s.io", "v1", "clusterrolebindings")


def a_pod(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {
            "containers": [{"name": "main", "image": "busybox:1.36"}],
            **spec,
        },
    }
    return body


def causes(resource: Any, obj: dict[str, Any]) -> list[str]:
    return [e.text for e in validate(resource, obj).items]


def test_a_valid_pod_has_no_problem() -> None:
    body = a_pod(
        volumes=[{"name": "home", "hostPath": {"path": "/gpfs/home/a"}}],
        tolerations=[{"key": "k", "operator": "Exists", "effect": "NoExecute"}],
        securityContext={"runAsUser": 1000, "supplementalGroups": [1000, 2000]},
    )
    body["spec"]["containers"][0].update(
        ports=[{"name": "notebook-port", "containerPort": 8888}],
        volumeMounts=[{"name": "home", "mountPath": "/home/a"}],
        resources={"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}},
    )
    assert causes(PODS, body) == []


def test_pod_with_no_containers() -> None:
    assert causes(PODS, a_pod(containers=[])) == ["spec.containers: Required value"]


def test_duplicate_container_names_across_containers_and_init_containers() -> None:
    body = a_pod(
        containers=[{"name": "main", "image": "a"}, {"name": "main", "image": "b"}],
        initContainers=[{"name": "main", "image": "c"}],
    )
    assert causes(PODS, body) == [
        'spec.containers[1].name: Duplicate value: "main"',
        'spec.initContainers[0].name: Duplicate value: "main"',
    ]


def test_container_name_and_image() -> None:
    body = a_pod(containers=[{"name": "Main", "image": ""}])
    found = causes(PODS, body)
    assert found[0].startswith(
        'spec.containers[0].name: Invalid value: "Main": a lowercase RFC 1123 label must'
    )
    assert found[1] == "spec.containers[0].image: Required value"


def test_duplicate_volume_names_and_volume_types() -> None:
    body = a_pod(
        volumes=[
            {"name": "v", "emptyDir": {}},
            {"name": "v", "emptyDir": {}},
            {"name": "w"},
            {"name": "x", "emptyDir": {}, "hostPath": {"path": "/x"}},
        ]
    )
    assert causes(PODS, body) == [
        'spec.volumes[1].name: Duplicate value: "v"',
        "spec.volumes[2]: Required value: must specify a volume type",
        "spec.volumes[3].hostPath: Forbidden: may not specify more than 1 volume type",
    ]


def test_volume_mount_naming_no_volume_and_duplicate_mount_paths() -> None:
    body = a_pod(volumes=[{"name": "home", "emptyDir": {}}])
    body["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "hom", "mountPath": "/a"},
        {"name": "home", "mountPath": "/a"},
        {"name": "home", "mountPath": "/b", "subPath": "../x"},
    ]
    assert causes(PODS, body) == [
        'spec.containers[0].volumeMounts[0].name: Not found: "hom"',
        'spec.containers[0].volumeMounts[1].mountPath: Invalid value: "/a": must be unique',
        'spec.containers[0].volumeMounts[2].subPath: Invalid value: "../x": '
        "must not contain '..'",
    ]


def test_port_names_are_iana_service_names_unique_per_container() -> None:
    body = a_pod()
    body["spec"]["containers"][0]["ports"] = [
        {"name": "a-port-name-too-long", "containerPort": 80},
        {"name": "http", "containerPort": 81},
        {"name": "http", "containerPort": 70000},
        {"name": "8080", "containerPort": 82},
    ]
    assert causes(PODS, body) == [
        'spec.containers[0].ports[0].name: Invalid value: "a-port-name-too-long": '
        "must be no more than 15 characters",
        'spec.containers[0].ports[2].name: Duplicate value: "http"',
        "spec.containers[0].ports[2].containerPort: Invalid value: 70000: "
        "must be between 1 and 65535, inclusive",
        'spec.containers[0].ports[3].name: Invalid value: "8080": '
        "must contain at least one letter (a-z)",
    ]


def test_requests_above_limits_and_negative_quantities() -> None:
    body = a_pod()
    body["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "2", "memory": "-1Gi"},
        "limits": {"cpu": "1"},
    }
    assert causes(PODS, body) == [
        'spec.containers[0].resources.requests[cpu]: Invalid value: "2": '
        "must be less than or equal to cpu limit of 1",
        'spec.containers[0].resources.requests[memory]: Invalid value: "-1Gi": '
        "must be greater than or equal to 0",
    ]


def test_node_affinity_operators_and_field_selectors() -> None:
    terms = [
        {
            "matchExpressions": [
                {"key": "a", "operator": "In"},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Gt", "values": ["1", "2"]},
                {"key": "d", "operator": "Equals", "values": ["x"]},
            ],
            "matchFields": [
                {"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]},
                {"key": "metadata.labels", "operator": "In", "values": ["n1"]},
            ],
        }
    ]
    required = {"nodeSelectorTerms": terms}
    body = a_pod(
        affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}
    )
    path = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    term = f"{path}.nodeSelectorTerms[0]"
    assert causes(PODS, body) == [
        f"{term}.matchExpressions[0].values: Required value: "
        "must be specified when `operator` is 'In' or 'NotIn'",
        f"{term}.matchExpressions[1].values: Forbidden: "
        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        f"{term}.matchExpressions[2].values: Required value: "
        "must be specified single value when `operator` is 'Lt' or 'Gt'",
        f'{term}.matchExpressions[3].operator: Invalid value: "Equals": '
        "not a valid selector operator",
        f"{term}.matchFields[0].values: Required value: "
        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
        f'{term}.matchFields[1].key: Invalid value: "metadata.labels": '
        "not a valid field selector key",
    ]
    required["nodeSelectorTerms"] = []
    assert causes(PODS, body) == [
        f"{path}.nodeSelectorTerms: Required value: must have at least one node selector term"
    ]


def test_tolerations_and_ids() -> None:
    body = a_pod(
        tolerations=[
            {"operator": "Equal", "value": "x"},
            {"key": "k", "operator": "Exists", "value": "v"},
            {"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5},
        ],
        securityContext={"runAsUser": -1, "supplementalGroups": [2**31]},
    )
    found = causes(PODS, body)
    assert found[0] == (
        'spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when '
        '`key` is empty, which means "match all values and all keys"'
    )
    assert found[1].startswith("spec.tolerations[1].operator: Invalid value: ")
    assert found[1].endswith("value must be empty when `operator` is 'Exists'")
    assert found[2] == (
        'spec.tolerations[2].effect: Invalid value: "NoSchedule": '
        "effect must be 'NoExecute' when `tolerationSeconds` is set"
    )
    assert found[3:] == [
        "spec.securityContext.runAsUser: Invalid value: -1: "
        "must be between 0 and 2147483647, inclusive",
        "spec.securityContext.supplementalGroups[0]: Invalid value: 2147483648: "
        "must be between 0 and 2147483647, inclusive",
    ]


def test_metadata_names_per_kind() -> None:
    assert causes(NAMESPACES, {"metadata": {"name": "a.b"}})[0].startswith(
        'metadata.name: Invalid value: "a.b": a lowercase RFC 1123 label'
    )
    service = {"metadata": {"name": "1svc", "namespace": "d"}, "spec": {"ports": [{"port": 80}]}}
    assert causes(SERVICES, service)[0].startswith(
        'metadata.name: Invalid value: "1svc": a DNS-1035 label'
    )
    role = {"metadata": {"name": "system:hub", "namespace": "d"}, "rules": []}
    assert causes(ROLES, role) == []  # RBAC names are path segments: ':' is fine
    role["metadata"]["name"] = "a/b"
    assert causes(ROLES, role) == ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]


def test_labels_annotations_finalizers_and_owner_references() -> None:
    body = a_pod()
    body["metadata"].update(
        labels={"user": "alice@example.org"},
        annotations={"bad key": "x"},
        finalizers=["custom"],
        ownerReferences=[
            {"apiVersion": "v1", "kind": "Pod", "name": "o", "uid": "", "controller": True},
            {"apiVersion": "v1", "kind": "Pod", "name": "o2", "uid": "u2", "controller": True},
        ],
    )
    found = causes(PODS, body)
    assert found[0].startswith('metadata.labels: Invalid value: "alice@example.org": a valid label')
    assert found[1].startswith('metadata.annotations: Invalid value: "bad key": name part')
    assert found[2] == (
        'metadata.finalizers: Invalid value: "custom": '
        "name is neither a standard finalizer name nor is it fully qualified"
    )
    assert found[3] == 'metadata.ownerReferences[0].uid: Invalid value: "": uid must not be empty'
    assert found[4].startswith("metadata.ownerReferences: Invalid value: ")
    assert found[4].endswith('Found "true" in references for Pod/o and Pod/o2')


def test_volumes_claims_config_maps_secrets_services_bindings() -> None:
    pv = {"metadata": {"name": "v"}, "spec": {"capacity": {"storage": "1Gi"}}}
    assert causes(PVS, pv) == [
        "spec.accessModes: Required value",
        "spec: Required value: must specify a volume type",
    ]
    claim = {"metadata": {"name": "c", "namespace": "d"}, "spec": {"resources": {"requests": {}}}}
    assert causes(PVCS, claim) == [
        "spec.accessModes: Required value: at least 1 access mode is required",
        "spec.resources[storage]: Required value",
    ]
    cm = {"metadata": {"name": "c", "namespace": "d"}, "data": {"a b": "1"}, "binaryData": {}}
    assert causes(CONFIGMAPS, cm)[0].startswith(
        'data[a b]: Invalid value: "a b": a valid config key must consist of'
    )
    service = {
        "metadata": {"name": "s", "namespace": "d"},
        "spec": {"ports": [{"name": "a", "port": 80}, {"port": 81}]},
    }
    assert causes(SERVICES, service) == ["spec.ports[1].name: Required value"]
    binding = {
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "hub"}],
    }
    assert causes(CLUSTERROLEBINDINGS, binding) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "subjects[0].namespace: Required value",
    ]


def test_immutable_fields_on_update() -> None:
    old = a_pod(nodeSelector={"x": "y"}, activeDeadlineSeconds=60)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:1.37"
    new["spec"]["activeDeadlineSeconds"] = 30
    assert [e.text for e in validate_update(PODS, old, new).items] == []
    new["spec"]["nodeSelector"] = {"x": "z"}
    new["spec"]["activeDeadlineSeconds"] = 90
    found = [e.text for e in validate_update(PODS, old, new).items]
    assert found[0] == (
        "spec.activeDeadlineSeconds: Invalid value: 90: "
        "must be less than or equal to previous value"
    )
    assert found[1].startswith("spec: Forbidden: pod updates may not change fields other than")

    claim = {
        "metadata": {"name": "c", "namespace": "d"},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    bound = copy.deepcopy(claim)
    bound["spec"]["volumeName"] = "v"  # may be set once
    bound["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert [e.text for e in validate_update(PVCS, claim, bound).items] == []
    moved = copy.deepcopy(bound)
    moved["spec"]["volumeName"] = "w"
    assert [e.text for e in validate_update(PVCS, bound, moved).items] == [
        "spec: Forbidden: spec is immutable after creation except resources.requests and "
        "volumeAttributesClassName for bound claims"
    ]

    pv = {
        "metadata": {"name": "v"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteMany"],
            "hostPath": {"path": "/a"},
        },
    }
    changed = copy.deepcopy(pv)
    changed["spec"]["hostPath"]["path"] = "/b"
    changed["spec"]["capacity"]["storage"] = "2Gi"  # capacity may change, the source not
    found = [e.text for e in validate_update(PVS, pv, changed).items]
    assert len(found) == 1
    assert found[0].startswith(
        "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable"
    )

    secret = {"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque", "immutable": True}
    edited = dict(secret, data={"a": "eA=="}, type="kubernetes.io/tls")
    assert [e.text for e in validate_update(SECRETS, secret, edited).items] == [
        'type: Invalid value: "kubernetes.io/tls": field is immutable',
        "data: Forbidden: field is immutable when `immutable` is set",
    ]
    binding = {
        "metadata": {"name": "b", "namespace": "d"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
    }
    rebound = copy.deepcopy(binding)
    rebound["roleRef"]["name"] = "other"
    assert [e.text for e in validate_update(ROLEBINDINGS, binding, rebound).items][-1].endswith(
        "cannot change roleRef"
    )


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        (
            "Secret",
            {"metadata": {"name": "s"}, "data": {"k": "not base64!"}},
            'Secret in version "v1" cannot be handled as a Secret: '
            "illegal base64 data at input byte 3",
        ),
        (
            "Pod",
            {"spec": {"containers": [{"resources": {"requests": {"cpu": "1 core"}}}]}},
            'Pod in version "v1" cannot be handled as a Pod: quantities must match the regular '
            "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            "PersistentVolume",
            {"spec": {"capacity": {"storage": "10GB"}}},
            'PersistentVolume in version "v1" cannot be handled as a PersistentVolume: '
            "quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        (
            "ConfigMap",
            {"binaryData": {"k": "%%%"}},
            'ConfigMap in version "v1" cannot be handled as a ConfigMap: '
            "illegal base64 data at input byte 0",
        ),
    ],
)
def test_decoding_refuses_bad_quantities_and_base64_with_400(
    kind: str, body: dict[str, Any], message: str
) -> None:
    schema = Validator().patch_schema(kind, "v1")
    problem = decode_problem(kind, body, schema)
    assert problem is not None
    assert (problem.code, problem.reason, problem.message) == (400, "BadRequest", message)
    assert (
        decode_problem("Secret", {"data": {"k": "eA=="}}, Validator().patch_schema("Secret", "v1"))
        is None
    )


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (is_dns1123_label, "my-name", True),
        (is_dns1123_label, "a" * 64, False),
        (is_dns1123_label, "a.b", False),
        (is_dns1123_subdomain, "a.b-c", True),
        (is_dns1123_subdomain, "A", False),
        (is_dns1035_label, "abc-123", True),
        (is_dns1035_label, "123-abc", False),
        (is_qualified_name, "example.com/My_Name", True),
        (is_qualified_name, "a/b/c", False),
        (is_qualified_name, "/x", False),
        (is_label_value, "", True),
        (is_label_value, "-x", False),
        (is_config_map_key, "KEY.name-1_", True),
        (is_config_map_key, "..x", False),
        (is_valid_port_name, "http-2", True),
        (is_valid_port_name, "a--b", False),
        (is_valid_port_name, "-ab", False),
        (is_valid_path_segment_name, "system:controller", True),
        (is_valid_path_segment_name, "..", False),
    ],
)
def test_name_checks(check: Any, value: str, ok: bool) -> None:
    assert (check(value) == []) is ok


def test_label_rule_message_is_apimachinerys() -> None:
    assert is_dns1123_label("A") == [
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
        "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
        "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    ]
