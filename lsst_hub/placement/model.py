"""What placement needs to know about one Node or one Pod, read from its JSON.

Nodes and pods arrive as plain Kubernetes JSON dicts (camelCase, as the API
returns them). These functions reduce each to the few numbers and flags the
placement rules use (:class:`~lsst_hub.placement.totals.ClusterTotals`). The
node-affinity matcher (:func:`term_matches`, :func:`required_node_terms`) is also
what the spawner's pod builders read.

Units: CPU in integer millicores, memory in integer bytes. Integer sums stay
exact however many pods come and go, which lets the cache keep running totals
that always equal a fresh recount.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .quantities import cpu_millicores, memory_bytes

__all__ = [
    "NodeInfo",
    "NodeUsage",
    "Taint",
    "affinity_key",
    "affinity_matches",
    "node_info",
    "parse_duration",
    "parse_time",
    "pod_bound_node",
    "pod_key",
    "pod_request",
    "pod_start",
    "required_node_terms",
    "selector_matches",
    "term_matches",
    "tolerates",
]

# Effects that keep a new pod off a node. PreferNoSchedule is only a preference
# in kube-scheduler's scoring, and placement does not score taints.
_BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
_TERMINATED_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class Taint:
    """A node taint that blocks scheduling (effect NoSchedule or NoExecute)."""

    key: str
    value: str
    effect: str


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """The parts of a Node that placement reads.

    Attributes
    ----------
    name
        ``metadata.name``.
    ready
        The ``Ready`` condition has status ``"True"``.
    unschedulable
        ``spec.unschedulable`` (the node is cordoned).
    taints
        The taints with a blocking effect, in the node's order.
    labels
        ``metadata.labels``.
    cpu, memory, pods
        ``status.allocatable`` in millicores, bytes and pods (0 when absent, as
        kube-scheduler reads a missing allocatable).
    """

    name: str
    ready: bool
    unschedulable: bool
    taints: tuple[Taint, ...]
    labels: Mapping[str, str]
    cpu: int
    memory: int
    pods: int

    def same_eligibility(self, other: NodeInfo) -> bool:
        """Whether labels and taints, which selectors and tolerations test, are equal."""
        return self.taints == other.taints and dict(self.labels) == dict(other.labels)


@dataclass(frozen=True, slots=True)
class NodeUsage:
    """A node's measured usage (one metrics.k8s.io sample).

    Attributes
    ----------
    cpu
        CPU in use, in cores.
    memory
        Memory in use, in bytes.
    window_start
        Start of the sample's measuring window, in seconds since the epoch, or
        ``None`` if unknown. A pod that started after it is not (fully) in the
        sample, so placement counts that pod by its request instead.
    """

    cpu: float
    memory: int
    window_start: float | None = None


def _get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    cur: Any = obj
    for part in path:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def node_info(node: Mapping[str, Any]) -> NodeInfo:
    """Read a Node dict into a :class:`NodeInfo`.

    Raises
    ------
    QuantityError
        If an allocatable quantity is malformed.
    """
    name = str(_get(node, "metadata", "name") or "")
    conditions = _get(node, "status", "conditions") or ()
    ready = any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )
    taints = tuple(
        Taint(str(t.get("key") or ""), str(t.get("value") or ""), str(t.get("effect") or ""))
        for t in (_get(node, "spec", "taints") or ())
        if isinstance(t, Mapping) and t.get("effect") in _BLOCKING_EFFECTS
    )
    allocatable = _get(node, "status", "allocatable") or {}
    return NodeInfo(
        name=name,
        ready=ready,
        unschedulable=bool(_get(node, "spec", "unschedulable")),
        taints=taints,
        labels=dict(_get(node, "metadata", "labels") or {}),
        cpu=cpu_millicores(allocatable.get("cpu", 0)),
        memory=memory_bytes(allocatable.get("memory", 0)),
        pods=memory_bytes(allocatable.get("pods", 0)),
    )


def pod_key(pod: Mapping[str, Any]) -> str:
    """``namespace/name`` of a Pod dict: the key reservations are matched by."""
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def pod_bound_node(pod: Mapping[str, Any]) -> str | None:
    """The node whose capacity this pod holds, or ``None``.

    A pod holds capacity once it is bound (``spec.nodeName`` set) and until it
    has terminated (phase ``Succeeded`` or ``Failed``), as kube-scheduler counts.
    """
    node = _get(pod, "spec", "nodeName")
    if not node or _get(pod, "status", "phase") in _TERMINATED_PHASES:
        return None
    return str(node)


def _container_request(container: Mapping[str, Any]) -> tuple[int, int]:
    # The API server defaults a missing request to the limit; doing the same here
    # reads undefaulted objects (hand-written test pods) the way a cluster would.
    resources = container.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    cpu = requests.get("cpu", limits.get("cpu", 0))
    memory = requests.get("memory", limits.get("memory", 0))
    return cpu_millicores(cpu), memory_bytes(memory)


def pod_request(pod: Mapping[str, Any]) -> tuple[int, int]:
    """CPU (millicores) and memory (bytes) a pod requests, as kube-scheduler sums it.

    The sum over ``containers`` and restartable ("sidecar") init containers, or the
    largest need while an ordinary init container runs (its request plus the
    sidecars started before it), whichever is larger; then pod-level
    ``spec.resources.requests`` where given, plus ``spec.overhead``.

    Raises
    ------
    QuantityError
        If a quantity is malformed.
    """
    spec = pod.get("spec") or {}
    cpu = memory = 0
    for container in spec.get("containers") or ():
        c, m = _container_request(container)
        cpu += c
        memory += m
    init_cpu = init_memory = 0
    sidecar_cpu = sidecar_memory = 0
    for container in spec.get("initContainers") or ():
        c, m = _container_request(container)
        if container.get("restartPolicy") == "Always":
            # A sidecar keeps running beside the app containers.
            cpu += c
            memory += m
            sidecar_cpu += c
            sidecar_memory += m
            need_cpu, need_memory = sidecar_cpu, sidecar_memory
        else:
            need_cpu, need_memory = c + sidecar_cpu, m + sidecar_memory
        init_cpu = max(init_cpu, need_cpu)
        init_memory = max(init_memory, need_memory)
    cpu = max(cpu, init_cpu)
    memory = max(memory, init_memory)
    pod_level = _get(spec, "resources", "requests") or {}
    if "cpu" in pod_level:
        cpu = cpu_millicores(pod_level["cpu"])
    if "memory" in pod_level:
        memory = memory_bytes(pod_level["memory"])
    overhead = spec.get("overhead") or {}
    cpu += cpu_millicores(overhead.get("cpu", 0))
    memory += memory_bytes(overhead.get("memory", 0))
    return cpu, memory


def parse_time(value: object) -> float | None:
    """An RFC 3339 timestamp as seconds since the epoch, or ``None`` if absent/invalid."""
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = _dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.UTC)
    return stamp.timestamp()


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNIT = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(value: object) -> float | None:
    """A Go duration (``"30s"``, ``"1m0.5s"``, as metrics.k8s.io writes ``window``) in seconds.

    Returns ``None`` for anything else.
    """
    if not isinstance(value, str) or not value:
        return None
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            return None
        total += float(match[1]) * _DURATION_UNIT[match[2]]
        pos = match.end()
    return total if pos == len(value) else None


def pod_start(pod: Mapping[str, Any]) -> float | None:
    """When the pod started (``status.startTime``, else creation), epoch seconds."""
    start = parse_time(_get(pod, "status", "startTime"))
    if start is None:
        start = parse_time(_get(pod, "metadata", "creationTimestamp"))
    return start


def _tolerates_one(toleration: Mapping[str, Any], taint: Taint) -> bool:
    # The rules of k8s.io/api core/v1 Toleration.ToleratesTaint.
    effect = toleration.get("effect") or ""
    if effect and effect != taint.effect:
        return False
    key = toleration.get("key") or ""
    if key and key != taint.key:
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return bool((toleration.get("value") or "") == taint.value)
    return False


def tolerates(tolerations: Iterable[Mapping[str, Any]], taints: Sequence[Taint]) -> bool:
    """Whether every blocking taint is tolerated by at least one toleration."""
    tolerations = tuple(tolerations)
    return all(any(_tolerates_one(t, taint) for t in tolerations) for taint in taints)


def selector_matches(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """Whether a node selector (label → value, all required) matches the labels."""
    if not selector:
        return True
    return all(labels.get(key) == value for key, value in selector.items())


def _expression_matches(expression: Mapping[str, Any], value: str | None) -> bool:
    operator = expression.get("operator")
    values = [str(v) for v in expression.get("values") or ()]
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if operator == "Gt" else have < want
    return False  # an operator the API server would have refused


def _term(term: Mapping[str, Any], camel: str, snake: str) -> list[Mapping[str, Any]]:
    # KubeSpawner's node_affinity_required accepts both spellings of the keys.
    return list(term.get(camel) or term.get(snake) or ())


def term_matches(term: Mapping[str, Any], name: str, labels: Mapping[str, str]) -> bool:
    """Whether one ``nodeSelectorTerm`` matches the node ``name`` with ``labels``.

    All its ``matchExpressions`` (on labels: In, NotIn, Exists, DoesNotExist,
    Gt, Lt) and ``matchFields`` (on ``metadata.name``) must match; an empty
    term matches no node, as in kube-scheduler.
    """
    expressions = _term(term, "matchExpressions", "match_expressions")
    fields = _term(term, "matchFields", "match_fields")
    if not expressions and not fields:
        return False
    return all(
        _expression_matches(e, labels.get(str(e.get("key") or ""))) for e in expressions
    ) and all(
        _expression_matches(f, name if f.get("key") == "metadata.name" else None) for f in fields
    )


def affinity_matches(terms: Sequence[Mapping[str, Any]] | None, info: NodeInfo) -> bool:
    """Whether a required node affinity admits the node.

    ``terms`` are ``nodeSelectorTerms`` (as in KubeSpawner's
    ``node_affinity_required``): the node must match at least one; a term
    matches when all its ``matchExpressions`` (labels) and ``matchFields``
    (``metadata.name``) do. ``None`` or an empty list admits every node.
    """
    if not terms:
        return True
    return any(term_matches(term, info.name, info.labels) for term in terms)


def required_node_terms(pod_spec: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """The ``nodeSelectorTerms`` a pod spec requires (None: no required node affinity)."""
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms")
    return None if terms is None else list(terms)


def affinity_key(terms: Sequence[Mapping[str, Any]] | None) -> str:
    """A stable text form of ``terms``, to cache per-affinity node masks."""
    return json.dumps(list(terms or ()), sort_keys=True, default=str)
