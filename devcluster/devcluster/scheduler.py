"""A scheduler that filters and scores nodes like kube-scheduler's default profile.

Filters, in kube-scheduler's plugin order (the first failing one names the
node's reason): NodeUnschedulable ("node(s) were unschedulable"),
TaintToleration ("node(s) had untolerated taint {key: value}"; a node whose
Ready condition is not True counts as tainted ``node.kubernetes.io/not-ready``
as the node lifecycle controller would make it), NodeAffinity ("node(s) didn't
match Pod's node affinity/selector": nodeSelector and required node affinity with
matchExpressions In/NotIn/Exists/DoesNotExist/Gt/Lt and matchFields on
``metadata.name``) and NodeResourcesFit ("Insufficient cpu", "Insufficient
memory", "Too many pods") against allocatable.

Scoring is NodeResourcesFit's ``LeastAllocated`` (kube-scheduler's default) or
``MostAllocated`` (Zero-to-JupyterHub's user-scheduler packs that way), over
cpu and memory with kube-scheduler's non-zero defaults for pods without
requests (100m, 200Mi). Ties go to the node that sorts first by name (natural
order), where kube-scheduler picks at random: tests need a deterministic answer.
Like kube-scheduler, it stops looking after enough feasible nodes
(``percentageOfNodesToScore``'s adaptive default), starting each search where
the previous one ended.

Per-node requested totals are kept from pod events, so a scheduling decision
never scans pods. Pods that fit nowhere stay Pending with ``PodScheduled=False``
(reason ``Unschedulable``) and a FailedScheduling event; they are retried when a
node or pod changes.
"""

from __future__ import annotations

import asyncio
import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .affinity import node_selector_matches, required_terms
from .controller import Controller
from .quantity import QuantityError, milli_value, value
from .registry import NODES, PODS, PVCS, TERMINAL, Registry, now
from .store import Obj, WatchEvent

__all__ = ["Scheduler", "pod_requests"]

DEFAULT_CPU_MILLI = 100  # kube-scheduler's non-zero defaults, used for scoring only
DEFAULT_MEMORY = 200 * 1024 * 1024
NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


def _milli(quantity: Any) -> int:
    try:
        return milli_value(quantity)
    except QuantityError:
        return 0


def _bytes(quantity: Any) -> int:
    try:
        return value(quantity)
    except QuantityError:
        return 0


def pod_requests(pod: Obj) -> tuple[int, int]:
    """A pod's (millicpu, memory bytes) requests: containers summed, init containers' max."""
    spec = pod.get("spec", {})
    cpu = mem = 0
    for c in spec.get("containers", []):
        req = (c.get("resources") or {}).get("requests") or {}
        cpu += _milli(req.get("cpu", 0))
        mem += _bytes(req.get("memory", 0))
    for c in spec.get("initContainers", []):
        req = (c.get("resources") or {}).get("requests") or {}
        cpu = max(cpu, _milli(req.get("cpu", 0)))
        mem = max(mem, _bytes(req.get("memory", 0)))
    overhead = spec.get("overhead") or {}
    return cpu + _milli(overhead.get("cpu", 0)), mem + _bytes(overhead.get("memory", 0))


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


@dataclass
class NodeInfo:
    """What the scheduler knows about one node."""

    name: str
    labels: dict[str, str]
    taints: list[Obj]
    unschedulable: bool
    cpu: int
    memory: int
    pods: int
    used_cpu: int = 0
    used_memory: int = 0
    used_pods: int = 0
    score_cpu: int = 0  # with non-zero defaults, for scoring
    score_memory: int = 0
    sort_key: list[Any] = field(default_factory=list)

    @classmethod
    def from_node(cls, node: Obj) -> NodeInfo:
        """Read a Node object."""
        status = node.get("status") or {}
        alloc = status.get("allocatable") or status.get("capacity") or {}
        taints = list((node.get("spec") or {}).get("taints") or [])
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
        if not ready and not any(t.get("key") == NOT_READY_TAINT["key"] for t in taints):
            taints.append(NOT_READY_TAINT)
        name = node["metadata"]["name"]
        return cls(
            name=name,
            labels=dict(node["metadata"].get("labels") or {}),
            taints=taints,
            unschedulable=bool((node.get("spec") or {}).get("unschedulable")),
            cpu=_milli(alloc.get("cpu", 0)),
            memory=_bytes(alloc.get("memory", 0)),
            pods=int(_bytes(alloc.get("pods", 0))),
            sort_key=_natural(name),
        )


def _tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator", "Equal") == "Exists":
            if not t.get("key") or t.get("key") == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and (t.get("value") or "") == (
            taint.get("value") or ""
        ):
            return True
    return False


@dataclass
class PodNeeds:
    """The parts of a pod spec that scheduling looks at, read once per attempt."""

    cpu: int
    memory: int
    selector: dict[str, str]
    terms: list[Mapping[str, Any] | None] | None
    tolerations: list[Obj]

    @classmethod
    def from_pod(cls, pod: Obj) -> PodNeeds:
        """Read a Pod."""
        spec = pod.get("spec", {})
        cpu, mem = pod_requests(pod)
        return cls(
            cpu,
            mem,
            spec.get("nodeSelector") or {},
            required_terms(spec),
            spec.get("tolerations") or [],
        )

    def failure(self, node: NodeInfo) -> list[str]:
        """Why the pod cannot go to ``node`` (empty when it fits)."""
        if node.unschedulable and not _tolerates(
            self.tolerations, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
        ):
            return ["node(s) were unschedulable"]
        for taint in node.taints:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(
                self.tolerations, taint
            ):
                return [
                    f"node(s) had untolerated taint {{{taint.get('key')}: "
                    f"{taint.get('value') or ''}}}"
                ]
        if any(node.labels.get(k) != v for k, v in self.selector.items()) or (
            self.terms is not None and not node_selector_matches(self.terms, node.name, node.labels)
        ):
            return ["node(s) didn't match Pod's node affinity/selector"]
        reasons = []
        if node.used_pods + 1 > node.pods:
            reasons.append("Too many pods")
        if self.cpu and node.used_cpu + self.cpu > node.cpu:
            reasons.append("Insufficient cpu")
        if self.memory and node.used_memory + self.memory > node.memory:
            reasons.append("Insufficient memory")
        return reasons


class Scheduler(Controller):
    """Binds pending pods to nodes; see the module docstring.

    Parameters
    ----------
    registry
        Where pods and nodes live.
    scoring
        ``"least"`` (LeastAllocated, default) or ``"most"`` (MostAllocated).
    """

    task_name = "scheduler"

    def __init__(self, registry: Registry, scoring: str = "least") -> None:
        if scoring not in ("least", "most"):
            raise ValueError(f"scoring must be 'least' or 'most', not {scoring!r}")
        super().__init__(registry)
        self.scoring = scoring
        self.nodes: dict[str, NodeInfo] = {}
        self._ordered: list[NodeInfo] = []
        self._accounted: dict[tuple[str, str], tuple[str, int, int, int, int]] = {}
        self._pending: dict[tuple[str, str], None] = {}
        self._unschedulable: dict[tuple[str, str], str] = {}
        self._next_start = 0

    # -- bookkeeping from events ---------------------------------------------------
    def on_event(self, event: WatchEvent) -> None:
        """Keep node usage and the pending queue up to date."""
        if event.resource is NODES:
            self._on_node(event)
        elif event.resource is PODS:
            self._on_pod(event)
        elif event.resource is PVCS:
            self._retry_unschedulable()

    def _on_node(self, event: WatchEvent) -> None:
        name = event.obj["metadata"]["name"]
        old = self.nodes.pop(name, None)
        if event.type != "DELETED":
            info = NodeInfo.from_node(event.obj)
            if old is not None:
                info.used_cpu, info.used_memory, info.used_pods = (
                    old.used_cpu,
                    old.used_memory,
                    old.used_pods,
                )
                info.score_cpu, info.score_memory = old.score_cpu, old.score_memory
            self.nodes[name] = info
        if event.type == "DELETED":
            self._ordered = [n for n in self._ordered if n.name != name]
        elif old is None:
            bisect.insort(self._ordered, self.nodes[name], key=lambda n: n.sort_key)
        else:
            self._ordered = [self.nodes[n.name] for n in self._ordered]
        self._retry_unschedulable()

    def _on_pod(self, event: WatchEvent) -> None:
        pod = event.obj
        meta, spec = pod["metadata"], pod.get("spec", {})
        key = (meta.get("namespace", ""), meta["name"])
        node = spec.get("nodeName")
        counts = (
            event.type != "DELETED" and node and pod.get("status", {}).get("phase") not in TERMINAL
        )
        previous = self._accounted.get(key)
        if counts and previous is not None and previous[0] == node:
            return
        if previous is not None:
            self._account(previous, -1)
            del self._accounted[key]
            self._retry_unschedulable()
        if counts and node:
            cpu, mem = pod_requests(pod)
            entry = (node, cpu, mem, cpu or DEFAULT_CPU_MILLI, mem or DEFAULT_MEMORY)
            self._accounted[key] = entry
            self._account(entry, 1)
        self._pending.pop(key, None)
        if event.type == "DELETED":
            self._unschedulable.pop(key, None)
        elif (
            not node
            and spec.get("schedulerName", "default-scheduler") == "default-scheduler"
            and key not in self._unschedulable
        ):
            self._pending[key] = None
            self._wake.set()

    def _account(self, entry: tuple[str, int, int, int, int], sign: int) -> None:
        info = self.nodes.get(entry[0])
        if info is None:
            return
        info.used_cpu += sign * entry[1]
        info.used_memory += sign * entry[2]
        info.score_cpu += sign * entry[3]
        info.score_memory += sign * entry[4]
        info.used_pods += sign

    def _retry_unschedulable(self) -> None:
        if self._unschedulable:
            for key in self._unschedulable:
                self._pending[key] = None
            self._wake.set()

    # -- the scheduling loop -----------------------------------------------------
    async def run_pass(self) -> None:
        """Try every pending pod once."""
        done = 0
        while self._pending:
            key = next(iter(self._pending))
            del self._pending[key]
            self.schedule_one(key)
            done += 1
            if done % 100 == 0:
                await asyncio.sleep(0)  # let the API answer between batches

    def _feasible_to_find(self) -> int:
        n = len(self._ordered)
        if n < 100:
            return n
        percentage = max(5, 50 - n // 125)
        return max(100, n * percentage // 100)

    def _score(self, needs: PodNeeds, node: NodeInfo) -> float:
        cpu = needs.cpu or DEFAULT_CPU_MILLI
        mem = needs.memory or DEFAULT_MEMORY
        total = 0.0
        for used, capacity in (
            (node.score_cpu + cpu, node.cpu),
            (node.score_memory + mem, node.memory),
        ):
            if capacity <= 0:
                continue
            fraction = min(used, capacity) / capacity
            total += 100 * (fraction if self.scoring == "most" else 1 - fraction)
        return total / 2

    def schedule_one(self, key: tuple[str, str]) -> str | None:
        """Try to bind one pending pod; return the node name or None."""
        pod = self.registry.store.get(PODS, key[0], key[1])
        if (
            pod is None
            or pod.get("spec", {}).get("nodeName")
            or pod["metadata"].get("deletionTimestamp")
        ):
            self._unschedulable.pop(key, None)
            return None
        ordered = self._ordered
        volume_problem = self._volume_problem(pod)
        if volume_problem is not None:
            self._fail(pod, key, len(ordered), {}, volume_problem)
            return None
        needs = PodNeeds.from_pod(pod)
        want = self._feasible_to_find()
        best: NodeInfo | None = None
        best_score = -1.0
        found = 0
        failures: dict[str, int] = {}
        n = len(ordered)
        start = self._next_start % n if n else 0
        for i in range(n):
            node = ordered[(start + i) % n]
            reasons = needs.failure(node)
            if reasons:
                for r in reasons:
                    failures[r] = failures.get(r, 0) + 1
                continue
            score = self._score(needs, node)
            if score > best_score or (
                score == best_score and best is not None and node.sort_key < best.sort_key
            ):
                best, best_score = node, score
            found += 1
            if found >= want:
                self._next_start = start + i + 1
                break
        if best is None:
            self._fail(pod, key, n, failures)
            return None
        self._bind(pod, key, best)
        return best.name

    def _bind(self, pod: Obj, key: tuple[str, str], node: NodeInfo) -> None:
        self._unschedulable.pop(key, None)
        new = dict(pod)
        new["spec"] = dict(pod["spec"], nodeName=node.name)
        status = dict(pod.get("status") or {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastTransitionTime": now(),
                "lastProbeTime": None,
            }
        )
        status["conditions"] = conditions
        new["status"] = status
        new["metadata"] = dict(pod["metadata"])
        stored = self.registry.replace(PODS, new, pod)
        self._scheduled_event(
            stored,
            "Scheduled",
            f"Successfully assigned {key[0]}/{key[1]} to {node.name}",
            "Normal",
        )

    def _volume_problem(self, pod: Obj) -> str | None:
        """The VolumeBinding plugin's PreFilter verdict on the pod's claims."""
        ns = pod["metadata"].get("namespace", "")
        for volume in pod.get("spec", {}).get("volumes") or []:
            claim_name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim_name:
                continue
            claim = self.registry.store.get(PVCS, ns, claim_name)
            if claim is None:
                return f'persistentvolumeclaim "{claim_name}" not found'
            if claim["metadata"].get("deletionTimestamp"):
                return f'persistentvolumeclaim "{claim_name}" is being deleted'
            if claim.get("status", {}).get("phase") != "Bound":
                return "pod has unbound immediate PersistentVolumeClaims"
        return None

    def _fail(
        self,
        pod: Obj,
        key: tuple[str, str],
        n: int,
        failures: dict[str, int],
        prefilter: str | None = None,
    ) -> None:
        if n == 0:
            message = "no nodes available to schedule pods"
        elif prefilter is not None:
            message = (
                f"0/{n} nodes are available: {prefilter}. preemption: 0/{n} nodes are "
                f"available: {n} Preemption is not helpful for scheduling."
            )
        else:
            parts = sorted(f"{count} {reason}" for reason, count in failures.items())
            resource_reasons = ("Insufficient cpu", "Insufficient memory", "Too many pods")
            helpless = sum(c for r, c in failures.items() if r not in resource_reasons)
            victims = n - helpless
            preempt = []
            if helpless:
                preempt.append(f"{helpless} Preemption is not helpful for scheduling")
            if victims > 0:
                preempt.append(f"{victims} No preemption victims found for incoming pod")
            message = (
                f"0/{n} nodes are available: {', '.join(parts)}. preemption: 0/{n} nodes are "
                f"available: {', '.join(sorted(preempt))}."
            )
        if self._unschedulable.get(key) == message:
            return
        self._unschedulable[key] = message
        status = dict(pod.get("status") or {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastTransitionTime": now(),
                "lastProbeTime": None,
            }
        )
        status["conditions"] = conditions
        stored = self.registry.write_status(PODS, pod, status)
        self._scheduled_event(stored, "FailedScheduling", message, "Warning")

    def _scheduled_event(self, pod: Obj, reason: str, message: str, type_: str) -> None:
        # kube-scheduler writes events.k8s.io/v1 events: seen through core/v1 they have
        # an eventTime and an action, and no source, count or first/lastTimestamp.
        self.registry.record_event(
            pod,
            reason,
            message,
            type_=type_,
            component="default-scheduler",
            action="Binding" if reason == "Scheduled" else "Scheduling",
        )
