"""The API server's own validation of a Pod (``pkg/apis/core/validation``), in part.

The OpenAPI schema checks types and required fields; kube-apiserver then checks
what the schema cannot say, and answers 422 ``Invalid`` with one cause per
problem. Modelled here, with the server's paths and words:

* containers: at least one; names DNS-1123 labels, unique across containers and
  init containers; ``image`` required; ``imagePullPolicy`` one of the three;
* container ports: names IANA service names (at most 15 characters, ...) unique in
  the container; ``containerPort`` and ``hostPort`` in 1..65535; ``protocol``;
* resources: resource names, quantities not negative, requests not above limits;
* volumes: names DNS-1123 labels, unique; exactly one volume source each;
* volume mounts: the name must be one of the pod's volumes; ``mountPath``
  required and unique in the container; ``subPath`` relative, without ``..``;
* ``restartPolicy``, ``dnsPolicy``; ``nodeName``, ``serviceAccountName``,
  ``hostname``, ``subdomain`` names; ``nodeSelector`` labels;
* required node affinity: at least one term; the operator's value rules;
  ``matchFields`` on ``metadata.name`` with exactly one value;
* tolerations (operator, value, effect, ``tolerationSeconds`` only for NoExecute);
* pod and container ``securityContext`` user and group ids in 0..2147483647.

On update, only the fields a real server lets change may change (images, a
shorter ``activeDeadlineSeconds``, added tolerations, a negative
``terminationGracePeriodSeconds`` raised to 1): see :func:`pod_update`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .fielderrors import FieldErrors
from .names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    is_qualified_name,
    is_valid_port_name,
)
from .quantity import QuantityError, parse_quantity

__all__ = ["pod", "pod_update", "validate_labels"]

_MAX_ID = 2**31 - 1
_STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")


def validate_labels(labels: Any, path: str, p: FieldErrors) -> None:
    """``ValidateLabels``: qualified-name keys and label values."""
    if not isinstance(labels, Mapping):
        return
    for key, value in labels.items():
        p.invalid_all(path, key, is_qualified_name(str(key)))
        if isinstance(value, str):
            p.invalid_all(path, value, is_label_value(value))


def _id_range(value: Any, path: str, p: FieldErrors) -> None:
    if isinstance(value, int) and not 0 <= value <= _MAX_ID:
        p.invalid(path, value, f"must be between 0 and {_MAX_ID}, inclusive")


def _security_context(ctx: Any, path: str, p: FieldErrors) -> None:
    if not isinstance(ctx, Mapping):
        return
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        _id_range(ctx.get(key), f"{path}.{key}", p)
    for i, gid in enumerate(ctx.get("supplementalGroups") or ()):
        _id_range(gid, f"{path}.supplementalGroups[{i}]", p)


def _resource_name(name: str, path: str, p: FieldErrors) -> None:
    # ValidateResourceName: a standard name, or a qualified extended/hugepages name
    if name in _STANDARD_RESOURCES or name.startswith("hugepages-"):
        return
    messages = is_qualified_name(name)
    if not messages and "/" not in name:
        messages = [
            "must be a standard resource type or fully qualified",
            "must be a standard resource for containers",
        ]
    p.invalid_all(path, name, messages)


def _resources(resources: Any, path: str, p: FieldErrors) -> None:
    if not isinstance(resources, Mapping):
        return
    limits = resources.get("limits") or {}
    for group in ("limits", "requests"):
        for name, quantity in (resources.get(group) or {}).items():
            entry = f"{path}.{group}[{name}]"
            _resource_name(str(name), entry, p)
            try:
                amount = parse_quantity(quantity)
            except QuantityError:
                continue  # refused earlier, as the server refuses it while decoding
            if amount < 0:
                p.invalid(entry, str(quantity), "must be greater than or equal to 0")
            elif group == "requests" and name in limits:
                try:
                    limit = parse_quantity(limits[name])
                except QuantityError:
                    continue
                if amount > limit:
                    p.invalid(
                        entry,
                        str(quantity),
                        f"must be less than or equal to {name} limit of {limits[name]}",
                    )


def _ports(ports: Any, path: str, p: FieldErrors) -> None:
    names: set[str] = set()
    for i, port in enumerate(ports or ()):
        at = f"{path}[{i}]"
        name = port.get("name") or ""
        if name:
            messages = is_valid_port_name(name)
            p.invalid_all(f"{at}.name", name, messages)
            if not messages and name in names:
                p.duplicate(f"{at}.name", name)
            names.add(name)
        number = port.get("containerPort")
        if not number:
            p.required(f"{at}.containerPort")
        elif not 1 <= number <= 65535:
            p.invalid(f"{at}.containerPort", number, "must be between 1 and 65535, inclusive")
        host = port.get("hostPort")
        if host and not 1 <= host <= 65535:
            p.invalid(f"{at}.hostPort", host, "must be between 1 and 65535, inclusive")
        protocol = port.get("protocol", "TCP")
        if protocol not in ("SCTP", "TCP", "UDP"):
            p.not_supported(f"{at}.protocol", protocol, ("SCTP", "TCP", "UDP"))


def _mounts(mounts: Any, volumes: set[str], path: str, p: FieldErrors) -> None:
    paths: set[str] = set()
    for i, mount in enumerate(mounts or ()):
        at = f"{path}[{i}]"
        name = mount.get("name") or ""
        if not name:
            p.required(f"{at}.name")
        elif name not in volumes:
            p.not_found(f"{at}.name", name)
        mount_path = mount.get("mountPath") or ""
        if not mount_path:
            p.required(f"{at}.mountPath")
        elif mount_path in paths:
            p.invalid(f"{at}.mountPath", mount_path, "must be unique")
        paths.add(mount_path)
        sub = mount.get("subPath") or ""
        if sub.startswith("/"):
            p.invalid(f"{at}.subPath", sub, "must be a relative path")
        if ".." in sub.split("/"):
            p.invalid(f"{at}.subPath", sub, "must not contain '..'")


def _unique_label(name: str, path: str, seen: set[str], p: FieldErrors) -> None:
    """A container's or volume's name: required, a DNS-1123 label, not seen before."""
    if not name:
        p.required(path)
        return
    p.invalid_all(path, name, is_dns1123_label(name))
    if name in seen:
        p.duplicate(path, name)
    seen.add(name)


def _containers(
    containers: list[Any], key: str, names: set[str], volumes: set[str], p: FieldErrors
) -> None:
    for i, container in enumerate(containers):
        at = f"spec.{key}[{i}]"
        _unique_label(container.get("name") or "", f"{at}.name", names, p)
        if not container.get("image"):
            p.required(f"{at}.image")
        policy = container.get("imagePullPolicy")
        if policy is not None and policy not in ("Always", "IfNotPresent", "Never"):
            p.not_supported(f"{at}.imagePullPolicy", policy, ("Always", "IfNotPresent", "Never"))
        _ports(container.get("ports"), f"{at}.ports", p)
        for j, env in enumerate(container.get("env") or ()):
            if not env.get("name"):
                p.required(f"{at}.env[{j}].name")
        _resources(container.get("resources"), f"{at}.resources", p)
        _mounts(container.get("volumeMounts"), volumes, f"{at}.volumeMounts", p)
        _security_context(container.get("securityContext"), f"{at}.securityContext", p)


def _volumes(volumes: Any, p: FieldErrors) -> set[str]:
    names: set[str] = set()
    for i, volume in enumerate(volumes or ()):
        at = f"spec.volumes[{i}]"
        _unique_label(volume.get("name") or "", f"{at}.name", names, p)
        sources = [k for k, v in volume.items() if k != "name" and v is not None]
        if not sources:
            p.required(at, "must specify a volume type")
        for extra in sources[1:]:
            p.forbidden(f"{at}.{extra}", "may not specify more than 1 volume type")
    return names


def _requirement(rq: Mapping[str, Any], at: str, p: FieldErrors) -> None:
    operator, values = rq.get("operator"), rq.get("values") or []
    if operator in ("In", "NotIn"):
        if not values:
            p.required(f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'")
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            p.forbidden(
                f"{at}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            )
    elif operator in ("Gt", "Lt"):
        if len(values) != 1:
            p.required(
                f"{at}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'"
            )
    else:
        p.invalid(f"{at}.operator", operator, "not a valid selector operator")
    p.invalid_all(f"{at}.key", rq.get("key"), is_qualified_name(str(rq.get("key") or "")))


def _field_requirement(rq: Mapping[str, Any], at: str, p: FieldErrors) -> None:
    operator, values = rq.get("operator"), rq.get("values") or []
    if operator in ("In", "NotIn"):
        if len(values) != 1:
            p.required(
                f"{at}.values",
                "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
            )
    else:
        p.invalid(f"{at}.operator", operator, "not a valid selector operator")
    if rq.get("key") != "metadata.name":
        p.invalid(f"{at}.key", rq.get("key"), "not a valid field selector key")
    else:
        for j, value in enumerate(values):
            p.invalid_all(f"{at}.values[{j}]", value, is_dns1123_subdomain(str(value)))


def _node_affinity(spec: Mapping[str, Any], p: FieldErrors) -> None:
    node = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    path = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    if required is None:
        return
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        p.required(f"{path}.nodeSelectorTerms", "must have at least one node selector term")
    for i, term in enumerate(terms):
        at = f"{path}.nodeSelectorTerms[{i}]"
        for j, rq in enumerate((term or {}).get("matchExpressions") or ()):
            _requirement(rq, f"{at}.matchExpressions[{j}]", p)
        for j, rq in enumerate((term or {}).get("matchFields") or ()):
            _field_requirement(rq, f"{at}.matchFields[{j}]", p)


def _tolerations(tolerations: Any, p: FieldErrors) -> None:
    for i, t in enumerate(tolerations or ()):
        at = f"spec.tolerations[{i}]"
        key, operator = t.get("key") or "", t.get("operator") or "Equal"
        if key:
            p.invalid_all(f"{at}.key", key, is_qualified_name(key))
        elif operator != "Exists":
            p.invalid(
                f"{at}.operator",
                operator,
                'operator must be Exists when `key` is empty, which means "match all values '
                'and all keys"',
            )
        if t.get("tolerationSeconds") is not None and t.get("effect") != "NoExecute":
            p.invalid(
                f"{at}.effect",
                t.get("effect") or "",
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            )
        if operator == "Equal":
            p.invalid_all(f"{at}.value", t.get("value"), is_label_value(t.get("value") or ""))
        elif operator == "Exists":
            if t.get("value"):
                p.invalid(f"{at}.operator", t, "value must be empty when `operator` is 'Exists'")
        else:
            p.not_supported(f"{at}.operator", operator, ("Equal", "Exists"))
        effect = t.get("effect")
        if effect and effect not in _TAINT_EFFECTS:
            p.not_supported(f"{at}.effect", effect, _TAINT_EFFECTS)


def pod(obj: Mapping[str, Any], p: FieldErrors) -> None:
    """Collect what ``ValidatePodCreate`` refuses in ``obj`` (rules in the module docstring)."""
    spec = obj.get("spec") or {}
    containers = spec.get("containers") or []
    if not containers:
        p.required("spec.containers")
    volumes = _volumes(spec.get("volumes"), p)
    names: set[str] = set()
    _containers(containers, "containers", names, volumes, p)
    _containers(spec.get("initContainers") or [], "initContainers", names, volumes, p)
    for key, choices in (
        ("restartPolicy", ("Always", "Never", "OnFailure")),
        ("dnsPolicy", ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")),
    ):
        value = spec.get(key)
        if value is not None and value not in choices:
            p.not_supported(f"spec.{key}", value, choices)
    for key in ("nodeName", "serviceAccountName"):
        if spec.get(key):
            p.invalid_all(f"spec.{key}", spec[key], is_dns1123_subdomain(spec[key]))
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            p.invalid_all(f"spec.{key}", spec[key], is_dns1123_label(spec[key]))
    validate_labels(spec.get("nodeSelector"), "spec.nodeSelector", p)
    _node_affinity(spec, p)
    _tolerations(spec.get("tolerations"), p)
    _security_context(spec.get("securityContext"), "spec.securityContext", p)
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and not 1 <= deadline <= _MAX_ID:
        p.invalid(
            "spec.activeDeadlineSeconds", deadline, f"must be between 1 and {_MAX_ID}, inclusive"
        )


_MUTABLE_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def _without_seconds(toleration: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in toleration.items() if k != "tolerationSeconds"}


def pod_update(old: Mapping[str, Any], new: Mapping[str, Any], p: FieldErrors) -> None:
    """Collect what ``ValidatePodUpdate`` refuses in a change of ``old`` into ``new``."""
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if old_spec == new_spec:
        return
    old_deadline, new_deadline = (
        old_spec.get("activeDeadlineSeconds"),
        new_spec.get("activeDeadlineSeconds"),
    )
    if old_deadline is not None:
        if new_deadline is None:
            p.invalid(
                "spec.activeDeadlineSeconds",
                None,
                "must not update from a positive integer to nil value",
            )
        elif new_deadline > old_deadline:
            p.invalid(
                "spec.activeDeadlineSeconds",
                new_deadline,
                "must be less than or equal to previous value",
            )
    new_tolerations = [_without_seconds(t) for t in new_spec.get("tolerations") or ()]
    for i, t in enumerate(old_spec.get("tolerations") or ()):
        if _without_seconds(t) not in new_tolerations:
            p.forbidden(
                f"spec.tolerations[{i}]",
                "existing toleration can not be modified except its tolerationSeconds",
            )
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    new_grace = new_spec.get("terminationGracePeriodSeconds")
    grace_ok = old_grace == new_grace or (
        isinstance(old_grace, int) and old_grace < 0 and new_grace == 1
    )

    def masked(spec: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(spec))
        for key in ("containers", "initContainers"):
            for container in out.get(key) or []:
                container.pop("image", None)
        for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
            out.pop(key, None)
        return out

    if masked(old_spec) != masked(new_spec) or not grace_ok:
        p.forbidden("spec", _MUTABLE_MESSAGE)
