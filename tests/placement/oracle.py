"""The placement rules over plain lists: the oracle the product is checked against.

This is an independent, loop-by-loop statement of the rules that
:class:`~lsst_hub.placement.totals.ClusterTotals` applies with arrays (and so
:func:`~lsst_hub.placement.choose_node`, which builds totals from lists). It
reads whole lists of nodes and pods each time, keeps no state and shares only
the object readers (:mod:`lsst_hub.placement.model`) and the sentences
(:mod:`lsst_hub.placement.result`) with the product. The tests ask both the same
questions and require the same :class:`~lsst_hub.placement.Placement`.

The rules
---------
A node is *eligible* when its ``Ready`` condition is ``True``, it is not cordoned,
every NoSchedule/NoExecute taint is tolerated, it matches the node selector and
the required node affinity (the admin's ``node_affinity_required``), it was not
excluded by the caller, and the request fits: allocatable minus the
requests of the node's non-terminated pods (of every namespace: other services
share the nodes) leaves room for the CPU, the memory and one more pod.

Among eligible nodes the *least loaded* wins: the lowest of
``max(cpu fraction, memory fraction)`` **after** placing the server. Ties go to
the lower other fraction, then the lower name.

With ``load_metric="usage"`` feasibility is unchanged but nodes with a usage
sample are scored by measured usage plus the requests of pods that started after
the sample's window began plus the new server. Nodes without a sample are scored
by requests.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from lsst_hub.placement.model import (
    NodeInfo,
    NodeUsage,
    affinity_matches,
    node_info,
    pod_bound_node,
    pod_request,
    pod_start,
    selector_matches,
    tolerates,
)
from lsst_hub.placement.quantities import cpu_millicores
from lsst_hub.placement.result import (
    LoadMetric,
    Placement,
    Shortfall,
    describe_choice,
    describe_failure,
    fraction,
)

__all__ = ["oracle_choose"]


def _as_usage(value: NodeUsage | tuple[float, int]) -> NodeUsage:
    if isinstance(value, NodeUsage):
        return value
    cpu, memory = value
    return NodeUsage(float(cpu), int(memory))


def _check_request(cpu: float, memory: int, load_metric: str) -> tuple[int, int]:
    if load_metric not in ("requests", "usage"):
        raise ValueError(f"load_metric must be 'requests' or 'usage', not {load_metric!r}")
    if cpu < 0 or memory < 0:
        raise ValueError(f"a request cannot be negative (cpu={cpu!r}, memory={memory!r})")
    return cpu_millicores(cpu), int(memory)


def _shortfall(
    info: NodeInfo,
    used: tuple[int, int, int],
    cpu: int,
    memory: int,
    node_selector: Mapping[str, str] | None,
    tolerations: Iterable[Mapping[str, Any]],
    excluded: Collection[str],
    node_affinity: Sequence[Mapping[str, Any]] | None,
) -> str | None:
    if info.name in excluded:
        return Shortfall.EXCLUDED
    if not info.ready:
        return Shortfall.NOT_READY
    if info.unschedulable:
        return Shortfall.CORDONED
    if not tolerates(tolerations, info.taints):
        return Shortfall.TAINTED
    if not (selector_matches(node_selector, info.labels) and affinity_matches(node_affinity, info)):
        return Shortfall.SELECTOR
    # Like kube-scheduler's NodeResourcesFit, a zero request always fits that resource.
    short_cpu = cpu > 0 and used[0] + cpu > info.cpu
    short_memory = memory > 0 and used[1] + memory > info.memory
    if short_cpu and short_memory:
        return Shortfall.CPU_AND_MEMORY
    if short_cpu:
        return Shortfall.CPU
    if short_memory:
        return Shortfall.MEMORY
    if used[2] + 1 > info.pods:
        return Shortfall.PODS
    return None


def oracle_choose(
    nodes: Iterable[Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    cpu: float,
    memory: int,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Iterable[Mapping[str, Any]] | None = None,
    *,
    load_metric: LoadMetric = "requests",
    usage: Mapping[str, NodeUsage | tuple[float, int]] | None = None,
    exclude: Iterable[str] = (),
    node_affinity: Sequence[Mapping[str, Any]] | None = None,
) -> Placement:
    """Choose as :func:`lsst_hub.placement.choose_node` must, by plain loops.

    Parameters, result and errors are those of
    :func:`~lsst_hub.placement.choose_node`.
    """
    cpu_m, memory_b = _check_request(cpu, memory, load_metric)
    tolerations = tuple(tolerations or ())
    excluded = frozenset(exclude)
    infos = {info.name: info for info in map(node_info, nodes)}
    samples = {name: _as_usage(u) for name, u in (usage or {}).items()}
    use_usage = load_metric == "usage"

    used: dict[str, list[int]] = {name: [0, 0, 0] for name in infos}
    # Requests of pods a node's usage sample has not (fully) seen.
    unmeasured: dict[str, list[int]] = {name: [0, 0] for name in infos}
    for pod in pods:
        name = pod_bound_node(pod)
        if name is None or name not in used:
            continue
        c, m = pod_request(pod)
        totals = used[name]
        totals[0] += c
        totals[1] += m
        totals[2] += 1
        sample = samples.get(name)
        if use_usage and sample is not None and sample.window_start is not None:
            start = pod_start(pod)
            if start is not None and start > sample.window_start:
                unmeasured[name][0] += c
                unmeasured[name][1] += m

    best: tuple[float, float, str] | None = None
    best_fractions: tuple[float, float, tuple[float, float] | None] = (0.0, 0.0, None)
    counts: dict[str, int] = {}
    for name, info in infos.items():
        c_used, m_used, n_used = used[name]
        why = _shortfall(
            info,
            (c_used, m_used, n_used),
            cpu_m,
            memory_b,
            node_selector,
            tolerations,
            excluded,
            node_affinity,
        )
        if why is not None:
            counts[why] = counts.get(why, 0) + 1
            continue
        cpu_f = fraction(c_used + cpu_m, info.cpu)
        memory_f = fraction(m_used + memory_b, info.memory)
        scored: tuple[float, float] | None = None
        sample = samples.get(name)
        if use_usage and sample is not None:
            scored = (
                fraction(cpu_millicores(sample.cpu) + unmeasured[name][0] + cpu_m, info.cpu),
                fraction(sample.memory + unmeasured[name][1] + memory_b, info.memory),
            )
        s_cpu, s_memory = scored if scored is not None else (cpu_f, memory_f)
        key = (max(s_cpu, s_memory), min(s_cpu, s_memory), name)
        if best is None or key < best:
            best = key
            best_fractions = (cpu_f, memory_f, scored)

    if best is None:
        return Placement(None, describe_failure(cpu_m, memory_b, len(infos), counts))
    cpu_f, memory_f, scored = best_fractions
    return Placement(
        node=best[2],
        reason=describe_choice(best[2], cpu_f, memory_f, scored, use_usage),
        cpu_fraction=cpu_f,
        memory_fraction=memory_f,
        usage_cpu_fraction=scored[0] if scored else None,
        usage_memory_fraction=scored[1] if scored else None,
    )
