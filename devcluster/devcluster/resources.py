"""The resource types the dev cluster serves, as the API server's discovery names them.

Most types are stored objects with the usual verbs. The access reviews of
``authorization.k8s.io/v1`` (``selfsubjectaccessreviews``,
``subjectaccessreviews``) are not stored: like a real API server's, they only
take ``create``, which answers the question the body asks
(:mod:`devcluster.reviews`). Leases (``coordination.k8s.io/v1``) follow their
strategy's update rules: a PUT needs a resourceVersion and may create.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RESOURCES", "ResourceType", "find", "group_versions"]

_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives and what it is called.

    Parameters
    ----------
    group, version
        The API group (``""`` for the core group) and version.
    plural, kind
        The URL name and the object kind.
    namespaced
        Whether objects live in a namespace.
    short_names
        kubectl's abbreviations.
    subresources
        Subresources served (``status`` is read/write, the others ignored).
    validated
        Whether writes are checked against the Kubernetes OpenAPI schema
        (metrics have no schema in the official spec).
    stored
        Whether objects are kept; a type that is not (an access review) only
        takes ``create``, which is answered and forgotten.
    generation
        Whether the server keeps ``metadata.generation`` (its strategy sets it;
        a Lease's does not).
    conditional_update
        Whether a PUT must carry ``metadata.resourceVersion`` (the strategy's
        ``AllowUnconditionalUpdate`` is false, as for Leases): without one the
        server answers 422.
    create_on_update
        Whether a PUT to a missing name creates the object (the strategy's
        ``AllowCreateOnUpdate``, true for Leases); it then also needs ``create``.
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    validated: bool = True
    stored: bool = True
    generation: bool = True
    conditional_update: bool = False
    create_on_update: bool = False

    @property
    def api_version(self) -> str:
        """``v1`` or ``group/version`` as written in objects."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """A unique name: ``group/plural`` (``/pods`` for core pods)."""
        return f"{self.group}/{self.plural}"

    @property
    def singular(self) -> str:
        """The lower-case kind, as discovery reports it."""
        return self.kind.lower()

    @property
    def verbs(self) -> tuple[str, ...]:
        """Verbs discovery advertises."""
        if not self.stored:
            return ("create",)
        return (*_VERBS, "deletecollection") if self.namespaced else _VERBS

    @property
    def has_status(self) -> bool:
        """Whether ``status`` is a subresource (the main endpoint then keeps status)."""
        return "status" in self.subresources


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False, ("ns",), ("status",)),
    ResourceType("", "v1", "nodes", "Node", False, ("no",), ("status",)),
    ResourceType("", "v1", "pods", "Pod", True, ("po",), ("status", "log", "binding")),
    ResourceType("", "v1", "events", "Event", True, ("ev",)),
    ResourceType("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",), ("status",)),
    ResourceType(
        "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",), ("status",)
    ),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    ResourceType("", "v1", "services", "Service", True, ("svc",), ("status",)),
    ResourceType("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False
    ),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        stored=False,
    ),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        False,
        stored=False,
    ),
    ResourceType(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        True,
        generation=False,
        conditional_update=True,
        create_on_update=True,
    ),
    ResourceType("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", False, validated=False),
    ResourceType("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", True, validated=False),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}


def find(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource served at ``group/version/plural``, or None."""
    return _BY_PATH.get((group, version, plural))


def group_versions() -> dict[str, list[str]]:
    """Named API groups (not the core group) and their versions."""
    groups: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and r.version not in groups.setdefault(r.group, []):
            groups[r.group].append(r.version)
    return groups
