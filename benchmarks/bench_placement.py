"""Placement benchmarks: decision time at scale, and usage-aware balance.

Run ``python -m benchmarks.bench_placement`` (``--quick`` for a small smoke run
that writes nothing). Figures go to the ``placement`` section of
docs/benchmarks.md.

1. **Decision time.** A cache holding 5,000 nodes and 150,000 pods (fed through
   the same ``set_node``/``set_pod`` calls the watch loop makes for each event,
   from synthetic objects: no HTTP for this side) answers placement decisions;
   median and p99 over many decisions, each followed by a reservation as the
   spawner makes. Against it: listing all pods and nodes from the dev cluster
   over HTTP and running ``choose_node`` on the lists (a fresh ``ClusterTotals``),
   per decision (what a spawner without a cache would do).
2. **Usage-aware balance.** 20 nodes already carry pods whose measured usage
   differs from their requests; 500 notebook servers, whose usage also differs
   from their requests, arrive one by one while metrics samples lag behind.
   Peak node usage at the end against the perfectly balanced ideal, for our
   placement by usage and by requests, kube-scheduler's LeastAllocated and
   Zero-to-JupyterHub's MostAllocated packing, over 100 scenarios; two
   yardsticks (our rule with instant metrics, and a clairvoyant greedy) bound
   what better estimates could gain. Then the same scenarios with servers'
   usage capped by limits at 4x their requests.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import math
import random
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any

from lsst_hub.placement import LoadMetric, NodeUsage, choose_node
from lsst_hub.placement.totals import ClusterTotals

from ._report import write_section

GiB = 1 << 30
NAMESPACES = ["jhub", "monitoring", "batch", "kube-system", "science-platform"]


# --------------------------------------------------------------------------- objects


def make_node(i: int, rng: random.Random) -> dict[str, Any]:
    name = f"node-{i:05d}"
    spec: dict[str, Any] = {}
    if i % 50 == 0:
        spec["taints"] = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    if i % 97 == 0:
        spec["unschedulable"] = True
    allocatable = {"cpu": "63500m", "memory": "250Gi", "pods": "110", "ephemeral-storage": "900Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": str(uuid.UUID(int=(1 << 64) + i)),
            "creationTimestamp": "2026-11-01T00:00:00Z",
            "labels": {
                "kubernetes.io/hostname": name,
                "topology.kubernetes.io/zone": f"zone-{i % 3}",
                "node-role.kubernetes.io/worker": "",
            },
        },
        "spec": spec,
        "status": {
            "allocatable": allocatable,
            "capacity": {**allocatable, "cpu": "64", "memory": "256Gi"},
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "False" if i % 211 == 0 else "True"},
            ],
        },
    }


def make_pod(i: int, node_name: str, rng: random.Random) -> dict[str, Any]:
    cpu = rng.choice(["100m", "250m", "500m", "1", "2"])
    memory = rng.choice(["256Mi", "512Mi", "1Gi", "2Gi", "4Gi"])
    containers = [
        {
            "name": "main",
            "image": "registry.example.org/app:1.0",
            "resources": {"requests": {"cpu": cpu, "memory": memory}},
        }
    ]
    if i % 4 == 0:
        containers.append(
            {
                "name": "sidecar",
                "image": "registry.example.org/proxy:1.0",
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"pod-{i}",
            "uid": str(uuid.UUID(int=i + 1)),
            "namespace": NAMESPACES[i % len(NAMESPACES)],
            "creationTimestamp": "2026-11-27T10:00:00Z",
            "resourceVersion": str(i + 10),
        },
        "spec": {"nodeName": node_name, "containers": containers},
        "status": {"phase": "Succeeded" if i % 40 == 0 else "Running"},
    }


def synthetic_cluster(
    n_nodes: int, n_pods: int, seed: int = 1
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    nodes = [make_node(i, rng) for i in range(n_nodes)]
    pods = [
        make_pod(i, nodes[rng.randrange(n_nodes)]["metadata"]["name"], rng) for i in range(n_pods)
    ]
    return nodes, pods


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


# ------------------------------------------------------------------ decision time


@dataclass
class DecisionFigures:
    nodes: int
    pods: int
    ingest_s: float
    decisions: int
    median_ms: float
    p99_ms: float
    selector_median_ms: float
    event_us: float


def bench_cache(n_nodes: int, n_pods: int, n_decisions: int) -> DecisionFigures:
    nodes, pods = synthetic_cluster(n_nodes, n_pods)
    book = ClusterTotals()
    t0 = time.perf_counter()
    for node in nodes:
        book.set_node(node)
    for pod in pods:
        book.set_pod(pod)
    ingest = time.perf_counter() - t0

    # Check once that the event-fed totals answer as totals built from the full lists.
    reference = choose_node(nodes, pods, 2, 8 * GiB)
    assert book.choose(2, 8 * GiB) == reference, (book.choose(2, 8 * GiB), reference)

    rng = random.Random(2)
    times: list[float] = []
    for i in range(n_decisions):
        cpu = rng.choice([0.5, 1, 2, 4])
        memory = rng.choice([2, 4, 8, 16]) * GiB
        t = time.perf_counter()
        placement = book.choose(cpu, memory)
        times.append(time.perf_counter() - t)
        assert placement.node is not None
        book.reserve(f"jhub/jupyter-user{i}", placement.node, cpu, memory)
    sel_times: list[float] = []
    for _ in range(max(50, n_decisions // 10)):
        t = time.perf_counter()
        book.choose(1, 4 * GiB, node_selector={"topology.kubernetes.io/zone": "zone-1"})
        sel_times.append(time.perf_counter() - t)

    # Cost of one watch event: a status-only MODIFIED, then a pod added and deleted.
    extra = make_pod(n_pods + 1, nodes[7]["metadata"]["name"], rng)
    t = time.perf_counter()
    rounds = 2000
    for _ in range(rounds):
        book.set_pod(extra)
        book.remove_pod(extra)
    event_us = (time.perf_counter() - t) / (2 * rounds) * 1e6
    return DecisionFigures(
        n_nodes,
        n_pods,
        ingest,
        n_decisions,
        statistics.median(times) * 1e3,
        percentile(times, 99) * 1e3,
        statistics.median(sel_times) * 1e3,
        event_us,
    )


@dataclass
class HttpFigures:
    nodes: int
    pods: int
    load_s: float
    list_repetitions: int
    list_median_ms: float
    list_bytes: int
    cache_start_s: float
    cache_decisions: int
    cache_median_ms: float
    cache_p99_ms: float
    same_choice: bool


async def bench_over_devcluster(
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    repetitions: int,
    n_decisions: int,
) -> HttpFigures:
    """Both paths over real HTTP against the dev cluster holding the same cluster.

    The objects are put into the dev cluster's store directly (bypassing schema
    validation, which would take minutes for 150,000 pods); everything the
    benchmark then reads goes through its HTTP API.
    """
    from kubernetes_asyncio.client import CoreV1Api

    from devcluster import DevCluster
    from devcluster.registry import NODES, PODS
    from lsst_hub.placement import ClusterCache

    async with DevCluster(nodes=0, kubelet_events=False, history=len(pods) + 10_000) as cluster:
        t = time.perf_counter()
        for node in nodes:
            cluster.store.put(NODES, copy.deepcopy(node))
        for i, pod in enumerate(pods):
            cluster.store.put(PODS, copy.deepcopy(pod))
            if i % 2000 == 0:
                await asyncio.sleep(0)  # let the simulated kubelet keep up
        await asyncio.sleep(0.5)
        load_s = time.perf_counter() - t

        async with cluster.api_client() as api:
            core = CoreV1Api(api)
            times = []
            size = 0
            reference = None
            for _ in range(repetitions):
                t = time.perf_counter()
                # Raw responses: _preload_content=False returns the unparsed body.
                node_resp: Any = await core.list_node(_preload_content=False)
                pod_resp: Any = await core.list_pod_for_all_namespaces(_preload_content=False)
                node_raw, pod_raw = await node_resp.read(), await pod_resp.read()
                listed_nodes = json.loads(node_raw)["items"]
                listed_pods = json.loads(pod_raw)["items"]
                reference = choose_node(listed_nodes, listed_pods, 2, 8 * GiB)
                times.append(time.perf_counter() - t)
                size = len(node_raw) + len(pod_raw)

            cache = ClusterCache(api, metrics_interval=None, list_page_size=5000)
            t = time.perf_counter()
            await cache.start()
            start_s = time.perf_counter() - t
            try:
                same = cache.choose(2, 8 * GiB) == reference
                rng = random.Random(3)
                decisions: list[float] = []
                for i in range(n_decisions):
                    cpu = rng.choice([0.5, 1, 2, 4])
                    memory = rng.choice([2, 4, 8, 16]) * GiB
                    t = time.perf_counter()
                    placement = cache.choose(cpu, memory)
                    decisions.append(time.perf_counter() - t)
                    assert placement.node is not None
                    cache.reserve(f"jhub/jupyter-http-{i}", placement.node, cpu, memory)
            finally:
                await cache.stop()
    return HttpFigures(
        len(nodes),
        len(pods),
        load_s,
        repetitions,
        statistics.median(times) * 1e3,
        size,
        start_s,
        n_decisions,
        statistics.median(decisions) * 1e3,
        percentile(decisions, 99) * 1e3,
        same,
    )


# -------------------------------------------------------------- usage-aware balance


@dataclass
class Server:
    node: str
    start: float
    cpu: float  # actual usage, cores
    memory: float  # actual usage, bytes


@dataclass
class BalanceScenario:
    n_nodes: int = 20
    node_cpu: float = 32.0
    node_memory: int = 128 * GiB
    base_pods: int = 12  # per node, each requesting 1 CPU / 4 GiB
    new_servers: int = 500
    request_cpu: float = 0.5
    request_memory: int = 2 * GiB
    seconds_between_spawns: float = 3.0
    metrics_period: float = 15.0  # metrics-server resolution and window
    seed: int = 7
    # Servers' limits as a multiple of their requests, or None for no limits. With
    # limits the kernel caps usage there (CPU throttled; memory beyond the limit is
    # OOM-killed), so the draws are capped; placement still sees only requests.
    limit_factor: float | None = None


def _lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    mu = math.log(mean) - sigma**2 / 2
    return rng.lognormvariate(mu, sigma)


def balance_run(
    strategy: str, sc: BalanceScenario, details: dict[str, Any] | None = None
) -> dict[str, float]:
    """Place ``sc.new_servers`` servers with one strategy; return peak and ideal usage."""
    rng = random.Random(sc.seed)
    names = [f"node-{i:02d}" for i in range(sc.n_nodes)]
    nodes = [
        {
            "metadata": {"name": n},
            "spec": {},
            "status": {
                "allocatable": {
                    "cpu": str(sc.node_cpu),
                    "memory": str(sc.node_memory),
                    "pods": "110",
                },
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
        for n in names
    ]
    # Existing pods request the same on every node, but use very differently: some
    # nodes run busy batch work above its requests, others idle notebooks.
    base_usage: dict[str, tuple[float, float]] = {}
    pods: list[dict[str, Any]] = []
    for n in names:
        cpu_factor = rng.uniform(0.1, 1.2)
        mem_factor = rng.uniform(0.1, 1.2)
        base_usage[n] = (
            sc.base_pods * 1.0 * cpu_factor,
            sc.base_pods * 4 * GiB * mem_factor,
        )
        for j in range(sc.base_pods):
            pods.append(_bench_pod(f"{n}-base-{j}", n, 1.0, 4 * GiB, "2026-01-01T00:00:00Z"))
    # Each new server's usage is unknown when it is placed (notebooks mostly idle,
    # a few busy); the same draws are used for every strategy.
    draws = [
        (_lognormal(rng, 0.35, 0.9), _lognormal(rng, 1.2 * GiB, 0.6)) for _ in range(sc.new_servers)
    ]
    if sc.limit_factor is not None:
        cap_cpu, cap_mem = sc.limit_factor * sc.request_cpu, sc.limit_factor * sc.request_memory
        draws = [(min(c, cap_cpu), min(m, cap_mem)) for c, m in draws]

    book = ClusterTotals()
    for node in nodes:
        book.set_node(node)
    for pod in pods:
        book.set_pod(pod)
    requested = {n: [sc.base_pods * 1.0, sc.base_pods * 4.0 * GiB] for n in names}
    servers: list[Server] = []
    epoch = 1_800_000_000.0
    last_sample = -math.inf

    def sample(now: float) -> None:
        # A metrics sample at `now` covers [now - period, now]: servers that started
        # before the window are in it with their real usage.
        usage = {}
        for n in names:
            cpu, mem = base_usage[n]
            for s in servers:
                if s.node == n and s.start <= now - sc.metrics_period:
                    cpu += s.cpu
                    mem += s.memory
            usage[n] = NodeUsage(cpu, int(mem), epoch + now - sc.metrics_period)
        book.set_usage(usage)

    for i, (cpu_use, mem_use) in enumerate(draws):
        now = i * sc.seconds_between_spawns
        if now - last_sample >= sc.metrics_period:
            last_sample = now
            sample(now)
        chosen: str | None
        if strategy in ("usage", "requests"):
            metric: LoadMetric = "usage" if strategy == "usage" else "requests"
            chosen = book.choose(sc.request_cpu, sc.request_memory, load_metric=metric).node
        elif strategy == "clairvoyant":
            chosen = _greedy_known(names, base_usage, servers, requested, sc, cpu_use, mem_use)
        elif strategy == "instant":
            chosen = _greedy_known(
                names, base_usage, servers, requested, sc, sc.request_cpu, sc.request_memory
            )
        else:
            chosen = _kube_score(strategy, names, requested, sc)
        assert chosen is not None, f"{strategy}: nothing fits after {i} servers"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch + now))
        book.set_pod(_bench_pod(f"server-{i}", chosen, sc.request_cpu, sc.request_memory, stamp))
        requested[chosen][0] += sc.request_cpu
        requested[chosen][1] += sc.request_memory
        servers.append(Server(chosen, now, cpu_use, mem_use))

    final_cpu = {n: base_usage[n][0] for n in names}
    final_mem = {n: base_usage[n][1] for n in names}
    for s in servers:
        final_cpu[s.node] += s.cpu
        final_mem[s.node] += s.memory
    if details is not None:
        details.update(
            {
                n: (
                    round(final_cpu[n] / sc.node_cpu, 3),
                    round(final_mem[n] / sc.node_memory, 3),
                    sum(1 for s in servers if s.node == n),
                )
                for n in names
            }
        )
    peak_cpu = max(final_cpu.values()) / sc.node_cpu
    peak_mem = max(final_mem.values()) / sc.node_memory
    peak = max(max(final_cpu[n] / sc.node_cpu, final_mem[n] / sc.node_memory) for n in names)
    ideal_cpu = sum(final_cpu.values()) / (sc.node_cpu * sc.n_nodes)
    ideal_mem = sum(final_mem.values()) / (sc.node_memory * sc.n_nodes)
    return {
        "peak": peak,
        "ideal": fluid_ideal(sc, base_usage, sum(c for c, _ in draws), sum(m for _, m in draws)),
        "naive_ideal": max(ideal_cpu, ideal_mem),
        "peak_cpu": peak_cpu,
        "ideal_cpu": ideal_cpu,
        "peak_mem": peak_mem,
        "ideal_mem": ideal_mem,
        "nodes_used": len({s.node for s in servers}),
        "heaviest_cpu": max(c for c, _ in draws) / sc.node_cpu,
    }


def fluid_ideal(
    sc: BalanceScenario,
    base_usage: dict[str, tuple[float, float]],
    servers_cpu: float,
    servers_memory: float,
) -> float:
    """The lowest peak node usage any placement could reach: the balanced optimum.

    Servers are treated as a fluid with their average usage (so no placement,
    even one knowing every server's usage in advance, can do better); existing
    pods stay where they are; each node takes at most as many servers as its
    free requests allow. Water-filling: the smallest level ``t`` such that the
    nodes, each filled up to ``t`` in both CPU and memory, hold all servers.
    """
    n = sc.new_servers
    per_cpu, per_mem = servers_cpu / n, servers_memory / n
    cap = min(
        (sc.node_cpu - sc.base_pods * 1.0) / sc.request_cpu,
        (sc.node_memory - sc.base_pods * 4.0 * GiB) / sc.request_memory,
    )

    def room(level: float) -> float:
        total = 0.0
        for cpu, mem in base_usage.values():
            fits = min(
                (level * sc.node_cpu - cpu) / per_cpu, (level * sc.node_memory - mem) / per_mem
            )
            total += min(max(fits, 0.0), cap)
        return total

    lo = max(max(c / sc.node_cpu, m / sc.node_memory) for c, m in base_usage.values())
    hi = 100.0
    if room(lo) >= n:
        return lo
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if room(mid) >= n else (mid, hi)
    return hi


def _bench_pod(name: str, node: str, cpu: float, memory: int, created: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "jhub", "creationTimestamp": created},
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "c", "resources": {"requests": {"cpu": str(cpu), "memory": str(memory)}}}
            ],
        },
        "status": {"phase": "Running"},
    }


def _greedy_known(
    names: list[str],
    base_usage: dict[str, tuple[float, float]],
    servers: list[Server],
    requested: dict[str, list[float]],
    sc: BalanceScenario,
    cpu_use: float,
    mem_use: float,
) -> str | None:
    """Yardsticks, not strategies: greedy least-loaded knowing the true usage of every
    server already placed the moment it starts (no metrics lag), and counting the new
    server as ``cpu_use``/``mem_use``: its true usage ("clairvoyant") or its request
    ("instant": ours with perfect, instant metrics)."""
    cpu = {n: base_usage[n][0] for n in names}
    mem = {n: base_usage[n][1] for n in names}
    for s in servers:
        cpu[s.node] += s.cpu
        mem[s.node] += s.memory
    best: tuple[float, float, str] | None = None
    for n in names:
        if (
            requested[n][0] + sc.request_cpu > sc.node_cpu
            or requested[n][1] + sc.request_memory > sc.node_memory
        ):
            continue
        fractions = ((cpu[n] + cpu_use) / sc.node_cpu, (mem[n] + mem_use) / sc.node_memory)
        key = (max(fractions), min(fractions), n)  # ours' rule: max, then min, then name
        if best is None or key < best:
            best = key
    return best[2] if best else None


def _kube_score(
    strategy: str, names: list[str], requested: dict[str, list[float]], sc: BalanceScenario
) -> str | None:
    """kube-scheduler's NodeResourcesFit scoring (LeastAllocated / MostAllocated).

    Score per resource = (allocatable - requested) / allocatable * 100 (least) or
    requested / allocatable * 100 (most), requested including the new pod, averaged
    over CPU and memory with equal weights; the highest score wins, ties to the
    first name (kube-scheduler breaks ties at random).
    """
    best: tuple[float, str] | None = None
    for n in names:
        cpu = requested[n][0] + sc.request_cpu
        mem = requested[n][1] + sc.request_memory
        if cpu > sc.node_cpu or mem > sc.node_memory:
            continue
        fractions = (cpu / sc.node_cpu, mem / sc.node_memory)
        if strategy == "least":
            score = sum((1 - f) * 100 for f in fractions) / 2
        else:
            score = sum(f * 100 for f in fractions) / 2
        if best is None or score > best[0]:
            best = (score, n)
    return best[1] if best else None


# ----------------------------------------------------------------------- report


STRATEGIES = [
    ("usage", 'lsst-hub, `load_metric="usage"`'),
    ("requests", 'lsst-hub, `load_metric="requests"`'),
    ("least", "kube-scheduler LeastAllocated (modelled)"),
    ("most", "Z2JH user-scheduler MostAllocated (modelled)"),
    ("instant", "yardstick: ours with instant metrics (no lag)"),
    ("clairvoyant", "yardstick: greedy knowing each server's usage in advance"),
]


# Limits at 4x the requests (2 CPU / 8 GiB for these servers), a common notebook sizing.
LIMIT_FACTOR = 4.0


def bench_balance(
    seeds: list[int], limit_factor: float | None = None
) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {key: [] for key, _ in STRATEGIES}
    for seed in seeds:
        sc = BalanceScenario(seed=seed, limit_factor=limit_factor)
        for key, _ in STRATEGIES:
            runs[key].append(balance_run(key, sc))
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes; write nothing")
    parser.add_argument("--list-repetitions", type=int, default=3)
    # 100 scenarios: with 10, the worst case is mostly luck of the draw (placement
    # variants that differed by 0.05 in the worst of 10 were equal over 100).
    parser.add_argument("--seeds", type=int, default=100, help="balance scenarios to run")
    args = parser.parse_args(argv)
    n_nodes, n_pods, n_dec = (500, 15_000, 300) if args.quick else (5_000, 150_000, 3_000)

    cache = bench_cache(n_nodes, n_pods, n_dec)
    print(
        f"cache (synthetic events): {cache.nodes} nodes / {cache.pods} pods, "
        f"ingest {cache.ingest_s:.1f}s, decision median {cache.median_ms:.3f} ms "
        f"p99 {cache.p99_ms:.3f} ms, with selector {cache.selector_median_ms:.3f} ms, "
        f"event {cache.event_us:.1f} us",
        flush=True,
    )
    nodes, pods = synthetic_cluster(n_nodes, n_pods)
    http = asyncio.run(bench_over_devcluster(nodes, pods, args.list_repetitions, n_dec))
    print(
        f"devcluster: load {http.load_s:.1f}s; list per decision median "
        f"{http.list_median_ms:.0f} ms ({http.list_bytes / 1e6:.0f} MB); cache start "
        f"{http.cache_start_s:.1f}s, decisions median {http.cache_median_ms:.3f} ms "
        f"p99 {http.cache_p99_ms:.3f} ms; same choice {http.same_choice}",
        flush=True,
    )

    seeds = list(range(1, (min(args.seeds, 10) if args.quick else args.seeds) + 1))
    runs = bench_balance(seeds)
    limited = bench_balance(seeds, LIMIT_FACTOR)
    for title, by_strategy in (("no limits", runs), (f"limits {LIMIT_FACTOR:g}x", limited)):
        for key, label in STRATEGIES:
            ratios = [r["peak"] / r["ideal"] for r in by_strategy[key]]
            print(
                f"{title}, {label}: peak/ideal mean {statistics.mean(ratios):.3f} "
                f"p90 {percentile(ratios, 90):.3f} worst {max(ratios):.3f}, "
                f"<= 1.1 in {sum(x <= 1.1 for x in ratios)} of {len(ratios)}"
            )
    if args.quick:
        return
    write_section("placement", report(cache, http, runs, limited))


def report(
    cache: DecisionFigures,
    http: HttpFigures,
    runs: dict[str, list[dict[str, float]]],
    limited: dict[str, list[dict[str, float]]],
) -> str:
    speedup = http.list_median_ms / http.cache_median_ms
    sc = BalanceScenario()
    lines = [
        "## Placement",
        "",
        "### Decision time",
        "",
        f"A cluster of {http.nodes:,} nodes (64 CPU / 256 GiB; some tainted, cordoned or "
        f"NotReady) and {http.pods:,} pods in 5 namespaces (1 in 40 terminated) is put in "
        f"the dev cluster's store ({http.load_s:.0f} s, bypassing schema validation). Then, "
        "over HTTP:",
        "",
        f"- **list per decision**: list all nodes and all pods "
        f"({http.list_bytes / 1e6:.0f} MB of JSON), decode, run `choose_node` (which "
        f"builds a fresh `ClusterTotals` from the lists); {http.list_repetitions} "
        "repetitions (the dev cluster serves from "
        "the same process, so its time to answer is included, as a real API server's would "
        "be).",
        f"- **cache**: `ClusterCache.start()` lists once ({http.cache_start_s:.1f} s; it asks "
        "for pages of 5,000, the dev cluster answers in one) and watches; then "
        f"{http.cache_decisions:,} decisions of mixed sizes "
        "(0.5-4 CPU, 2-16 GiB), each followed by a reservation as the spawner makes. "
        + (
            "The first decision equals the one from the lists."
            if http.same_choice
            else "**The first decision differed from the one from the lists.**"
        ),
        f"- **cache, synthetic events**: the same numbers of objects fed to `ClusterTotals` "
        f"through the per-event calls the watch loop makes (no HTTP): loading took "
        f"{cache.ingest_s:.1f} s, one watch event costs {cache.event_us:.1f} µs.",
        "",
        "| path | median ms | p99 ms |",
        "|---|---|---|",
        f"| list per decision (HTTP) | {http.list_median_ms:,.0f} | |",
        f"| cache fed over HTTP | {http.cache_median_ms:.3f} | {http.cache_p99_ms:.3f} |",
        f"| cache, synthetic events | {cache.median_ms:.3f} | {cache.p99_ms:.3f} |",
        f"| cache, synthetic events, zone node selector | {cache.selector_median_ms:.3f} | |",
        "",
        "Goals:",
        "",
        f"- median <= 1 ms from the cache: {http.cache_median_ms:.3f} ms, "
        + ("met" if http.cache_median_ms <= 1 else "**missed**"),
        f"- >= 100x faster than listing per decision: {speedup:,.0f}x, "
        + ("met" if speedup >= 100 else "**missed**"),
        "",
        "### Usage-aware balance",
        "",
        f"{sc.n_nodes} nodes of {sc.node_cpu:g} CPU / {sc.node_memory // GiB} GiB each carry "
        f"{sc.base_pods} pods requesting 1 CPU / 4 GiB whose measured usage is 0.1x to 1.2x "
        "their requests (drawn per node, for CPU and memory apart: busy batch work on some "
        f"nodes, idle services on others). {sc.new_servers} servers requesting "
        f"{sc.request_cpu:g} CPU / {sc.request_memory // GiB} GiB arrive one every "
        f"{sc.seconds_between_spawns:g} s; each uses a log-normal draw (CPU mean 0.35 cores, "
        "sigma 0.9; memory mean 1.2 GiB, sigma 0.6), unknown when it is placed. Metrics are "
        "sampled "
        f"every {sc.metrics_period:g} s over a {sc.metrics_period:g} s window, so a server "
        "shows in usage one sample after it starts (until then our usage scoring counts its "
        "request). A node's usage is max(CPU fraction, memory fraction) at the end.",
        "",
        "The **ideal** is the perfectly balanced level: water-filling the servers, as a "
        "fluid with their average usage, over the nodes as they are (existing pods stay "
        "put; each node takes at most what its free requests allow). The naive cluster-wide "
        "average is lower but unreachable here: nodes busy in CPU are often idle in memory "
        "and the reverse, and servers need both. Real servers are not a fluid: a placement "
        "that knew each server's usage in advance can go below the ideal by sending "
        "CPU-heavy servers to CPU-idle nodes, and one that does not know it ends above the "
        "ideal whenever a heavy server lands late on a node already at the level.",
        "",
        "Ours runs the real `ClusterTotals`. kube-scheduler's LeastAllocated and "
        "Zero-to-JupyterHub's MostAllocated are modelled in the benchmark with "
        "NodeResourcesFit's scoring formulas over requests (equal CPU/memory weights; ties "
        "to the first node). Two yardsticks, not strategies, bound what placement could "
        "gain: *instant metrics* is our rule fed the true usage of every server already "
        "placed the moment it starts (no metrics lag, so no guess for servers not yet "
        "measured: the most any better estimate of those could reach), counting the new "
        "server by its request as ours must; *clairvoyant* also knows the new server's own "
        "usage. The same draws are used for every strategy; "
        f"{len(runs['usage'])} scenarios (seeds 1 to {len(runs['usage'])}).",
        "",
        "| strategy | mean peak | mean ideal | peak / ideal: mean | median | p90 | worst "
        "| scenarios <= 1.1x | peak / naive average |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label in STRATEGIES:
        rs = runs[key]
        ratios = [r["peak"] / r["ideal"] for r in rs]
        naive = [r["peak"] / r["naive_ideal"] for r in rs]
        lines.append(
            f"| {label} | {statistics.mean(r['peak'] for r in rs):.1%} | "
            f"{statistics.mean(r['ideal'] for r in rs):.1%} | {statistics.mean(ratios):.2f} | "
            f"{statistics.median(ratios):.2f} | {percentile(ratios, 90):.2f} | "
            f"{max(ratios):.2f} | {sum(x <= 1.1 for x in ratios)} of {len(ratios)} | "
            f"{statistics.mean(naive):.2f} |"
        )

    def ratios_of(key: str) -> list[float]:
        return [r["peak"] / r["ideal"] for r in runs[key]]

    ours = ratios_of("usage")
    worst_at = max(range(len(ours)), key=ours.__getitem__)
    first = ours[:10]
    others = {key: statistics.mean(ratios_of(key)) for key in ("requests", "least", "most")}
    lower = {
        key: sum(a["peak"] < b["peak"] for a, b in zip(runs["usage"], runs[key], strict=True))
        for key in others
    }
    beaten = all(n == len(ours) for n in lower.values())
    instant, clairvoyant = ratios_of("instant"), ratios_of("clairvoyant")
    lines += [
        "",
        "Goals:",
        "",
        f"- usage-aware peak <= 1.1x ideal: mean {statistics.mean(ours):.2f}x "
        + ("met" if statistics.mean(ours) <= 1.1 else "**missed**")
        + f"; in {sum(x <= 1.1 for x in ours)} of {len(ours)} scenarios "
        + (
            "(every one), met"
            if max(ours) <= 1.1
            else f"(worst {max(ours):.2f}x, seed {worst_at + 1}): **missed in the others**"
        )
        + ".",
        f"- below every other strategy: best other mean {min(others.values()):.2f}x; lower "
        + (
            "in every scenario, met"
            if beaten
            else "than "
            + ", ".join(f"{key} in {n} of {len(ours)}" for key, n in lower.items())
            + ": **not in every scenario**"
        )
        + ".",
        "",
        "Why the worst scenarios stay above 1.1x: the misses come from the log-normal tail "
        "of server usage, not from the metrics lag nor from counting unmeasured servers "
        f"by their request. The heaviest server of a scenario uses "
        f"{statistics.median(r['heaviest_cpu'] for r in runs['usage']):.0%} of a node's "
        f"CPU (median over scenarios; up to "
        f"{max(r['heaviest_cpu'] for r in runs['usage']):.0%}), and where one starts late, "
        "on the node that was least loaded, that node ends that far above the level. With "
        f"instant metrics the mean is {statistics.mean(instant):.2f}x "
        f"({sum(x <= 1.1 for x in instant)} of {len(instant)} scenarios <= 1.1x, worst "
        f"{max(instant):.2f}x), so no estimate of servers not yet measured can reach the "
        "goal in every scenario; even the clairvoyant greedy placement exceeds it in "
        f"{sum(x > 1.1 for x in clairvoyant)} (worst {max(clairvoyant):.2f}x). The previous "
        "edition of this page ran only the first 10 scenarios; on them ours still gives "
        f"mean {statistics.mean(first):.2f}x, worst {max(first):.2f}x.",
        "",
        f"**With limits.** The same scenarios with each server limited to "
        f"{LIMIT_FACTOR:g}x its requests ({LIMIT_FACTOR * sc.request_cpu:g} CPU / "
        f"{LIMIT_FACTOR * sc.request_memory / GiB:g} GiB; the shipped "
        "`jupyterhub_config.py` sets no limit unless `LSST_HUB_CPU_LIMIT` / "
        "`LSST_HUB_MEM_LIMIT` are given): the kernel caps each server's usage there, "
        "which cuts the tail; placement is unchanged (it sees requests and measured usage "
        "only).",
        "",
        "| strategy | peak / ideal: mean | p90 | worst | scenarios <= 1.1x |",
        "|---|---|---|---|---|",
    ]
    for key, label in STRATEGIES:
        ratios = [r["peak"] / r["ideal"] for r in limited[key]]
        lines.append(
            f"| {label} | {statistics.mean(ratios):.2f} | {percentile(ratios, 90):.2f} | "
            f"{max(ratios):.2f} | {sum(x <= 1.1 for x in ratios)} of {len(ratios)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
