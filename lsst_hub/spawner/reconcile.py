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

Two callers:

- :mod:`.reconcile_service`, a JupyterHub managed service the hub starts with
  itself: a pass at hub start and then every few minutes, asking the hub's REST
  API. This is what makes the clean-up happen at start-up on a hub with no
  running servers.
- the spawner, once per hub process, at the first poll or spawn (it reads the
  hub's database directly): a fallback for hubs that do not run the service.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from .kube import Kube, KubeConflictError, KubeNotFoundError

__all__ = [
    "COMPONENT",
    "INSTANCE_LABEL",
    "ServerKey",
    "delete_listed_pod",
    "known_servers_from_db",
    "reconcile",
    "select_orphans",
]

log = logging.getLogger(__name__)

#: The label naming the hub (``LSSTSpawner.hub_instance``) that started a pod.
INSTANCE_LABEL = "lsst-hub/instance"
COMPONENT = "singleuser-server"
#: (username, server name), the server name being "" for the default server.
ServerKey = tuple[str, str]


def pod_server(pod: Mapping[str, Any]) -> ServerKey | None:
    """The (username, server name) KubeSpawner recorded on a pod, if any.

    The annotations hold the raw names (labels hold escaped ones).
    """
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    user = annotations.get("hub.jupyter.org/username")
    if not user:
        return None
    return str(user), str(annotations.get("hub.jupyter.org/servername") or "")


def select_orphans(
    pods: Iterable[Mapping[str, Any]], known: Iterable[ServerKey], instance: str
) -> list[str]:
    """Names of the pods to delete: ours, not being deleted, server unknown.

    A pod is "ours" only with ``lsst-hub/instance=<instance>`` and
    ``component=singleuser-server`` and KubeSpawner's username annotation; any
    other pod (another hub's, an admin's, unlabelled) is never selected.
    """
    known_set = set(known)
    out: list[str] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        if labels.get(INSTANCE_LABEL) != instance or labels.get("component") != COMPONENT:
            continue
        if meta.get("deletionTimestamp"):
            continue
        server = pod_server(pod)
        if server is None or server in known_set:
            continue
        out.append(str(meta["name"]))
    return sorted(out)


def known_servers_from_db(db: Any) -> set[ServerKey]:
    """Servers the hub's database says are running or starting.

    ``db`` is JupyterHub's SQLAlchemy session (``spawner.db``). A spawn sets
    ``Spawner.server`` before it calls the spawner, so pending spawns count.
    """
    from jupyterhub import orm

    rows = db.query(orm.Spawner).filter(orm.Spawner.server_id.isnot(None)).all()
    return {(row.user.name, row.name or "") for row in rows}


async def reconcile(
    kube: Kube,
    instance: str,
    known_servers: Callable[[], Awaitable[Iterable[ServerKey]] | Iterable[ServerKey]],
    *,
    grace_seconds: int | None = None,
    confirm: Callable[[ServerKey], Awaitable[bool]] | None = None,
) -> list[str]:
    """Delete this hub's orphan pods in ``kube.namespace``; return their names.

    Pods are listed before ``known_servers`` is called; see the module text.
    ``confirm(server)``, if given, is awaited for each suspected orphan just
    before it is deleted and must return True for the deletion to go ahead
    (whether the server is *still* unknown). Only pods are deleted, never
    claims or volumes; a pod already gone or replaced meanwhile is skipped.
    """
    pods = await kube.list_pods(f"{INSTANCE_LABEL}={instance},component={COMPONENT}")
    known = known_servers()
    if isinstance(known, Awaitable):
        known = await known
    by_name = {str(pod["metadata"]["name"]): pod for pod in pods}
    deleted: list[str] = []
    for name in select_orphans(pods, known, instance):
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
