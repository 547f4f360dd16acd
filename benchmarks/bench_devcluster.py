"""Benchmark the dev cluster: 5,000 nodes and 150,000 pods, then list and watch.

Run: ``python -m benchmarks.bench_devcluster [--nodes 5000 --pods 150000]``.

The cluster runs as ``python -m devcluster serve`` in a subprocess (its
RSS is read from /proc); the client is a plain aiohttp session with
``--concurrency`` requests in flight. Phases:

1. start with N nodes (each validated and registered through the registry);
2. bulk-create the pods over HTTP, one POST each, full schema validation. All but
   ``--scheduled`` of them name their node (pre-bound, as density tests do), so the
   bulk figure measures the API server and kubelet, not the scheduler; the last
   ``--scheduled`` pods go through the scheduler (5,000 nodes: kube-scheduler's
   adaptive percentageOfNodesToScore looks at 500 feasible nodes per pod);
3. with everything stored and a watch open, sequential requests at rest:
   get, create (latency to the 201 and to the ADDED event on the open watch),
   namespaced list with a label selector, list of one node's pods (index);
4. full lists of all pods (one page, then pages of 500 as the placement cache
   asks for them), and a watch from resourceVersion 0 (initial ADDED events for
   every pod) read to the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks._report import write_section

ROOT = Path(__file__).resolve().parent.parent


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def pod_body(i: int, node: str | None, namespaces: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"jupyter-user{i}",
            "namespace": f"bench-{i % namespaces}",
            "labels": {
                "app": "jupyterhub",
                "component": "singleuser-server",
                "hub.jupyter.org/username": f"user{i}",
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/jupyterhub/k8s-singleuser-sample:4.0.0",
                    "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "env": [{"name": "JUPYTERHUB_USER", "value": f"user{i}"}],
                }
            ],
            "securityContext": {"runAsUser": 20000 + i, "runAsGroup": 20000, "fsGroup": 20000},
        },
    }
    if node is not None:
        body["spec"]["nodeName"] = node
    return body


class Bench:
    def __init__(self, url: str, token: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body)
        async with self.session.request(
            method, self.url + path, data=data, headers=self.headers
        ) as r:
            return r.status, await r.read()


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str, str, float]:
    """Start the server subprocess; return it, its URL, the admin token and startup seconds."""
    state = Path(tempfile.mkdtemp(prefix="bench-devcluster-"))
    kubeconfig = state / "kubeconfig"
    started = time.perf_counter()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "devcluster", "serve", "--port", "0",
            "--nodes", str(args.nodes), "--kubeconfig", str(kubeconfig),
            "--node-cpu", "64", "--node-memory", "256Gi", "--node-pods", "110",
            "--state-dir", str(state),
        ],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    line = server.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
    token = re.search(r"token: (\S+)", kubeconfig.read_text()) if kubeconfig.exists() else None
    if match is None or token is None:
        server.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return server, match[1], token[1].strip("'\""), time.perf_counter() - started


async def run(
    args: argparse.Namespace, server: subprocess.Popen[str], url: str, token: str, startup: float
) -> dict[str, Any]:
    results: dict[str, Any] = {"startup_s": startup, "rss_nodes": rss_mib(server.pid)}
    print(f"started with {args.nodes} nodes in {startup:.1f}s, RSS {results['rss_nodes']:.0f} MiB")
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        bench = Bench(url, token, session)
        for n in range(args.namespaces):
            await bench.request("POST", "/api/v1/namespaces", {"metadata": {"name": f"bench-{n}"}})
        await bulk_create(bench, args, results)
        results["rss_pods"] = rss_mib(server.pid)
        print(f"RSS after pods: {results['rss_pods']:.0f} MiB")
        await at_rest(bench, args, results)
        await big_reads(bench, args, results)
        results["rss_end"] = rss_mib(server.pid)
    return results


async def bulk_create(bench: Bench, args: argparse.Namespace, results: dict[str, Any]) -> None:
    prebound = args.pods - args.scheduled
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.pods):
        queue.put_nowait(i)
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while not queue.empty():
            i = queue.get_nowait()
            node = f"node-{i % args.nodes + 1}" if i < prebound else None
            t0 = time.perf_counter()
            code, _ = await bench.request(
                "POST", f"/api/v1/namespaces/bench-{i % args.namespaces}/pods",
                pod_body(i, node, args.namespaces),
            )  # fmt: skip
            latencies.append(time.perf_counter() - t0)
            if code != 201:
                errors += 1
            if len(latencies) % 10000 == 0:
                print(f"  {len(latencies)} pods created")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - t0
    results.update(bulk_s=elapsed, bulk_rate=args.pods / elapsed, bulk_errors=errors)
    results["bulk_p50"], results["bulk_p99"] = pct(latencies, 0.5), pct(latencies, 0.99)
    print(
        f"created {args.pods} pods in {elapsed:.0f}s ({args.pods / elapsed:.0f}/s), {errors} errors"
    )
    # wait until the scheduled ones are bound and every pod is Running
    t0 = time.perf_counter()
    while True:
        _, body = await bench.request("GET", "/api/v1/pods?fieldSelector=status.phase%3DPending")
        pending = len(json.loads(body)["items"])
        if pending == 0 or time.perf_counter() - t0 > 600:
            break
        await asyncio.sleep(1)
    results["settle_s"] = time.perf_counter() - t0
    results["pending_left"] = pending
    print(f"all Running {results['settle_s']:.0f}s after the last create ({pending} pending)")


async def at_rest(bench: Bench, args: argparse.Namespace, results: dict[str, Any]) -> None:
    n = args.samples
    gets: list[float] = []
    for _ in range(n):
        i = random.randrange(args.pods)
        t0 = time.perf_counter()
        code, _ = await bench.request(
            "GET", f"/api/v1/namespaces/bench-{i % args.namespaces}/pods/jupyter-user{i}"
        )
        gets.append(time.perf_counter() - t0)
        assert code == 200
    results["get"] = gets

    # create with a watch open: latency to the 201 and to the watch event
    sent: dict[str, float] = {}
    delivered: list[float] = []
    done = asyncio.Event()

    async def watch() -> None:
        _, body = await bench.request("GET", "/api/v1/namespaces/rest/pods?limit=1")
        rv = json.loads(body)["metadata"]["resourceVersion"]
        path = f"/api/v1/namespaces/rest/pods?watch=1&resourceVersion={rv}&timeoutSeconds=600"
        async with bench.session.get(bench.url + path, headers=bench.headers) as r:
            ready.set()
            async for line in r.content:
                event = json.loads(line)
                name = event["object"]["metadata"]["name"]
                if event["type"] == "ADDED" and name in sent:
                    delivered.append(time.perf_counter() - sent[name])
                    if len(delivered) >= n:
                        done.set()
                        return

    await bench.request("POST", "/api/v1/namespaces", {"metadata": {"name": "rest"}})
    ready = asyncio.Event()
    watcher = asyncio.create_task(watch())
    await ready.wait()
    creates: list[float] = []
    for k in range(n):
        body = pod_body(args.pods + k, "node-1", 1)
        body["metadata"]["namespace"] = "rest"
        name = body["metadata"]["name"]
        sent[name] = t0 = time.perf_counter()
        code, _ = await bench.request("POST", "/api/v1/namespaces/rest/pods", body)
        creates.append(time.perf_counter() - t0)
        assert code == 201
    await asyncio.wait_for(done.wait(), 120)
    watcher.cancel()
    results["create"], results["watch_event"] = creates, delivered

    lists: list[float] = []
    for k in range(min(n, 200)):
        t0 = time.perf_counter()
        await bench.request(
            "GET", f"/api/v1/namespaces/bench-{k % args.namespaces}/pods"
            f"?labelSelector=hub.jupyter.org%2Fusername%3Duser{k}",
        )  # fmt: skip
        lists.append(time.perf_counter() - t0)
    results["list_ns_selector"] = lists
    by_node: list[float] = []
    for k in range(min(n, 200)):
        t0 = time.perf_counter()
        await bench.request("GET", f"/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-{k + 1}")
        by_node.append(time.perf_counter() - t0)
    results["list_node"] = by_node


async def big_reads(bench: Bench, args: argparse.Namespace, results: dict[str, Any]) -> None:
    full: list[float] = []
    size = 0
    for _ in range(3):
        t0 = time.perf_counter()
        _, body = await bench.request("GET", "/api/v1/pods")
        full.append(time.perf_counter() - t0)
        size = len(body)
    results["list_all"] = full
    results["list_all_mib"] = size / 1024 / 1024
    # What the placement cache does: pages of 500 following metadata.continue.
    pages: list[float] = []
    items = 0
    token = ""
    t0 = time.perf_counter()
    while True:
        t1 = time.perf_counter()
        suffix = f"&continue={token}" if token else ""
        _, body = await bench.request("GET", f"/api/v1/pods?limit=500{suffix}")
        pages.append(time.perf_counter() - t1)
        page = json.loads(body)
        items += len(page["items"])
        token = page["metadata"].get("continue") or ""
        if not token:
            break
    results["list_paged_s"] = time.perf_counter() - t0
    results["list_paged"] = pages
    results["list_paged_items"] = items
    count = 0
    t0 = time.perf_counter()
    async with bench.session.get(
        bench.url + "/api/v1/pods?watch=1&timeoutSeconds=600", headers=bench.headers
    ) as r:
        async for _ in r.content:
            count += 1
            if count >= args.pods:
                break
    results["watch_initial_s"] = time.perf_counter() - t0
    results["watch_initial_events"] = count


def report(args: argparse.Namespace, r: dict[str, Any]) -> str:
    def row(name: str, samples: list[float]) -> str:
        return f"| {name} | {len(samples)} | {pct(samples, 0.5):.1f} | {pct(samples, 0.99):.1f} |"

    full = r["list_all"]
    phases = [
        (
            f"start with {args.nodes:,} nodes",
            f"{r['startup_s']:.1f} s, RSS {r['rss_nodes']:.0f} MiB",
        ),
        (
            f"bulk create {args.pods:,} pods ({args.concurrency} in flight)",
            f"{r['bulk_s']:.0f} s, {r['bulk_rate']:.0f} pods/s, {r['bulk_errors']} errors; "
            f"per request p50 {r['bulk_p50']:.1f} ms, p99 {r['bulk_p99']:.1f} ms",
        ),
        (
            "all pods Running, counted from the last create",
            f"{r['settle_s']:.1f} s ({r['pending_left']} still Pending)",
        ),
        (
            f"server RSS with all pods and ~{4 * args.pods:,} events",
            f"{r['rss_pods']:.0f} MiB (at the end: {r['rss_end']:.0f} MiB)",
        ),
        (
            f"list all {args.pods:,} pods ({r['list_all_mib']:.0f} MiB of JSON), 3 runs",
            f"min {min(full):.2f} s, max {max(full):.2f} s",
        ),
        (
            f"list all pods in pages of 500 (`limit`/`continue`): "
            f"{len(r['list_paged']):,} pages, {r['list_paged_items']:,} pods",
            f"{r['list_paged_s']:.2f} s; per page p50 {pct(r['list_paged'], 0.5):.1f} ms, "
            f"p99 {pct(r['list_paged'], 0.99):.1f} ms",
        ),
        (
            "watch from resourceVersion 0 (an ADDED event per pod)",
            f"{r['watch_initial_s']:.2f} s for {r['watch_initial_events']:,} events",
        ),
    ]
    table = "\n".join(f"| {a} | {b} |" for a, b in phases)
    return f"""
## Dev cluster (`python -m benchmarks.bench_devcluster`)

{args.nodes:,} nodes, {args.pods:,} pods in {args.namespaces} namespaces
({args.pods - args.scheduled:,} pre-bound with `spec.nodeName`, {args.scheduled:,} placed by
the scheduler), noop runtime with kubelet events on, every write validated against the
Kubernetes 1.32 schema. Server: `python -m devcluster serve` in its own process
(one core); client: aiohttp on the same machine, one HTTP request per pod.

| phase | figure |
| --- | --- |
{table}

Latency at rest with everything stored, one request at a time (ms):

| request | n | p50 | p99 |
| --- | --- | --- | --- |
{row("get pod", r["get"])}
{row("create pod (to the 201)", r["create"])}
{row("watch event delivery (create sent to ADDED received)", r["watch_event"])}
{row("list pods in a namespace by label selector", r["list_ns_selector"])}
{row("list pods on one node (fieldSelector spec.nodeName, indexed)", r["list_node"])}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=150_000)
    parser.add_argument("--scheduled", type=int, default=5000)
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true", help="print, do not update docs")
    args = parser.parse_args()
    server, url, token, startup = start_server(args)
    try:
        results = asyncio.run(run(args, server, url, token, startup))
    finally:
        server.terminate()
        server.wait(60)
    text = report(args, results)
    print(text)
    if not args.no_write:
        write_section("devcluster", text)


if __name__ == "__main__":
    main()
