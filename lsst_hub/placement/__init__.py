"""Least-loaded node placement for notebook servers.

The pure parts (:func:`choose_node`, :class:`ClusterTotals`, quantity parsing)
import nothing that does I/O. :class:`ClusterTotals` (NumPy) and
:class:`ClusterCache` (``kubernetes_asyncio``), which feeds the totals from
Kubernetes watches, are imported lazily so that light users (the dev cluster
parses quantities with this package) load neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .choose import choose_node
from .model import NodeUsage
from .quantities import QuantityError, cpu_cores, cpu_millicores, memory_bytes, parse_quantity
from .result import LoadMetric, Placement

if TYPE_CHECKING:
    from .cache import ClusterCache
    from .totals import ClusterTotals, NodeTotals

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
    if name in ("ClusterTotals", "NodeTotals"):
        from . import totals

        return getattr(totals, name)
    raise AttributeError(f"module 'lsst_hub.placement' has no attribute {name!r}")
