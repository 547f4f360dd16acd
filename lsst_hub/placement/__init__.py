"""Least-loaded node placement for notebook servers.

:class:`ClusterTotals` holds per-node totals and applies the placement rules;
:class:`ClusterCache` feeds it from Kubernetes watches (the hub's path), and
:func:`choose_node` builds it from full lists of nodes and pods. The pure parts
(:class:`ClusterTotals`, :func:`choose_node`, quantity parsing) do no I/O.
:class:`ClusterTotals` and :func:`choose_node` (NumPy) and :class:`ClusterCache`
(``kubernetes_asyncio``) are imported lazily so that light users (the dev
cluster parses quantities with this package) load neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import NodeUsage
from .quantities import QuantityError, cpu_cores, cpu_millicores, memory_bytes, parse_quantity
from .result import LoadMetric, Placement

if TYPE_CHECKING:
    from .cache import ClusterCache
    from .totals import ClusterTotals, NodeTotals, choose_node

__all__ = [
    "ClusterCache",
    "ClusterTotals",
    "LoadMetric",
    "NodeTotals",
    "NodeUsage",
    "Placement",
    "QuantityError",
    "choose_node",
    "cpu_cores",
    "cpu_millicores",
    "memory_bytes",
    "parse_quantity",
]


def __getattr__(name: str) -> Any:
    if name == "ClusterCache":
        from .cache import ClusterCache

        return ClusterCache
    if name in ("ClusterTotals", "NodeTotals", "choose_node"):
        from . import totals

        return getattr(totals, name)
    raise AttributeError(f"module 'lsst_hub.placement' has no attribute {name!r}")
