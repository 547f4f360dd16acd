"""Benchmark: hub start-up with 1,000 and 5,000 running servers in its database.

How long a restarted hub takes to answer ``/hub/health`` and to have checked every
server its database says is running, with LSSTSpawner and with plain
``kubespawner.KubeSpawner``, side by side with the same number of servers.

Set-up, once per spawner and number of servers N (nothing here is timed):

* a dev cluster subprocess (``python -m devcluster serve``, process runtime, 30
  nodes). The notebook containers have no command, so the runtime starts no
  process for them (as its noop runtime) but gives every pod a loopback address of
  its own; one small HTTP server of this benchmark, on all addresses and the
  servers' port, answers for all of them as jupyterhub-singleuser would (200, with
  ``X-JupyterHub-Version``), which is all the hub checks;
* N servers as the real spawners make them, one namespace per case: for each user
  a spawner of the case's class (in this process, as ``bench_spawn`` does) builds
  its objects with its own code (LSSTSpawner: home volume and claim, the pod
  planned on a node, made personal, labeled with the hub instance and annotated
  with the user id, through its final pod check; KubeSpawner: its pod), which
  are then created directly (many at a time: N real starts, each waiting on the
  API, took minutes per thousand on a busy machine); the spawner's state is what
  the hub would store;
* a JupyterHub database (sqlite) filled with JupyterHub's ORM as the hub records a
  running server: the default roles, N users with the ``user`` role, and for each
  a ``Server`` row (the pod's address) and a ``Spawner`` row with ``server_id``,
  the state the spawner returned, ``started`` and ``last_activity``. (No server
  API tokens or OAuth clients: the hub's start reads neither);
* configurable-http-proxy running on its own, as the proxy pod of a deployment,
  already holding the N routes in the hub's format: a hub restart finds them.

Each run copies that database, starts ``python -m jupyterhub`` with the repository's
``jupyterhub_config.py`` (LDAP authenticator against a real slapd, idle culler;
with LSSTSpawner also the orphan-pod service, its default; with KubeSpawner
``c.JupyterHub.spawner_class`` replaced and the orphan service off; log level
INFO; servers left running when the hub stops) and measures from the process
start: the first 200 from the hub's own ``/hub/health`` (what Kubernetes probes),
and JupyterHub's "Initialized N spawners" log line (every server polled and its
URL answered). The run then checks that nothing was lost: all N servers ready in
the REST API, all N pods still in the cluster, no server stopped, no route added,
and for LSSTSpawner that the orphan service's first pass deleted nothing. Then
the hub gets SIGTERM.

JupyterHub answers ``/hub/health`` once its spawner checks are done or
``init_spawners_timeout`` (10 s) has passed, and the checks then go on in the
background, so both figures are reported; but it first makes a Spawner object for
every running server, without yielding, which that timeout cannot cut short.

Usage::

    .venv/bin/python -m benchmarks.bench_hub_startup [--sizes 1000,5000] [--rounds 3]
        [--no-write] [--keep DIR] [--profile]

``--keep DIR`` works in DIR and leaves the logs there; ``--profile`` runs each hub
under cProfile (``DIR/hub-*/jupyterhub.prof``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import jupyterhub  # noqa: E402
import requests  # noqa: E402
from jupyterhub import orm  # noqa: E402
from jupyterhub.objects import Hub  # noqa: E402
from jupyterhub.roles import create_role, get_default_roles  # noqa: E402
from kubernetes_asyncio.config import kube_config  # noqa: E402
from kubespawner import KubeSpawner, clients  # noqa: E402
from traitlets.config import Config  # noqa: E402

from benchmarks._report import write_section  # noqa: E402
from lsst_hub.identity import Identity  # noqa: E402
from lsst_hub.names import Obj  # noqa: E402
from lsst_hub.spawner import LSSTSpawner, builders  # noqa: E402
from lsst_hub.spawner.home import Home, checked_home, home_volume_names  # noqa: E402
from tests.deploy.hub_stop_support import HUB_CONFIG, Cluster, hub_env  # noqa: E402
from tests.spawner.support import FakeUser, base_config, identity  # noqa: E402
from tests.support.hub_fixtures import NODE_BIN, TOOLS_BIN, RunningHub  # noqa: E402
from tests.support.kubeconfig import kube_request  # noqa: E402
from tests.support.slapd import Slapd, free_port, start_slapd  # noqa: E402

GOAL_SECONDS = 15.0
SPAWNERS = ("LSSTSpawner", "KubeSpawner")
INSTANCE = "bench-hub"  # the LSSTSpawner pods' lsst-hub/instance label
NODES = 30
INIT_LINE = re.compile(
    r"^\[I (\S+ \S+) JupyterHub .*Initialized (\d+) spawners in ([\d.]+) seconds"
)
#: Log lines that would mean a server was lost or not found as it was left.
LOST = (
    "appears to have stopped while the Hub was down",
    "does not appear to be running",
    "server stopped with exit code",
    "deleting orphan notebook pod",
    "Adding missing route",
    "Updating route for",
)


# -- the notebook servers' stand-in ------------------------------------------------
class Notebooks:
    """One HTTP server on every address, answering as jupyterhub-singleuser would."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("the notebook stand-in did not start")

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        # Every pod has a loopback address of its own (the dev cluster's process
        # runtime); the wildcard address covers them all on one free port.
        server = self.loop.run_until_complete(
            asyncio.start_server(self._answer, "0.0.0.0", 0, backlog=4096)  # noqa: S104
        )
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            body = b'{"version": "2.16.0"}'
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"X-JupyterHub-Version: {jupyterhub.__version__}\r\n".encode()
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# -- the cluster -------------------------------------------------------------------
def start_cluster(state: Path) -> tuple[Cluster, str]:
    """The dev cluster subprocess (process runtime); its admin token."""
    host_root = state / "host"
    kubeconfig = state / "kubeconfig"
    argv = [sys.executable, "-m", "devcluster", "serve", "--port", "0",
            "--nodes", str(NODES), "--runtime", "process", "--host-root", str(host_root),
            "--node-cpu", "64", "--node-memory", "256Gi", "--node-pods", "1000",
            "--kubeconfig", str(kubeconfig), "--state-dir", str(state)]  # fmt: skip
    with (state / "devcluster.log").open("w") as err:
        process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
    assert process.stdout is not None
    match = re.search(r"(http://127\.0\.0\.1:\d+)", process.stdout.readline())
    token = re.search(r"token: (\S+)", kubeconfig.read_text()) if kubeconfig.exists() else None
    if match is None or token is None:
        process.kill()
        process.wait(10)
        raise RuntimeError(f"devcluster did not start: {(state / 'devcluster.log').read_text()}")
    return Cluster(process, match[1], kubeconfig, host_root), token[1].strip("'\"")


def cluster_pods(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    """The pods of ``namespace``."""
    answer = kube_request(cluster.kubeconfig, "GET", f"/api/v1/namespaces/{namespace}/pods",
                          timeout=120)  # fmt: skip
    answer.raise_for_status()
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


# -- the servers, as the real spawners make them -----------------------------------
@dataclass
class Started:
    """One running server: its user, address and the state its spawner records."""

    name: str
    url: str
    state: dict[str, Any]


def spawner_config(kind: str, namespace: str, url: str, port: int) -> Config:
    """The spawners' configuration for the set-up: no container command (no process)."""
    if kind == "LSSTSpawner":
        return base_config(
            namespace, url, cpu_guarantee=0.1, mem_guarantee="256M", hub_instance=INSTANCE,
            port=port, cmd=[], reconcile_orphans=False,
        )  # fmt: skip
    c = Config()
    c.KubeSpawner.namespace = namespace
    c.KubeSpawner.k8s_api_host = url
    c.KubeSpawner.image = "quay.io/jupyter/base-notebook:latest"
    c.KubeSpawner.cmd = []
    c.KubeSpawner.port = port
    c.KubeSpawner.cpu_guarantee = 0.1
    c.KubeSpawner.mem_guarantee = "256M"
    return c


async def lsst_objects(spawner: LSSTSpawner, person: Identity, node: str) -> list[Obj]:
    """The home volume, its claim and the pod, as an LSSTSpawner start makes them.

    The steps of :func:`lsst_hub.spawner.home.prepare_home` (per-user volume) and of
    the spawner's start, without the API calls: the plan, KubeSpawner's manifest made
    personal, and the final pod check.
    """
    settings = spawner.home_settings
    path = checked_home(settings, person, person.home_directory)
    pv_name, pvc_name = home_volume_names(person.username)
    source = builders.expand_source(settings.pv_source, person, path)
    pv = builders.home_pv(name=pv_name, source=source, claim_namespace=settings.namespace,
                          claim_name=pvc_name, capacity=settings.capacity,
                          labels=settings.labels)  # fmt: skip
    pvc = builders.home_pvc(name=pvc_name, namespace=settings.namespace, pv_name=pv_name,
                            capacity=settings.capacity, labels=settings.labels)  # fmt: skip
    volume, mount = builders.user_home_volume(pvc_name, path)
    home = Home(path=path, mount=path, volumes=(volume,), mounts=(mount,))
    spawner._pod_plan = spawner._plan(person, home, node)
    try:
        pod = await spawner.get_pod_manifest()
        pod = await spawner.modify_pod_hook(spawner, pod)  # the final pod check
    finally:
        spawner._pod_plan = None
    return [pv, pvc, spawner.api.api_client.sanitize_for_serialization(pod)]


async def make_servers(
    kind: str, namespace: str, users: list[tuple[int, str]], cluster: Cluster, token: str,
    port: int,
) -> list[Started]:  # fmt: skip
    """Create a running server's objects for each (user id, name) as ``kind`` would.

    The manifests come from the spawner's own code; they are created directly, many
    at a time, rather than through N starts (each waiting on the API in turn), which
    took minutes per thousand on a busy machine.
    """
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(cluster.kubeconfig)
    clients.load_config.cache_clear()
    config = spawner_config(kind, namespace, cluster.url, port)
    objects: list[Obj] = [{"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": namespace}}]  # fmt: skip
    states: dict[str, dict[str, Any]] = {}
    for user_id, name in users:
        person = identity(name, uid=20000 + user_id)
        user = FakeUser(name, person.to_auth_state() if kind == "LSSTSpawner" else None)
        user.id = user_id  # the hub's id, which LSSTSpawner writes on the pod
        cls = LSSTSpawner if kind == "LSSTSpawner" else KubeSpawner
        # The spawner's server as the hub makes it before calling start (no session: the
        # manifest and state need none).
        server = orm.Server(proto="http", ip="", port=port, base_url=f"/user/{name}/",
                            cookie_name="cookie")  # fmt: skip
        orm_spawner = orm.Spawner(name="", server=server)
        spawner = cls(hub=Hub(), user=user, db=None, orm_spawner=orm_spawner, config=config,
                      api_token=secrets.token_hex(16),
                      oauth_client_id=f"jupyterhub-user-{name}")  # fmt: skip
        if isinstance(spawner, LSSTSpawner):
            # Round robin is what least-loaded placement gives on equal, empty nodes.
            objects += await lsst_objects(spawner, person, f"node-{user_id % NODES + 1}")
        else:
            pod = await spawner.get_pod_manifest()
            objects.append(spawner.api.api_client.sanitize_for_serialization(pod))
        states[name] = spawner.get_state()
    await create_objects(cluster.url, token, namespace, objects)
    addresses = wait_running(cluster, namespace, len(users))
    started = []
    for _, name in users:
        pod_name = str(states[name]["pod_name"])
        started.append(Started(name, f"http://{addresses[pod_name]}:{port}", states[name]))
    return started


async def create_objects(url: str, token: str, namespace: str, objects: list[Obj]) -> None:
    """POST each object (``namespace`` first, then by kind), 32 at a time."""
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(obj: Obj) -> None:
            kind = obj["kind"]
            ns = f"/api/v1/namespaces/{namespace}"
            path = {"Namespace": "/api/v1/namespaces",
                    "PersistentVolume": "/api/v1/persistentvolumes",
                    "PersistentVolumeClaim": f"{ns}/persistentvolumeclaims",
                    "Pod": f"{ns}/pods"}[kind]  # fmt: skip
            async with session.post(url + path, json=obj) as answer:
                if answer.status != 201:
                    raise RuntimeError(f"create {kind}: {answer.status} {await answer.text()}")

        await one(objects[0])
        for kind in ("PersistentVolume", "PersistentVolumeClaim", "Pod"):
            await asyncio.gather(*(one(o) for o in objects if o["kind"] == kind))


def wait_running(cluster: Cluster, namespace: str, count: int) -> dict[str, str]:
    """Wait until ``count`` pods run in ``namespace``; their addresses by name."""
    deadline = time.monotonic() + 300
    while True:
        pods = cluster_pods(cluster, namespace)
        running = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods
                   if p.get("status", {}).get("phase") == "Running"}  # fmt: skip
        if len(running) == count:
            return running
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(running)} of {count} pods running in {namespace}")
        time.sleep(1)


# -- the hub's database -----------------------------------------------------------
def new_database(path: Path, names: list[str]) -> list[tuple[int, str]]:
    """A hub database with the default roles and ``names`` as users; (id, name) each."""
    db = orm.new_session_factory(f"sqlite:///{path}")()
    for role in get_default_roles():
        create_role(db, role)
    user_role = orm.Role.find(db, "user")
    now = utcnow()
    users = [orm.User(name=name, created=now, last_activity=now) for name in names]
    for user in users:
        user.roles.append(user_role)
    db.add_all(users)
    db.commit()
    ids = [(int(user.id), str(user.name)) for user in users]
    db.close()
    return ids


def record_servers(path: Path, started: list[Started]) -> None:
    """Record each server as running, as the hub does once a spawn has returned."""
    db = orm.new_session_factory(f"sqlite:///{path}")()
    by_name = {user.name: user for user in db.query(orm.User)}
    now = utcnow()
    for server in started:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        orm_server = orm.Server(proto="http", ip=host, port=int(port),
                                base_url=f"/user/{server.name}/")  # fmt: skip
        db.add(orm.Spawner(user=by_name[server.name], name="", server=orm_server,
                           state=server.state, started=now, last_activity=now))  # fmt: skip
    db.commit()
    db.close()


def utcnow() -> dt.datetime:
    """Naive UTC, as JupyterHub stores times."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# -- the proxy ---------------------------------------------------------------------
@dataclass
class Proxy:
    """configurable-http-proxy on its own, as a deployment's proxy pod."""

    process: subprocess.Popen[bytes]
    public_port: int
    api_port: int
    token: str

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_proxy(log: Path) -> Proxy:
    public_port, api_port, token = free_port(), free_port(), secrets.token_hex(16)
    argv = [str(NODE_BIN / "configurable-http-proxy"), "--ip", "127.0.0.1",
            "--port", str(public_port), "--api-ip", "127.0.0.1",
            "--api-port", str(api_port)]  # fmt: skip
    env = dict(os.environ, CONFIGPROXY_AUTH_TOKEN=token)
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    proxy = Proxy(process, public_port, api_port, token)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            headers = {"Authorization": f"token {token}"}
            if requests.get(f"{proxy.api_url}/api/routes", headers=headers, timeout=2).ok:
                return proxy
        time.sleep(0.2)
    proxy.stop()
    raise RuntimeError(f"configurable-http-proxy did not start: {log.read_text()}")


async def add_routes(proxy: Proxy, started: list[Started]) -> None:
    """The routes the hub had added for these servers (its ConfigurableHTTPProxy format)."""
    headers = {"Authorization": f"token {proxy.token}"}
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(server: Started) -> None:
            body = {"user": server.name, "server_name": "", "target": server.url,
                    "jupyterhub": True}  # fmt: skip
            url = f"{proxy.api_url}/api/routes/user/{server.name}"
            async with session.post(url, json=body) as answer:
                answer.raise_for_status()

        await asyncio.gather(*(one(s) for s in started))


# -- one start of the hub ----------------------------------------------------------
@dataclass
class Case:
    """One spawner and one number of servers, set up."""

    kind: str
    servers: int
    namespace: str
    database: Path
    proxy: Proxy
    before: bool = False  # LSSTSpawner as before its polls stopped reading Spawner.db
    runs: list[Run] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.kind}, before" if self.before else self.kind


@dataclass
class Run:
    """What one start measured."""

    healthy: float  # process start to the first 200 from /hub/health, s
    checked: float  # process start to "Initialized N spawners", s
    init_spawners: float  # JupyterHub's own figure for its spawner checks, s
    cpu: float  # the hub's CPU seconds until all were checked (user + system)
    orphan_pass: float | None  # process start to the orphan service's first pass, s
    log_lines: int = 0  # lines the hub had logged when checked
    fallback_failed: bool = False  # LSSTSpawner's in-hub orphan pass failed


def hub_config(directory: Path, case: Case, hub_port: int, admin_token: str) -> str:
    """The fixtures' base lines with the external proxy, then the site's file."""
    lines = [
        "c = get_config()  # noqa",
        f'c.JupyterHub.bind_url = "http://127.0.0.1:{case.proxy.public_port}"',
        'c.JupyterHub.hub_ip = "127.0.0.1"',
        f"c.JupyterHub.hub_port = {hub_port}",
        f'c.JupyterHub.db_url = "sqlite:///{directory / "jupyterhub.sqlite"}"',
        f"c.JupyterHub.cookie_secret_file = {str(directory / 'cookie_secret')!r}",
        f"c.JupyterHub.pid_file = {str(directory / 'jupyterhub.pid')!r}",
        "c.JupyterHub.services = [{'name': 'test-admin', 'api_token': "
        f"{admin_token!r}, 'admin': True}}]",
        HUB_CONFIG,
        'c.JupyterHub.log_level = "INFO"',
        "c.JupyterHub.cleanup_servers = False",
    ]
    if case.kind == "KubeSpawner":
        lines += [
            'c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"',
            f'c.KubeSpawner.namespace = "{case.namespace}"',
        ]
    if case.before:
        # Every poll gathers the fallback pass's arguments again, Spawner.db among them.
        lines += [
            "import lsst_hub.spawner.orphans",
            "lsst_hub.spawner.orphans.started = lambda: False",
        ]
    return "\n".join(lines) + "\n"


def _default_sigint() -> None:
    # As the test fixtures: the hub's services must not inherit an ignored SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_hub(
    directory: Path, case: Case, env: dict[str, str], profile: bool = False
) -> tuple[RunningHub, float]:
    """Start the hub on a copy of the case's database; the process start (monotonic).

    ``profile``: run it under cProfile, writing ``jupyterhub.prof`` when it stops.
    """
    directory.mkdir(parents=True)
    shutil.copy(case.database, directory / "jupyterhub.sqlite")
    hub_port, admin_token = free_port(), secrets.token_hex(16)
    config = directory / "jupyterhub_config.py"
    config.write_text(hub_config(directory, case, hub_port, admin_token))
    full_env = dict(os.environ)
    full_env.update(env)
    full_env.update(
        JUPYTERHUB_CRYPT_KEY=secrets.token_hex(32),
        CONFIGPROXY_AUTH_TOKEN=case.proxy.token,
        LSST_HUB_PROXY_API_URL=case.proxy.api_url,
        PATH=os.pathsep.join([str(NODE_BIN), str(TOOLS_BIN), full_env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")])),
    )
    log_path = directory / "jupyterhub.log"
    profiler = ["-m", "cProfile", "-o", str(directory / "jupyterhub.prof")] if profile else []
    with log_path.open("wb") as log_file:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, *profiler, "-m", "jupyterhub", "-f", str(config)],
            cwd=directory, env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_default_sigint,
        )  # fmt: skip
    hub = RunningHub(
        url=f"http://127.0.0.1:{case.proxy.public_port}",
        hub_url=f"http://127.0.0.1:{hub_port}",
        api_token=admin_token,
        directory=directory,
        process=process,
        log_path=log_path,
        env=full_env,
    )
    return hub, started


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def init_line(log: str) -> re.Match[str] | None:
    for line in log.splitlines():
        match = INIT_LINE.match(line)
        if match:
            return match
    return None


def measure(hub: RunningHub, started: float, case: Case, timeout: float = 600) -> Run:
    """Poll until healthy, all servers checked and (LSSTSpawner) the first orphan pass."""
    wall_started = time.time() - (time.monotonic() - started)
    healthy: float | None = None
    checked: re.Match[str] | None = None
    cpu = 0.0
    orphan: float | None = None
    want_orphan = case.kind == "LSSTSpawner"
    deadline = started + timeout
    while healthy is None or checked is None or (want_orphan and orphan is None):
        if time.monotonic() > deadline:
            raise RuntimeError(f"hub start not done after {timeout} s:\n{hub.log_text()[-5000:]}")
        if hub.process.poll() is not None:
            raise RuntimeError(f"the hub exited:\n{hub.log_text()[-5000:]}")
        if healthy is None:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{hub.hub_url}/hub/health", timeout=60).status_code == 200:
                    healthy = time.monotonic() - started
        log = hub.log_text()
        if checked is None:
            checked = init_line(log)
            if checked is not None:
                cpu = cpu_seconds(hub.process.pid)
        if want_orphan and orphan is None and "orphan pod pass done" in log:
            orphan = time.monotonic() - started
        time.sleep(0.05)
    stamp = dt.datetime.strptime(checked[1], "%Y-%m-%d %H:%M:%S.%f").timestamp()
    return Run(healthy, stamp - wall_started, float(checked[3]), cpu, orphan)


def verify(hub: RunningHub, case: Case, cluster: Cluster) -> None:
    """All N servers still running: in the hub, in the cluster, nothing stopped."""
    checked = init_line(hub.log_text())
    assert checked is not None
    if int(checked[2]) != case.servers:
        raise RuntimeError(f"the hub checked {checked[2]} servers, not {case.servers}")
    ready = 0
    offset = 0
    while True:
        answer = hub.api("GET", "/users", params={"state": "ready", "offset": offset,
                                                  "limit": 200})  # fmt: skip
        answer.raise_for_status()
        page = answer.json()
        if not page:
            break
        ready += sum(1 for u in page if (u.get("servers") or {}).get("", {}).get("ready"))
        offset += len(page)
    pods = [p for p in cluster_pods(cluster, case.namespace)
            if not p["metadata"].get("deletionTimestamp")]  # fmt: skip
    log = hub.log_text()
    lost = [line for line in log.splitlines() if any(text in line for text in LOST)]
    if ready != case.servers or len(pods) != case.servers or lost:
        raise RuntimeError(
            f"{case.kind} N={case.servers}: {ready} servers ready, {len(pods)} pods; "
            f"lost: {lost[:5]}"
        )
    if case.kind == "LSSTSpawner":
        passes = re.findall(r"orphan pod pass done .*: (\d+) deleted", log)
        if not passes or passes[0] != "0":
            raise RuntimeError(f"the orphan service's first pass: {passes[:1]} deleted")


# -- the whole run -----------------------------------------------------------------
def set_up(
    kind: str, servers: int, base: Path, cluster: Cluster, token: str, notebooks: Notebooks
) -> Case:
    namespace = f"{'lsst' if kind == 'LSSTSpawner' else 'kube'}-{servers}"
    database = base / f"{namespace}.sqlite"
    t0 = time.monotonic()
    # Names differ between sizes: home volumes are cluster-wide.
    users = new_database(database, [f"user-{servers}-{i:04d}" for i in range(servers)])
    started = asyncio.run(make_servers(kind, namespace, users, cluster, token, notebooks.port))
    record_servers(database, started)
    proxy = start_proxy(base / f"{namespace}-proxy.log")
    asyncio.run(add_routes(proxy, started))
    print(f"set up {kind} N={servers} in {time.monotonic() - t0:.0f} s", flush=True)
    return Case(kind, servers, namespace, database, proxy)


def one_run(
    case: Case, base: Path, env: dict[str, str], cluster: Cluster, i: int, profile: bool
) -> Run:
    env = dict(env, LSST_HUB_NAMESPACE=case.namespace, LSST_HUB_HUB_INSTANCE=INSTANCE,
               LSST_HUB_ORPHAN_SERVICE=str(case.kind == "LSSTSpawner").lower())  # fmt: skip
    name = f"hub-{case.namespace}{'-before' if case.before else ''}-{i}"
    hub, started = start_hub(base / name, case, env, profile)
    try:
        run = measure(hub, started, case)
        verify(hub, case, cluster)
        log = hub.log_text()
        run.log_lines = log.count("\n")
        run.fallback_failed = "orphan pod reconciliation failed" in log
    finally:
        hub.stop()
    print(
        f"{case.label} N={case.servers} #{i}: healthy {run.healthy:.1f} s, all checked "
        f"{run.checked:.1f} s (init_spawners {run.init_spawners:.1f} s, hub CPU "
        f"{run.cpu:.1f} s)"
        + (f", orphan pass {run.orphan_pass:.1f} s" if run.orphan_pass is not None else ""),
        flush=True,
    )
    return run


@contextlib.contextmanager
def environment(base: Path) -> Iterator[tuple[Cluster, str, Slapd, Notebooks]]:
    slapd = start_slapd(base / "slapd")
    notebooks = Notebooks()
    cluster_dir = base / "cluster"
    cluster_dir.mkdir()
    cluster, token = start_cluster(cluster_dir)
    try:
        yield cluster, token, slapd, notebooks
    finally:
        cluster.stop()
        notebooks.stop()
        slapd.stop()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def report(cases: list[Case], rounds: int, loads: list[str], minutes: float) -> str:
    lines = [
        "## Hub start-up with running servers (`python -m benchmarks.bench_hub_startup`)",
        "",
        f"JupyterHub {jupyterhub.__version__} restarted with N servers recorded as running "
        "in its sqlite database, with the repository's `jupyterhub_config.py` (LDAP "
        "authenticator against a real slapd, idle culler; LSSTSpawner with its orphan-pod "
        "service, the default; plain `kubespawner.KubeSpawner` in its place with the "
        "orphan service off), log level INFO. The pods and the spawner state are the "
        "spawners' own: each was built by a spawner of the case's class with its own code "
        "(LSSTSpawner: home volume, claim, pod on a node through its final pod check) and "
        "created directly on the dev cluster (process runtime, containers without a "
        "command: no process, but a loopback address per pod), where one HTTP stand-in "
        "answers for every server as jupyterhub-singleuser would. The database was "
        "filled with JupyterHub's ORM as the hub records a running server (`Server` row, "
        "`Spawner` row with `server_id` and the state); configurable-http-proxy ran on "
        "its own with the N routes, as a deployment's proxy pod does through a hub "
        "restart (`LSST_HUB_PROXY_API_URL`).",
        "",
        "Times are from the hub process's start. *healthy*: the first 200 from the hub's "
        "own `/hub/health` (what the readiness probe asks). *all checked*: JupyterHub's "
        "`Initialized N spawners` log line (every server polled and its URL answered); "
        "*init_spawners* is that line's own figure. JupyterHub answers `/hub/health` once "
        "its checks are done or `init_spawners_timeout` (10 s) has passed, checking on in "
        "the background; but first it makes a Spawner object for every running server "
        "without yielding, which that timeout cannot cut short. *hub CPU*: the hub "
        "process's CPU time (user + system) when all were checked, the steadier figure on "
        "a shared machine. Every start was then checked to have lost nothing: N servers "
        "ready in the REST API, N pods in the cluster, no server stopped, no route "
        "re-added, and (LSSTSpawner) the orphan service's first pass deleted nothing. "
        f"{rounds} starts per case (the spawners taking turns), median (max)."
        + (
            " *LSSTSpawner, before*: the same set-up with the hub's configuration putting "
            "back what LSSTSpawner did before commit d822638 (each poll read `Spawner.db`, "
            "which JupyterHub answers with a deprecation warning per spawner)."
            if any(c.before for c in cases)
            else ""
        ),
        "",
        "| spawner | N | healthy s | all checked s | init_spawners s | hub CPU s "
        "| hub log lines | orphan service pass done s |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def cell(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} ({max(values):.1f})"

    for case in cases:
        orphan = [r.orphan_pass for r in case.runs if r.orphan_pass is not None]
        lines.append(
            f"| {case.label} | {case.servers:,} | {cell([r.healthy for r in case.runs])} "
            f"| {cell([r.checked for r in case.runs])} "
            f"| {cell([r.init_spawners for r in case.runs])} "
            f"| {cell([r.cpu for r in case.runs])} "
            f"| {statistics.median(r.log_lines for r in case.runs):,.0f} "
            f"| {cell(orphan) if orphan else '-'} |"
        )
    failed = [(c, sum(r.fallback_failed for r in c.runs)) for c in cases
              if c.kind == "LSSTSpawner"]  # fmt: skip
    lines += [
        "",
        "LSSTSpawner's own orphan pass in the hub (the fallback, once per hub process at "
        "the first poll) failed, logged as an error, in "
        + ", ".join(f"{n} of {len(c.runs)} starts ({c.label}, N={c.servers:,})" for c, n in failed)
        + " (the orphan service's pass, above, is the one that counts at start).",
        "",
        "Other helpers' test runs shared the machine's 2 cores (load average over 1 / 5 / "
        f"15 min before the starts of each N: {'; '.join(loads)}): single starts vary by "
        f"seconds. The whole benchmark took {minutes:.0f} min, set-up included"
        + (" (with the *before* case)." if any(c.before for c in cases) else "."),
        "",
        "Goal:",
        "",
    ]
    biggest = max(c.servers for c in cases)
    for case in (c for c in cases if c.servers == biggest and not c.before):
        healthy = statistics.median(r.healthy for r in case.runs)
        checked = statistics.median(r.checked for r in case.runs)
        lines.append(
            f"- hub healthy <= {GOAL_SECONDS:g} s after start with {biggest:,} running "
            f"servers, {case.label}: median {healthy:.1f} s, "
            f"{'met' if healthy <= GOAL_SECONDS else 'NOT met'} (every server checked "
            f"after {checked:.1f} s)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000", help="numbers of running servers")
    parser.add_argument("--rounds", type=int, default=3, help="hub starts per case")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--before", action="store_true",
                        help="also LSSTSpawner as before its polls stopped reading "
                        "Spawner.db, at the largest N")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="run the hubs under cProfile (use with --keep)")  # fmt: skip
    parser.add_argument(
        "--keep", metavar="DIR", help="work in DIR (kept: logs) instead of a temp dir"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    cases: list[Case] = []
    loads: list[str] = []
    t0 = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.keep:
            base = Path(args.keep)
            base.mkdir(parents=True)
        else:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-hub-")))
        with environment(base) as (cluster, token, slapd, notebooks):
            env = hub_env(slapd, cluster, base)
            try:
                for servers in sizes:
                    pair = [set_up(kind, servers, base, cluster, token, notebooks)
                            for kind in SPAWNERS]  # fmt: skip
                    if args.before and servers == max(sizes):
                        pair.append(dataclasses.replace(pair[0], before=True, runs=[]))
                    cases += pair
                    loads.append(f"N={servers:,}: {load()}")
                    # The spawners take turns, so background load falls on both alike.
                    for i in range(args.rounds):
                        for case in pair:
                            case.runs.append(one_run(case, base, env, cluster, i,
                                                     args.profile))  # fmt: skip
                    for case in pair:
                        case.proxy.stop()
            finally:
                for case in cases:
                    case.proxy.stop()
    total = time.monotonic() - t0
    text = report(cases, args.rounds, loads, total / 60)
    print(text)
    if not args.no_write:
        write_section("hub-startup", text)


if __name__ == "__main__":
    main()
