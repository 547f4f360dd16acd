"""The API server's own field validation, after the schema: what a cluster refuses.

kube-apiserver reads a request in two steps the stand-in follows:

1. **decoding** (:func:`decode_problem`): a resource quantity that does not parse,
   a ``format: byte`` field (Secret ``data``, ConfigMap ``binaryData``) that is
   not base64, or a MicroTime (a Lease's ``acquireTime``/``renewTime``) not in
   ``2006-01-02T15:04:05.000000Z07:00`` (:mod:`.gotime`), fails before
   validation, with 400 ``BadRequest``:
   ``Secret in version "v1" cannot be handled as a Secret: illegal base64 data at
   input byte 4``;
2. **validation** (:func:`validate`, :func:`validate_update`): the rules of
   ``pkg/apis/core/validation`` and ``pkg/apis/rbac/validation`` the schema cannot
   express, answered with 422 ``Invalid`` and one Status cause per problem. For
   every kind: object names (DNS-1123 subdomains; Namespaces DNS-1123 labels,
   Services DNS-1035 labels, RBAC objects path segments), the namespace, label
   keys and values, annotation keys and size, finalizer names, owner references.
   Per kind: Pods (:mod:`.podrules`), PersistentVolumes and claims (capacity,
   access modes, one volume source, reclaim policy), ConfigMaps and Secrets (keys,
   size, ``immutable``), Services (ports), RBAC objects (rules, roleRef, subjects),
   Leases (``ValidateLeaseSpec``: a positive duration, non-negative transitions).
   On update, the fields the server keeps fixed: the pod spec but for a few fields,
   a claim's spec but for ``resources.requests`` (and ``volumeName`` once), a
   volume's source, a Secret's ``type``, a RoleBinding's ``roleRef``, and the data
   of an ``immutable`` ConfigMap or Secret.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from . import podrules
from .errors import ApiError, bad_request
from .fielderrors import FieldErrors
from .gotime import micro_time_error
from .names import (
    is_config_map_key,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_path_segment_name,
)
from .patch import SchemaNode
from .quantity import QuantityError, parse_quantity
from .resources import ResourceType

__all__ = ["decode_problem", "drop_disabled_fields", "validate", "validate_update"]

Obj = dict[str, Any]
_RBAC = "rbac.authorization.k8s.io"
_MAX_ANNOTATIONS = 256 * 1024
_MAX_DATA = 1024 * 1024
_STANDARD_FINALIZERS = ("foregroundDeletion", "kubernetes", "orphan")
_ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_PV_NOT_SOURCE = {
    "accessModes",
    "capacity",
    "claimRef",
    "mountOptions",
    "nodeAffinity",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "volumeAttributesClassName",
    "volumeMode",
}
_QUANTITY_REF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_MICRO_TIME_REF = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"


# -- 1. decoding ---------------------------------------------------------------------
def _typed_leaves(value: Any, schema: SchemaNode, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """``("quantity" | "byte" | "microtime", value)`` for each leaf the schema types so."""
    if depth > 40:
        return
    node = schema.node
    if str(node.get("$ref", "")).endswith(_QUANTITY_REF):
        yield "quantity", value
        return
    if str(node.get("$ref", "")).endswith(_MICRO_TIME_REF):
        if isinstance(value, str):  # null is the zero time; other types fail the schema
            yield "microtime", value
        return
    resolved = schema.resolved()
    if resolved.get("format") == "byte" and isinstance(value, str):
        yield "byte", value
        return
    if isinstance(value, dict):
        extra = resolved.get("additionalProperties")
        for key, item in value.items():
            if key in resolved.get("properties", {}):
                yield from _typed_leaves(item, schema.field(key), depth + 1)
            elif isinstance(extra, dict):
                yield from _typed_leaves(item, SchemaNode(extra, schema.definitions), depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _typed_leaves(item, schema.items(), depth + 1)


def _base64_error(text: str) -> str | None:
    """Go's ``illegal base64 data at input byte N`` for text StdEncoding refuses."""
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        stripped = text.rstrip("=")
        position = next((i for i, c in enumerate(stripped) if c not in alphabet), len(stripped))
        return f"illegal base64 data at input byte {position}"
    return None


def decode_problem(kind: str, obj: Obj, schema: SchemaNode) -> ApiError | None:
    """The 400 a real server answers while decoding ``obj``, or None."""
    for leaf_type, value in _typed_leaves(obj, schema):
        if leaf_type == "quantity":
            if value is None:
                continue
            try:
                parse_quantity(value)
            except QuantityError as exc:
                message = str(exc)
            else:
                continue
        elif leaf_type == "microtime":
            problem = micro_time_error(value)
            if problem is None:
                continue
            message = problem
        else:
            problem = _base64_error(value)
            if problem is None:
                continue
            message = problem
        return bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: {message}')
    return None


# -- 2. validation: metadata -----------------------------------------------------------
def _name_rule(resource: ResourceType) -> Callable[[str], list[str]]:
    if resource.group == _RBAC:
        return is_valid_path_segment_name
    if resource.kind == "Namespace":
        return is_dns1123_label
    if resource.kind == "Service":
        return is_dns1035_label
    return is_dns1123_subdomain


def _owner_references(refs: Any, p: FieldErrors) -> None:
    controllers = []
    for i, ref in enumerate(refs or ()):
        at = f"metadata.ownerReferences[{i}]"
        version = str(ref.get("apiVersion") or "").rsplit("/", 1)[-1]
        for key, shown, ok in (
            ("apiVersion", "version", bool(version)),
            ("kind", "kind", bool(ref.get("kind"))),
            ("name", "name", bool(ref.get("name"))),
            ("uid", "uid", bool(ref.get("uid"))),
        ):
            if not ok:
                p.invalid(f"{at}.{key}", ref.get(key) or "", f"{shown} must not be empty")
        if ref.get("controller"):
            controllers.append(f"{ref.get('kind')}/{ref.get('name')}")
    if len(controllers) > 1:
        p.invalid(
            "metadata.ownerReferences",
            refs,
            'Only one reference can have Controller set to true. Found "true" in references '
            f"for {' and '.join(controllers)}",
        )


def _metadata(resource: ResourceType, obj: Obj, p: FieldErrors) -> None:
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    p.invalid_all("metadata.name", name, _name_rule(resource)(name))
    if resource.namespaced:
        namespace = meta.get("namespace") or ""
        p.invalid_all("metadata.namespace", namespace, is_dns1123_label(namespace))
    podrules.validate_labels(meta.get("labels"), "metadata.labels", p)
    annotations = meta.get("annotations") or {}
    for key in annotations:
        p.invalid_all("metadata.annotations", key, is_qualified_name(str(key).lower()))
    size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
    if size > _MAX_ANNOTATIONS:
        p.too_long("metadata.annotations", _MAX_ANNOTATIONS)
    for finalizer in meta.get("finalizers") or ():
        messages = is_qualified_name(str(finalizer))
        if not messages and "/" not in str(finalizer) and finalizer not in _STANDARD_FINALIZERS:
            messages = ["name is neither a standard finalizer name nor is it fully qualified"]
        p.invalid_all("metadata.finalizers", finalizer, messages)
    _owner_references(meta.get("ownerReferences"), p)


# -- 2. validation: kinds ----------------------------------------------------------------
def _storage(quantity: Any) -> Any:
    try:
        return parse_quantity(quantity)
    except QuantityError:
        return None


def _access_modes(spec: Mapping[str, Any], p: FieldErrors, detail: str = "") -> None:
    modes = spec.get("accessModes") or []
    if not modes:
        p.required("spec.accessModes", detail)
    for mode in modes:
        if mode not in _ACCESS_MODES:
            p.not_supported("spec.accessModes", mode, _ACCESS_MODES)


def _persistent_volume(obj: Obj, p: FieldErrors) -> None:
    spec = obj.get("spec") or {}
    _access_modes(spec, p)
    capacity = spec.get("capacity") or {}
    if not capacity:
        p.required("spec.capacity")
    elif set(capacity) != {"storage"}:
        p.not_supported("spec.capacity", capacity, ("storage",))
    elif (amount := _storage(capacity["storage"])) is not None and amount < 0:
        p.invalid(
            "spec.capacity[storage]", capacity["storage"], "must be greater than or equal to 0"
        )
    sources = [k for k, v in spec.items() if k not in _PV_NOT_SOURCE and v is not None]
    if not sources:
        p.required("spec", "must specify a volume type")
    for extra in sources[1:]:
        p.forbidden(f"spec.{extra}", "may not specify more than 1 volume type")
    host_path = spec.get("hostPath")
    if isinstance(host_path, dict) and not host_path.get("path"):
        p.required("spec.hostPath.path")
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy is not None and policy not in ("Delete", "Recycle", "Retain"):
        p.not_supported(
            "spec.persistentVolumeReclaimPolicy", policy, ("Delete", "Recycle", "Retain")
        )


def _persistent_volume_claim(obj: Obj, p: FieldErrors) -> None:
    spec = obj.get("spec") or {}
    _access_modes(spec, p, "at least 1 access mode is required")
    requests = (spec.get("resources") or {}).get("requests") or {}
    if "storage" not in requests:
        p.required("spec.resources[storage]")
    elif (amount := _storage(requests["storage"])) is not None and amount <= 0:
        p.invalid("spec.resources[storage]", requests["storage"], "must be greater than zero")
    mode = spec.get("volumeMode")
    if mode is not None and mode not in ("Block", "Filesystem"):
        p.not_supported("spec.volumeMode", mode, ("Block", "Filesystem"))


def _data_keys(obj: Obj, fields: tuple[str, ...], p: FieldErrors) -> None:
    size = 0
    seen: set[str] = set()
    for field in fields:
        for key, value in (obj.get(field) or {}).items():
            p.invalid_all(f"{field}[{key}]", key, is_config_map_key(key))
            if key in seen:
                p.invalid(f"{field}[{key}]", key, f"duplicate of key present in {fields[0]}")
            seen.add(key)
            size += len(str(value))
    if size > _MAX_DATA:
        p.too_long("", _MAX_DATA)


def _service(obj: Obj, p: FieldErrors) -> None:
    spec = obj.get("spec") or {}
    ports = spec.get("ports") or []
    kind = spec.get("type", "ClusterIP")
    if kind not in ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort"):
        p.not_supported(
            "spec.type", kind, ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
        )
    if not ports and spec.get("clusterIP") != "None" and kind != "ExternalName":
        p.required("spec.ports")
    names: set[str] = set()
    for i, port in enumerate(ports):
        at = f"spec.ports[{i}]"
        name = port.get("name") or ""
        if not name and len(ports) > 1:
            p.required(f"{at}.name")
        elif name:
            p.invalid_all(f"{at}.name", name, is_dns1123_label(name))
            if name in names:
                p.duplicate(f"{at}.name", name)
            names.add(name)
        number = port.get("port")
        if not isinstance(number, int) or not 1 <= number <= 65535:
            p.invalid(f"{at}.port", number, "must be between 1 and 65535, inclusive")
    podrules.validate_labels(spec.get("selector"), "spec.selector", p)


def _rbac(resource: ResourceType, obj: Obj, p: FieldErrors) -> None:
    for i, rule in enumerate(obj.get("rules") or ()):
        if not rule.get("verbs"):
            p.required(f"rules[{i}].verbs", "verbs must contain at least one value")
        if rule.get("nonResourceURLs"):
            continue
        if not rule.get("apiGroups"):
            p.required(f"rules[{i}].apiGroups", "resource rules must supply at least one api group")
        if not rule.get("resources"):
            p.required(f"rules[{i}].resources", "resource rules must supply at least one resource")
    if "roleRef" not in obj:
        return
    role_ref = obj.get("roleRef") or {}
    kinds = ("ClusterRole",) if resource.kind == "ClusterRoleBinding" else ("ClusterRole", "Role")
    if role_ref.get("apiGroup") != _RBAC:
        p.not_supported("roleRef.apiGroup", role_ref.get("apiGroup"), (_RBAC,))
    if role_ref.get("kind") not in kinds:
        p.not_supported("roleRef.kind", role_ref.get("kind"), kinds)
    if not role_ref.get("name"):
        p.required("roleRef.name")
    for i, subject in enumerate(obj.get("subjects") or ()):
        at = f"subjects[{i}]"
        kind = subject.get("kind")
        if kind == "ServiceAccount":
            if subject.get("apiGroup"):
                p.not_supported(f"{at}.apiGroup", subject.get("apiGroup"), ("",))
            if resource.kind == "ClusterRoleBinding" and not subject.get("namespace"):
                p.required(f"{at}.namespace")
        elif kind in ("User", "Group"):
            if subject.get("apiGroup") != _RBAC:
                p.not_supported(f"{at}.apiGroup", subject.get("apiGroup"), (_RBAC,))
        else:
            p.not_supported(f"{at}.kind", kind, ("ServiceAccount", "User", "Group"))


def _lease(obj: Obj, p: FieldErrors) -> None:
    """``ValidateLeaseSpec``; strategy and preferredHolder are dropped before (see below)."""
    spec = obj.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        p.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        p.invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")


def drop_disabled_fields(resource: ResourceType, obj: Obj) -> None:
    """Clear the fields of features that are off, as the strategy's PrepareForCreate/Update do.

    A Lease's ``strategy`` and ``preferredHolder`` belong to coordinated leader
    election (feature gate ``CoordinatedLeaderElection``, off by default): the
    server drops them silently, after decoding and the schema, before validation.
    """
    if resource.kind == "Lease" and isinstance(obj.get("spec"), dict):
        obj["spec"].pop("strategy", None)
        obj["spec"].pop("preferredHolder", None)


def validate(resource: ResourceType, obj: Obj) -> FieldErrors:
    """What the API server's validation refuses in ``obj`` (a create, or an update's result)."""
    p = FieldErrors()
    _metadata(resource, obj, p)
    kind = resource.kind
    if kind == "Pod":
        podrules.pod(obj, p)
    elif kind == "PersistentVolume":
        _persistent_volume(obj, p)
    elif kind == "PersistentVolumeClaim":
        _persistent_volume_claim(obj, p)
    elif kind == "ConfigMap":
        _data_keys(obj, ("data", "binaryData"), p)
    elif kind == "Secret":
        _data_keys(obj, ("data",), p)
    elif kind == "Service":
        _service(obj, p)
    elif kind == "Lease":
        _lease(obj, p)
    elif resource.group == _RBAC:
        _rbac(resource, obj, p)
    return p


# -- 2. validation: updates ----------------------------------------------------------
def _immutable_data(old: Obj, new: Obj, fields: tuple[str, ...], p: FieldErrors) -> None:
    if not old.get("immutable"):
        return
    if not new.get("immutable"):
        p.forbidden("immutable", "field is immutable when `immutable` is set")
    for field in fields:
        if (old.get(field) or {}) != (new.get(field) or {}):
            p.forbidden(field, "field is immutable when `immutable` is set")


def _diff_line(old: Any, new: Any) -> str:
    return f"\n  - {json.dumps(old, sort_keys=True)}\n  + {json.dumps(new, sort_keys=True)}"


def validate_update(resource: ResourceType, old: Obj, new: Obj) -> FieldErrors:
    """What the API server refuses in changing ``old`` into ``new`` (beyond :func:`validate`)."""
    p = validate(resource, new)
    kind = resource.kind
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if kind == "Pod":
        podrules.pod_update(old, new, p)
    elif kind == "PersistentVolumeClaim" and old_spec != new_spec:
        before = {
            k: v for k, v in old_spec.items() if k not in ("resources", "volumeAttributesClassName")
        }
        after = {
            k: v for k, v in new_spec.items() if k not in ("resources", "volumeAttributesClassName")
        }
        if not old_spec.get("volumeName"):
            before.pop("volumeName", None)  # the binder may set it once
            after.pop("volumeName", None)
        if before != after:
            p.forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and "
                "volumeAttributesClassName for bound claims",
            )
    elif kind == "PersistentVolume":
        before = {k: v for k, v in old_spec.items() if k not in _PV_NOT_SOURCE}
        after = {k: v for k, v in new_spec.items() if k not in _PV_NOT_SOURCE}
        if before != after:
            p.forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation"
                + _diff_line(before, after),
            )
        if old_spec.get("volumeMode") != new_spec.get("volumeMode"):
            p.invalid("volumeMode", new_spec.get("volumeMode"), "field is immutable")
    elif kind == "Secret":
        if (old.get("type") or "Opaque") != (new.get("type") or "Opaque"):
            p.invalid("type", new.get("type"), "field is immutable")
        _immutable_data(old, new, ("data",), p)
    elif kind == "ConfigMap":
        _immutable_data(old, new, ("data", "binaryData"), p)
    elif kind in ("RoleBinding", "ClusterRoleBinding") and old.get("roleRef") != new.get("roleRef"):
        p.invalid("roleRef", new.get("roleRef"), "cannot change roleRef")
    return p
