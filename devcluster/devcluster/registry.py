"""REST semantics on top of the store, as the API server's registry layer has them.

Create fills server-set metadata (uid, resourceVersion, creationTimestamp,
generateName) and kind defaults, checks that the namespace exists and is not
being terminated (403), then checks the object as kube-apiserver does: decoding
(quantities, base64: 400), the OpenAPI schema and the server's own field
validation (:mod:`.rules`: 422), and a resourceVersion sent on create (refused,
as the storage layer refuses it). Update refuses a stale resourceVersion with
409 Conflict, keeps ``status`` apart from the main resource for kinds with a
status subresource and refuses changes to immutable fields (422); delete honours
finalizers and, for pods on a node, the grace period: the pod gets a
deletionTimestamp and the (simulated) kubelet removes it once its containers
have stopped. Deleting a namespace marks it ``Terminating``; the namespace
controller (:mod:`.namespaces`) empties and removes it. Kinds that are answered
rather than stored (access reviews) are only checked, by :meth:`Registry.admit`.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from . import resources as res
from . import rules
from .errors import ApiError, already_exists, bad_request, conflict, invalid, not_found
from .patch import apply_patch, check_patch_type
from .resources import ResourceType
from .selectors import Matcher
from .store import Obj, Store, clone
from .validation import Validator

__all__ = ["Registry", "micro_now", "now", "require"]


def require(resource: ResourceType | None) -> ResourceType:
    """Narrow an optional resource type (for module constants)."""
    if resource is None:  # pragma: no cover - the table is static
        raise ApiError(500, "InternalError", "unknown resource")
    return resource


NAMESPACES = require(res.find("", "v1", "namespaces"))
PODS = require(res.find("", "v1", "pods"))
EVENTS = require(res.find("", "v1", "events"))
NODES = require(res.find("", "v1", "nodes"))
PVS = require(res.find("", "v1", "persistentvolumes"))
PVCS = require(res.find("", "v1", "persistentvolumeclaims"))

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's generateName alphabet
TERMINAL = ("Succeeded", "Failed")


def now() -> str:
    """The current time as Kubernetes writes timestamps (RFC 3339, seconds)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    """The current time as a MicroTime (RFC 3339 with microseconds)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _pod_defaults(pod: Obj) -> None:
    spec = pod.setdefault("spec", {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("priority", 0)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault(
        "tolerations",
        [
            {
                "key": f"node.kubernetes.io/{k}",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            }
            for k in ("not-ready", "unreachable")
        ],
    )
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        image = container.get("image", "")
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        resources = container.setdefault("resources", {})
        # requests default to limits when only limits are given
        limits = resources.get("limits") or {}
        if limits:
            resources["requests"] = {**limits, **(resources.get("requests") or {})}
    pod["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}


def _qos_class(spec: Obj) -> str:
    containers = spec.get("containers", [])
    any_set, guaranteed = False, True
    for c in containers:
        r = c.get("resources") or {}
        req, lim = r.get("requests") or {}, r.get("limits") or {}
        any_set = any_set or bool(req) or bool(lim)
        for k in ("cpu", "memory"):
            if k not in lim or req.get(k, lim.get(k)) != lim.get(k):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class Registry:
    """Create, read, update, patch and delete with the API server's rules.

    Parameters
    ----------
    store
        Where objects live.
    validator
        The schema validator for the configured Kubernetes version.
    """

    def __init__(self, store: Store, validator: Validator) -> None:
        self.store = store
        self.validator = validator
        self.ip_counter = 0

    # -- helpers -------------------------------------------------------------
    def _require_namespace(self, resource: ResourceType, namespace: str, name: str) -> None:
        """404 for a missing namespace, 403 for one being terminated (NamespaceLifecycle)."""
        if not resource.namespaced:
            return
        ns = self.store.get(NAMESPACES, "", namespace)
        if ns is None:
            raise not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            plural = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
            subject = f'{plural} "{name}"' if name else plural
            raise ApiError(
                403,
                "Forbidden",
                f"{subject} is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                {
                    "name": name,
                    "kind": resource.plural,
                    **({"group": resource.group} if resource.group else {}),
                },
            )

    def _validate(self, resource: ResourceType, obj: Obj, old: Obj | None = None) -> None:
        """Decode (400), schema (422) and field validation (422), as the API server orders them.

        Between the schema and field validation, the fields of disabled features
        are dropped from ``obj`` (the strategy's PrepareForCreate/Update).
        """
        if not resource.validated:
            return
        schema = self.validator.patch_schema(resource.kind, resource.api_version)
        problem = rules.decode_problem(resource.kind, obj, schema)
        if problem is not None:
            raise problem
        self.validator.check(obj, resource.kind, resource.api_version, resource.group)
        rules.drop_disabled_fields(resource, obj)
        found = (
            rules.validate(resource, obj)
            if old is None
            else rules.validate_update(resource, old, obj)
        )
        found.raise_if_any(resource.kind, obj["metadata"].get("name") or "", resource.group)

    @staticmethod
    def _normalize(resource: ResourceType, obj: Obj) -> None:
        """Conversions and defaults the API server applies on every write.

        Secret ``stringData`` goes into ``data`` (base64) and ``type`` defaults to
        ``Opaque``; a binding's User and Group subjects get the RBAC API group.
        """
        subjects = obj.get("subjects") if resource.kind.endswith("RoleBinding") else None
        for subject in subjects or ():
            kind = subject.get("kind") if isinstance(subject, dict) else None
            if kind in ("User", "Group") and not subject.get("apiGroup"):
                subject["apiGroup"] = "rbac.authorization.k8s.io"
        if resource.key == "/secrets":
            string_data = obj.pop("stringData", None) or {}
            if string_data:
                data = obj.setdefault("data", {}) or {}
                for key, value in string_data.items():
                    data[key] = base64.b64encode(str(value).encode()).decode()
                obj["data"] = data
            obj.setdefault("type", "Opaque")

    def _check_kind(self, resource: ResourceType, obj: Any) -> Obj:
        if not isinstance(obj, dict):
            raise bad_request("the body of the request must be a JSON object")
        kind = obj.setdefault("kind", resource.kind)
        api_version = obj.setdefault("apiVersion", resource.api_version)
        if kind != resource.kind or api_version != resource.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({resource.api_version}) or kind ({kind} vs {resource.kind})"
            )
        if not isinstance(obj.setdefault("metadata", {}), dict):
            raise bad_request("metadata must be an object")
        return obj

    def get(self, resource: ResourceType, namespace: str, name: str) -> Obj:
        """One object.

        Raises
        ------
        ApiError
            404 NotFound.
        """
        obj = self.store.get(resource, namespace if resource.namespaced else "", name)
        if obj is None:
            raise not_found(resource.plural, name, resource.group)
        return obj

    def list(
        self,
        resource: ResourceType,
        namespace: str | None,
        label: Matcher | None = None,
        field: Matcher | None = None,
        node_name: str | None = None,
    ) -> Iterator[Any]:
        """Entries of a type matching the selectors (``node_name`` uses the pod index)."""
        if node_name is not None and resource is PODS:
            source: Iterator[Any] = (
                e
                for e in self.store.pods_on_node(node_name)
                if namespace is None or e.obj["metadata"].get("namespace") == namespace
            )
        else:
            source = self.store.entries(resource, namespace)
        for entry in source:
            if (label is None or label(entry.obj)) and (field is None or field(entry.obj)):
                yield entry

    # -- create --------------------------------------------------------------
    def admit(self, resource: ResourceType, body: Any) -> Obj:
        """Check the body of a create that is answered, not stored (an access review).

        The same kind and schema checks as :meth:`create`, without names,
        namespaces or server-set metadata: such objects are never kept.

        Raises
        ------
        ApiError
            400 on a kind mismatch, 422 Invalid.
        """
        obj = self._check_kind(resource, body)
        if resource.validated:
            self.validator.check(obj, resource.kind, resource.api_version, resource.group)
        return obj

    def create(
        self,
        resource: ResourceType,
        namespace: str,
        body: Any,
        admit: Callable[[], None] | None = None,
    ) -> Obj:
        """Create an object (answer 201 with it).

        ``admit``, if given, runs once the object has passed validation and before
        it is stored (the authorization of a PUT that creates, see :meth:`put`).

        Raises
        ------
        ApiError
            400 on a kind or namespace mismatch, 404 for a missing namespace,
            409 AlreadyExists, 422 Invalid.
        """
        obj = self._check_kind(resource, body)
        meta = obj["metadata"]
        if resource.namespaced:
            if meta.setdefault("namespace", namespace) != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace "
                    "sent on the request"
                )
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise invalid(
                    resource.kind,
                    "",
                    [("metadata.name", "Required value: name or generateName is required")],
                    resource.group,
                )
            meta["name"] = prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))
        self._require_namespace(resource, namespace, meta["name"])
        for server_set in ("uid", "creationTimestamp", "deletionTimestamp"):
            meta.pop(server_set, None)
        self._normalize(resource, obj)
        self._validate(resource, obj)
        if meta.get("resourceVersion"):
            # etcd3 storage refuses it after validation, with a plain error: a 500 with no reason
            raise ApiError(500, "", "resourceVersion should not be set on objects to be created")
        if admit is not None:
            admit()
        ns = meta.get("namespace", "")
        if self.store.get(resource, ns, meta["name"]) is not None:
            raise already_exists(resource.plural, meta["name"], resource.group)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if "spec" in obj and resource.generation:
            meta["generation"] = 1
        self._kind_defaults(resource, obj)
        return self.store.put(resource, obj)

    def _kind_defaults(self, resource: ResourceType, obj: Obj) -> None:
        key = resource.key
        if key == "/pods":
            _pod_defaults(obj)
        elif key == "/namespaces":
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj[
                "metadata"
            ]["name"]
        elif key == "/persistentvolumes":
            obj["status"] = {"phase": "Pending"}
            obj["spec"].setdefault("persistentVolumeReclaimPolicy", "Retain")
            obj["spec"].setdefault("volumeMode", "Filesystem")
        elif key == "/persistentvolumeclaims":
            obj["status"] = {"phase": "Pending"}
            obj["spec"].setdefault("volumeMode", "Filesystem")
        elif key == "/services":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            if spec.get("clusterIP") != "None":
                self.ip_counter += 1
                n = self.ip_counter
                spec["clusterIP"] = f"10.96.{(n >> 8) & 255}.{n & 255}"
                spec["clusterIPs"] = [spec["clusterIP"]]
            obj["status"] = {"loadBalancer": {}}

    # -- update / patch --------------------------------------------------------
    def put(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        subresource: str = "",
        admit_create: Callable[[], None] | None = None,
    ) -> tuple[Obj, bool]:
        """A PUT: :meth:`update`, or a create for kinds whose strategy allows it.

        A Lease PUT to a missing name creates it (``AllowCreateOnUpdate``); the
        server then also authorizes ``create`` (``admit_create``, after
        validation) and ignores a resourceVersion sent. Returns the object and
        whether it was created (201).
        """
        ns = namespace if resource.namespaced else ""
        if (
            resource.create_on_update
            and not subresource
            and self.store.get(resource, ns, name) is None
        ):
            obj = self._check_kind(resource, body)
            meta = obj["metadata"]
            if meta.get("name", name) != name:
                raise bad_request(
                    f"the name of the object ({meta.get('name')}) does not match the name on "
                    f"the URL ({name})"
                )
            meta["name"] = name
            meta.pop("resourceVersion", None)  # the storage layer clears it on this path
            return self.create(resource, namespace, obj, admit_create), True
        return self.update(resource, namespace, name, body, subresource), False

    def update(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        subresource: str = "",
    ) -> Obj:
        """Replace an object (PUT).

        Raises
        ------
        ApiError
            404, 409 Conflict on a stale resourceVersion, 400 on a name mismatch,
            422 Invalid.
        """
        ns = namespace if resource.namespaced else ""
        current = self.store.get(resource, ns, name)
        if current is None:
            raise not_found(resource.plural, name, resource.group)
        obj = self._check_kind(resource, body)
        meta = obj["metadata"]
        if meta.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on "
                f"the URL ({name})"
            )
        wanted = meta.get("resourceVersion")
        if not wanted and resource.conditional_update:
            # the generic store's words; the kind it names is the resource
            raise invalid(
                resource.plural,
                name,
                [
                    (
                        "metadata.resourceVersion",
                        "Invalid value: 0x0: must be specified for an update",
                    )
                ],
                resource.group,
            )
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise conflict(resource.plural, name, resource.group)
        if subresource == "status":
            new = clone(current)
            if "status" in obj:
                new["status"] = obj["status"]
        else:
            new = obj
            for kept in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
                if kept in current["metadata"] and (kept != "generation" or resource.generation):
                    meta[kept] = current["metadata"][kept]
                else:
                    meta.pop(kept, None)
            if "deletionGracePeriodSeconds" in current["metadata"]:
                meta["deletionGracePeriodSeconds"] = current["metadata"][
                    "deletionGracePeriodSeconds"
                ]
            meta["name"] = name
            if resource.namespaced:
                meta["namespace"] = ns
            else:
                meta.pop("namespace", None)
            if resource.has_status:
                if "status" in current:
                    new["status"] = current["status"]
                else:
                    new.pop("status", None)
            if resource.generation and "spec" in new and new.get("spec") != current.get("spec"):
                meta["generation"] = int(current["metadata"].get("generation", 0)) + 1
            self._normalize(resource, new)
        self._validate(resource, new, current)
        return self.replace(resource, new, current)

    def patch(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        subresource: str = "",
    ) -> Obj:
        """Patch an object (PATCH with merge, strategic-merge or JSON patch)."""
        check_patch_type(content_type)
        current = self.get(resource, namespace, name)
        schema = (
            self.validator.patch_schema(resource.kind, resource.api_version)
            if resource.validated
            else None
        )
        patched = apply_patch(content_type, clone(current), body, schema)
        return self.update(resource, namespace, name, patched, subresource)

    def replace(self, resource: ResourceType, new: Obj, current: Obj) -> Obj:
        """Store ``new`` over ``current`` (no checks), finishing a pending deletion.

        A no-op write keeps the old resourceVersion, as the API server does.
        """
        new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if new == current:
            return current
        if self._deletion_done(resource, new):
            meta = new["metadata"]
            return self.store.remove(resource, meta.get("namespace", ""), meta["name"]) or new
        return self.store.put(resource, new)

    @staticmethod
    def _deletion_done(resource: ResourceType, obj: Obj) -> bool:
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return False
        if resource is NAMESPACES:  # it goes when its content has (spec.finalizers emptied)
            return not (obj.get("spec") or {}).get("finalizers")
        # a pod goes only once the kubelet has stopped it (grace period set to 0)
        return resource is not PODS or meta.get("deletionGracePeriodSeconds") == 0

    # -- delete --------------------------------------------------------------
    def delete(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        grace_period: int | None = None,
        preconditions: dict[str, Any] | None = None,
    ) -> Obj:
        """Delete an object, honouring finalizers and (for pods) the grace period.

        Returns the object as it is after the call: with a deletionTimestamp while
        it waits for its kubelet or its finalizers, or as it was when removed.
        """
        ns = namespace if resource.namespaced else ""
        current = self.get(resource, ns, name)
        meta = current["metadata"]
        for field in ("uid", "resourceVersion"):
            want = (preconditions or {}).get(field)
            if want and want != meta.get(field):
                label = "UID" if field == "uid" else "ResourceVersion"
                raise conflict(
                    resource.plural,
                    name,
                    resource.group,
                    f"Precondition failed: {label} in precondition: {want}, {label} in "
                    f"object meta: {meta.get(field)}",
                )
        if resource is NAMESPACES:
            return self._delete_namespace(current)
        new = clone(current)
        new_meta = new["metadata"]
        if resource is PODS:
            spec, phase = current.get("spec", {}), current.get("status", {}).get("phase")
            if grace_period is None:
                grace_period = int(spec.get("terminationGracePeriodSeconds", 30))
            if not spec.get("nodeName") or phase in TERMINAL:
                grace_period = 0
            old_grace = meta.get("deletionGracePeriodSeconds")
            if old_grace is not None and old_grace <= grace_period:
                return current  # already going, at least as fast
            stamp = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=grace_period)
            new_meta["deletionTimestamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
            new_meta["deletionGracePeriodSeconds"] = grace_period
        else:
            if meta.get("deletionTimestamp"):
                return current
            new_meta["deletionTimestamp"] = now()
            new_meta["deletionGracePeriodSeconds"] = 0
        if self._deletion_done(resource, new):
            return self.store.remove(resource, ns, name) or current
        return self.store.put(resource, new)

    def _delete_namespace(self, current: Obj) -> Obj:
        """Mark the namespace ``Terminating``; the namespace controller empties and removes it."""
        if current["metadata"].get("deletionTimestamp"):
            return current
        new = clone(current)
        new["metadata"]["deletionTimestamp"] = now()
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new["status"] = {"phase": "Terminating"}
        return self.store.put(NAMESPACES, new)

    def bind(self, namespace: str, name: str, body: Any) -> Obj:
        """``POST pods/NAME/binding``: assign a pending pod to a node, as a scheduler does.

        Raises
        ------
        ApiError
            404 for a missing pod, 409 if it is already assigned, 400 without a target.
        """
        current = self.get(PODS, namespace, name)
        target = ((body or {}).get("target") or {}).get("name") if isinstance(body, dict) else None
        if not target:
            raise bad_request("a Binding needs target.name")
        assigned = current.get("spec", {}).get("nodeName")
        if assigned:
            raise conflict("pods", name, why=f'pod {name} is already assigned to node "{assigned}"')
        new = clone(current)
        new["spec"]["nodeName"] = target
        conditions = [
            c for c in new["status"].get("conditions") or [] if c.get("type") != "PodScheduled"
        ]
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now(),
            }
        )
        new["status"]["conditions"] = conditions
        self.replace(PODS, new, current)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    # -- helpers for the cluster's own controllers ---------------------------
    def write_status(self, resource: ResourceType, current: Obj, status: Obj) -> Obj:
        """Replace the status of ``current`` (controllers, not clients)."""
        new = dict(current)
        new["status"] = status
        return self.replace(resource, new, current)

    def record_event(
        self,
        involved: Obj,
        reason: str,
        message: str,
        *,
        type_: str = "Normal",
        component: str,
        host: str | None = None,
        field_path: str | None = None,
        action: str | None = None,
    ) -> None:
        """Create a core/v1 Event about ``involved``, as a controller or kubelet would.

        With ``action`` the event looks as an ``events.k8s.io/v1`` event (what
        kube-scheduler writes) looks through core/v1: eventTime and action set, no
        source, count or first/lastTimestamp.
        """
        meta = involved["metadata"]
        namespace = meta.get("namespace") or "default"
        if self.store.get(NAMESPACES, "", namespace) is None:
            return
        stamp = now()
        ref: Obj = {
            "kind": involved.get("kind"),
            "namespace": meta.get("namespace", ""),
            "name": meta["name"],
            "uid": meta.get("uid"),
            "apiVersion": involved.get("apiVersion"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        if field_path:
            ref["fieldPath"] = field_path
        source: Obj = {"component": component}
        if host:
            source["host"] = host
        event: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": stamp,
            },
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": type_,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host or "",
        }
        if action:
            event.update(
                action=action,
                eventTime=micro_now(),
                firstTimestamp=None,
                lastTimestamp=None,
                source={},
                reportingInstance=f"{component}-devcluster",
            )
            del event["count"]
        self.store.put(EVENTS, event)
