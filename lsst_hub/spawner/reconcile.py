"""Delete notebook pods this hub started but no longer knows about (orphans).

A pod becomes an orphan when the hub forgets its server while the pod lives on:
the hub's database was restored, a stop failed half way, the hub crashed during
a spawn. Orphans keep using node capacity and keep running as the person.

:func:`select_orphans` is the pure rule. :func:`reconcile` lists pods, *then*
asks which servers the hub knows: a spawn records its server in the hub's
database before it creates a pod, so a pod seen in the listing whose server
exists is never taken for an orphan, even while spawns run concurrently.

The spawner runs :func:`reconcile` once per hub process, the first time any
server is polled or started (the hub polls every running server at start-up,
so on a busy hub this is start-up; on a hub with no running servers it is the
first spawn, and until then there is no pod to compete with).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from .kube import Kube

__all__ = [
    "COMPONENT",
    "INSTANCE_LABEL",
    "ServerKey",
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
) -> list[str]:
    """Delete this hub's orphan pods in ``kube.namespace``; return their names.

    Pods are listed before ``known_servers`` is called; see the module text.
    Pods are deleted, never claims or volumes.
    """
    pods = await kube.list_pods(f"{INSTANCE_LABEL}={instance},component={COMPONENT}")
    known = known_servers()
    if isinstance(known, Awaitable):
        known = await known
    orphans = select_orphans(pods, known, instance)
    for name in orphans:
        log.warning("deleting orphan notebook pod %s/%s: its server is unknown to the hub",
                    kube.namespace, name)  # fmt: skip
        await kube.delete_pod(name, grace_seconds)
    return orphans
