"""The outcome of a placement decision and the sentences that explain it.

:class:`~lsst_hub.placement.totals.ClusterTotals` builds its answers here; the
tests' oracle does too, so the words are compared along with the choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["LoadMetric", "Placement", "Shortfall", "describe_failure", "fraction"]

LoadMetric = Literal["requests", "usage"]


class Shortfall:
    """Why a node cannot take the server; each node is counted under its first reason."""

    EXCLUDED = "excluded"
    NOT_READY = "not_ready"
    CORDONED = "cordoned"
    TAINTED = "tainted"
    SELECTOR = "selector"
    CPU_AND_MEMORY = "cpu_and_memory"
    CPU = "cpu"
    MEMORY = "memory"
    PODS = "pods"

    #: The order in which a node's reasons are checked (and ties are listed).
    ORDER = (EXCLUDED, NOT_READY, CORDONED, TAINTED, SELECTOR, CPU_AND_MEMORY, CPU, MEMORY, PODS)


_WORDS = {
    Shortfall.EXCLUDED: (
        "was excluded after a failed attempt",
        "were excluded after failed attempts",
    ),
    Shortfall.NOT_READY: ("is not ready", "are not ready"),
    Shortfall.CORDONED: ("is cordoned", "are cordoned"),
    Shortfall.TAINTED: (
        "has a taint the server does not tolerate",
        "have taints the server does not tolerate",
    ),
    Shortfall.SELECTOR: (
        "does not match the node selector or affinity",
        "do not match the node selector or affinity",
    ),
    Shortfall.CPU_AND_MEMORY: (
        "has too little free CPU and memory",
        "have too little free CPU and memory",
    ),
    Shortfall.CPU: ("has too little free CPU", "have too little free CPU"),
    Shortfall.MEMORY: ("has too little free memory", "have too little free memory"),
    Shortfall.PODS: ("is at its pod limit", "are at their pod limit"),
}


@dataclass(frozen=True, slots=True)
class Placement:
    """Where to start a server, and why.

    Attributes
    ----------
    node
        The chosen node's name, or ``None`` when no node can take the server.
    reason
        One sentence for the user's progress page, e.g. ``"Starting on node-7
        (CPU 35%, memory 20% requested)"``, or what was asked for and why no node
        fits.
    cpu_fraction, memory_fraction
        The chosen node's requested CPU and memory as fractions of allocatable,
        after placing this server (``None`` when nothing fits).
    usage_cpu_fraction, usage_memory_fraction
        With ``load_metric="usage"`` and a usage sample for the chosen node: the
        fractions the node was scored by (measured usage, plus the requests of
        servers started since the sample, plus this server). Otherwise ``None``.
    """

    node: str | None
    reason: str
    cpu_fraction: float | None = None
    memory_fraction: float | None = None
    usage_cpu_fraction: float | None = None
    usage_memory_fraction: float | None = None


def fraction(used: int, allocatable: int) -> float:
    """``used / allocatable``; a node without that resource is infinitely full."""
    if allocatable > 0:
        return used / allocatable
    return math.inf if used > 0 else 0.0


def format_cpu(millicores: int) -> str:
    """``4000`` → ``"4"``, ``1250`` → ``"1.25"``."""
    return f"{millicores / 1000:.3f}".rstrip("0").rstrip(".")


def format_memory(nbytes: int) -> str:
    """``17179869184`` → ``"16 GiB"``, ``1610612736`` → ``"1.5 GiB"``."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= size:
            return f"{nbytes / size:.2f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{nbytes} bytes"


def _percent(value: float) -> str:
    return "∞%" if math.isinf(value) else f"{round(value * 100)}%"


def describe_choice(
    node: str,
    cpu_fraction: float,
    memory_fraction: float,
    usage: tuple[float, float] | None,
    usage_wanted: bool,
) -> str:
    """The progress-page sentence for a chosen node."""
    text = (
        f"Starting on {node} (CPU {_percent(cpu_fraction)}, "
        f"memory {_percent(memory_fraction)} requested"
    )
    if usage is not None:
        text += f"; CPU {_percent(usage[0])}, memory {_percent(usage[1])} in use"
    elif usage_wanted:
        text += "; usage not measured"
    return text + ")"


def describe_failure(cpu: int, memory: int, total: int, counts: Mapping[str, int]) -> str:
    """The sentence for "nothing fits": the request, the node count, why none fit.

    Parameters
    ----------
    cpu, memory
        The request in millicores and bytes.
    total
        How many nodes the cluster has.
    counts
        How many nodes fell under each :class:`Shortfall` reason.
    """
    head = (
        f"No node can start a server with {format_cpu(cpu)} CPU and {format_memory(memory)} memory"
    )
    if total == 0:
        return head + ": the cluster has no nodes."
    order = {name: i for i, name in enumerate(Shortfall.ORDER)}
    parts = [
        f"{n} {_WORDS[name][0 if n == 1 else 1]}"
        for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], order[kv[0]]))
        if n > 0
    ]
    noun = "node" if total == 1 else "nodes"
    return f"{head}: of {total} {noun}, " + ", ".join(parts) + "."
