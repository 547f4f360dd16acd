"""End to end through a real JupyterHub: the ways a session ends.

The hub (a subprocess, ``spawner_class = "lsst-kube"`` through the entry point)
spawns onto a dev cluster subprocess with the *process* runtime: the "notebook
server" really runs on this machine, as the person's uid, in the home directory
(the dev cluster maps the hostPath home to a directory under ``host_root``).
The server is the system Python's ``http.server`` (the venv's Python lives under
/root, out of reach of an unprivileged uid): the hub only needs an HTTP answer.
"""

from __future__ import annotations

import html
import os
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.hub_fixtures import RunningHub, login, new_session, start_hub
from tests.support.kubeconfig import kube_request

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.geteuid() != 0 or not Path("/usr/bin/python3").exists(),
        reason="runs servers as another uid (needs root) with the system /usr/bin/python3",
    ),
]

UID = 20001
# Record who we run as, serve HTTP, and exit with 3 once the file "stop-now" appears.
SERVER = (
    "id -u > whoami; /usr/bin/python3 -m http.server 8888 --bind 0.0.0.0 & pid=$!; "
    "while [ ! -e stop-now ]; do sleep 0.2; done; kill $pid; exit 3"
)

HUB_CONFIG = """
from jupyterhub.auth import DummyAuthenticator
from lsst_hub.identity import Group, Identity


class PosixDummy(DummyAuthenticator):
    # Any password; the auth_state carries a POSIX identity like the LDAP authenticator's.
    async def authenticate(self, handler, data):
        name = data["username"]
        identity = Identity(
            username=name, ldap_dn=f"uid={{name}},ou=people,dc=example,dc=org",
            uid_number={uid}, gid_number={uid}, home_directory=f"/gpfs/home/{{name}}",
            groups=(Group("hpcusers", 30000),),
        )
        return {{"name": name, "auth_state": identity.to_auth_state()}}


c.JupyterHub.authenticator_class = PosixDummy
c.Authenticator.enable_auth_state = True
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "lsst-kube"
c.JupyterHub.shutdown_on_logout = True
c.LSSTSpawner.namespace = "jhub"
c.LSSTSpawner.k8s_api_host = {url!r}
c.LSSTSpawner.hub_instance = "e2e"
c.LSSTSpawner.image = "local/irrelevant:1"
c.LSSTSpawner.extra_container_config = {{"command": ["/bin/sh", "-c", {server!r}]}}
c.LSSTSpawner.cpu_guarantee = 0.1
c.LSSTSpawner.mem_guarantee = "64M"
c.LSSTSpawner.delete_grace_period = 2
c.LSSTSpawner.start_timeout = 60
c.Spawner.poll_interval = 1
c.Spawner.http_timeout = 30
{extra}
"""

CULLER = """
c.JupyterHub.services.append({{
    "name": "idle-culler",
    "command": [{python!r}, "-m", "jupyterhub_idle_culler", "--timeout=4", "--cull-every=2"],
}})
c.JupyterHub.load_roles = [{{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}}]
"""


class Cluster:
    """The dev cluster subprocess, seen through its REST API."""

    def __init__(self, url: str, kubeconfig: Path, host_root: Path) -> None:
        self.url = url
        self.kubeconfig = kubeconfig
        self.host_root = host_root

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request with the kubeconfig's credentials."""
        return kube_request(self.kubeconfig, method, path, timeout=30, **kwargs)

    def get(self, path: str) -> Any:
        response = self.request("GET", path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def create_pods(self, *bodies: dict[str, Any]) -> None:
        for body in bodies:
            self.request("POST", "/api/v1/namespaces/jhub/pods", json=body).raise_for_status()

    def pods(self) -> list[str]:
        return sorted(
            p["metadata"]["name"] for p in self.get("/api/v1/namespaces/jhub/pods")["items"]
        )

    def home(self, user: str) -> Path:
        return self.host_root / "gpfs" / "home" / user


def start_cluster(
    devcluster_process: Callable[..., Any], tmp_path: Path, users: tuple[str, ...]
) -> Cluster:
    """A dev cluster subprocess (process runtime) with namespace jhub and ``users``' homes."""
    host_root = tmp_path / "host"
    proc = devcluster_process(nodes=2, runtime="process", host_root=host_root)
    found = Cluster(proc.url, proc.kubeconfig, host_root)
    response = found.request("POST", "/api/v1/namespaces", json={"metadata": {"name": "jhub"}})
    response.raise_for_status()
    for user in users:
        home = found.home(user)
        home.mkdir(parents=True)
        os.chown(home, UID, UID)
    return found


@pytest.fixture
def cluster(devcluster_process: Callable[..., Any], tmp_path: Path) -> Cluster:
    return start_cluster(devcluster_process, tmp_path, ("alice", "bob", "carol", "dan"))


def hub_config(cluster: Cluster, extra: str = "") -> str:
    """The hub's configuration (``extra`` is formatted with ``python``)."""
    return textwrap.dedent(
        HUB_CONFIG.format(
            uid=UID, url=cluster.url, server=SERVER, extra=extra.format(python=sys.executable)
        )
    )


@pytest.fixture
def hub(
    cluster: Cluster, jupyterhub_factory: Callable[..., RunningHub]
) -> Callable[..., RunningHub]:
    def start(extra: str = "") -> RunningHub:
        env = {"KUBECONFIG": str(cluster.kubeconfig)}
        return jupyterhub_factory(hub_config(cluster, extra), env=env)

    return start


def wait_for(predicate: Callable[[], Any], seconds: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what or predicate}")


def server_ready(hub: RunningHub, user: str) -> bool:
    model = hub.api("GET", f"/users/{user}").json()
    server = (model.get("servers") or {}).get("")
    return bool(server and server.get("ready"))


def server_gone(hub: RunningHub, user: str) -> bool:
    model = hub.api("GET", f"/users/{user}").json()
    return "" not in (model.get("servers") or {})


def spawn(hub: RunningHub, user: str, session: requests.Session | None = None) -> None:
    # Logging in stores the identity in auth_state; the admin API then starts the server.
    assert login(hub, user, "any", session=session).status_code == 302
    response = hub.api("POST", f"/users/{user}/server")
    assert response.status_code in (201, 202), response.text
    wait_for(lambda: server_ready(hub, user), what=f"{user}'s server to be ready")


def assert_session_ended(cluster: Cluster, hub: RunningHub, user: str) -> None:
    wait_for(lambda: f"jupyter-{user}" not in cluster.pods(), what=f"jupyter-{user} deleted")
    wait_for(lambda: server_gone(hub, user), what=f"hub forgets {user}'s server")
    # the home volume and its data stay
    assert cluster.get(f"/api/v1/persistentvolumes/gpfs-home-{user}")["status"]["phase"] == "Bound"
    claim = cluster.get(f"/api/v1/namespaces/jhub/persistentvolumeclaims/home-{user}")
    assert claim["status"]["phase"] == "Bound"
    assert (cluster.home(user) / "whoami").read_text().strip() == str(UID)


def test_server_runs_as_the_person_and_stop_deletes_the_pod(cluster: Cluster, hub: Any) -> None:
    running = hub()
    spawn(running, "alice")
    whoami = cluster.home("alice") / "whoami"
    assert whoami.read_text().strip() == str(UID)
    assert whoami.stat().st_uid == UID
    pod = cluster.get("/api/v1/namespaces/jhub/pods/jupyter-alice")
    assert pod["spec"]["securityContext"]["runAsUser"] == UID
    assert pod["metadata"]["labels"]["lsst-hub/instance"] == "e2e"
    response = running.api("DELETE", "/users/alice/server")
    assert response.status_code in (202, 204)
    assert_session_ended(cluster, running, "alice")


def test_logout_deletes_the_pod(cluster: Cluster, hub: Any) -> None:
    running = hub()
    session = new_session()
    spawn(running, "bob", session)
    session.get(f"{running.url}/hub/logout", timeout=60)
    assert_session_ended(cluster, running, "bob")


def test_server_exit_deletes_the_pod(cluster: Cluster, hub: Any) -> None:
    running = hub()
    spawn(running, "carol")
    (cluster.home("carol") / "stop-now").touch()
    assert_session_ended(cluster, running, "carol")


def test_idle_culler_deletes_the_pod(cluster: Cluster, hub: Any) -> None:
    running = hub(CULLER)
    spawn(running, "dan")
    # no activity: the culler (timeout 4 s, every 2 s) stops the server
    wait_for(lambda: "jupyter-dan" not in cluster.pods(), seconds=90, what="culling")
    assert_session_ended(cluster, running, "dan")
    assert "Culling server dan" in running.log_text()


def orphan(name: str, user: str, instance: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"component": "singleuser-server", "lsst-hub/instance": instance},
            "annotations": {"hub.jupyter.org/username": user},
        },
        "spec": {"containers": [{"name": "notebook", "image": "busybox"}]},
    }


def test_hub_restart_keeps_running_pods_and_deletes_orphans(cluster: Cluster, hub: Any) -> None:
    keep = "c.JupyterHub.cleanup_servers = False\n"
    first = hub(keep)
    spawn(first, "alice")
    alice_uid = cluster.get("/api/v1/namespaces/jhub/pods/jupyter-alice")["metadata"]["uid"]
    cluster.create_pods(
        orphan("jupyter-zed", "zed", "e2e"), orphan("jupyter-yan", "yan", "other-hub")
    )
    first.stop()
    assert "jupyter-alice" in cluster.pods()

    # The same database and crypt key: the same hub, restarted.
    second = start_hub(
        first.directory,
        hub_config(cluster, keep),
        env={
            "KUBECONFIG": str(cluster.kubeconfig),
            "JUPYTERHUB_CRYPT_KEY": first.env["JUPYTERHUB_CRYPT_KEY"],
        },
    )
    try:
        wait_for(lambda: "jupyter-zed" not in cluster.pods(), what="orphan deleted")
        pods = cluster.pods()
        assert "jupyter-yan" in pods  # another hub's pod
        assert cluster.get("/api/v1/namespaces/jhub/pods/jupyter-alice")["metadata"]["uid"] == (
            alice_uid
        )
        assert server_ready(second, "alice")
        assert "deleting orphan notebook pod jhub/jupyter-zed" in second.log_text()
    finally:
        second.stop()


def test_impossible_spawn_tells_the_person_why(cluster: Cluster, hub: Any) -> None:
    running = hub("c.LSSTSpawner.cpu_guarantee = 64")
    why = "No node can start a server with 64 CPU and 64 MiB memory: of 2 nodes, 2 have too"
    # The person, in the browser: the spawn fails at once, so JupyterHub answers the
    # spawn request itself, with our sentence and 503 (no room) rather than its
    # generic "Unhandled error starting server".
    session = new_session()
    assert login(running, "alice", "any", session=session).status_code == 302
    page = session.get(f"{running.url}/hub/spawn/alice", timeout=60)
    assert page.status_code == 503
    assert why in html.unescape(page.text)
    assert "Unhandled error" not in page.text
    # The REST API says the same.
    response = running.api("POST", "/users/alice/server")
    assert response.status_code == 503
    assert response.json()["message"].startswith(why)
    wait_for(lambda: server_gone(running, "alice"), what="the failed server to be forgotten")
    assert cluster.pods() == []


def test_a_renamed_users_pod_outlives_a_new_user_of_the_old_name(
    cluster: Cluster, hub: Any
) -> None:
    running = hub()
    spawn(running, "alice")
    path = "/api/v1/namespaces/jhub/pods/jupyter-alice"
    pod = cluster.get(path)
    response = running.api("PATCH", "/users/alice", json={"name": "alice2"})
    assert response.status_code == 200, response.text
    # A new person called alice: her server's pod name is alice2's pod's. JupyterHub
    # refuses the spawn itself (alice2's server still holds the OAuth client named
    # after "alice"); LSSTSpawner would refuse it too (tests/spawner/test_pod_owner.py).
    assert login(running, "alice", "any").status_code == 302
    response = running.api("POST", "/users/alice/server")
    assert response.status_code >= 400, response.text
    kept = cluster.get(path)
    assert kept["metadata"]["uid"] == pod["metadata"]["uid"]
    assert not kept["metadata"].get("deletionTimestamp")
    assert server_ready(running, "alice2")
    # alice2 stops her server; then the name is free for alice's.
    response = running.api("DELETE", "/users/alice2/server")
    assert response.status_code in (202, 204)
    wait_for(lambda: "jupyter-alice" not in cluster.pods(), what="alice2's pod deleted")
    spawn(running, "alice")
    started = cluster.get(path)["metadata"]
    owner = "lsst-hub/user-id"
    assert started["annotations"][owner] != pod["metadata"]["annotations"][owner]
