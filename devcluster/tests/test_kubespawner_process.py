"""KubeSpawner + the process runtime: the spawned command really runs on the pod IP.

The command stands in for jupyterhub-singleuser (which needs a running hub API:
that end-to-end case belongs to the hub tests): a small HTTP server that listens
where ``JUPYTERHUB_SERVICE_URL`` says, as jupyterhub-singleuser does.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devcluster import DevCluster
from devcluster.testing import stop_kubespawner_reflectors

from test_kubespawner import make_spawner

SERVER = """
import http.server, os, signal, sys, urllib.parse
url = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (os.environ["JUPYTERHUB_USER"] + " at " + url.path).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
http.server.HTTPServer((url.hostname, url.port), H).serve_forever()
"""


async def test_kubespawner_command_runs_as_a_local_process(
    make_devcluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cluster: DevCluster = await make_devcluster(nodes=1, runtime="process", host_root=tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    from kubernetes_asyncio.config import kube_config
    from kubespawner import clients

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(cluster.kubeconfig))
    clients.load_config.cache_clear()
    spawner = make_spawner(cluster)
    # KubeSpawner puts cmd into the container's args (the image entrypoint runs them)
    spawner.cmd = [sys.executable, "-c", SERVER]
    try:
        url = await asyncio.wait_for(spawner.start(), 120)
        assert url.startswith("http://127.") and url.endswith(":8888")
        async with aiohttp.ClientSession() as session, session.get(url + "/") as r:
            # (a mock spawner has no orm server, so the service prefix is "/")
            assert await r.text() == "alice at /"
        worker = cluster.kubelet._workers[("default", spawner.pod_name)]
        proc = worker.processes[0].proc
        await asyncio.wait_for(spawner.stop(), 120)
        assert await spawner.poll() is not None
        assert proc.returncode == 0  # it got SIGTERM and exited by itself
    finally:
        await stop_kubespawner_reflectors()
