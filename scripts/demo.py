"""The local demo: LDAP + devcluster + JupyterHub on one machine (README command 1).

Run through ``bash scripts/demo.sh`` (which installs what is missing first). As
root, it starts:

1. a throwaway OpenLDAP ``slapd`` with TLS and the demo people (alice/alicepw,
   bob/bobpw, carol, who is not in the allowed group), from ``tests/support``;
2. the devcluster (``python -m devcluster serve --runtime process``) with
   three nodes and RBAC enforced, whose host root holds ``/gpfs/home/<user>`` owned
   by each person's uid/gid; it gets the chart's hub ServiceAccount and Role
   (``helm-values/chart-hub-rbac.yaml``) and ``helm-values/cluster-rbac.yaml``;
3. JupyterHub with the repository's ``jupyterhub_config.py``, configured through
   ``LSST_HUB_*`` variables to use the two above, talking to the cluster with the
   hub ServiceAccount's token. Each server is a real ``jupyterhub-singleuser``
   (JupyterLab) run by the devcluster as the person.

Environment: ``DEMO_PORT`` (default 8000), ``DEMO_HOST`` (the address the hub
listens on, default ``127.0.0.1``; ``0.0.0.0`` to open it from another machine's
browser), ``DEMO_STATE_DIR`` (default ``.demo``,
or ``/var/tmp/lsst-hub-demo`` for a checkout other users cannot reach; homes under
``DEMO_STATE_DIR/host`` survive restarts, everything else is made anew),
``DEMO_EXIT_AFTER_READY=1`` (log in as alice over HTTP once the hub is
healthy, then stop everything and exit 0: for tests).

``DEMO_HA=1`` runs the standby-hub deployment instead of one hub: a throwaway
PostgreSQL on loopback holds the hub database, configurable-http-proxy runs on its
own (the public port), and two hubs, ``hub-a`` and ``hub-b``, each wrapped by
``lsst-hub-ha``, campaign for the Lease ``jupyterhub/jupyterhub-hub`` in the
devcluster: the leader's hub runs, the other waits. The banner says how to kill
the leader and watch the standby take over. Servers keep running when a hub stops
(as at a site); they end with the devcluster when the demo stops.

Ctrl-C (or SIGTERM) stops the hub first (which stops the servers, deleting their
pods), then the devcluster, then slapd. ``DEMO_STATE_DIR/demo.json`` describes
the running demo (URL, kubeconfig, host root, process ids) for tests.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.kubeconfig import kube_request  # noqa: E402
from tests.support.slapd import (  # noqa: E402 - needs the repository on sys.path
    GROUPS_DN,
    PEOPLE_DN,
    SVC_DN,
    SVC_PW,
    Slapd,
    free_port,
    start_slapd,
)

NODE_BIN = REPO / ".tools" / "node" / "node_modules" / ".bin"
TOOLS_BIN = REPO / ".tools" / "bin"
VENV_BIN = Path(sys.executable).parent
NAMESPACE = "jupyterhub"
#: The Lease the wrapped hubs campaign for in HA mode (lsst-hub-ha's default name).
LEASE_NAME = "jupyterhub-hub"
NODES = 3
#: The demo people as in tests/support/ldap/data.ldif.in: uid, gid, password, note.
PEOPLE = {
    "alice": (10001, 10000, "alicepw", "admin"),
    "bob": (10002, 10000, "bobpw", ""),
    "carol": (10003, 10003, "cärol pw!", "not in jupyterhub-users: refused"),
}


class DemoError(RuntimeError):
    """Something the person running the demo must fix; the message says what."""


def log(message: str) -> None:
    print(f"demo: {message}", flush=True)


def wait_for(what: str, check: Any, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    """Call ``check()`` until it is true; fail if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoError(f"{what}: the process exited with {proc.returncode}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise DemoError(f"{what}: not ready after {timeout:.0f} s")


def manifests(name: str) -> list[dict[str, Any]]:
    """The objects of a YAML file in helm-values/."""
    text = (REPO / "helm-values" / name).read_text()
    return [obj for obj in yaml.safe_load_all(text) if obj]


def lease_role(namespace: str, lease: str) -> list[dict[str, Any]]:
    """A Role and binding giving the hub ServiceAccount what lsst-hub-ha needs on the Lease."""
    return [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "hub-lease", "namespace": namespace},
                "rules": [
                    # create cannot be narrowed to a name: the Lease does not exist yet.
                    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                     "verbs": ["create"]},
                    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                     "resourceNames": [lease], "verbs": ["get", "update"]},
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "hub-lease", "namespace": namespace},
                "subjects": [{"kind": "ServiceAccount", "name": "hub", "namespace": namespace}],
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                            "name": "hub-lease"},
            },
    ]  # fmt: skip


def reachable_by_others(path: Path) -> bool:
    """Whether any user can run ``path``: every directory on the way is o+x."""
    path = path.resolve()
    if not path.stat().st_mode & stat.S_IXOTH:
        return False
    return all(p.stat().st_mode & stat.S_IXOTH for p in path.parents)


def singleuser_command() -> list[str]:
    """The ``jupyterhub-singleuser`` the people's servers run, as their own uids.

    The hub's venv is used when its Python is reachable by other users. Where it
    is not (a Python installed under ``/root``, as pyenv does), a venv of the
    system's ``/usr/bin/python3`` with the same JupyterHub version and JupyterLab
    is built once under ``.tools/`` (``/var/tmp`` when the checkout itself is private).
    """
    if reachable_by_others(Path(sys.executable)):
        return [str(VENV_BIN / "jupyterhub-singleuser")]
    version = importlib.metadata.version("jupyterhub")
    tools = REPO / ".tools" if reachable_by_others(REPO) else Path("/var/tmp")  # noqa: S108
    venv = tools / f"lsst-hub-singleuser-jupyterhub-{version}"
    command = venv / "bin" / "jupyterhub-singleuser"
    if command.exists():
        return [str(command)]
    system_python = Path("/usr/bin/python3")
    tools.mkdir(parents=True, exist_ok=True)
    # Two runs (the two JupyterHub lines' test suites, or a demo beside the tests) may
    # want the same environment at once: one builds it, the other waits and reuses it.
    with (tools / f".{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if command.exists():
            return [str(command)]
        _build_server_env(system_python, venv, version)
    return [str(command)]


def _build_server_env(system_python: Path, venv: Path, version: str) -> None:
    """Build the servers' venv from the system Python; see :func:`singleuser_command`."""
    if not system_python.exists():
        raise DemoError(
            f"{sys.executable} cannot be run by other users and there is no /usr/bin/python3 "
            "to build the servers' environment from"
        )
    log(f"building {venv} for the servers (once; {sys.executable} is private to root)")
    building = venv.with_name(venv.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    for argv in (
        [str(system_python), "-m", "venv", str(building)],
        [
            str(building / "bin" / "python"), "-m", "pip", "install", "-q",
            "--disable-pip-version-check", f"jupyterhub=={version}", "jupyterlab>=4,<5",
            "ipykernel",
        ],
    ):  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise DemoError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}")
    # The scripts' #! lines name the directory they were installed in: fix them up.
    for script in (building / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            data = script.read_bytes()
            if data.startswith(b"#!" + str(building).encode()):
                script.write_bytes(data.replace(str(building).encode(), str(venv).encode(), 1))
    building.rename(venv)


def default_state_dir() -> Path:
    """``.demo`` in the checkout, or ``/var/tmp/lsst-hub-demo`` when the checkout is
    private to root (under ``/root``, say): the servers, running as the demo people,
    must be able to walk to their homes."""
    if reachable_by_others(REPO):
        return REPO / ".demo"
    return Path("/var/tmp/lsst-hub-demo")  # noqa: S108


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Demo:
    """The three services; :meth:`start` brings them up, :meth:`stop` takes them down."""

    def __init__(self, state: Path, port: int, host: str = "127.0.0.1", ha: bool = False) -> None:
        self.state = state
        self.ha = ha
        self.port = port
        # The demo's own requests go over loopback whatever address the hub listens on.
        self.url = f"http://127.0.0.1:{port}"
        self.bind_url = f"http://{host}:{port}"
        self.logs = state / "logs"
        self.host_root = state / "host"
        self.kubeconfig = state / "kubeconfig"  # the cluster admin's
        self.hub_kubeconfig = state / "hub-kubeconfig"  # the hub ServiceAccount's
        self.slapd: Slapd | None = None
        self.cluster: subprocess.Popen[bytes] | None = None
        self.hub: subprocess.Popen[bytes] | None = None
        # HA mode (DEMO_HA=1): the database, the proxy and the wrapped hubs by identity.
        self.postgres: Any = None
        self.proxy: subprocess.Popen[bytes] | None = None
        self.wrapped: dict[str, subprocess.Popen[bytes]] = {}
        # A hub's own kubeconfig instead of the ServiceAccount's (tests route one hub
        # through a proxy they can cut, to partition it from the API server).
        self.kubeconfigs: dict[str, Path] = {}
        self.shared_secrets = {
            "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
            "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32),
            "JPY_COOKIE_SECRET": secrets.token_hex(32),
        }
        self.hub_port = free_port()
        self.proxy_api_port = free_port()

    # -- start ---------------------------------------------------------------------
    def prepare(self) -> None:
        """A fresh state directory, keeping the homes of earlier runs."""
        self.state.mkdir(parents=True, exist_ok=True)
        if not reachable_by_others(self.state.parent):
            raise DemoError(
                f"{self.state.parent} is not reachable by other users, so the demo people's "
                "servers could not reach their homes: choose another DEMO_STATE_DIR"
            )
        # The people's servers, running as their own uids, walk through to their homes.
        os.chmod(self.state, 0o755)  # noqa: S103
        for child in self.state.iterdir():
            if child != self.host_root:
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        self.logs.mkdir()
        homes = self.host_root / "gpfs" / "home"
        homes.mkdir(parents=True, exist_ok=True)
        for directory in (self.host_root, homes.parent, homes):
            os.chmod(directory, 0o755)  # noqa: S103 - like /gpfs/home on a real system
        for user, (uid, gid, _, _) in PEOPLE.items():
            home = homes / user
            home.mkdir(exist_ok=True)
            os.chown(home, uid, gid)
            os.chmod(home, 0o700)

    def start_ldap(self) -> None:
        log("starting slapd (TLS) with the demo people")
        self.slapd = start_slapd(self.state / "ldap")

    def start_cluster(self) -> None:
        port = free_port()
        hub_token = secrets.token_hex(24)
        log(f"starting the devcluster ({NODES} nodes, process runtime, RBAC) on port {port}")
        env = dict(os.environ, PYTHONUNBUFFERED="1")  # logs as they happen
        env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
        with (self.logs / "devcluster.log").open("wb") as out:
            self.cluster = subprocess.Popen(
                [
                    sys.executable, "-m", "devcluster", "serve",
                    "--port", str(port),
                    "--nodes", str(NODES),
                    "--kubeconfig", str(self.kubeconfig),
                    "--runtime", "process",
                    "--host-root", str(self.host_root),
                    "--state-dir", str(self.state / "cluster"),
                    # As in a cluster: the hub's ServiceAccount has only the rights the
                    # chart's Role and helm-values/cluster-rbac.yaml give it.
                    "--rbac",
                    "--tls",  # kubectl sends the kubeconfig's token to https servers only
                    f"--token={hub_token}=system:serviceaccount:{NAMESPACE}:hub",
                ],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_for("devcluster", lambda: self.kube("GET", "/api/v1/nodes").ok, 60, self.cluster)
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        for obj in [namespace, *manifests("chart-hub-rbac.yaml"), *manifests("cluster-rbac.yaml")]:
            self.create(obj)
        # The hub talks to the cluster as its ServiceAccount, like the chart's hub pod.
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["users"][0]["user"]["token"] = hub_token
        self.hub_kubeconfig.write_text(yaml.safe_dump(config))
        self.hub_kubeconfig.chmod(0o600)

    def create(self, obj: dict[str, Any]) -> None:
        """Create one object of the kinds the demo needs, as the cluster's admin."""
        kind, meta = obj["kind"], obj["metadata"]
        group = "/api/v1" if obj["apiVersion"] == "v1" else f"/apis/{obj['apiVersion']}"
        scope = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
        plural = kind.lower() + ("es" if kind.endswith("s") else "s")
        answer = self.kube("POST", f"{group}{scope}/{plural}", json=obj)
        if answer.status_code != 201:
            raise DemoError(f"cannot create {kind} {meta['name']}: {answer.text}")

    def kube(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request to the devcluster with the kubeconfig's credentials."""
        return kube_request(self.kubeconfig, method, path, **kwargs)

    def hub_env(self) -> dict[str, str]:
        assert self.slapd is not None
        password_file = self.state / "ldap-password"
        password_file.write_text(SVC_PW + "\n")
        password_file.chmod(0o600)
        env = dict(os.environ)
        env.update(
            PYTHONUNBUFFERED="1",  # logs as they happen
            PATH=os.pathsep.join([str(NODE_BIN), str(TOOLS_BIN), str(VENV_BIN), env["PATH"]]),
            KUBECONFIG=str(self.hub_kubeconfig),
            LSST_HUB_BIND_URL=self.bind_url,
            LSST_HUB_LDAP_URLS=self.slapd.ldap_url,  # ldap://localhost:PORT + StartTLS
            LSST_HUB_LDAP_STARTTLS="true",
            LSST_HUB_LDAP_CA_FILE=str(self.slapd.ca_file),
            LSST_HUB_LDAP_SEARCH_BIND_DN=SVC_DN,
            LSST_HUB_LDAP_SEARCH_PASSWORD_FILE=str(password_file),
            LSST_HUB_LDAP_USER_SEARCH_BASE=PEOPLE_DN,
            LSST_HUB_LDAP_GROUP_SEARCH_BASE=GROUPS_DN,
            LSST_HUB_ALLOWED_GROUPS="jupyterhub-users",
            LSST_HUB_ADMIN_GROUPS="jupyterhub-admins",
            LSST_HUB_NAMESPACE=NAMESPACE,
            LSST_HUB_IMAGE="quay.io/jupyter/base-notebook:latest",
            LSST_HUB_CPU_GUARANTEE="0.5",
            LSST_HUB_MEM_GUARANTEE="512M",
            LSST_HUB_HOME_ROOTS="/gpfs/home",
            LSST_HUB_SYNTHESIZE_PASSWD="true",  # noqa: S106 - a flag: whoami shows the name
            LSST_HUB_START_TIMEOUT="120",
            # The venv's jupyterhub-singleuser, which the people's uids can run. KubeSpawner
            # puts it in the container's args; the devcluster's process runtime runs the
            # args of a container without a command (as the image's init would).
            LSST_HUB_SINGLEUSER_CMD=shlex.join(singleuser_command()),
            # A site's hub leaves servers running when it stops (cleanup_servers False,
            # so a restart keeps the sessions); the demo wants a clean slate: stopping
            # it stops every server, so their pods are deleted (homes kept).
            LSST_HUB_CLEANUP_SERVERS="false" if self.ha else "true",
        )
        env.update(self.shared_secrets)
        if not self.ha:
            del env["JPY_COOKIE_SECRET"]  # one hub: its cookie secret file is enough
        return env

    def start_hub(self) -> None:
        hub_dir = self.state / "hub"
        hub_dir.mkdir()
        # The admin's configuration as it is, set through LSST_HUB_* variables only.
        config = REPO / "jupyterhub_config.py"
        hub_port, proxy_api_port = free_port(), free_port()
        log(f"starting JupyterHub on {self.url}")
        with (self.logs / "jupyterhub.log").open("wb") as out:
            self.hub = subprocess.Popen(
                [
                    sys.executable, "-m", "jupyterhub",
                    "-f", str(config),
                    f"--JupyterHub.hub_bind_url=http://127.0.0.1:{hub_port}",
                    f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{proxy_api_port}",
                ],
                cwd=hub_dir, env=self.hub_env(), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        wait_for(
            "JupyterHub",
            lambda: requests.get(f"{self.url}/hub/health", timeout=5).ok,
            120,
            self.hub,
        )

    # -- HA mode (DEMO_HA=1) ---------------------------------------------------------
    def start_ha(self) -> None:
        """PostgreSQL, the proxy, and two wrapped hubs: hub-a leads, hub-b waits."""
        from tests.deploy.postgres_support import start_postgres

        log("starting PostgreSQL (the hub database both hubs share)")
        self.postgres = start_postgres()
        self.start_proxy()
        # The Role the hub-standby chart gives the hub's ServiceAccount for the Lease.
        for obj in lease_role(NAMESPACE, LEASE_NAME):
            self.create(obj)
        self.start_wrapped_hub("hub-a")
        self.wait_for_hub("hub-a")
        self.start_wrapped_hub("hub-b")

    def start_proxy(self) -> None:
        log(f"starting configurable-http-proxy on {self.bind_url}")
        host = self.bind_url.rsplit(":", 1)[0].split("//", 1)[1]
        env = dict(os.environ, **self.shared_secrets)
        with (self.logs / "proxy.log").open("wb") as out:
            self.proxy = subprocess.Popen(
                [
                    str(NODE_BIN / "configurable-http-proxy"),
                    "--ip", host, "--port", str(self.port),
                    "--api-ip", "127.0.0.1", "--api-port", str(self.proxy_api_port),
                    "--error-target", f"http://127.0.0.1:{self.hub_port}/hub/error",
                ],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for(
            "configurable-http-proxy",
            lambda: (
                requests.get(
                    f"http://127.0.0.1:{self.proxy_api_port}/api/routes",
                    headers={
                        "Authorization": f"token {self.shared_secrets['CONFIGPROXY_AUTH_TOKEN']}"
                    },
                    timeout=5,
                ).ok
            ),
            60,
            self.proxy,
        )

    def start_wrapped_hub(self, identity: str, kubeconfig: Path | None = None) -> None:
        """Start ``lsst-hub-ha`` with the hub, as ``identity`` (a pod name in a cluster).

        ``kubeconfig`` replaces the hub ServiceAccount's (a test routes one hub
        through a proxy it can cut).
        """
        assert self.postgres is not None
        hub_dir = self.state / identity
        hub_dir.mkdir(exist_ok=True)
        env = self.hub_env()
        env.update(
            KUBECONFIG=str(kubeconfig or self.kubeconfigs.get(identity) or self.hub_kubeconfig),
            LSST_HUB_DB_URL=self.postgres.url,
            LSST_HUB_DB_PASSWORD=self.postgres.password,
            LSST_HUB_PROXY_API_URL=f"http://127.0.0.1:{self.proxy_api_port}",
            POD_NAMESPACE=NAMESPACE,
        )
        wrapper = VENV_BIN / "lsst-hub-ha"
        command = [str(wrapper)] if wrapper.exists() else [sys.executable, "-m", "lsst_hub.ha.cli"]
        log(f"starting {identity}: lsst-hub-ha wrapping JupyterHub")
        with (self.logs / f"{identity}.log").open("ab") as out:
            self.wrapped[identity] = subprocess.Popen(
                [
                    *command, "--lease-name", LEASE_NAME, "--lease-namespace", NAMESPACE,
                    "--identity", identity, "--",
                    sys.executable, "-m", "jupyterhub",
                    "-f", str(REPO / "jupyterhub_config.py"),
                    f"--JupyterHub.hub_bind_url=http://127.0.0.1:{self.hub_port}",
                ],
                cwd=hub_dir, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_for_hub(self, identity: str, timeout: float = 120) -> None:
        """Wait until ``identity`` leads and its hub answers through the proxy."""
        wait_for(
            f"{identity}'s hub",
            lambda: (
                self.leader() == identity and requests.get(f"{self.url}/hub/health", timeout=5).ok
            ),
            timeout,
            self.wrapped[identity],
        )

    def leader(self) -> str | None:
        """The Lease's holder (None: nobody holds it)."""
        answer = self.kube(
            "GET",
            f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE_NAME}",
        )
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        holder = answer.json().get("spec", {}).get("holderIdentity")
        return str(holder) if holder else None

    def start(self) -> None:
        if os.geteuid() != 0:
            raise DemoError(
                "run the demo as root: it makes homes owned by the demo people and the "
                "devcluster runs each server as its owner's uid/gid"
            )
        self.prepare()
        self.start_ldap()
        self.start_cluster()
        if self.ha:
            self.start_ha()
        else:
            self.start_hub()
        self.write_description()

    def write_description(self) -> None:
        assert self.slapd is not None and self.cluster is not None
        assert self.hub is not None or self.wrapped
        description: dict[str, Any] = {
            "url": self.url,
            "kubeconfig": str(self.kubeconfig),
            "namespace": NAMESPACE,
            "host_root": str(self.host_root),
            "logs": str(self.logs),
            "pids": {
                "demo": os.getpid(),
                "jupyterhub": self.hub.pid if self.hub else None,
                "devcluster": self.cluster.pid,
                "proxy": self.proxy.pid if self.proxy else None,
                "slapd": self.slapd.process.pid if self.slapd.process else None,
            },
            "people": {user: password for user, (_, _, password, _) in PEOPLE.items()},
        }
        if self.ha:
            # The wrappers' pids lead their process groups (each runs its hub).
            description["ha"] = {
                "lease": f"{NAMESPACE}/{LEASE_NAME}",
                "wrappers": {name: proc.pid for name, proc in self.wrapped.items()},
                "leader": self.leader(),
            }
        (self.state / "demo.json").write_text(json.dumps(description, indent=2) + "\n")

    # -- use -------------------------------------------------------------------------
    def login(self, user: str, password: str) -> requests.Session:
        """Log in through the form, as a browser does; return the session."""
        session = requests.Session()
        session.get(f"{self.url}/hub/login", timeout=30).raise_for_status()
        answer = session.post(
            f"{self.url}/hub/login",
            data={"username": user, "password": password, "_xsrf": session.cookies["_xsrf"]},
            allow_redirects=False,
            timeout=60,
        )
        if answer.status_code != 302:
            raise DemoError(f"login as {user} answered {answer.status_code}, not 302")
        return session

    def banner(self) -> str:
        people = "\n".join(
            f"    {user:6} {password!r:12} {note}"
            for user, (_, _, password, note) in PEOPLE.items()
        )
        kubectl = TOOLS_BIN / "kubectl"
        listening = "" if self.bind_url == self.url else f" (listening on {self.bind_url})"
        return f"""
lsst-hub demo running: {self.url}{listening}

  Log in as (user, password):
{people}
  Homes (kept across runs): {self.host_root}/gpfs/home/<user>
  The cluster:  KUBECONFIG={self.kubeconfig} {kubectl} get pods -A -o wide
  Logs:         {self.logs}/
{self.ha_banner()}
  Ctrl-C stops everything.
"""

    def ha_banner(self) -> str:
        if not self.ha:
            return ""
        leader = self.leader() or "?"
        standby = next((n for n in self.wrapped if n != leader), "?")
        pid = self.wrapped[leader].pid if leader in self.wrapped else "?"
        kubectl = f"KUBECONFIG={self.kubeconfig} {TOOLS_BIN / 'kubectl'}"
        return f"""
  Standby hub (DEMO_HA=1): hub-a and hub-b campaign for the Lease {NAMESPACE}/{LEASE_NAME};
  {leader} leads (its hub serves), {standby} waits. Database: PostgreSQL; proxy: its own process.
    Kill the leader and its hub:   kill -9 -{pid}
    Or hand over (an upgrade):     kill -TERM {pid}
    Watch the standby take over:   tail -f {self.logs}/{standby}.log
    Who leads:                     {kubectl} -n {NAMESPACE} get lease
  Servers keep running through the proxy meanwhile; log in again at {self.url} once it has.
  (The demo restarts a stopped hub as the new standby, as Kubernetes would.)
"""

    def safe_leader(self) -> str | None:
        """:meth:`leader`, or None if the cluster does not answer."""
        try:
            return self.leader()
        except Exception:  # the devcluster may be gone already
            return None

    def restart_stopped_hubs(self) -> None:
        """Start again any wrapper that exited, as a standby (as Kubernetes restarts it)."""
        for name, proc in list(self.wrapped.items()):
            if proc.poll() is not None:
                log(f"{name} exited with {proc.returncode}; starting it again as a standby")
                self.start_wrapped_hub(name)
                self.write_description()

    # -- stop ------------------------------------------------------------------------
    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes] | None, what: str, grace: float) -> None:
        if proc is None:
            return
        if proc.poll() is None:
            log(f"stopping {what}")
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                log(f"{what} did not stop within {grace:.0f} s: killing it")
        # Each service ran in its own session: its process group holds what it started
        # (the proxy; the people's servers), and nothing else.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    def stop(self) -> None:
        # Standby first, so that it does not take over from the leader being stopped.
        for name in sorted(self.wrapped, key=lambda n: n == self.safe_leader()):
            self._terminate(self.wrapped[name], f"{name} (lsst-hub-ha and its hub)", 60)
        self._terminate(self.proxy, "configurable-http-proxy", 10)
        if self.postgres is not None:
            log("stopping PostgreSQL")
            self.postgres.stop()
        self._terminate(self.hub, "JupyterHub (and the running servers)", 60)
        self._terminate(self.cluster, "the devcluster", 30)
        if self.slapd is not None:
            log("stopping slapd")
            self.slapd.stop()


def main() -> int:
    if sys.argv[1:] == ["--prepare"]:
        # Used by scripts/setup.sh: build what the servers run before any demo or test.
        print(" ".join(singleuser_command()))
        return 0
    port = int(os.environ.get("DEMO_PORT") or 8000)
    state = Path(os.environ.get("DEMO_STATE_DIR") or default_state_dir()).resolve()
    exit_after_ready = os.environ.get("DEMO_EXIT_AFTER_READY", "") not in ("", "0")
    ha = os.environ.get("DEMO_HA", "") not in ("", "0")
    demo = Demo(state, port, os.environ.get("DEMO_HOST") or "127.0.0.1", ha=ha)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        demo.start()
        if exit_after_ready:
            session = demo.login("alice", PEOPLE["alice"][2])
            home = session.get(f"{demo.url}/hub/home", timeout=30)
            if home.status_code != 200 or not re.search(r"\balice\b", home.text):
                raise DemoError(f"alice's hub home page answered {home.status_code}")
            log("ready: logged in as alice over HTTP; exiting (DEMO_EXIT_AFTER_READY)")
            return 0
        print(demo.banner(), flush=True)
        while not stopping.wait(1.0):
            for proc, what in (
                (demo.hub, "JupyterHub"),
                (demo.cluster, "the devcluster"),
                (demo.proxy, "configurable-http-proxy"),
            ):
                if proc is not None and proc.poll() is not None:
                    raise DemoError(f"{what} exited with {proc.returncode}")
            if demo.ha:
                demo.restart_stopped_hubs()
        return 0
    except DemoError as exc:
        log(f"error: {exc}")
        for name in ("jupyterhub.log", "hub-a.log", "hub-b.log", "devcluster.log"):
            text = tail(demo.logs / name)
            if text:
                print(f"--- last lines of {demo.logs / name}\n{text}", file=sys.stderr)
        return 1
    finally:
        demo.stop()
        log("stopped")


if __name__ == "__main__":
    sys.exit(main())
