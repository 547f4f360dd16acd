"""Least-loaded placement: per-node totals kept one watch event at a time (pure, no I/O).

:class:`ClusterTotals` is the one implementation of the placement rules. The
watch-fed :class:`~lsst_hub.placement.ClusterCache` tells it about nodes, pods,
usage samples and in-flight reservations as they happen; :func:`choose_node`
builds one from full lists of nodes and pods and asks it once. Either way
:meth:`ClusterTotals.choose` decides.

The rules
---------
A node is *eligible* when its ``Ready`` condition is ``True``, it is not cordoned,
every NoSchedule/NoExecute taint is tolerated, it matches the node selector and
the required node affinity (the admin's ``node_affinity_required``), it was not
excluded by the caller, and the request fits: allocatable minus the requests of
the node's non-terminated pods (of every namespace: other services share the
nodes) and of its reservations leaves room for the CPU, the memory and one more
pod. Like kube-scheduler's NodeResourcesFit, a zero request always fits that
resource. A node that is not eligible is counted under its first reason
(:class:`~lsst_hub.placement.result.Shortfall`) in the "nothing fits" sentence.

Among eligible nodes the *least loaded* wins: the lowest of
``max(cpu fraction, memory fraction)`` **after** placing the server, like
kube-scheduler's LeastAllocated (scoring after placing prefers a big node to a
small one when both are equally busy, and favors the node whose scarcer
resource the server uses less). Ties go to the lower other fraction, then the
lower name, so the choice never depends on the order events came in.

With ``load_metric="usage"`` feasibility is unchanged (the scheduler admits by
requests) but nodes with a usage sample are scored by measured usage plus the
requests the sample cannot have seen yet (pods that started after its window
began, and reservations) plus the new server. Nodes without a sample are scored
by requests.

Costs: an event costs O(1) (plus O(cached selector kinds) for a node whose
labels or taints change); a decision costs a handful of NumPy operations over
the per-node arrays, never a pass over pods. Why NumPy: a decision must compare
every eligible node, and at 5,000 nodes a Python loop alone takes about a
millisecond; the same arithmetic over arrays takes a few tens of microseconds.
Sums are kept in integers (millicores, bytes) so that totals after any sequence
of events equal a fresh recount exactly.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from .model import (
    NodeInfo,
    NodeUsage,
    affinity_key,
    affinity_matches,
    node_info,
    pod_bound_node,
    pod_key,
    pod_request,
    pod_start,
    selector_matches,
    tolerates,
)
from .quantities import QuantityError, cpu_millicores
from .result import LoadMetric, Placement, Shortfall, describe_choice, describe_failure

__all__ = ["ClusterTotals", "NodeTotals", "choose_node"]

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_MAX_MASKS = 64


def _as_usage(value: NodeUsage | tuple[float, int]) -> NodeUsage:
    """Accept a :class:`NodeUsage` or a ``(cpu_cores, memory_bytes)`` pair."""
    if isinstance(value, NodeUsage):
        return value
    cpu, memory = value
    return NodeUsage(float(cpu), int(memory))


def _check_request(cpu: float, memory: int, load_metric: str) -> tuple[int, int]:
    """Validate a request; return it in millicores and bytes.

    Raises
    ------
    ValueError
        On a negative request or an unknown load metric.
    """
    if load_metric not in ("requests", "usage"):
        raise ValueError(f"load_metric must be 'requests' or 'usage', not {load_metric!r}")
    if cpu < 0 or memory < 0:
        raise ValueError(f"a request cannot be negative (cpu={cpu!r}, memory={memory!r})")
    return cpu_millicores(cpu), int(memory)


def choose_node(
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
    """Choose the least-loaded node that can start a server, from full lists.

    Builds a :class:`ClusterTotals` from the lists and asks it once (the rules
    are in this module's docstring). The hub does not call this: its
    :class:`~lsst_hub.placement.ClusterCache` keeps the totals current instead.

    Parameters
    ----------
    nodes
        Node objects as JSON dicts (``kubectl get nodes -o json`` items).
    pods
        Pod objects of **all** namespaces as JSON dicts.
    cpu
        CPU the server requests, in cores.
    memory
        Memory the server requests, in bytes.
    node_selector
        Labels a node must carry (all of them, with these values).
    tolerations
        The server's tolerations, as Kubernetes toleration dicts.
    load_metric
        ``"requests"`` (default) scores nodes by requested resources;
        ``"usage"`` by measured usage where ``usage`` has a sample.
    usage
        Per-node usage: :class:`NodeUsage` or ``(cpu_cores, memory_bytes)``.
    exclude
        Node names not to choose (e.g. one that just rejected the server).
    node_affinity
        Required ``nodeSelectorTerms`` (ORed; see
        :func:`~lsst_hub.placement.model.affinity_matches`).

    Returns
    -------
    Placement
        The node (or ``None``) with a sentence saying why.

    Raises
    ------
    ValueError
        On a negative request or an unknown ``load_metric``.
    QuantityError
        If an object carries a malformed quantity.
    """
    # A bad request is refused before any object is read.
    _check_request(cpu, memory, load_metric)
    return ClusterTotals.from_lists(nodes, pods, usage).choose(
        cpu, memory, node_selector, tolerations, load_metric, frozenset(exclude), node_affinity
    )


@dataclass(slots=True)
class _Columns:
    """The per-node arrays a decision reads, one element per node slot.

    A slot's elements describe one node while ``alive``; a free slot is all
    zeros. CPU in millicores, memory in bytes.
    """

    # From the Node object (set_node).
    alive: BoolArray
    ready: BoolArray
    cordoned: BoolArray
    cpu_allocatable: IntArray
    memory_allocatable: IntArray
    pods_allocatable: IntArray
    # Requests of the node's bound, non-terminated pods plus its reservations:
    # what feasibility and request scores count (from _Acc, see ClusterTotals._sync).
    cpu_used: IntArray
    memory_used: IntArray
    pods_used: IntArray
    # The last usage sample plus the requests it cannot have seen yet (pods
    # started after its window began, and reservations), when has_usage.
    has_usage: BoolArray
    cpu_usage: IntArray
    memory_usage: IntArray

    @classmethod
    def zeros(cls, size: int) -> _Columns:
        flags = ("alive", "ready", "cordoned", "has_usage")
        return cls(
            **{
                f.name: np.zeros(size, dtype=np.bool_ if f.name in flags else np.int64)
                for f in fields(cls)
            }
        )

    def resized(self, size: int) -> _Columns:
        grown = _Columns.zeros(size)
        for f in fields(self):
            old = getattr(self, f.name)
            getattr(grown, f.name)[: old.size] = old
        return grown

    def clear(self, slot: int) -> None:
        for f in fields(self):
            getattr(self, f.name)[slot] = 0


@dataclass(frozen=True, slots=True)
class NodeTotals:
    """What the cache holds for one node (CPU in millicores, memory in bytes).

    Attributes
    ----------
    cpu_requested, memory_requested, pods
        Sums over the node's non-terminated pods of all namespaces.
    cpu_reserved, memory_reserved, pods_reserved
        In-flight reservations not yet matched by a pod.
    cpu_unmeasured, memory_unmeasured
        Requests of pods started after the node's usage sample window began.
    usage
        The node's last usage sample, or ``None``.
    """

    cpu_requested: int
    memory_requested: int
    pods: int
    cpu_reserved: int
    memory_reserved: int
    pods_reserved: int
    cpu_unmeasured: int
    memory_unmeasured: int
    usage: NodeUsage | None


@dataclass(slots=True)
class _Acc:
    """Running sums for one node name (kept even before its Node object arrives)."""

    req_c: int = 0
    req_m: int = 0
    req_p: int = 0
    resv_c: int = 0
    resv_m: int = 0
    resv_p: int = 0
    # Pods that may still be missing from the usage sample: key -> (start, cpu, memory).
    recent: dict[str, tuple[float, int, int]] = field(default_factory=dict)
    rec_c: int = 0
    rec_m: int = 0
    # Latest window start the recent pods were pruned to.
    pruned_to: float | None = None
    usage: NodeUsage | None = None

    def unmeasured(self) -> tuple[int, int]:
        if self.usage is None or self.usage.window_start is None:
            return 0, 0
        return self.rec_c, self.rec_m


@dataclass(frozen=True, slots=True)
class _PodRec:
    node: str
    cpu: int
    memory: int
    start: float | None


@dataclass(slots=True)
class _Reservation:
    node: str
    cpu: int
    memory: int
    expires: float


@dataclass(slots=True)
class _Masks:
    selector: Mapping[str, str] | None
    affinity: tuple[Mapping[str, Any], ...]
    tolerations: tuple[Mapping[str, Any], ...]
    taint_ok: BoolArray
    selector_ok: BoolArray  # node selector and required affinity

    def admits(self, info: NodeInfo) -> bool:
        return selector_matches(self.selector, info.labels) and affinity_matches(
            self.affinity, info
        )


def _fractions(used: IntArray, allocatable: IntArray) -> FloatArray:
    # Same rule as result.fraction: no allocatable means infinitely full (or empty).
    out = np.where(used > 0, np.inf, 0.0)
    np.divide(used, allocatable, out=out, where=allocatable > 0)
    return out


def _toleration_key(tolerations: tuple[Mapping[str, Any], ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(
        sorted(
            (
                str(t.get("key") or ""),
                str(t.get("operator") or ""),
                str(t.get("value") or ""),
                str(t.get("effect") or ""),
            )
            for t in tolerations
        )
    )


class ClusterTotals:
    """Per-node totals fed by events, answering placement decisions.

    Parameters
    ----------
    clock
        Monotonic clock for reservation expiry (injectable for tests).
    reservation_ttl
        Seconds after which an unmatched reservation stops counting.

    Notes
    -----
    Usage samples are assumed to move forward in time for each node: pods
    started before a sample's window are forgotten as "unmeasured" once that
    sample arrives.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        reservation_ttl: float = 120.0,
    ) -> None:
        self._clock = clock
        self.reservation_ttl = reservation_ttl
        self._cap = 64
        self._cols = _Columns.zeros(self._cap)
        self._high = 0  # slots [0, _high) have been used
        self._free: list[int] = []
        self._slot: dict[str, int] = {}
        self._info: list[NodeInfo | None] = [None] * self._cap
        self._acc: dict[str, _Acc] = {}
        self._pods: dict[str, _PodRec] = {}
        self._resv: dict[str, _Reservation] = {}
        self._expiry: list[tuple[float, str]] = []
        self._masks: dict[tuple[Any, ...], _Masks] = {}
        self._ranks: IntArray | None = None  # see _name_ranks

    @classmethod
    def from_lists(
        cls,
        nodes: Iterable[Mapping[str, Any]],
        pods: Iterable[Mapping[str, Any]],
        usage: Mapping[str, NodeUsage | tuple[float, int]] | None = None,
    ) -> ClusterTotals:
        """Totals of full lists of nodes and pods (what :func:`choose_node` asks).

        Every listed pod bound to a listed node counts, as listed (the list is
        not checked for repeated ``namespace/name``); pods on other nodes are not
        read.

        Parameters
        ----------
        nodes, pods
            Node objects and Pod objects of all namespaces, as JSON dicts.
        usage
            Per-node usage: :class:`NodeUsage` or ``(cpu_cores, memory_bytes)``.

        Raises
        ------
        QuantityError
            If a node, or a pod on a listed node, carries a malformed quantity.
        """
        totals = cls()
        for node in nodes:
            totals.set_node(node)
        totals.set_usage(usage)
        for position, pod in enumerate(pods):
            name = pod_bound_node(pod)
            if name is not None and name in totals._slot:
                cpu, memory = pod_request(pod)
                totals._account(str(position), _PodRec(name, cpu, memory, pod_start(pod)))
        return totals

    # ------------------------------------------------------------------ nodes

    def set_node(self, node: Mapping[str, Any]) -> None:
        """Add or update a node (watch ADDED/MODIFIED).

        Raises
        ------
        QuantityError
            If its allocatable resources are malformed (nothing is changed).
        """
        info = node_info(node)
        slot = self._slot.get(info.name)
        if slot is None:
            slot = self._new_slot()
            self._slot[info.name] = slot
            self._ranks = None
            eligibility_changed = True
        else:
            old = self._info[slot]
            eligibility_changed = old is None or not old.same_eligibility(info)
        self._info[slot] = info
        cols = self._cols
        cols.alive[slot] = True
        cols.ready[slot] = info.ready
        cols.cordoned[slot] = info.unschedulable
        cols.cpu_allocatable[slot] = info.cpu
        cols.memory_allocatable[slot] = info.memory
        cols.pods_allocatable[slot] = info.pods
        if eligibility_changed:
            for masks in self._masks.values():
                masks.taint_ok[slot] = tolerates(masks.tolerations, info.taints)
                masks.selector_ok[slot] = masks.admits(info)
            self._sync(info.name)

    def remove_node(self, name: str) -> None:
        """Forget a node (watch DELETED). Its pods' totals are kept until they go."""
        slot = self._slot.pop(name, None)
        if slot is None:
            return
        self._ranks = None
        self._info[slot] = None
        self._cols.clear(slot)
        self._free.append(slot)

    def replace_nodes(self, nodes: Iterable[Mapping[str, Any]]) -> list[tuple[str, Exception]]:
        """Make the node set exactly ``nodes`` (after a relist).

        Returns
        -------
        list of (str, Exception)
            The nodes left out because they are malformed, with the error.
        """
        nodes = list(nodes)
        rejected: list[tuple[str, Exception]] = []
        for node in nodes:
            try:
                self.set_node(node)
            except QuantityError as exc:
                rejected.append((str((node.get("metadata") or {}).get("name")), exc))
        self.keep_only_nodes({str((n.get("metadata") or {}).get("name") or "") for n in nodes})
        return rejected

    def keep_only_nodes(self, names: Collection[str]) -> None:
        """Forget every node not named in ``names`` (the end of a relist)."""
        for name in [name for name in self._slot if name not in names]:
            self.remove_node(name)

    def node_names(self) -> list[str]:
        """Names of the nodes currently known, sorted."""
        return sorted(self._slot)

    def _new_slot(self) -> int:
        if self._free:
            return self._free.pop()
        if self._high == self._cap:
            self._grow()
        self._high += 1
        return self._high - 1

    def _grow(self) -> None:
        cap = self._cap * 2
        self._cols = self._cols.resized(cap)
        self._info.extend([None] * (cap - self._cap))
        self._cap = cap
        self._masks.clear()  # rebuilt on demand at the new size

    # ------------------------------------------------------------------- pods

    def set_pod(self, pod: Mapping[str, Any]) -> None:
        """Add or update a pod (watch ADDED/MODIFIED) of any namespace.

        A pod counts on its node from when it is bound until it terminates. A
        reservation with the pod's key is dropped once the pod is bound.

        Raises
        ------
        QuantityError
            If its resource requests are malformed (nothing is changed).
        """
        key = pod_key(pod)
        node = pod_bound_node(pod)
        new: _PodRec | None = None
        if node is not None:
            cpu, memory = pod_request(pod)
            new = _PodRec(node, cpu, memory, pod_start(pod))
            if key in self._resv:
                self.release(key)
        old = self._pods.get(key)
        if old == new:
            return  # status-only updates are the common case
        if old is not None:
            self._unaccount(key, old)
        if new is not None:
            self._account(key, new)

    def remove_pod(self, pod: Mapping[str, Any] | str) -> None:
        """Forget a pod (watch DELETED), given as its object or ``namespace/name``."""
        key = pod if isinstance(pod, str) else pod_key(pod)
        old = self._pods.get(key)
        if old is not None:
            self._unaccount(key, old)

    def replace_pods(self, pods: Iterable[Mapping[str, Any]]) -> list[tuple[str, Exception]]:
        """Make the pod set exactly ``pods`` (after a relist).

        Returns
        -------
        list of (str, Exception)
            The pods (``namespace/name``) left out because they are malformed.
        """
        pods = list(pods)
        rejected: list[tuple[str, Exception]] = []
        for pod in pods:
            try:
                self.set_pod(pod)
            except QuantityError as exc:
                rejected.append((pod_key(pod), exc))
        self.keep_only_pods({pod_key(p) for p in pods})
        return rejected

    def keep_only_pods(self, keys: Collection[str]) -> None:
        """Forget every pod whose ``namespace/name`` is not in ``keys`` (end of a relist)."""
        for key in [key for key in self._pods if key not in keys]:
            self.remove_pod(key)

    def _account(self, key: str, rec: _PodRec) -> None:
        self._pods[key] = rec
        acc = self._acc.get(rec.node)
        if acc is None:
            acc = self._acc[rec.node] = _Acc()
        acc.req_c += rec.cpu
        acc.req_m += rec.memory
        acc.req_p += 1
        if rec.start is not None and (acc.pruned_to is None or rec.start > acc.pruned_to):
            acc.recent[key] = (rec.start, rec.cpu, rec.memory)
            acc.rec_c += rec.cpu
            acc.rec_m += rec.memory
        self._sync(rec.node)

    def _unaccount(self, key: str, rec: _PodRec) -> None:
        del self._pods[key]
        acc = self._acc[rec.node]
        acc.req_c -= rec.cpu
        acc.req_m -= rec.memory
        acc.req_p -= 1
        if acc.recent.pop(key, None) is not None:
            acc.rec_c -= rec.cpu
            acc.rec_m -= rec.memory
        self._sync(rec.node)

    def _sync(self, name: str) -> None:
        """Copy a node's running sums into its slot of the arrays."""
        slot = self._slot.get(name)
        acc = self._acc.get(name)
        if slot is None or acc is None:
            return
        cols = self._cols
        cols.cpu_used[slot] = acc.req_c + acc.resv_c
        cols.memory_used[slot] = acc.req_m + acc.resv_m
        cols.pods_used[slot] = acc.req_p + acc.resv_p
        usage = acc.usage
        if usage is None:
            cols.has_usage[slot] = False
            cols.cpu_usage[slot] = cols.memory_usage[slot] = 0
        else:
            unmeasured_c, unmeasured_m = acc.unmeasured()
            cols.has_usage[slot] = True
            cols.cpu_usage[slot] = cpu_millicores(usage.cpu) + unmeasured_c + acc.resv_c
            cols.memory_usage[slot] = usage.memory + unmeasured_m + acc.resv_m

    # ------------------------------------------------------------------ usage

    def set_usage(self, usage: Mapping[str, NodeUsage | tuple[float, int]] | None) -> None:
        """Replace all usage samples (``None`` or ``{}``: no node has one)."""
        samples = {name: _as_usage(u) for name, u in (usage or {}).items()}
        for name, old in self._acc.items():
            if old.usage is not None and name not in samples:
                old.usage = None
                self._sync(name)
        for name, sample in samples.items():
            acc = self._acc.get(name)
            if acc is None:
                acc = self._acc[name] = _Acc()
            acc.usage = sample
            start = sample.window_start
            if start is not None and (acc.pruned_to is None or start > acc.pruned_to):
                acc.pruned_to = start
                for key, (pod_started, c, m) in list(acc.recent.items()):
                    if pod_started <= start:
                        del acc.recent[key]
                        acc.rec_c -= c
                        acc.rec_m -= m
            self._sync(name)

    # ----------------------------------------------------------- reservations

    def reserve(
        self, key: str, node: str, cpu: float, memory: int, ttl: float | None = None
    ) -> None:
        """Count a server being started on ``node`` before its pod is seen.

        Parameters
        ----------
        key
            The pod's ``namespace/name``; the reservation ends when that pod is
            seen bound to a node (it then counts as itself), on :meth:`release`,
            or after ``ttl`` seconds.
        node
            The chosen node.
        cpu, memory
            The server's request in cores and bytes.
        ttl
            Seconds to keep the reservation (default ``reservation_ttl``).
        """
        self.release(key)
        self._expire()
        expires = self._clock() + (self.reservation_ttl if ttl is None else ttl)
        rec = _Reservation(node, cpu_millicores(cpu), int(memory), expires)
        self._resv[key] = rec
        heapq.heappush(self._expiry, (expires, key))
        self._bump_reserved(rec, +1)

    def release(self, key: str) -> bool:
        """Drop a reservation (the spawn failed); whether there was one."""
        rec = self._resv.pop(key, None)
        if rec is None:
            return False
        self._bump_reserved(rec, -1)
        return True

    def reservations(self) -> dict[str, str]:
        """Live reservations: pod key → node."""
        self._expire()
        return {key: rec.node for key, rec in self._resv.items()}

    def _bump_reserved(self, rec: _Reservation, sign: int) -> None:
        acc = self._acc.get(rec.node)
        if acc is None:
            acc = self._acc[rec.node] = _Acc()
        acc.resv_c += sign * rec.cpu
        acc.resv_m += sign * rec.memory
        acc.resv_p += sign
        self._sync(rec.node)

    def _expire(self) -> None:
        now = self._clock()
        while self._expiry and self._expiry[0][0] <= now:
            expires, key = heapq.heappop(self._expiry)
            rec = self._resv.get(key)
            # A key reserved again has a later expiry: only drop the matching one.
            if rec is not None and rec.expires == expires:
                self.release(key)

    # ---------------------------------------------------------------- inspect

    def totals(self, node: str) -> NodeTotals:
        """The running totals kept for ``node`` (zeros for a name never seen)."""
        self._expire()
        acc = self._acc.get(node) or _Acc()
        unm_c, unm_m = acc.unmeasured()
        return NodeTotals(
            cpu_requested=acc.req_c,
            memory_requested=acc.req_m,
            pods=acc.req_p,
            cpu_reserved=acc.resv_c,
            memory_reserved=acc.resv_m,
            pods_reserved=acc.resv_p,
            cpu_unmeasured=unm_c,
            memory_unmeasured=unm_m,
            usage=acc.usage,
        )

    # ---------------------------------------------------------------- choose

    def _eligibility(
        self,
        node_selector: Mapping[str, str] | None,
        tolerations: tuple[Mapping[str, Any], ...],
        node_affinity: tuple[Mapping[str, Any], ...],
    ) -> _Masks:
        sig = (
            tuple(sorted((node_selector or {}).items())),
            _toleration_key(tolerations),
            affinity_key(node_affinity),
        )
        masks = self._masks.get(sig)
        if masks is None:
            if len(self._masks) >= _MAX_MASKS:
                self._masks.clear()
            masks = _Masks(
                dict(node_selector or {}),
                node_affinity,
                tolerations,
                np.zeros(self._cap, dtype=np.bool_),
                np.zeros(self._cap, dtype=np.bool_),
            )
            for slot in range(self._high):
                info = self._info[slot]
                if info is not None:
                    masks.taint_ok[slot] = tolerates(tolerations, info.taints)
                    masks.selector_ok[slot] = masks.admits(info)
            self._masks[sig] = masks
        return masks

    def choose(
        self,
        cpu: float,
        memory: int,
        node_selector: Mapping[str, str] | None = None,
        tolerations: Iterable[Mapping[str, Any]] | None = None,
        load_metric: LoadMetric = "requests",
        exclude: Collection[str] = (),
        node_affinity: Sequence[Mapping[str, Any]] | None = None,
    ) -> Placement:
        """Choose the least-loaded node that can start a server (rules: module docstring).

        Reservations count as requests (and, with ``load_metric="usage"``, as
        usage not yet measured). Parameters, result and errors are those of
        :func:`choose_node`.
        """
        cpu_m, memory_b = _check_request(cpu, memory, load_metric)
        self._expire()
        n = self._high
        cols = self._cols
        masks = self._eligibility(
            node_selector, tuple(tolerations or ()), tuple(node_affinity or ())
        )
        alive, ready, cordoned = cols.alive[:n], cols.ready[:n], cols.cordoned[:n]
        taint_ok, selector_ok = masks.taint_ok[:n], masks.selector_ok[:n]
        cpu_allocatable = cols.cpu_allocatable[:n]
        memory_allocatable = cols.memory_allocatable[:n]
        excluded = np.zeros(n, dtype=np.bool_)
        for name in exclude:
            slot = self._slot.get(name)
            if slot is not None:
                excluded[slot] = True
        eligible = alive & ~excluded & ready & ~cordoned & taint_ok & selector_ok
        nofit = np.zeros(n, dtype=np.bool_)
        short_c = (cols.cpu_used[:n] + cpu_m > cpu_allocatable) if cpu_m > 0 else nofit
        short_m = (cols.memory_used[:n] + memory_b > memory_allocatable) if memory_b > 0 else nofit
        short_p = cols.pods_used[:n] + 1 > cols.pods_allocatable[:n]
        fits = np.flatnonzero(eligible & ~short_c & ~short_m & ~short_p)
        if fits.size == 0:
            counts = self._count_shortfalls(
                [
                    (Shortfall.EXCLUDED, excluded),
                    (Shortfall.NOT_READY, ~ready),
                    (Shortfall.CORDONED, cordoned),
                    (Shortfall.TAINTED, ~taint_ok),
                    (Shortfall.SELECTOR, ~selector_ok),
                    (Shortfall.CPU_AND_MEMORY, short_c & short_m),
                    (Shortfall.CPU, short_c),
                    (Shortfall.MEMORY, short_m),
                    (Shortfall.PODS, short_p),
                ],
                alive.copy(),
            )
            return Placement(None, describe_failure(cpu_m, memory_b, len(self._slot), counts))

        # Fractions after placing the server, of the nodes where it fits.
        cpu_allocatable, memory_allocatable = cpu_allocatable[fits], memory_allocatable[fits]
        frac_c = _fractions(cols.cpu_used[fits] + cpu_m, cpu_allocatable)
        frac_m = _fractions(cols.memory_used[fits] + memory_b, memory_allocatable)
        use_usage = load_metric == "usage"
        if use_usage:
            has_usage = cols.has_usage[fits]
            score_c = np.where(
                has_usage, _fractions(cols.cpu_usage[fits] + cpu_m, cpu_allocatable), frac_c
            )
            score_m = np.where(
                has_usage,
                _fractions(cols.memory_usage[fits] + memory_b, memory_allocatable),
                frac_m,
            )
        else:
            has_usage = np.zeros(fits.size, dtype=np.bool_)
            score_c, score_m = frac_c, frac_m
        high = np.maximum(score_c, score_m)
        candidates = np.flatnonzero(high == high.min())
        if candidates.size > 1:
            low = np.minimum(score_c[candidates], score_m[candidates])
            candidates = candidates[low == low.min()]
        if candidates.size > 1:
            # Many nodes can tie (identical, equally loaded nodes): break the tie by
            # name through a rank array rather than a Python loop over names.
            ranks = self._name_ranks()[fits[candidates]]
            best = int(candidates[int(np.argmin(ranks))])
        else:
            best = int(candidates[0])
        info = self._info[int(fits[best])]
        assert info is not None
        name = info.name
        scored = (float(score_c[best]), float(score_m[best])) if bool(has_usage[best]) else None
        cpu_f, memory_f = float(frac_c[best]), float(frac_m[best])
        return Placement(
            node=name,
            reason=describe_choice(name, cpu_f, memory_f, scored, use_usage),
            cpu_fraction=cpu_f,
            memory_fraction=memory_f,
            usage_cpu_fraction=scored[0] if scored else None,
            usage_memory_fraction=scored[1] if scored else None,
        )

    def _name_ranks(self) -> IntArray:
        """Each slot's position in the name order of the nodes (recomputed after
        nodes come or go)."""
        if self._ranks is None or self._ranks.size != self._cap:
            ranks: IntArray = np.zeros(self._cap, dtype=np.int64)
            for position, name in enumerate(sorted(self._slot)):
                ranks[self._slot[name]] = position
            self._ranks = ranks
        return self._ranks

    @staticmethod
    def _count_shortfalls(
        reasons: list[tuple[str, BoolArray]], remaining: BoolArray
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, hit in reasons:
            hit = remaining & hit
            n = int(np.count_nonzero(hit))
            if n:
                counts[name] = n
                remaining &= ~hit
        return counts
