"""``devcluster serve`` (or ``python -m devcluster serve``): serve until SIGTERM/SIGINT.

Prints ``devcluster serving at http://127.0.0.1:PORT`` (``https://`` with
``--tls``; the first line of output), writes a kubeconfig (admin token) to
``--kubeconfig``, and on SIGTERM/SIGINT stops the processes of the process runtime and exits 0.
``--token TOKEN=USER`` maps a fixed bearer token to a user
(``system:serviceaccount:NS:NAME`` gets the ServiceAccount's groups) for
``--rbac`` checks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from .cluster import DevCluster
from .validation import DEFAULT_KUBE_VERSION


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devcluster")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Kubernetes API on 127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="TCP port (0 = pick a free one)")
    serve.add_argument("--nodes", type=int, default=3, help="number of nodes node-1..node-N")
    serve.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    serve.add_argument("--runtime", choices=("noop", "process"), default="noop")
    serve.add_argument("--node-cpu", default="4", help="cpu capacity per node")
    serve.add_argument("--node-memory", default="16Gi", help="memory capacity per node")
    serve.add_argument("--node-pods", type=int, default=110, help="pod capacity per node")
    serve.add_argument("--kube-version", default=DEFAULT_KUBE_VERSION)
    serve.add_argument("--scheduler-scoring", choices=("least", "most"), default="least")
    serve.add_argument("--host-root", default=None, help="directory holding hostPath volumes")
    serve.add_argument("--state-dir", default=None, help="logs and emptyDirs (default: temp)")
    serve.add_argument("--start-delay", type=float, default=0.0, help="seconds to Running")
    serve.add_argument("--rbac", action="store_true", help="enforce RBAC for non-admin tokens")
    serve.add_argument("--token", action="append", default=[], metavar="TOKEN=USER")
    serve.add_argument(
        "--tls",
        action="store_true",
        help="serve HTTPS with a fresh CA (in the kubeconfig); kubectl sends tokens only so",
    )
    return parser


async def _serve(args: argparse.Namespace) -> int:
    cluster = DevCluster(
        nodes=args.nodes,
        runtime=args.runtime,
        node_cpu=args.node_cpu,
        node_memory=args.node_memory,
        node_pods=args.node_pods,
        kube_version=args.kube_version,
        scoring=args.scheduler_scoring,
        rbac=args.rbac,
        start_delay=args.start_delay,
        host_root=args.host_root,
        state_dir=args.state_dir,
        port=args.port,
        tls=args.tls,
    )
    for mapping in args.token:
        token, _, user = mapping.partition("=")
        cluster.authorizer.add_token(token, user)
    await cluster.start()
    cluster.write_kubeconfig(args.kubeconfig)
    print(f"devcluster serving at {cluster.url} (kubeconfig: {args.kubeconfig})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await cluster.stop()
    print("devcluster stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
