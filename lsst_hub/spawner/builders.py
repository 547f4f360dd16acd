"""Pure builders: an :class:`~lsst_hub.identity.Identity` in, Kubernetes dicts out.

Nothing here does I/O or knows about JupyterHub: every function takes plain
values and returns plain JSON-like dicts in the API's camelCase form, so each is
tested by looking at what it returns. :mod:`lsst_hub.spawner.kube` sends them;
:mod:`lsst_hub.spawner.spawner` decides which to build.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..identity import Identity
from ..placement.model import required_node_terms

__all__ = [
    "HOSTNAME_LABEL",
    "PodPlan",
    "container_security_context",
    "expand_source",
    "home_pv",
    "home_pvc",
    "identity_env",
    "passwd_configmap",
    "passwd_volume",
    "personalise_pod",
    "pin_to_node",
    "pod_security_context",
    "pod_violations",
    "pv_mismatch",
    "pvc_mismatch",
    "rebind_released",
    "shared_home_volume",
    "user_home_volume",
]

HOSTNAME_LABEL = "kubernetes.io/hostname"
_RUNTIME_DEFAULT = {"type": "RuntimeDefault"}

Obj = dict[str, Any]


# -- identity ----------------------------------------------------------------
def pod_security_context(identity: Identity) -> Obj:
    """The pod-level securityContext running every container as the person.

    There is deliberately no ``fsGroup``: with it the kubelet would recursively
    chown/chmod the home volume to that group at every start, rewriting
    ownership on a shared file system that batch jobs also use.
    """
    return {
        "runAsUser": identity.uid_number,
        "runAsGroup": identity.gid_number,
        "runAsNonRoot": True,
        "supplementalGroups": identity.supplemental_gids,
        "seccompProfile": dict(_RUNTIME_DEFAULT),
    }


def container_security_context(identity: Identity) -> Obj:
    """A container securityContext that satisfies Pod Security "restricted"."""
    return {
        "runAsUser": identity.uid_number,
        "runAsGroup": identity.gid_number,
        "runAsNonRoot": True,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": dict(_RUNTIME_DEFAULT),
    }


def identity_env(identity: Identity, home: str) -> dict[str, str]:
    """Environment naming the person, as the Jupyter docker-stacks images expect."""
    return {
        "NB_USER": identity.username,
        "NB_UID": str(identity.uid_number),
        "NB_GID": str(identity.gid_number),
        "HOME": home,
    }


# -- home volume -------------------------------------------------------------
def expand_source(template: Mapping[str, Any], identity: Identity, home: str) -> Obj:
    """Expand ``{home_directory}``, ``{username}`` and ``{uid}`` in a volume source.

    Only these three placeholders are replaced, by plain substitution rather
    than ``str.format``: other braces in a CSI attribute stay as they are and a
    value cannot reach attributes of the objects involved.
    """
    values = {
        "{home_directory}": home,
        "{username}": identity.username,
        "{uid}": str(identity.uid_number),
    }

    def expand(value: Any) -> Any:
        if isinstance(value, str):
            for key, replacement in values.items():
                value = value.replace(key, replacement)
            return value
        if isinstance(value, Mapping):
            return {k: expand(v) for k, v in value.items()}
        if isinstance(value, list):
            return [expand(v) for v in value]
        return value

    result: Obj = expand(template)
    return result


def home_pv(
    *,
    name: str,
    source: Mapping[str, Any],
    claim_namespace: str,
    claim_name: str,
    capacity: str,
    labels: Mapping[str, str],
) -> Obj:
    """A PersistentVolume for one home, pre-bound to that person's claim.

    ``Retain`` and the ``claimRef`` make sure the volume outlives its claim and
    can never be bound by another claim; ``storageClassName: ""`` keeps dynamic
    provisioners away from it.
    """
    spec: Obj = {
        "capacity": {"storage": capacity},
        "accessModes": ["ReadWriteMany"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": "",
        "volumeMode": "Filesystem",
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": claim_namespace,
            "name": claim_name,
        },
    }
    spec.update(copy.deepcopy(dict(source)))
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": spec,
    }


def home_pvc(
    *, name: str, namespace: str, pv_name: str, capacity: str, labels: Mapping[str, str]
) -> Obj:
    """The claim that binds exactly the person's home PersistentVolume."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "volumeName": pv_name,
            "resources": {"requests": {"storage": capacity}},
        },
    }


def _differences(wanted: Any, existing: Any, path: str) -> list[str]:
    """Where ``existing`` lacks or changes a value of ``wanted`` (extra keys are fine:
    the API server fills in defaults)."""
    if isinstance(wanted, Mapping):
        if not isinstance(existing, Mapping):
            return [f"{path} is {existing!r}"]
        out: list[str] = []
        for key, value in wanted.items():
            out += _differences(value, existing.get(key), f"{path}.{key}")
        return out
    if wanted != existing:
        return [f"{path} is {existing!r}, expected {wanted!r}"]
    return []


def pv_mismatch(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> str | None:
    """Why an existing PersistentVolume must not be used as this person's home.

    Compares the volume source (same keys as in ``wanted``), the claim it is
    reserved for and the reclaim policy. Returns None when it is the same
    home, otherwise a sentence for the admin.
    """
    spec = existing.get("spec") or {}
    wanted_spec = wanted["spec"]
    problems: list[str] = []
    source_keys = set(wanted_spec) - {
        "capacity",
        "accessModes",
        "persistentVolumeReclaimPolicy",
        "storageClassName",
        "volumeMode",
        "claimRef",
    }
    for key in sorted(source_keys):
        problems += _differences(wanted_spec[key], spec.get(key), f"spec.{key}")
    ref = spec.get("claimRef") or {}
    want_ref = wanted_spec["claimRef"]
    if (ref.get("namespace"), ref.get("name")) != (want_ref["namespace"], want_ref["name"]):
        problems.append(
            f"it is reserved for claim {ref.get('namespace')}/{ref.get('name')}, "
            f"not {want_ref['namespace']}/{want_ref['name']}"
        )
    if spec.get("persistentVolumeReclaimPolicy", "Retain") != "Retain":
        problems.append(
            f"its reclaim policy is {spec.get('persistentVolumeReclaimPolicy')}, not Retain"
        )
    if not problems:
        return None
    name = (existing.get("metadata") or {}).get("name")
    return f"PersistentVolume {name} is not this person's home: " + "; ".join(problems)


def pvc_mismatch(existing: Mapping[str, Any], pv_name: str) -> str | None:
    """Why an existing claim must not be mounted as this person's home, or None."""
    volume = (existing.get("spec") or {}).get("volumeName")
    if volume == pv_name:
        return None
    meta = existing.get("metadata") or {}
    return (
        f"PersistentVolumeClaim {meta.get('namespace')}/{meta.get('name')} "
        f"is bound to {volume or 'no fixed volume'}, not to the home volume {pv_name}"
    )


def rebind_released(pv: Mapping[str, Any], pvc: Mapping[str, Any]) -> Obj | None:
    """The PersistentVolume to write so a Released home volume binds its new claim.

    When an admin deletes a home claim, the ``Retain`` volume goes ``Released``
    and keeps the old claim's uid in ``claimRef``, so a new claim of the same
    name never binds. Dropping that uid (the documented manual step) is safe
    only for the same claim name and namespace, which is checked here.
    Returns None when there is nothing to do.
    """
    spec = pv.get("spec") or {}
    ref = spec.get("claimRef") or {}
    meta = pvc.get("metadata") or {}
    if (pv.get("status") or {}).get("phase") != "Released":
        return None
    if (ref.get("namespace"), ref.get("name")) != (meta.get("namespace"), meta.get("name")):
        return None
    if not ref.get("uid") or ref.get("uid") == meta.get("uid"):
        return None
    new: Obj = copy.deepcopy(dict(pv))
    new["spec"]["claimRef"] = {k: v for k, v in ref.items() if k not in ("uid", "resourceVersion")}
    return new


def user_home_volume(claim_name: str, mount_path: str) -> tuple[Obj, Obj]:
    """Pod volume and mount for a per-user home claim."""
    volume = {"name": "home", "persistentVolumeClaim": {"claimName": claim_name}}
    return volume, {"name": "home", "mountPath": mount_path}


def shared_home_volume(claim_name: str, sub_path: str, mount_path: str) -> tuple[Obj, Obj]:
    """Pod volume and mount for one home inside a claim holding all homes."""
    volume = {"name": "home", "persistentVolumeClaim": {"claimName": claim_name}}
    return volume, {"name": "home", "mountPath": mount_path, "subPath": sub_path}


# -- passwd / group ----------------------------------------------------------
def _field(value: str) -> str:
    # ':' separates fields and a newline separates entries: neither may appear.
    return value.replace(":", " ").replace("\n", " ").replace("\r", " ")


def passwd_configmap(
    identity: Identity, *, name: str, namespace: str, home: str, labels: Mapping[str, str]
) -> Obj:
    """A ConfigMap with ``passwd`` and ``group`` files naming the person and groups.

    Mounted over ``/etc/passwd`` and ``/etc/group`` so ``whoami`` and ``ls -l``
    show names rather than bare numbers on the shared file system.
    """
    user = _field(identity.username)
    gecos = _field(identity.display_name or identity.username)
    passwd = [
        "root:x:0:0:root:/root:/bin/sh",
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
        f"{user}:x:{identity.uid_number}:{identity.gid_number}:{gecos}:{_field(home)}:/bin/bash",
    ]
    groups = ["root:x:0:", "nogroup:x:65534:"]
    seen = {0, 65534}
    for group in identity.groups:
        if group.gid is None or group.gid in seen:
            continue
        seen.add(group.gid)
        groups.append(f"{_field(group.name)}:x:{group.gid}:{user}")
    if identity.gid_number not in seen:
        # The primary group has no directory entry we know of: name it after the person.
        groups.append(f"{user}:x:{identity.gid_number}:")
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "data": {"passwd": "\n".join(passwd) + "\n", "group": "\n".join(groups) + "\n"},
    }


def passwd_volume(configmap_name: str) -> tuple[Obj, list[Obj]]:
    """Pod volume and the two subPath mounts for :func:`passwd_configmap`."""
    volume = {"name": "etc-passwd", "configMap": {"name": configmap_name}}
    mounts = [
        {"name": "etc-passwd", "mountPath": "/etc/passwd", "subPath": "passwd", "readOnly": True},
        {"name": "etc-passwd", "mountPath": "/etc/group", "subPath": "group", "readOnly": True},
    ]
    return volume, mounts


# -- placement ---------------------------------------------------------------
def _hostname_pin(node: str) -> Obj:
    return {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}


def pin_to_node(affinity: Mapping[str, Any] | None, node: str) -> Obj:
    """Return ``affinity`` with a required ``kubernetes.io/hostname In [node]``.

    Node selector terms are ORed, so the hostname requirement is added to every
    existing term (keeping the admin's own requirements) rather than as a term
    of its own.
    """
    result: Obj = copy.deepcopy(dict(affinity or {}))
    node_affinity = result.setdefault("nodeAffinity", {})
    required = node_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = required.get("nodeSelectorTerms") or [{}]
    for term in terms:
        term.setdefault("matchExpressions", []).append(_hostname_pin(node))
    required["nodeSelectorTerms"] = terms
    return result


# -- the pod -------------------------------------------------------------------
@dataclass(frozen=True)
class PodPlan:
    """Everything personal about one pod, decided before it is built.

    Parameters
    ----------
    identity
        Whom the pod runs as.
    home
        Where the home is mounted (also the working directory).
    volumes, mounts
        Pod volumes and notebook-container mounts to add.
    node
        The node the pod is pinned to, or None to leave it to the scheduler.
    labels
        Extra pod labels (the hub instance label).
    """

    identity: Identity
    home: str
    volumes: tuple[Obj, ...] = ()
    mounts: tuple[Obj, ...] = ()
    node: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


def personalise_pod(pod: Mapping[str, Any], plan: PodPlan, container: str = "notebook") -> Obj:
    """Return a copy of KubeSpawner's pod made to run as ``plan.identity``.

    Every container and init container runs as the person with the
    "restricted" security settings (the identity wins over any configured
    uid/gid/privileged); the home volume and any extra volumes are added; the
    notebook container starts in the home directory; with ``plan.node`` the
    pod is pinned to that node.
    """
    result: Obj = copy.deepcopy(dict(pod))
    spec = result.setdefault("spec", {})
    metadata = result.setdefault("metadata", {})
    metadata.setdefault("labels", {}).update(plan.labels)

    psc = dict(spec.get("securityContext") or {})
    # See pod_security_context: never chown a shared file system.
    psc.pop("fsGroup", None)
    psc.pop("fsGroupChangePolicy", None)
    psc.update(pod_security_context(plan.identity))
    spec["securityContext"] = psc

    csc = container_security_context(plan.identity)
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            merged = dict(c.get("securityContext") or {})
            merged.update(copy.deepcopy(csc))
            c["securityContext"] = merged

    spec["volumes"] = list(spec.get("volumes") or []) + [copy.deepcopy(v) for v in plan.volumes]
    for c in spec.get("containers") or []:
        if c.get("name") == container:
            c["volumeMounts"] = list(c.get("volumeMounts") or []) + [
                copy.deepcopy(m) for m in plan.mounts
            ]
            c["workingDir"] = plan.home
    if plan.node is not None:
        spec["affinity"] = pin_to_node(spec.get("affinity"), plan.node)
    return result


def pod_violations(pod: Mapping[str, Any], plan: PodPlan, container: str = "notebook") -> list[str]:
    """What in a final pod breaks the promises :func:`personalise_pod` made.

    KubeSpawner runs an admin's ``modify_pod_hook`` after the pod is built; this
    checks the pod that is about to be created: every container runs as the
    person (uid, gid, not privileged, no privilege escalation, no added
    capabilities), no group beyond the person's, no ``fsGroup``, the home is
    still mounted in the notebook container, and the node pin is kept.

    Returns
    -------
    list of str
        One sentence per broken promise; empty when the pod is as planned.
    """
    identity = plan.identity
    spec = pod.get("spec") or {}
    psc = spec.get("securityContext") or {}
    problems: list[str] = []
    if psc.get("fsGroup") is not None:
        problems.append("the pod sets fsGroup, which would chown the shared home")
    extra = set(psc.get("supplementalGroups") or ()) - set(identity.supplemental_gids)
    if extra:
        problems.append(f"the pod adds groups {sorted(extra)} the person is not in")
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            csc = c.get("securityContext") or {}
            name = c.get("name")
            uid = csc.get("runAsUser", psc.get("runAsUser"))
            gid = csc.get("runAsGroup", psc.get("runAsGroup"))
            if uid != identity.uid_number or gid != identity.gid_number:
                problems.append(
                    f"container {name!r} runs as {uid}:{gid}, not "
                    f"{identity.uid_number}:{identity.gid_number}"
                )
            if csc.get("privileged") or csc.get("allowPrivilegeEscalation", True):
                problems.append(f"container {name!r} may gain privileges")
            if (csc.get("capabilities") or {}).get("add"):
                problems.append(f"container {name!r} adds capabilities")
    notebook = next((c for c in spec.get("containers") or [] if c.get("name") == container), None)
    mounted = {m.get("mountPath") for m in (notebook or {}).get("volumeMounts") or []}
    missing = [m["mountPath"] for m in plan.mounts if m.get("mountPath") not in mounted]
    if missing:
        problems.append(f"the {container!r} container no longer mounts {', '.join(missing)}")
    if plan.node is not None:
        pin = _hostname_pin(plan.node)
        terms = required_node_terms(spec) or []
        if not terms or any(pin not in (t.get("matchExpressions") or []) for t in terms):
            problems.append(f"the pod is no longer pinned to {plan.node}")
    return problems
