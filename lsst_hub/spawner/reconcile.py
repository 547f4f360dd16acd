"""Delete notebook pods this hub started but no longer knows about (orphans).

A pod becomes an orphan when the hub forgets its server while the pod lives on:
the hub's database was restored, a stop failed half way, the hub crashed during
a spawn. Orphans keep using node capacity and keep running as the person.

:func:`select_orphans` is the pure rule. :func:`reconcile` lists pods, *then*
asks which servers the hub knows: the hub records a server (pending) in its
database before the spawner creates the pod, so any pod seen in the listing
whose server is still running or pending when the hub is asked is kept, even
while spawns run concurrently. Asking the hub first would be wrong: a spawn
registered just after that answer could create its pod before the listing, and
the pod would look like an orphan. Each orphan is deleted with its ``uid`` as a
precondition, so a new pod of the same name (the person started again in
between) is never the one deleted.

A server is known by its (user, server name) *and* by the pod its spawner
records in its state (KubeSpawner keeps ``pod_name`` there so that a server
keeps its pod when names change): renaming a user while their server runs
changes the first, not the second, so the pod stays known
(:class:`KnownServers`). When a pass finds suspects, it asks the hub a second
time and keeps any suspect known by then (a page of users that shifted while
it was read, a server registered meanwhile).

Which pods are "this hub's" is the label ``lsst-hub/instance``. Its default
(:func:`default_instance`) differs per hub: it is derived from the hub's API URL,
which the spawner reads from the hub and the hub gives its managed services as
``JUPYTERHUB_API_URL``, so two hubs in one namespace that keep the default
never take each other's pods for orphans.

Two callers:

- :mod:`.reconcile_service`, a JupyterHub managed service the hub starts with
  itself: a pass at hub start and then every few minutes, asking the hub's REST
  API. This is what makes the clean-up happen at start-up on a hub with no
  running servers.
- the spawner, once per hub process, at the first poll or spawn (it reads the
  hub's database directly): a fallback for hubs that do not run the service.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..names import (
    COMPONENT,
    COMPONENT_LABEL,
    DEFAULT_HUB_INSTANCE,
    INSTANCE_LABEL,
    SERVERNAME_KEY,
    USERNAME_KEY,
)
from .kube import Kube, KubeConflictError, KubeNotFoundError

__all__ = [
    "KnownServers",
    "ServerKey",
    "default_instance",
    "delete_listed_pod",
    "known_servers_from_db",
    "pod_of_state",
    "reconcile",
    "select_orphans",
]

log = logging.getLogger(__name__)

#: (username, server name), the server name being "" for the default server.
ServerKey = tuple[str, str]


def default_instance(hub_api_url: str) -> str:
    """The default ``hub_instance`` of the hub whose API is at ``hub_api_url``.

    ``jupyterhub-`` (:data:`~lsst_hub.names.DEFAULT_HUB_INSTANCE`) and 10 hex
    digits of the URL's SHA-256: the same in the spawner (``Hub.api_url``) and
    in the orphan service (``JUPYTERHUB_API_URL``, which JupyterHub sets to that
    URL), different for two hubs sharing a namespace (their pods and services
    reach them at different addresses).
    """
    digest = hashlib.sha256(hub_api_url.rstrip("/").encode()).hexdigest()
    return f"{DEFAULT_HUB_INSTANCE}-{digest[:10]}"


@dataclass(frozen=True)
class KnownServers:
    """The servers a hub has as running or pending.

    Parameters
    ----------
    servers
        Their (username, server name).
    pods
        The (namespace, pod name) each one's spawner state records, where it
        records one: the same pod after the user was renamed.
    """

    servers: frozenset[ServerKey] = frozenset()
    pods: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def of(cls, known: KnownServers | Iterable[ServerKey]) -> KnownServers:
        """``known`` itself, or a set of server keys without pod names."""
        if isinstance(known, KnownServers):
            return known
        return cls(servers=frozenset(known))

    def __or__(self, other: KnownServers) -> KnownServers:
        return KnownServers(self.servers | other.servers, self.pods | other.pods)

    def knows(self, pod: Mapping[str, Any]) -> bool:
        """Whether ``pod`` belongs to one of these servers (by name or by pod)."""
        meta = pod.get("metadata") or {}
        if (str(meta.get("namespace") or ""), str(meta.get("name") or "")) in self.pods:
            return True
        server = pod_server(pod)
        return server is not None and server in self.servers


def pod_of_state(state: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(namespace, pod name) a KubeSpawner state records, if it records both."""
    if not isinstance(state, Mapping):
        return None
    name, namespace = state.get("pod_name"), state.get("namespace")
    if isinstance(name, str) and name and isinstance(namespace, str) and namespace:
        return namespace, name
    return None


def pod_server(pod: Mapping[str, Any]) -> ServerKey | None:
    """The (username, server name) KubeSpawner recorded on a pod, if any.

    The annotations hold the raw names (labels hold escaped ones).
    """
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    user = annotations.get(USERNAME_KEY)
    if not user:
        return None
    return str(user), str(annotations.get(SERVERNAME_KEY) or "")


def select_orphans(
    pods: Iterable[Mapping[str, Any]],
    known: KnownServers | Iterable[ServerKey],
    instance: str,
) -> list[str]:
    """Names of the pods to delete: ours, not being deleted, server unknown.

    A pod is "ours" only with ``lsst-hub/instance=<instance>`` and
    ``component=singleuser-server`` and KubeSpawner's username annotation; any
    other pod (another hub's, an admin's, unlabeled) is never selected. A
    pod is known when its (user, server) is, or when a known server's state
    names it (:class:`KnownServers`).
    """
    known_servers = KnownServers.of(known)
    out: list[str] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get(INSTANCE_LABEL) != instance or labels.get(COMPONENT_LABEL) != COMPONENT:
            continue
        if meta.get("deletionTimestamp"):
            continue
        if pod_server(pod) is None or known_servers.knows(pod):
            continue
        out.append(str(meta["name"]))
    return sorted(out)


def known_servers_from_db(db: Any) -> KnownServers:
    """Servers the hub's database says are running or starting.

    ``db`` is JupyterHub's SQLAlchemy session (``spawner.db``). A spawn sets
    ``Spawner.server`` before it calls the spawner, so pending spawns count;
    the hub stores a started server's state (its pod) once the spawner's
    start has returned.
    """
    from jupyterhub import orm

    rows = db.query(orm.Spawner).filter(orm.Spawner.server_id.isnot(None)).all()
    pods = {pod for pod in (pod_of_state(row.state) for row in rows) if pod is not None}
    return KnownServers(
        servers=frozenset((row.user.name, row.name or "") for row in rows),
        pods=frozenset(pods),
    )


Known = KnownServers | Iterable[ServerKey]


async def reconcile(
    kube: Kube,
    instance: str,
    known_servers: Callable[[], Awaitable[Known] | Known],
    *,
    grace_seconds: int | None = None,
    confirm: Callable[[ServerKey], Awaitable[bool]] | None = None,
) -> list[str]:
    """Delete this hub's orphan pods in ``kube.namespace``; return their names.

    Pods are listed before ``known_servers`` is called; see the module text.
    When there are suspects, ``known_servers`` is called once more and any
    suspect known by then is kept. ``confirm(server)``, if given, is awaited
    for each remaining suspect just before it is deleted and must return True
    for the deletion to go ahead (whether the server is *still* unknown). Only
    pods are deleted, never claims or volumes; a pod already gone or replaced
    meanwhile is skipped.
    """

    async def ask() -> KnownServers:
        answer = known_servers()
        if isinstance(answer, Awaitable):
            answer = await answer
        return KnownServers.of(answer)

    pods = await kube.list_pods(f"{INSTANCE_LABEL}={instance},{COMPONENT_LABEL}={COMPONENT}")
    suspects = select_orphans(pods, await ask(), instance)
    if suspects:
        suspects = select_orphans(
            [p for p in pods if str(p["metadata"]["name"]) in suspects], await ask(), instance
        )
    by_name = {str(pod["metadata"]["name"]): pod for pod in pods}
    deleted: list[str] = []
    for name in suspects:
        pod = by_name[name]
        server = pod_server(pod)
        if confirm is not None and server is not None and not await confirm(server):
            log.info("keeping pod %s/%s: its server %s is known after all", kube.namespace,
                     name, server)  # fmt: skip
            continue
        log.warning("deleting orphan notebook pod %s/%s: its server is unknown to the hub",
                    kube.namespace, name)  # fmt: skip
        if await delete_listed_pod(kube, pod, grace_seconds):
            deleted.append(name)
    return deleted


async def delete_listed_pod(
    kube: Kube, pod: Mapping[str, Any], grace_seconds: int | None = None
) -> bool:
    """Delete exactly the pod listed (name *and* uid); True if this call deleted it."""
    meta = pod["metadata"]
    name = str(meta["name"])
    body: dict[str, Any] = {"preconditions": {"uid": meta.get("uid")}}
    if grace_seconds is not None:
        body["gracePeriodSeconds"] = grace_seconds
    try:
        await kube.call(
            f"delete pod {kube.namespace}/{name}",
            kube.api.delete_namespaced_pod,
            name,
            kube.namespace,
            body=body,
        )
    except KubeNotFoundError:
        return False
    except KubeConflictError:
        log.info("pod %s/%s was replaced after it was listed; keeping the new one",
                 kube.namespace, name)  # fmt: skip
        return False
    return True
