"""The process runtime: containers as local processes on their own loopback address."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client

from devcluster import DevCluster

from helpers import eventually, gone, pv, pvc

pytestmark = pytest.mark.line_independent

SERVER = """
import http.server, os, signal, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (os.environ["GREETING"] + " from " + os.environ["POD_IP"]).encode()
        self.send_response(200); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
http.server.HTTPServer((sys.argv[1], 8080), H).serve_forever()
"""


def process_pod(name: str, command: list[str], **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "local:1", "command": command}
    container.update(extra.pop("container", {}))
    return {
        "metadata": {"name": name},
        "spec": {"containers": [container], "restartPolicy": "Never", **extra},
    }


@pytest.fixture
async def cluster(make_devcluster: Any, tmp_path: Path) -> DevCluster:
    c: DevCluster = await make_devcluster(nodes=1, runtime="process", host_root=tmp_path / "host")
    return c


async def read_pod(core: client.CoreV1Api, name: str) -> Any:
    return await core.read_namespaced_pod(name, "default")


async def test_server_gets_own_ip_env_and_becomes_ready(cluster: DevCluster) -> None:
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        body = process_pod(
            "web",
            [sys.executable, "-c", SERVER, "0.0.0.0"],  # noqa: S104 - the runtime rewrites it
            container={
                "env": [{"name": "GREETING", "value": "hello"}],
                "ports": [{"containerPort": 8080}],
            },
        )
        await core.create_namespaced_pod("default", body)

        async def ready() -> Any:
            p = await read_pod(core, "web")
            statuses = p.status.container_statuses or []
            return p if statuses and statuses[0].ready else None

        p = await eventually(ready)
        assert p.status.phase == "Running"
        ip = p.status.pod_ip
        assert ip.startswith("127.") and ip != "127.0.0.1"
        async with aiohttp.ClientSession() as session, session.get(f"http://{ip}:8080/") as r:
            assert await r.text() == f"hello from {ip}"
        await core.delete_namespaced_pod("web", "default", grace_period_seconds=10)
        await eventually(lambda: gone(core, "web"))


async def test_exit_codes_end_the_pod(cluster: DevCluster) -> None:
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod(
            "default", process_pod("ok", [sys.executable, "-c", "print('all good')"])
        )
        await core.create_namespaced_pod(
            "default", process_pod("bad", [sys.executable, "-c", "raise SystemExit(3)"])
        )

        async def terminal(name: str) -> Any:
            p = await read_pod(core, name)
            return p if p.status.phase in ("Succeeded", "Failed") else None

        ok = await eventually(lambda: terminal("ok"))
        bad = await eventually(lambda: terminal("bad"))
        assert await core.read_namespaced_pod_log("ok", "default") == "all good\n"
    assert ok.status.phase == "Succeeded"
    term = ok.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (0, "Completed")
    assert bad.status.phase == "Failed"
    term = bad.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (3, "Error")


async def test_missing_command_fails_with_start_error(cluster: DevCluster) -> None:
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod("default", process_pod("nocmd", ["no-such-binary-xyz"]))

        async def failed() -> Any:
            p = await read_pod(core, "nocmd")
            return p if p.status.phase == "Failed" else None

        p = await eventually(failed)
    term = p.status.container_statuses[0].state.terminated
    assert term.reason == "StartError" and term.exit_code == 128
    assert "executable file not found" in term.message


async def test_sigterm_ignored_means_sigkill_after_grace(cluster: DevCluster) -> None:
    # Ignores SIGTERM, then listens: readiness tells the test the handler is in place.
    stubborn = (
        "import signal, socket, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "s = socket.socket(); s.bind((sys.argv[1], 8081)); s.listen()\n"
        "time.sleep(600)"
    )
    body = process_pod(
        "stubborn",
        [sys.executable, "-c", stubborn, "0.0.0.0"],  # noqa: S104 - the runtime rewrites it
        container={"ports": [{"containerPort": 8081}]},
    )
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod("default", body)

        async def ready() -> bool:
            statuses = (await read_pod(core, "stubborn")).status.container_statuses or []
            return bool(statuses and statuses[0].ready)

        await eventually(ready)
        worker = cluster.kubelet._workers[("default", "stubborn")]
        proc = worker.processes[0].proc
        await core.delete_namespaced_pod("stubborn", "default", grace_period_seconds=4)
        # still alive well within the grace period after SIGTERM (it ignores it) ...
        await asyncio.sleep(0.5)
        assert proc.returncode is None
        # ... and killed once the grace period is over
        await eventually(lambda: gone(core, "stubborn"))
        assert proc.returncode == -9


@pytest.mark.skipif(os.geteuid() != 0, reason="running as another uid needs root")
async def test_runs_as_pod_uid_gid_in_the_mapped_home(cluster: DevCluster, tmp_path: Path) -> None:
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("needs a system python3 readable by other users")
    home = tmp_path / "host" / "gpfs" / "home" / "alice"
    home.mkdir(parents=True)
    os.chown(home, 12345, 23456)
    script = (
        "import os; open('whoami', 'w').write("
        "f'{os.getuid()} {os.getgid()} {sorted(os.getgroups())} '"
        "f'{os.getcwd()} {os.environ[\"HOME\"]}')"
    )
    body = process_pod(
        "alice",
        [python, "-c", script],
        securityContext={"runAsUser": 12345, "runAsGroup": 23456, "supplementalGroups": [34567]},
        volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": "home-alice"}}],
        container={
            "env": [{"name": "HOME", "value": "/home/alice"}],
            "volumeMounts": [{"name": "home", "mountPath": "/home/alice"}],
        },
    )
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_persistent_volume(
            pv("home-alice", "1Gi", hostPath={"path": "/gpfs/home/alice", "type": "Directory"})
        )
        await core.create_namespaced_persistent_volume_claim(
            "default", pvc("home-alice", "home-alice", "1Gi")
        )
        await core.create_namespaced_pod("default", body)

        async def done() -> Any:
            p = await read_pod(core, "alice")
            return p if p.status.phase in ("Succeeded", "Failed") else None

        p = await eventually(done)
    assert p.status.phase == "Succeeded", cluster.kubelet.log_path(
        "default", "alice", "main"
    ).read_text()
    written = home / "whoami"
    assert written.read_text() == f"12345 23456 [23456, 34567] {home} {home}"
    stat = written.stat()
    assert (stat.st_uid, stat.st_gid) == (12345, 23456)


async def test_stopping_the_cluster_stops_processes(make_devcluster: Any, tmp_path: Path) -> None:
    cluster: DevCluster = await make_devcluster(nodes=1, runtime="process", host_root=tmp_path)
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_pod(
            "default",
            process_pod("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"]),
        )

        async def running() -> bool:
            return (await read_pod(core, "sleeper")).status.phase == "Running"

        await eventually(running)
    proc = cluster.kubelet._workers[("default", "sleeper")].processes[0].proc
    await cluster.stop()
    assert proc.returncode is not None


async def test_mounted_passwd_and_group_name_the_process(cluster: DevCluster) -> None:
    # The spawner's synthesize_passwd mounts these over /etc; without a mount
    # namespace the runtime shows them to the process through nss_wrapper.
    uid, gid = os.getuid(), os.getgid()
    files = {
        "passwd": f"pat:x:{uid}:{gid}:Pat Test:/home/pat:/bin/sh\n",
        "group": f"pat-team:x:{gid}:\n",
    }
    body = process_pod(
        "names",
        ["/bin/sh", "-c", "echo user=$(id -un) group=$(id -gn)"],
        volumes=[{"name": "ids", "configMap": {"name": "ids"}}],
        container={
            "volumeMounts": [
                {"name": "ids", "mountPath": f"/etc/{key}", "subPath": key, "readOnly": True}
                for key in files
            ]
        },
    )
    async with cluster.api_client() as api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_config_map(
            "default", {"metadata": {"name": "ids"}, "data": files}
        )
        await core.create_namespaced_pod("default", body)

        async def done() -> Any:
            p = await read_pod(core, "names")
            return p if p.status.phase in ("Succeeded", "Failed") else None

        p = await eventually(done)
        log = await core.read_namespaced_pod_log("names", "default")
    assert p.status.phase == "Succeeded", log
    assert "user=pat group=pat-team" in log
