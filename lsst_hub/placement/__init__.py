"""Least-loaded node placement for notebook servers.

:class:`ClusterTotals` holds per-node totals and applies the placement rules;
:class:`ClusterCache` feeds it from Kubernetes watches (the hub's path), and
:func:`choose_node` builds it from full lists of nodes and pods. The pure parts
(:class:`ClusterTotals`, :func:`choose_node`, quantity parsing) do no I/O.
"""

from __future__ import annotations

from .cache import ClusterCache
from .model import NodeUsage
from .quantities import QuantityError, cpu_cores, cpu_millicores, memory_bytes, parse_quantity
from .result import LoadMetric, Placement
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
