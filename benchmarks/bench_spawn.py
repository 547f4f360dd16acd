"""Benchmark: many concurrent spawns with LSSTSpawner on a dev cluster.

Starts ``python -m devcluster serve`` (noop runtime) in a subprocess
with N equal nodes, then starts U LSSTSpawners at once in this process, the way
a hub does under a login storm: each creates its home PV and PVC, waits until
bound, chooses the least-loaded node from the shared watch-fed cache, creates
its pod pinned there and waits until it runs. Reports the spread of pods per
node (max - min; the goal is <= 1), the wall time, and the CPU seconds the hub
process and the stand-in's process used meanwhile (less dependent than the wall
time on what else runs on the machine).

Usage::

    .venv/bin/python benchmarks/bench_spawn.py [--users 1000] [--nodes 100] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubernetes_asyncio import client  # noqa: E402
from kubernetes_asyncio.config import kube_config  # noqa: E402
from kubespawner import KubeSpawner, clients  # noqa: E402

from benchmarks._report import write_section  # noqa: E402
from lsst_hub.spawner import LSSTSpawner  # noqa: E402
from tests.spawner.support import HubDB, base_config, make_spawner  # noqa: E402


def start_cluster(nodes: int, state: Path) -> tuple[subprocess.Popen[str], str, Path]:
    kubeconfig = state / "kubeconfig"
    argv = [
        sys.executable, "-m", "devcluster", "serve", "--port", "0",
        "--nodes", str(nodes), "--runtime", "noop", "--kubeconfig", str(kubeconfig),
        "--state-dir", str(state),
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"devcluster did not start: {line!r}")
    return proc, match[1], kubeconfig


def hub_cpu() -> float:
    """CPU seconds this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """CPU seconds process ``pid`` has used (``utime + stime`` of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one(spawner: LSSTSpawner) -> tuple[float, str | None]:
    t0 = time.perf_counter()
    try:
        await spawner.start()
    except Exception as exc:
        return time.perf_counter() - t0, f"{type(exc).__name__}: {exc}"
    return time.perf_counter() - t0, None


async def run(
    users: int, nodes: int, url: str, kubeconfig: Path, token: str, server_pid: int
) -> dict[str, Any]:
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
    clients.load_config.cache_clear()
    cfg = client.Configuration(host=url)
    cfg.api_key = {"authorization": token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    async with client.ApiClient(cfg) as api:
        core = client.CoreV1Api(api)
        await core.create_namespace({"metadata": {"name": "jhub"}})
        config = base_config(
            "jhub",
            url,
            cpu_guarantee=0.1,
            mem_guarantee="256M",
            start_timeout=1800,
            k8s_api_request_timeout=60,
            k8s_api_request_retry_timeout=600,
            home_bind_timeout=600.0,
        )
        hub_db = HubDB()
        spawners = [make_spawner(config, f"user{i:04d}", hub_db=hub_db) for i in range(users)]
        # Start the shared cache and reflectors first: a hub has them running already.
        await LSSTSpawner.placement_cache(spawners[0])
        hub0, server0 = hub_cpu(), process_cpu(server_pid)
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(s) for s in spawners))
        total = time.perf_counter() - t0
        hub_seconds = hub_cpu() - hub0
        server_seconds = process_cpu(server_pid) - server0
        load = os.getloadavg()[0]
        pods = await core.list_namespaced_pod("jhub")
        per_node = Counter(p.spec.node_name for p in pods.items if p.spec.node_name)
        for name in (n.metadata.name for n in (await core.list_node()).items):
            per_node.setdefault(name, 0)
        await LSSTSpawner.stop_placement_cache()
        await KubeSpawner._stop_all_reflectors()
    latencies = sorted(r[0] for r in results)
    failures = [r[1] for r in results if r[1]]
    return {
        "users": users,
        "nodes": nodes,
        "total": total,
        "hub_cpu": hub_seconds,
        "server_cpu": server_seconds,
        "load": load,
        "p50": statistics.median(latencies),
        "p95": latencies[int(0.95 * (len(latencies) - 1))],
        "max": latencies[-1],
        "failures": failures,
        "per_node_max": max(per_node.values()),
        "per_node_min": min(per_node.values()),
        "pods": sum(per_node.values()),
    }


def report(r: dict[str, Any]) -> str:
    spread = r["per_node_max"] - r["per_node_min"]
    verdict = "met" if spread <= 1 else "NOT met"
    lines = [
        "## Concurrent spawns (`benchmarks/bench_spawn.py`)",
        "",
        f"{r['users']} LSSTSpawner starts at once on {r['nodes']} equal dev-cluster nodes "
        "(noop runtime, API stand-in in a separate process on the same machine; each spawn "
        "creates its home PV and PVC, waits until bound, chooses a node from the shared "
        "cache, creates its pod and waits until it runs).",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| pods running | {r['pods']} of {r['users']} |",
        f"| failed spawns | {len(r['failures'])} |",
        f"| pods per node, max - min | {spread} ({r['per_node_min']}..{r['per_node_max']}); "
        f"goal <= 1 {verdict} |",
        f"| total wall time | {r['total']:.1f} s |",
        f"| spawn time p50 / p95 / max | {r['p50']:.1f} / {r['p95']:.1f} / {r['max']:.1f} s |",
        f"| CPU used meanwhile: hub process / stand-in process | {r['hub_cpu']:.1f} / "
        f"{r['server_cpu']:.1f} s |",
        f"| load average (1 min) at the end | {r['load']:.1f} |",
    ]
    if r["failures"]:
        lines += ["", "First failure: `" + r["failures"][0][:300] + "`"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--no-write", action="store_true", help="print, do not update docs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-spawn-") as tmp:
        proc, url, kubeconfig = start_cluster(args.nodes, Path(tmp))
        try:
            found = re.search(r"token: (\S+)", kubeconfig.read_text())
            assert found is not None
            result = asyncio.run(run(args.users, args.nodes, url, kubeconfig, found[1], proc.pid))
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    text = report(result)
    print(text)
    if not args.no_write:
        write_section("spawn", text)


if __name__ == "__main__":
    main()
