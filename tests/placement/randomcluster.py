"""Random clusters and random watch-event sequences for the totals-vs-oracle tests.

A :class:`World` holds the "true" cluster as plain lists (what the API server
would list) next to a :class:`ClusterTotals` fed only with events, so a test can
ask the event-fed totals, :func:`~lsst_hub.placement.choose_node` over the lists
and the oracle over the lists the same question at any point.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

from lsst_hub.placement import NodeUsage, Placement, choose_node
from lsst_hub.placement.totals import ClusterTotals

from .objects import container, node, pod
from .oracle import oracle_choose

NODE_NAMES = [f"node-{i:02d}" for i in range(12)]
NAMESPACES = ["default", "jhub", "monitoring", "other-service"]
TAINTS = [
    {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
    {"key": "maintenance", "value": "", "effect": "NoExecute"},
    {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
]
TOLERATIONS: list[list[dict[str, str]]] = [
    [],
    [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
    [{"key": "maintenance", "operator": "Exists"}],
    [{"operator": "Exists"}],
]
SELECTORS: list[dict[str, str] | None] = [
    None,
    None,
    {"zone": "a"},
    {"gpu": "yes"},
    {"zone": "b", "gpu": "yes"},
]
AFFINITIES: list[list[dict[str, Any]] | None] = [
    None,
    None,
    [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}],
    [
        {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]},
        {
            "matchFields": [
                {"key": "metadata.name", "operator": "In", "values": ["node-01", "node-02"]}
            ]
        },
    ],
    [{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}],
]
CPUS = ["0", "250m", "1", "2", "3500m", "4", "8", "16"]
MEMORIES = ["0", "256Mi", "1Gi", "2Gi", "4Gi", "8Gi", "30Gi", "64Gi"]
REQUEST_CPUS = [0, 0.1, 0.5, 1, 2, 4]
REQUEST_MEMORIES = [0, 256 << 20, 1 << 30, 4 << 30]
# Pods are created between these instants; usage windows start between them too.
T0 = 1_700_000_000
T1 = T0 + 10_000


def _stamp(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_node(rng: random.Random, name: str) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name, "zone": rng.choice("ab")}
    if rng.random() < 0.3:
        labels["gpu"] = "yes"
    return node(
        name,
        cpu=rng.choice(
            ["2", "4", "8", "16", "7500m", "0"] if rng.random() < 0.1 else ["4", "8", "16"]
        ),
        memory=rng.choice(["8Gi", "16Gi", "32Gi", "64Gi", "1e10"]),
        pods=rng.choice(["3", "5", "8", "110", None]) if rng.random() < 0.3 else "110",
        ready=rng.choice([True] * 8 + [False, None]),
        unschedulable=rng.random() < 0.1,
        taints=rng.sample(TAINTS, rng.choice([0, 0, 0, 1, 2])),
        labels=labels,
    )


def random_pod(rng: random.Random, name: str) -> dict[str, Any]:
    node_name = rng.choice([*NODE_NAMES, None, "ghost-node"])
    containers = [
        container(rng.choice(CPUS), rng.choice(MEMORIES)) for _ in range(rng.choice([1, 1, 2]))
    ]
    if rng.random() < 0.1:
        containers.append({"name": "lim", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}})
    init = []
    if rng.random() < 0.2:
        init.append(container(rng.choice(CPUS), rng.choice(MEMORIES)))
    if rng.random() < 0.1:
        init.insert(0, container("500m", "512Mi", restartPolicy="Always"))
    p = pod(
        name,
        node_name,
        namespace=rng.choice(NAMESPACES),
        phase=rng.choice(["Running"] * 6 + ["Pending", "Succeeded", "Failed"]),
        containers=containers,
        init_containers=init,
        overhead={"cpu": "100m", "memory": "64Mi"} if rng.random() < 0.1 else None,
        created=_stamp(rng.uniform(T0, T1)),
    )
    if rng.random() < 0.3:
        p["status"]["startTime"] = _stamp(rng.uniform(T0, T1))
    return p


class World:
    """The true cluster (lists) and a cache fed by events, side by side."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.now = 0.0
        self.totals = ClusterTotals(clock=lambda: self.now, reservation_ttl=50.0)
        self.nodes: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        # Reservations as the reference sees them: key -> (fake pod, expiry).
        self.reserved: dict[str, tuple[dict[str, Any], float]] = {}
        self.usage: dict[str, NodeUsage] = {}
        self.window = float(T0)
        self._serial = 0

    # --- the true state, as the API server would list it
    @staticmethod
    def key(p: dict[str, Any]) -> str:
        return f"{p['metadata']['namespace']}/{p['metadata']['name']}"

    def reference_pods(self) -> list[dict[str, Any]]:
        live = [fake for fake, expires in self.reserved.values() if expires > self.now]
        return [*self.pods.values(), *live]

    def reference(self, **request: Any) -> Placement:
        """The oracle's answer over the lists."""
        return oracle_choose(
            list(self.nodes.values()), self.reference_pods(), usage=self.usage, **request
        )

    def listed(self, **request: Any) -> Placement:
        """The product's :func:`choose_node` over the same lists."""
        return choose_node(
            list(self.nodes.values()), self.reference_pods(), usage=self.usage, **request
        )

    # --- events, applied to both
    def _new_name(self) -> str:
        self._serial += 1
        return f"pod-{self._serial}"

    def add_node(self) -> None:
        name = self.rng.choice(NODE_NAMES)
        self.nodes[name] = random_node(self.rng, name)
        self.totals.set_node(copy.deepcopy(self.nodes[name]))

    def modify_node(self) -> None:
        if not self.nodes:
            return self.add_node()
        name = self.rng.choice(sorted(self.nodes))
        n = self.nodes[name]
        change = self.rng.choice(["cordon", "ready", "taint", "label", "new"])
        if change == "cordon":
            n["spec"]["unschedulable"] = not n["spec"].get("unschedulable", False)
        elif change == "ready":
            for c in n["status"]["conditions"]:
                if c["type"] == "Ready":
                    c["status"] = "False" if c["status"] == "True" else "True"
        elif change == "taint":
            n["spec"]["taints"] = self.rng.sample(TAINTS, self.rng.choice([0, 1, 2]))
        elif change == "label":
            n["metadata"]["labels"]["zone"] = self.rng.choice("ab")
            n["metadata"]["labels"].pop("gpu", None) if self.rng.random() < 0.5 else n["metadata"][
                "labels"
            ].update(gpu="yes")
        else:
            self.nodes[name] = n = random_node(self.rng, name)
        self.totals.set_node(copy.deepcopy(n))

    def delete_node(self) -> None:
        if self.nodes:
            name = self.rng.choice(sorted(self.nodes))
            del self.nodes[name]
            self.totals.remove_node(name)

    def add_pod(self) -> None:
        p = random_pod(self.rng, self._new_name())
        self._set_pod(p)

    def _set_pod(self, p: dict[str, Any]) -> None:
        key = self.key(p)
        self.pods[key] = p
        if p["spec"].get("nodeName") and p["status"]["phase"] not in ("Succeeded", "Failed"):
            # A bound pod takes over from its reservation.
            self.reserved.pop(key, None)
        self.totals.set_pod(copy.deepcopy(p))

    def modify_pod(self) -> None:
        if not self.pods:
            return self.add_pod()
        p = self.pods[self.rng.choice(sorted(self.pods))]
        change = self.rng.choice(["phase", "bind", "status-only", "resize"])
        if change == "resize":
            # In-place resize changes a running pod's requests.
            p["spec"]["containers"][0] = container(self.rng.choice(CPUS), self.rng.choice(MEMORIES))
        elif change == "phase":
            p["status"]["phase"] = self.rng.choice(["Running", "Succeeded", "Failed"])
        elif change == "bind":
            p["spec"]["nodeName"] = self.rng.choice(NODE_NAMES)
        else:
            p["status"]["podIP"] = f"10.0.0.{self.rng.randrange(256)}"
        self._set_pod(p)

    def delete_pod(self) -> None:
        if self.pods:
            key = self.rng.choice(sorted(self.pods))
            p = self.pods.pop(key)
            self.totals.remove_pod(copy.deepcopy(p))

    def new_usage(self) -> None:
        # Windows move forward, as metrics samples do.
        self.window += self.rng.uniform(0, 2_000)
        names = [n for n in NODE_NAMES if self.rng.random() < 0.7]
        self.usage = {
            n: NodeUsage(
                self.rng.uniform(0, 12),
                self.rng.randrange(0, 40 << 30),
                # Always with a window: the reference cannot express reservations
                # otherwise (the cache counts them as unmeasured usage regardless).
                self.window,
            )
            for n in names
        }
        self.totals.set_usage(self.usage)

    def reserve(self) -> None:
        # Sometimes for a pending pod's key (to be bound later), sometimes a new key.
        pending = [k for k, p in self.pods.items() if not p["spec"].get("nodeName")]
        if pending and self.rng.random() < 0.5:
            key = self.rng.choice(sorted(pending))
        else:
            key = f"jhub/{self._new_name()}"
        node_name = self.rng.choice(NODE_NAMES)
        cpu = self.rng.choice(REQUEST_CPUS)
        memory = self.rng.choice(REQUEST_MEMORIES)
        fake = pod(
            f"reservation-{key.replace('/', '-')}",
            node_name,
            cpu=str(cpu),
            memory=str(memory),
            namespace="reservations",
            # Not yet in any usage sample: created after every window.
            created="2100-01-01T00:00:00Z",
        )
        self.reserved[key] = (fake, self.now + 50.0)
        self.totals.reserve(key, node_name, cpu, memory)

    def release(self) -> None:
        if self.reserved:
            key = self.rng.choice(sorted(self.reserved))
            del self.reserved[key]
            self.totals.release(key)

    def tick(self) -> None:
        self.now += self.rng.uniform(0, 20)
        self.reserved = {k: v for k, v in self.reserved.items() if v[1] > self.now}

    def relist(self) -> None:
        """What the cache does after a 410 Gone: replace everything with a fresh list."""
        self.totals.replace_nodes(copy.deepcopy(list(self.nodes.values())))
        self.totals.replace_pods(copy.deepcopy(list(self.pods.values())))

    def random_event(self) -> None:
        events: list[tuple[Callable[[], None], int]] = [
            (self.add_pod, 10),
            (self.modify_pod, 6),
            (self.delete_pod, 4),
            (self.add_node, 2),
            (self.modify_node, 3),
            (self.delete_node, 1),
            (self.new_usage, 2),
            (self.reserve, 3),
            (self.release, 1),
            (self.tick, 2),
            (self.relist, 1),
        ]
        action = self.rng.choices([e for e, _ in events], weights=[w for _, w in events])[0]
        action()

    def random_request(self) -> dict[str, Any]:
        rng = self.rng
        return {
            "cpu": rng.choice(REQUEST_CPUS),
            "memory": rng.choice(REQUEST_MEMORIES),
            "node_selector": rng.choice(SELECTORS),
            "node_affinity": rng.choice(AFFINITIES),
            "tolerations": rng.choice(TOLERATIONS),
            "load_metric": rng.choice(["requests", "usage"]),
            "exclude": rng.sample(NODE_NAMES, rng.choice([0, 0, 0, 1, 3])),
        }
