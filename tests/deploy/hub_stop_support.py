"""A site's hub as ``jupyterhub_config.py`` makes it, with a server running, then stopped.

Used by ``tests/deploy/test_hub_stop.py`` and ``benchmarks/bench_hub_stop.py``: a real
slapd, a dev cluster subprocess (process runtime: alice's "notebook server" is the
system Python's ``http.server`` run as her uid in her home), and a real JupyterHub with
the repository's ``jupyterhub_config.py`` set through ``LSST_HUB_*`` variables as the
demo sets it, except ``cleanup_servers`` left at the site default (false): stopping
the hub leaves the server running. Both managed services run (the idle culler and the
orphan-pod service). :func:`stop_hub` sends the hub SIGTERM, as Kubernetes does, and
reports what happened to the hub and its services.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.support.hub_fixtures import RunningHub, login, start_hub
from tests.support.kubeconfig import kube_request
from tests.support.slapd import GROUPS_DN, PEOPLE_DN, SVC_DN, SVC_PW, Slapd, start_slapd

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "jupyterhub_config.py"
NAMESPACE = "jupyterhub"
#: alice in tests/support/ldap/data.ldif.in: uid, gid, password.
USER, UID, GID, PASSWORD = "alice", 10001, 10000, "alicepw"
#: The server: a plain HTTP answer is all the hub checks.
SERVER = "exec /usr/bin/python3 -m http.server 8888 --bind 0.0.0.0"
#: Loads the repository's file as a site's hub does, keeping the fixtures' admin service.
HUB_CONFIG = f"""
admin_services = list(c.JupyterHub.services)
load_subconfig({str(CONFIG)!r})
c.JupyterHub.services.extend(admin_services)
"""
#: The managed services the configuration starts.
SERVICES = {"idle-culler", "lsst-orphan-pods"}
#: HUB_CONFIG for ``reset_signals=False``: the hub's signal dispositions as they were
#: before the configuration reset them (:mod:`lsst_hub.services`), for the benchmark's
#: "before" figures.
HUB_CONFIG_WITHOUT_RESET = f"""
import signal
dispositions = {{s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}}
{HUB_CONFIG}
for s, disposition in dispositions.items():
    signal.signal(s, disposition)
"""


@dataclass
class Cluster:
    """The dev cluster subprocess."""

    process: subprocess.Popen[str]
    url: str
    kubeconfig: Path
    host_root: Path

    def pods(self) -> list[str]:
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"
        answer = kube_request(self.kubeconfig, "GET", path, timeout=30)
        answer.raise_for_status()
        return sorted(p["metadata"]["name"] for p in answer.json()["items"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_cluster(state: Path) -> Cluster:
    """Two nodes, process runtime, the namespace, and alice's home owned by her."""
    host_root = state / "host"
    kubeconfig = state / "kubeconfig"
    argv = [sys.executable, "-m", "devcluster", "serve", "--port", "0",
            "--nodes", "2", "--runtime", "process", "--host-root", str(host_root),
            "--kubeconfig", str(kubeconfig), "--state-dir", str(state)]  # fmt: skip
    with (state / "devcluster.log").open("w") as err:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
    assert process.stdout is not None
    match = re.search(r"(http://127\.0\.0\.1:\d+)", process.stdout.readline())
    if match is None:
        process.kill()
        process.wait(10)
        raise RuntimeError(f"devcluster did not start: {(state / 'devcluster.log').read_text()}")
    cluster = Cluster(process, match[1], kubeconfig, host_root)
    body = {"metadata": {"name": NAMESPACE}}
    kube_request(kubeconfig, "POST", "/api/v1/namespaces", json=body).raise_for_status()
    home = host_root / "gpfs" / "home" / USER
    home.mkdir(parents=True)
    os.chown(home, UID, GID)
    return cluster


def hub_env(slapd: Slapd, cluster: Cluster, state: Path) -> dict[str, str]:
    """``LSST_HUB_*`` for the two above, as ``scripts/demo.py`` sets them (servers kept)."""
    password_file = state / "ldap-password"
    password_file.write_text(SVC_PW + "\n")
    password_file.chmod(0o600)
    return {
        "PYTHONUNBUFFERED": "1",
        "KUBECONFIG": str(cluster.kubeconfig),
        "LSST_HUB_LDAP_URLS": slapd.ldap_url,
        "LSST_HUB_LDAP_CA_FILE": str(slapd.ca_file),
        "LSST_HUB_LDAP_SEARCH_BIND_DN": SVC_DN,
        "LSST_HUB_LDAP_SEARCH_PASSWORD_FILE": str(password_file),
        "LSST_HUB_LDAP_USER_SEARCH_BASE": PEOPLE_DN,
        "LSST_HUB_LDAP_GROUP_SEARCH_BASE": GROUPS_DN,
        "LSST_HUB_ALLOWED_GROUPS": "jupyterhub-users",
        "LSST_HUB_ADMIN_GROUPS": "jupyterhub-admins",
        "LSST_HUB_NAMESPACE": NAMESPACE,
        "LSST_HUB_IMAGE": "local/irrelevant:1",
        "LSST_HUB_CPU_GUARANTEE": "0.1",
        "LSST_HUB_MEM_GUARANTEE": "64M",
        "LSST_HUB_HOME_ROOTS": "/gpfs/home",
        "LSST_HUB_SINGLEUSER_CMD": shlex.join(["/bin/sh", "-c", SERVER]),
        "LSST_HUB_START_TIMEOUT": "60",
        "LSST_HUB_CLEANUP_SERVERS": "false",
    }


def service_pids(hub_pid: int) -> dict[str, int]:
    """The hub's managed services' process ids (children of the hub), by service name."""
    found: dict[str, int] = {}
    for child in psutil.Process(hub_pid).children():
        with contextlib.suppress(psutil.Error):
            name = child.environ().get("JUPYTERHUB_SERVICE_NAME")
            if name:
                found[name] = child.pid
    return found


def ignored_signals(pid: int) -> set[signal.Signals]:
    """The signals process ``pid`` ignores (``SigIgn`` in ``/proc/PID/status``)."""
    status = Path(f"/proc/{pid}/status").read_text()
    (mask,) = [int(ln.split()[1], 16) for ln in status.splitlines() if ln.startswith("SigIgn:")]
    return {s for s in signal.Signals if mask & (1 << (s - 1))}


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for(predicate: object, seconds: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.25)


def spawn(hub: RunningHub) -> None:
    """alice logs in (identity from LDAP), the admin API starts her server."""
    assert login(hub, USER, PASSWORD).status_code == 302
    answer = hub.api("POST", f"/users/{USER}/server")
    assert answer.status_code in (201, 202), answer.text

    def ready() -> bool:
        server = (hub.api("GET", f"/users/{USER}").json().get("servers") or {}).get("")
        return bool(server and server.get("ready"))

    wait_for(ready, 120, f"{USER}'s server to be ready")


@dataclass
class Stopped:
    """What stopping the hub did."""

    seconds: float  # SIGTERM to the hub's exit (a figure for the benchmark only)
    returncode: int | None  # None: still running after the guard timeout
    services: dict[str, int]  # the services' pids before the stop
    ignoring_sigint: list[str]  # services that ignored SIGINT before the stop
    escalated: list[str]  # "<service>: <line>" for every SIGTERM/SIGKILL the hub sent
    services_left: list[str]  # services still alive after the hub exited
    log: str


def stop_hub(hub: RunningHub, guard: float = 120.0) -> Stopped:
    """SIGTERM the hub (as Kubernetes does) and wait for it, at most ``guard`` seconds."""
    services = service_pids(hub.process.pid)
    assert set(services) == SERVICES, f"services running: {services}"
    ignoring = [name for name, pid in services.items() if signal.SIGINT in ignored_signals(pid)]
    start = time.monotonic()
    hub.process.send_signal(signal.SIGTERM)
    try:
        returncode: int | None = hub.process.wait(guard)
    except subprocess.TimeoutExpired:
        returncode = None
    seconds = time.monotonic() - start
    log = hub.log_text()
    escalated = [
        f"{name}: {line.strip()}"
        for name, pid in services.items()
        for line in log.splitlines()
        if re.search(rf"\b(Terminating|Killing) {pid}\b", line)
    ]
    left = [name for name, pid in services.items() if alive(pid)]
    return Stopped(seconds, returncode, services, ignoring, escalated, left, log)


@contextlib.contextmanager
def site_hub(
    state: Path,
    slapd: Slapd | None = None,
    *,
    sigint_ignored: bool = False,
    reset_signals: bool = True,
) -> Iterator[tuple[RunningHub, Cluster]]:
    """slapd (a new one unless given), the dev cluster and the hub, alice's server running.

    ``reset_signals=False`` undoes the configuration's :func:`.reset_ignored_signals`.
    """
    own_slapd = slapd is None
    ldap = slapd or start_slapd(state / "slapd")
    cluster = start_cluster(_mkdir(state / "cluster"))
    hub: RunningHub | None = None
    services: list[psutil.Process] = []
    try:
        hub = start_hub(
            state / "hub",
            HUB_CONFIG if reset_signals else HUB_CONFIG_WITHOUT_RESET,
            env=hub_env(ldap, cluster, state),
            sigint_ignored=sigint_ignored,
        )
        services = [psutil.Process(pid) for pid in service_pids(hub.process.pid).values()]
        spawn(hub)
        yield hub, cluster
    finally:
        if hub is not None:
            hub.stop()
        # Services run in sessions of their own: stopping the hub's group misses them.
        # (psutil checks that the pid still names the same process.)
        for service in services:
            with contextlib.suppress(psutil.Error):
                service.kill()
        cluster.stop()
        if own_slapd:
            ldap.stop()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
