"""The spawner's fallback orphan-pod pass: once per hub process, at the first
poll or spawn, reading the servers from the hub's own database.

The pass itself is :func:`.reconcile.reconcile`; the orphan service
(:mod:`.reconcile_service`) is what cleans up at hub start.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from .kube import Kube
from .reconcile import KnownServers, known_servers_from_db, reconcile

__all__ = ["reconcile_from_db", "start_once", "started"]

# The event loops (hub processes) in which the pass has been started.
_started: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


async def reconcile_from_db(kube: Kube, instance: str, db: Any, log: logging.Logger) -> list[str]:
    """One pass over ``instance``'s pods; the names deleted (none if it failed)."""

    async def known() -> KnownServers:
        return known_servers_from_db(db)

    try:
        return await reconcile(kube, instance, known)
    except Exception:
        log.exception(
            "orphan pod reconciliation failed; the orphan service (if configured) "
            "retries it, this process will not"
        )
        return []


def started() -> bool:
    """Whether the pass has been started in the running event loop (this hub process).

    Callers check it before they gather :func:`start_once`'s arguments: reading
    ``Spawner.db`` makes JupyterHub log a deprecation warning for each spawner.
    """
    return asyncio.get_running_loop() in _started


def start_once(
    kube: Kube, instance: str, db: Any, log: logging.Logger
) -> asyncio.Task[list[str]] | None:
    """Start :func:`reconcile_from_db` unless it was started in this event loop;
    the task, or None when it ran already."""
    loop = asyncio.get_running_loop()
    if loop in _started:
        return None
    _started.add(loop)
    return loop.create_task(reconcile_from_db(kube, instance, db, log))
