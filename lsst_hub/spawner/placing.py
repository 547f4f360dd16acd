"""Step 3 of a spawn: the node, and the room held there until the pod takes it.

One :class:`~lsst_hub.placement.ClusterCache` per hub process and event loop
(:func:`cluster_cache`) follows the cluster; :func:`choose_node` asks it for the
least-loaded node that fits and holds the room as a :class:`Reservation`, so
that spawns in flight do not all pick the same node.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import SpawnError

if TYPE_CHECKING:
    from ..placement import ClusterCache, LoadMetric, Placement

__all__ = ["Reservation", "choose_node", "cluster_cache", "pod_request", "stop_cluster_cache"]

_caches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ClusterCache] = (
    weakref.WeakKeyDictionary()
)
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def cluster_cache(
    api_client: Any,
    *,
    metrics_interval: float | None,
    request_timeout: float,
    start_timeout: float,
    log: logging.Logger,
) -> ClusterCache:
    """The cache of the running loop, started on first use (once, however many
    spawns ask at the same time).

    Raises
    ------
    SpawnError
        When the first lists of nodes and pods do not arrive within ``start_timeout``.
    """
    from ..placement import ClusterCache

    loop = asyncio.get_running_loop()
    cache = _caches.get(loop)
    if cache is not None:
        return cache
    async with _locks.setdefault(loop, asyncio.Lock()):
        cache = _caches.get(loop)
        if cache is None:
            cache = ClusterCache(
                api_client,
                metrics_interval=metrics_interval,
                request_timeout=request_timeout,
                log=log,
            )
            try:
                async with asyncio.timeout(start_timeout):
                    await cache.start()
            except TimeoutError:
                raise SpawnError(
                    "cannot read the cluster's nodes and pods to choose a node "
                    f"(no answer within {start_timeout}s); "
                    "check the hub's access to the Kubernetes API"
                ) from None
            _caches[loop] = cache
    return cache


async def stop_cluster_cache() -> None:
    """Stop the cache of the running loop (tests, shutdown)."""
    cache = _caches.pop(asyncio.get_running_loop(), None)
    if cache is not None:
        await cache.stop()


def pod_request(
    cpu_guarantee: float | None,
    cpu_limit: float | None,
    mem_guarantee: int | None,
    mem_limit: int | None,
) -> tuple[float, int]:
    """The (CPU, memory) a server asks for: its guarantee, else its limit, else 0."""
    cpu = cpu_guarantee or cpu_limit or 0.0
    memory = mem_guarantee or mem_limit or 0
    return float(cpu), int(memory)


class Reservation:
    """Room held on the chosen node for one pod, named by its ``namespace/name``.

    Its whole life:

    - made by :func:`choose_node`, with the node choice;
    - released by :meth:`release` when the attempt fails or the scheduler
      refuses the pod (the spawner then chooses again), and when the server
      stops;
    - otherwise ended by the cache itself once it sees the pod bound to a node
      (the pod's own requests then count), or after the cache's
      ``reservation_ttl`` if no pod ever comes.

    Releasing twice, or after the cache ended it, does nothing.
    """

    def __init__(self, cache: ClusterCache, key: str, node: str, cpu: float, memory: int) -> None:
        self.key = key
        self.node = node
        self._cache: ClusterCache | None = cache
        cache.reserve(key, node, cpu, memory)

    def release(self) -> None:
        """Give the room back (the pod will not come, or is gone)."""
        if self._cache is not None:
            self._cache.release(self.key)
            self._cache = None


def choose_node(
    cache: ClusterCache,
    *,
    key: str,
    cpu: float,
    memory: int,
    node_selector: Mapping[str, str],
    tolerations: Sequence[Any],
    node_affinity: Sequence[Any],
    load_metric: LoadMetric,
    exclude: Sequence[str],
) -> tuple[Placement, Reservation]:
    """The least-loaded node that fits the pod ``key``, with the room reserved there.

    Raises
    ------
    SpawnError
        (503) When no node fits; the message says why for each kind of node.
    """
    placement = cache.choose(
        cpu,
        memory,
        node_selector=dict(node_selector),
        tolerations=list(tolerations),
        load_metric=load_metric,
        exclude=list(exclude),
        node_affinity=list(node_affinity),
    )
    if placement.node is None:
        raise SpawnError(placement.reason, 503)
    return placement, Reservation(cache, key, str(placement.node), cpu, memory)
