"""Pure builders: an :class:`~lsst_hub.identity.Identity` in, Kubernetes dicts out.

Nothing here does I/O or knows about JupyterHub: every function takes plain
values and returns plain JSON-like dicts in the API's camelCase form, so each is
tested by looking at what it returns. :mod:`lsst_hub.spawner.kube` sends them;
:mod:`lsst_hub.spawner.spawner` decides which to build.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..identity import DEFAULT_MIN_GID, DEFAULT_MIN_UID, DEFAULT_REFUSED_GIDS, Identity
from ..names import HOSTNAME_LABEL, Obj
from ..placement.model import required_node_terms
from .paths import expand_placeholders

__all__ = [
    "PodPlan",
    "container_security_context",
    "expand_source",
    "home_pv",
    "home_pvc",
    "identity_env",
    "passwd_configmap",
    "passwd_volume",
    "personalize_pod",
    "pin_to_node",
    "pod_security_context",
    "pod_violations",
    "privilege_requests",
    "pv_mismatch",
    "pvc_mismatch",
    "rebind_released",
    "shared_home_volume",
    "source_paths",
    "user_home_volume",
]

_RUNTIME_DEFAULT = {"type": "RuntimeDefault"}


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

    Only these three placeholders are replaced, in one pass
    (:func:`~lsst_hub.spawner.paths.expand_placeholders`): a home directory
    holding ``{uid}`` is not expanded a second time, other braces in a CSI
    attribute stay as they are, and a value cannot reach attributes of the
    objects involved.
    """
    values = {
        "home_directory": home,
        "username": identity.username,
        "uid": str(identity.uid_number),
    }

    def expand(value: Any) -> Any:
        if isinstance(value, str):
            return expand_placeholders(value, values)
        if isinstance(value, Mapping):
            return {k: expand(v) for k, v in value.items()}
        if isinstance(value, list):
            return [expand(v) for v in value]
        return value

    result: Obj = expand(template)
    return result


def source_paths(source: Mapping[str, Any]) -> list[str]:
    """The node paths a PersistentVolume source mounts (``hostPath``, ``local``).

    These are checked as homes after expansion; other sources (CSI, NFS) name
    their data in driver-specific ways and are trusted as configured.
    """
    paths: list[str] = []
    for kind in ("hostPath", "local"):
        entry = source.get(kind)
        if isinstance(entry, Mapping):
            paths.append(str(entry.get("path") or ""))
    return paths


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
    annotations
        Extra pod annotations (the owner's JupyterHub user id).
    min_uid, min_gid, refused_gids
        The ids no pod may use (the spawner's settings), checked on the final
        pod whatever the identity says.
    """

    identity: Identity
    home: str
    volumes: tuple[Obj, ...] = ()
    mounts: tuple[Obj, ...] = ()
    node: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    min_uid: int = DEFAULT_MIN_UID
    min_gid: int = DEFAULT_MIN_GID
    refused_gids: frozenset[int] = DEFAULT_REFUSED_GIDS


_CONTAINER_KINDS = {
    "initContainers": "init container",
    "containers": "container",
    "ephemeralContainers": "ephemeral container",
}
_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def _get(obj: Mapping[str, Any] | None, key: str) -> Any:
    """``obj[key]`` in the API's camelCase, or in the snake_case of Python models
    (configuration may use either; KubeSpawner accepts both)."""
    if not obj:
        return None
    value = obj.get(key)
    if value is None:
        value = obj.get(re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower())
    return value


def _is_unconfined(profile: Any) -> bool:
    return isinstance(profile, Mapping) and str(_get(profile, "type") or "") == "Unconfined"


def _context_escapes(context: Mapping[str, Any] | None) -> list[str]:
    """What a pod or container securityContext switches off that confines a process."""
    out: list[str] = []
    if _get(context, "runAsNonRoot") is False:
        out.append("runAsNonRoot false")
    if _is_unconfined(_get(context, "seccompProfile")):
        out.append("seccomp Unconfined")
    if _is_unconfined(_get(context, "appArmorProfile")):
        out.append("AppArmor Unconfined")
    selinux = _get(context, "seLinuxOptions") or {}
    if _get(selinux, "user") or _get(selinux, "role"):
        out.append("an SELinux user or role")
    if str(_get(selinux, "type") or "") not in _SELINUX_TYPES:
        out.append(f"SELinux type {_get(selinux, 'type')}")
    return out


def privilege_requests(container: Mapping[str, Any]) -> list[str]:
    """What a configured container asks for that a person's pod never gives.

    Root (uid or gid 0), ``privileged``, privilege escalation, added
    capabilities, an unmasked ``/proc`` and switched-off confinement. Such a
    container is not rewritten to run as the person (it would then fail,
    e.g. an ``iptables`` init container without ``NET_ADMIN``): it is refused.
    Accepts camelCase or snake_case keys.
    """
    context = _get(container, "securityContext") or {}
    out: list[str] = []
    if _get(context, "runAsUser") == 0:
        out.append("runAsUser 0 (root)")
    if _get(context, "runAsGroup") == 0:
        out.append("runAsGroup 0")
    if _get(context, "privileged"):
        out.append("privileged")
    if _get(context, "allowPrivilegeEscalation"):
        out.append("allowPrivilegeEscalation")
    added = _get(_get(context, "capabilities"), "add")
    if added:
        out.append(f"capabilities {list(added)}")
    if str(_get(context, "procMount") or "Default") != "Default":
        out.append(f"procMount {_get(context, 'procMount')}")
    return out + _context_escapes(context)


def personalize_pod(pod: Mapping[str, Any], plan: PodPlan, container: str = "notebook") -> Obj:
    """Return a copy of KubeSpawner's pod made to run as ``plan.identity``.

    The notebook container, and every other container and init container that
    asks for no privileges (:func:`privilege_requests`), runs as the person with
    the "restricted" security settings (the identity wins over any configured
    uid/gid); a container that asks for privileges is left as configured, for
    :func:`pod_violations` to refuse, rather than silently made unable to run.
    The home volume and any extra volumes are added; the notebook container
    starts in the home directory; with ``plan.node`` the pod is pinned to that node.
    """
    result: Obj = copy.deepcopy(dict(pod))
    spec = result.setdefault("spec", {})
    metadata = result.setdefault("metadata", {})
    metadata.setdefault("labels", {}).update(plan.labels)
    if plan.annotations:
        metadata["annotations"] = {**(metadata.get("annotations") or {}), **plan.annotations}

    psc = dict(spec.get("securityContext") or {})
    # See pod_security_context: never chown a shared file system.
    psc.pop("fsGroup", None)
    psc.pop("fsGroupChangePolicy", None)
    psc.update(pod_security_context(plan.identity))
    spec["securityContext"] = psc

    csc = container_security_context(plan.identity)
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if (key, c.get("name")) != ("containers", container) and privilege_requests(c):
                continue
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


def _gid_problems(where: str, gids: list[Any], plan: PodPlan) -> list[str]:
    out: list[str] = []
    for gid in gids:
        if isinstance(gid, bool) or not isinstance(gid, int):
            continue
        if gid < 0:
            out.append(f"{where}: group id {gid} is negative")
        elif gid in plan.refused_gids:
            out.append(f"{where}: group id {gid} is in refused_gids")
    return out


def _container_violations(
    kind: str, c: Mapping[str, Any], psc: Mapping[str, Any], plan: PodPlan
) -> list[str]:
    identity = plan.identity
    label = f"{_CONTAINER_KINDS[kind]} {c.get('name')!r}"
    csc = c.get("securityContext") or {}
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    gid = csc.get("runAsGroup", psc.get("runAsGroup"))
    out: list[str] = []
    if uid != identity.uid_number or gid != identity.gid_number:
        out.append(f"{label} runs as {uid}:{gid}, not {identity.uid_number}:{identity.gid_number}")
    if isinstance(uid, int) and uid < plan.min_uid:
        out.append(f"{label} runs as uid {uid}, below min_uid ({plan.min_uid})")
    if isinstance(gid, int) and 0 <= gid < plan.min_gid:
        out.append(f"{label} runs as gid {gid}, below min_gid ({plan.min_gid})")
    out += _gid_problems(label, [gid], plan)
    if csc.get("privileged") or csc.get("allowPrivilegeEscalation", True):
        out.append(f"{label} may gain privileges")
    if (csc.get("capabilities") or {}).get("add"):
        out.append(f"{label} adds capabilities")
    if csc.get("procMount", "Default") != "Default":
        out.append(f"{label} sets procMount {csc.get('procMount')}")
    out += [f"{label} sets {escape}" for escape in _context_escapes(csc)]
    for port in c.get("ports") or []:
        if port.get("hostPort"):
            out.append(f"{label} opens hostPort {port['hostPort']} on the node")
    return out


def _claim(volume: Mapping[str, Any] | None) -> str | None:
    claim = ((volume or {}).get("persistentVolumeClaim") or {}).get("claimName")
    return str(claim) if claim else None


def _inside(sub_path: str, allowed: str) -> bool:
    parts = [p for p in sub_path.split("/") if p not in ("", ".")]
    base = [p for p in allowed.split("/") if p not in ("", ".")]
    return ".." not in parts and parts[: len(base)] == base


def _home_violations(spec: Mapping[str, Any], plan: PodPlan, container: str) -> list[str]:
    """The planned volumes are in the pod as planned, and each claim among them
    is mounted only where the plan mounts it (a claim holding every home,
    shared-claim mode, only at the person's subPath or below)."""
    out: list[str] = []
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    for planned in plan.volumes:
        actual = volumes.get(planned.get("name"))
        if actual is None:
            out.append(f"the pod no longer has the volume {planned.get('name')!r}")
        elif dict(actual) != dict(planned):
            out.append(
                f"volume {planned.get('name')!r} is {actual!r}, not the person's own {planned!r}"
            )
    notebook: Mapping[str, Any] = next(
        (c for c in spec.get("containers") or [] if c.get("name") == container), {}
    )
    mounted = {m.get("mountPath"): m for m in notebook.get("volumeMounts") or []}
    missing: list[str] = []
    for planned in plan.mounts:
        actual = mounted.get(planned.get("mountPath"))
        if actual is None:
            missing.append(str(planned.get("mountPath")))
        elif (actual.get("name"), actual.get("subPath") or "", actual.get("subPathExpr")) != (
            planned.get("name"),
            planned.get("subPath") or "",
            None,
        ):
            source = actual.get("subPath") or actual.get("subPathExpr") or ""
            out.append(
                f"the {container!r} container mounts {planned.get('mountPath')} from "
                f"{actual.get('name')!r} subPath {source!r}, not from "
                f"{planned.get('name')!r} subPath {planned.get('subPath') or ''!r}"
            )
    if missing:
        out.append(f"the {container!r} container no longer mounts {', '.join(missing)}")
    # Where each planned claim may be mounted: at the planned subPath or below.
    allowed: dict[str, list[str]] = {}
    planned_volumes = {v.get("name"): v for v in plan.volumes}
    for planned in plan.mounts:
        claim = _claim(planned_volumes.get(planned.get("name")))
        if claim:
            allowed.setdefault(claim, []).append(str(planned.get("subPath") or ""))
    for kind, what in _CONTAINER_KINDS.items():
        for c in spec.get(kind) or []:
            for m in c.get("volumeMounts") or []:
                claim = _claim(volumes.get(m.get("name")))
                if claim is None or claim not in allowed:
                    continue
                sub = m.get("subPath") or ""
                if m.get("subPathExpr") or not any(_inside(sub, a) for a in allowed[claim]):
                    shown = m.get("subPathExpr") or sub or "all of it"
                    out.append(
                        f"{what} {c.get('name')!r} mounts home claim {claim} at "
                        f"{m.get('mountPath')} ({shown}), beyond the person's home"
                    )
    return out


def pod_violations(pod: Mapping[str, Any], plan: PodPlan, container: str = "notebook") -> list[str]:
    """What in a final pod breaks the promises :func:`personalize_pod` made.

    KubeSpawner runs an admin's ``modify_pod_hook`` after the pod is built; this
    checks the pod that is about to be created. Every container, init container
    and ephemeral container runs as the person (uid, gid, not privileged, no
    privilege escalation, no added capabilities, ``/proc`` masked, no
    ``runAsNonRoot: false``, seccomp/AppArmor not ``Unconfined``, no custom
    SELinux user/role/type, no hostPort); no uid below ``min_uid``, primary
    gid below ``min_gid``, refused or negative group anywhere; no group beyond
    the person's, no ``fsGroup``; no ``hostPID``/``hostNetwork``/``hostIPC``
    and no ``hostPath`` volume; the home volume is the person's own claim,
    mounted where planned in the notebook container and nowhere beyond the
    person's home; and the node pin is kept.

    Returns
    -------
    list of str
        One sentence per broken promise; empty when the pod is as planned.
    """
    identity = plan.identity
    spec = pod.get("spec") or {}
    psc = spec.get("securityContext") or {}
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    problems: list[str] = []
    for flag, what in (("hostPID", "processes"), ("hostNetwork", "network"), ("hostIPC", "IPC")):
        if spec.get(flag):
            problems.append(f"the pod sets {flag}, sharing the node's {what}")
    if psc.get("fsGroup") is not None:
        problems.append("the pod sets fsGroup, which would chown the shared home")
    problems += _gid_problems("the pod's fsGroup", [psc.get("fsGroup")], plan)
    groups = list(psc.get("supplementalGroups") or ())
    extra = set(groups) - set(identity.supplemental_gids)
    if extra:
        problems.append(f"the pod adds groups {sorted(extra)} the person is not in")
    problems += _gid_problems("the pod's supplementalGroups", groups, plan)
    problems += [f"the pod sets {escape}" for escape in _context_escapes(psc)]
    for key, value in annotations.items():
        # The annotation forms older kubelets honor.
        if key.startswith(("seccomp.security.alpha.kubernetes.io/",
                           "container.seccomp.security.alpha.kubernetes.io/",
                           "container.apparmor.security.beta.kubernetes.io/")) and (
            str(value).lower() == "unconfined"
        ):  # fmt: skip
            problems.append(f"the pod's annotation {key} is {value}")
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            path = (volume.get("hostPath") or {}).get("path")
            problems.append(f"volume {volume.get('name')!r} is the node's directory {path}")
    for kind in _CONTAINER_KINDS:
        for c in spec.get(kind) or []:
            problems += _container_violations(kind, c, psc, plan)
    problems += _home_violations(spec, plan, container)
    if plan.node is not None:
        pin = _hostname_pin(plan.node)
        terms = required_node_terms(spec) or []
        if not terms or any(pin not in (t.get("matchExpressions") or []) for t in terms):
            problems.append(f"the pod is no longer pinned to {plan.node}")
    return problems
