"""Orphan pods deleted at hub start by the managed service, and only orphans.

Three layers:

- the ordering rule with the pure :func:`select_orphans` (a pending spawn is
  never an orphan when pods are listed before the hub is asked);
- :func:`reconcile` against the dev cluster in the test's loop (races between
  listing and deleting);
- the service itself, started by a real JupyterHub subprocess (or run by hand
  against one) on a dev cluster subprocess, as in ``test_hub.py``.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub.objects import Hub
from traitlets.config import Config

from devcluster.testing import start_devcluster_process
from lsst_hub.spawner.hub_api import REQUIRED_SCOPES
from lsst_hub.spawner.reconcile import reconcile, select_orphans
from lsst_hub.spawner.reconcile_service import (
    INSTANCE_ENV,
    SERVICE_NAME,
    ReconcileService,
    configure_service,
    service_config,
)
from tests.spawner.conftest import Env
from tests.spawner.test_hub import (
    Cluster,
    hub_config,
    login,
    server_ready,
    spawn,
    start_cluster,
    wait_for,
)
from tests.support.hub_fixtures import RunningHub, start_hub
from tests.support.slapd import free_port

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "e2e"  # the hub_instance of test_hub's configuration


@pytest.fixture
def cluster(devcluster_process: Callable[..., Any], tmp_path: Path) -> Cluster:
    """A dev cluster subprocess (process runtime) with namespace jhub, as in test_hub."""
    return start_cluster(devcluster_process, tmp_path, ("alice", "erin"))


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/python3").exists(),
    reason="runs servers as another uid (needs root) with the system /usr/bin/python3",
)


def labeled_pod(name: str, user: str, instance: str | None = INSTANCE) -> dict[str, Any]:
    """A pod as LSSTSpawner labels it (``instance=None``: no labels at all)."""
    metadata: dict[str, Any] = {"name": name, "annotations": {"hub.jupyter.org/username": user}}
    if instance is not None:
        metadata["labels"] = {"component": "singleuser-server", "lsst-hub/instance": instance}
    return {
        "metadata": metadata,
        "spec": {"containers": [{"name": "notebook", "image": "busybox"}]},
    }


# -- the ordering rule (pure) -----------------------------------------------------


def test_a_pending_spawn_is_never_an_orphan_when_pods_are_listed_first() -> None:
    # The hub records a spawn's server (pending) before the spawner creates its pod.
    # Timeline: t0 spawn registered, t1 pod created.
    pod = labeled_pod("jupyter-bob", "bob", "hub-a")
    registered = {("bob", "")}
    # Listing at any time t, then asking the hub at a later time t' >= t:
    # - t < t1: the pod is not in the listing, nothing to delete;
    assert select_orphans([], registered, "hub-a") == []
    # - t >= t1: the pod is listed, and since t' >= t >= t0 the hub knows the server.
    assert select_orphans([pod], registered, "hub-a") == []
    # The other order is the bug the rule avoids: asking the hub before t0, then
    # listing after t1, would take the pending spawn's pod for an orphan.
    assert select_orphans([pod], set(), "hub-a") == ["jupyter-bob"]


# -- the runner against the dev cluster --------------------------------------------


async def test_a_pod_created_while_the_hub_is_asked_is_kept(env: Env) -> None:
    core, ns = env.core, env.namespace
    await core.create_namespaced_pod(ns, labeled_pod("jupyter-zed", "zed", "test-hub"))
    spawner = env.spawner("amy")

    async def known_servers() -> set[tuple[str, str]]:
        # A spawn racing with the pass: its pod appears after the listing, and the
        # hub's answers were taken before it registered (the worst case).
        if "jupyter-new" not in await env.pod_names():
            await core.create_namespaced_pod(ns, labeled_pod("jupyter-new", "new", "test-hub"))
        return set()

    deleted = await reconcile(spawner.kube, "test-hub", known_servers)
    assert deleted == ["jupyter-zed"]
    assert "jupyter-new" in await env.pod_names()


async def test_a_pod_replaced_after_listing_is_kept(env: Env) -> None:
    core, ns = env.core, env.namespace
    await core.create_namespaced_pod(ns, labeled_pod("jupyter-kim", "kim", "test-hub"))
    spawner = env.spawner("amy")

    async def confirm(server: tuple[str, str]) -> bool:
        # Between the hub's answer and the deletion, kim's old pod went and kim
        # started again: a new pod of the same name (another uid).
        await core.delete_namespaced_pod("jupyter-kim", ns, grace_period_seconds=0)
        await core.create_namespaced_pod(ns, labeled_pod("jupyter-kim", "kim", "test-hub"))
        return True

    old = await env.pod("jupyter-kim")
    assert old is not None
    deleted = await reconcile(spawner.kube, "test-hub", set, confirm=confirm)
    assert deleted == []
    new = await env.pod("jupyter-kim")
    assert new is not None
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    assert not new["metadata"].get("deletionTimestamp")


async def test_a_server_known_on_confirmation_is_kept(env: Env) -> None:
    core, ns = env.core, env.namespace
    for name, user in (("jupyter-lou", "lou"), ("jupyter-max", "max")):
        await core.create_namespaced_pod(ns, labeled_pod(name, user, "test-hub"))
    spawner = env.spawner("amy")
    asked: list[tuple[str, str]] = []

    async def confirm(server: tuple[str, str]) -> bool:
        asked.append(server)
        return server != ("lou", "")  # lou's server showed up on a later page

    deleted = await reconcile(spawner.kube, "test-hub", set, confirm=confirm)
    assert sorted(asked) == [("lou", ""), ("max", "")]
    assert deleted == ["jupyter-max"]
    assert "jupyter-lou" in await env.pod_names()


# -- configuration helpers --------------------------------------------------------


def test_service_config_entries() -> None:
    environ = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443",
               "CONFIGPROXY_AUTH_TOKEN": "secret"}  # fmt: skip
    entries = service_config(
        namespace="jhub", hub_instance="hub-a", interval=60, grace_seconds=5,
        python="/opt/py", environ=environ,
    )  # fmt: skip
    assert entries["service"] == {
        "name": SERVICE_NAME,
        "command": ["/opt/py", "-m", "lsst_hub.spawner.reconcile_service", "--namespace=jhub",
                    "--hub-instance=hub-a", "--interval=60", "--grace-seconds=5"],
        # only what reaching Kubernetes needs; never the hub's secrets
        "environment": {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
    }  # fmt: skip
    assert entries["role"]["scopes"] == ["list:users", "read:servers", "admin:server_state"]
    assert entries["role"]["services"] == [SERVICE_NAME]


def test_configure_service_keeps_other_services_and_roles() -> None:
    c = Config()
    c.JupyterHub.services = [{"name": "idle-culler", "command": ["cull"]}]
    configure_service(c, namespace="jhub")
    assert [s["name"] for s in c.JupyterHub.services] == ["idle-culler", SERVICE_NAME]
    assert "--namespace=jhub" in c.JupyterHub.services[-1]["command"]
    # On a config that set no roles yet, the role is appended to JupyterHub's default.
    roles = c.JupyterHub.load_roles.get_value([{"name": "existing"}])
    assert [r["name"] for r in roles] == ["existing", SERVICE_NAME]


def test_configure_service_follows_the_spawner_settings() -> None:
    c = Config()
    c.LSSTSpawner.namespace = "science"
    c.LSSTSpawner.hub_instance = "hub-b"
    configure_service(c)
    command = c.JupyterHub.services.get_value([])[0]["command"]
    assert command[3:5] == ["--namespace=science", "--hub-instance=hub-b"]
    # Nothing set: the service's own defaults, the namespace where it runs and the
    # instance derived from the hub's API URL (as the spawner's is).
    bare = Config()
    configure_service(bare)
    command = bare.JupyterHub.services.get_value([])[0]["command"]
    assert command[3:] == ["--interval=300"]
    assert "namespace" not in bare.LSSTSpawner


def test_configure_service_turns_the_in_hub_fallback_pass_off_unless_set() -> None:
    # The service cleans up from outside the hub; the fallback would list every pod
    # from inside the hub while it starts (bench_hub_startup: an 11-14 s freeze at 5,000).
    c = Config()
    configure_service(c)
    assert c.LSSTSpawner.reconcile_orphans is False
    kept = Config()
    kept.LSSTSpawner.reconcile_orphans = True
    configure_service(kept)
    assert kept.LSSTSpawner.reconcile_orphans is True


async def test_the_service_gets_the_spawners_default_instance_from_the_hub(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = service_config(namespace="jhub", environ={})
    assert not [a for a in entries["service"]["command"] if a.startswith("--hub-instance")]
    compute = entries["service"]["environment"][INSTANCE_ENV]
    # JupyterHub calls it with the service's spawner, whose hub is the spawners' hub.
    hub = Hub(port=18081)
    config = env.config()
    del config.LSSTSpawner["hub_instance"]
    label = env.spawner("amy", config=config, hub=hub).hub_instance
    assert compute(SimpleNamespace(hub=hub)) == label != "jupyterhub"
    # The service prefers it to a URL of its own (the chart's calls go to localhost)...
    monkeypatch.setenv(INSTANCE_ENV, label)
    assert ReconcileService(hub_api_url="http://localhost:8081/hub/api").hub_instance == label
    # ...and without it derives the same from the hub's URL.
    monkeypatch.delenv(INSTANCE_ENV)
    assert ReconcileService(hub_api_url=hub.api_url).hub_instance == label


# -- the service with a real hub --------------------------------------------------

# The spawner's own one-shot is off, so only the service can have deleted anything.
# configure_service reads namespace "jhub" and instance "e2e" from c.LSSTSpawner.
SERVICE = """
c.LSSTSpawner.reconcile_orphans = False
c.JupyterHub.cleanup_servers = False
from lsst_hub.spawner.reconcile_service import configure_service
configure_service(c, interval={interval})
"""


def others() -> list[dict[str, Any]]:
    """Pods the service must never delete: another hub's, and an unlabeled one."""
    return [
        labeled_pod("jupyter-yan", "yan", "other-hub"),
        labeled_pod("debug-shell", "zed", None),
    ]


def service_passes(hub: RunningHub) -> int:
    return hub.log_text().count("orphan pod pass done")


@pytest.fixture
def hub_with_service(
    cluster: Cluster, jupyterhub_factory: Callable[..., RunningHub]
) -> Callable[..., RunningHub]:
    def start(interval: float = 3600, extra: str = "") -> RunningHub:
        text = hub_config(cluster, SERVICE.format(interval=interval) + extra)
        return jupyterhub_factory(text, env={"KUBECONFIG": str(cluster.kubeconfig)})

    return start


@pytest.mark.slow
@needs_root
def test_orphans_go_at_start_of_a_hub_with_no_servers(
    cluster: Cluster, hub_with_service: Callable[..., RunningHub]
) -> None:
    cluster.create_pods(labeled_pod("jupyter-zed", "zed"), *others())
    # An hour between passes: only the pass at start can delete the orphan.
    hub = hub_with_service(interval=3600)
    assert hub.api("GET", "/users?state=active").json() == []
    wait_for(lambda: "jupyter-zed" not in cluster.pods(), what="the orphan deleted")
    assert cluster.pods() == ["debug-shell", "jupyter-yan"]
    log = hub.log_text()
    assert f"{SERVICE_NAME}] deleting orphan notebook pod jhub/jupyter-zed" in log
    assert "1 deleted (jupyter-zed)" in log


@pytest.mark.slow
@needs_root
def test_running_servers_survive_a_restart_orphans_do_not(
    cluster: Cluster, hub_with_service: Callable[..., RunningHub]
) -> None:
    first = hub_with_service()
    spawn(first, "alice")
    alice = cluster.get("/api/v1/namespaces/jhub/pods/jupyter-alice")["metadata"]["uid"]
    first.stop()
    cluster.create_pods(labeled_pod("jupyter-zed", "zed"), *others())

    # The same database and crypt key: the same hub, restarted.
    second = start_hub(
        first.directory,
        hub_config(cluster, SERVICE.format(interval=3600)),
        env={"KUBECONFIG": str(cluster.kubeconfig),
             "JUPYTERHUB_CRYPT_KEY": first.env["JUPYTERHUB_CRYPT_KEY"]},
    )  # fmt: skip
    try:
        wait_for(lambda: service_passes(second) >= 1, what="the pass at start")
        assert cluster.pods() == ["debug-shell", "jupyter-alice", "jupyter-yan"]
        assert cluster.get("/api/v1/namespaces/jhub/pods/jupyter-alice")["metadata"]["uid"] == (
            alice
        )
        assert server_ready(second, "alice")
    finally:
        second.stop()


@pytest.mark.slow
@needs_root
def test_a_pending_spawn_is_never_deleted(
    cluster: Cluster, hub_with_service: Callable[..., RunningHub]
) -> None:
    # The server never answers HTTP: the spawn stays pending for http_timeout.
    never_ready = (
        # (doubled braces: hub_config formats the text)
        'c.LSSTSpawner.extra_container_config = {{"command": ["/bin/sh", "-c", "sleep 600"]}}\n'
        "c.Spawner.http_timeout = 120\n"
    )
    hub = hub_with_service(interval=1, extra=never_ready)
    assert login(hub, "erin", "any").status_code == 302
    assert hub.api("POST", "/users/erin/server").status_code == 202
    wait_for(lambda: "jupyter-erin" in cluster.pods(), what="erin's pod")
    uid = cluster.get("/api/v1/namespaces/jhub/pods/jupyter-erin")["metadata"]["uid"]
    seen = service_passes(hub)
    wait_for(lambda: service_passes(hub) >= seen + 3, what="three passes during the spawn")
    pod = cluster.get("/api/v1/namespaces/jhub/pods/jupyter-erin")
    assert pod["metadata"]["uid"] == uid
    assert not pod["metadata"].get("deletionTimestamp")
    assert hub.api("GET", "/users/erin").json()["servers"][""]["pending"] == "spawn"
    assert "deleting orphan" not in hub.log_text()
    hub.api("DELETE", "/users/erin/server")


# -- the service run by hand: unavailable parts, missing scopes ---------------------------


def run_service(cluster: Cluster, api_url: str, token: str, log: Path, *args: str) -> Any:
    """``python -m lsst_hub.spawner.reconcile_service`` by hand, its output in ``log``."""
    env = dict(os.environ)
    env.update(
        KUBECONFIG=str(cluster.kubeconfig),
        JUPYTERHUB_API_URL=api_url,
        JUPYTERHUB_API_TOKEN=token,
        PYTHONPATH=str(REPO),
    )
    env.pop("KUBERNETES_SERVICE_HOST", None)
    argv = [sys.executable, "-m", "lsst_hub.spawner.reconcile_service", "--namespace=jhub"]
    with log.open("wb") as out:
        return subprocess.Popen(
            [*argv, f"--hub-instance={INSTANCE}", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def token_role(name: str, token: str, scopes: list[str]) -> str:
    return f"""
c.JupyterHub.services.append({{"name": {name!r}, "api_token": {token!r}}})
c.JupyterHub.load_roles = [{{"name": {name!r}, "scopes": {scopes!r}, "services": [{name!r}]}}]
"""


@pytest.mark.slow
@needs_root
def test_the_service_outlives_an_unavailable_hub_and_kubernetes(
    cluster: Cluster, jupyterhub_factory: Callable[..., RunningHub], tmp_path: Path
) -> None:
    cluster.create_pods(labeled_pod("jupyter-zed", "zed"), *others())
    # Kubernetes first answers 503 to every pod listing for a while...
    fault = {"verb": "list", "resource": "pods", "status": 503, "count": 8}
    cluster.request("POST", "/_devcluster/faults", json=fault).raise_for_status()
    # ...and the hub is not up yet: its API port is chosen now, the hub started later.
    hub_port, token = free_port(), secrets.token_hex(16)
    api_url = f"http://127.0.0.1:{hub_port}/hub/api"
    log = tmp_path / "service.log"
    service = run_service(
        cluster, api_url, token, log, "--interval=0.5", "--retry-timeout=0.3",
        "--request-timeout=5",
    )  # fmt: skip
    try:

        def read() -> str:
            return log.read_text(errors="replace")

        wait_for(lambda: "Kubernetes answered 503" in read(), what="a failed listing")
        wait_for(lambda: "no answer from the hub" in read(), what="a failed hub call")
        assert "jupyter-zed" in cluster.pods()  # nothing deleted on a failed pass
        assert service.poll() is None

        config = f"c.JupyterHub.hub_port = {hub_port}\n" + token_role(
            "orphans", token, list(REQUIRED_SCOPES)
        )
        jupyterhub_factory(config)
        wait_for(lambda: "jupyter-zed" not in cluster.pods(), what="the orphan deleted")
        assert cluster.pods() == ["debug-shell", "jupyter-yan"]
        assert "1 deleted (jupyter-zed)" in read()
        service.send_signal(signal.SIGTERM)
        assert service.wait(30) == 0
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(10)


# Scope sets that cannot see every server the hub knows, by test id.
NARROW_SCOPES = {
    "no-read-servers": ["list:users"],
    "some-users-only": ["list:users!group=staff", "read:servers", "admin:server_state"],
    # Without the servers' state a renamed user's server would look unknown.
    "no-server-state": ["list:users", "read:servers"],
}


@pytest.fixture(scope="module")
def narrow_tokens(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[tuple[Cluster, RunningHub, dict[str, str]]]:
    """A dev cluster with an orphan pod, and one hub with a service token per scope set
    of NARROW_SCOPES (one of each for the module: each start costs seconds)."""
    state = tmp_path_factory.mktemp("devcluster-proc")
    # The noop runtime: the pod only has to be listed.
    proc = start_devcluster_process(state, pytestconfig.rootpath, nodes=1, runtime="noop")
    hub = None
    try:
        cluster = Cluster(proc.url, proc.kubeconfig, state / "host")
        namespace = {"metadata": {"name": "jhub"}}
        cluster.request("POST", "/api/v1/namespaces", json=namespace).raise_for_status()
        cluster.create_pods(labeled_pod("jupyter-zed", "zed"))
        tokens = {name: secrets.token_hex(16) for name in NARROW_SCOPES}
        services = [{"name": f"orphans-{name}", "api_token": tokens[name]} for name in tokens]
        roles = [
            {"name": f"orphans-{name}", "scopes": scopes, "services": [f"orphans-{name}"]}
            for name, scopes in NARROW_SCOPES.items()
        ]
        config = (
            f"c.JupyterHub.services.extend({services!r})\nc.JupyterHub.load_roles = {roles!r}\n"
        )
        hub = start_hub(tmp_path_factory.mktemp("hub"), config)
        yield cluster, hub, tokens
    finally:
        if hub is not None:
            hub.stop()
        proc.stop()


@pytest.mark.slow
@pytest.mark.parametrize("scopes", list(NARROW_SCOPES))
def test_a_token_that_cannot_see_every_server_deletes_nothing(
    narrow_tokens: tuple[Cluster, RunningHub, dict[str, str]], scopes: str, tmp_path: Path
) -> None:
    cluster, hub, tokens = narrow_tokens
    log = tmp_path / "service.log"
    service = run_service(cluster, hub.api_url, tokens[scopes], log, "--once")
    assert service.wait(120) == 1
    out = log.read_text()
    assert "lacks the unfiltered scopes" in out
    assert "jupyter-zed" in cluster.pods()


# -- two hubs in one namespace, a renamed user ---------------------------------------------


def pod_uid(cluster: Cluster, name: str) -> str | None:
    pod = cluster.get(f"/api/v1/namespaces/jhub/pods/{name}")
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return None
    return str(pod["metadata"]["uid"])


@pytest.mark.slow
@needs_root
def test_two_hubs_that_keep_the_default_instance_keep_each_others_pods(
    cluster: Cluster, jupyterhub_factory: Callable[..., RunningHub]
) -> None:
    # Both hubs leave hub_instance unset and run the orphan service every second.
    text = hub_config(cluster, SERVICE.format(interval=1))
    text = text.replace(f'c.LSSTSpawner.hub_instance = "{INSTANCE}"\n', "")
    assert "hub_instance" not in text
    env = {"KUBECONFIG": str(cluster.kubeconfig)}
    first, second = jupyterhub_factory(text, env=env), jupyterhub_factory(text, env=env)
    spawn(first, "alice")
    spawn(second, "erin")
    uids = {name: pod_uid(cluster, name) for name in ("jupyter-alice", "jupyter-erin")}
    seen = [service_passes(first), service_passes(second)]
    wait_for(
        lambda: service_passes(first) >= seen[0] + 3 and service_passes(second) >= seen[1] + 3,
        what="three passes of each hub's service",
    )
    assert {name: pod_uid(cluster, name) for name in uids} == uids
    labels = {
        name: cluster.get(f"/api/v1/namespaces/jhub/pods/{name}")["metadata"]["labels"]
        for name in uids
    }
    assert (
        labels["jupyter-alice"]["lsst-hub/instance"] != labels["jupyter-erin"]["lsst-hub/instance"]
    )
    for hub in (first, second):
        assert "deleting orphan" not in hub.log_text()
        # Each service looked for its own hub's label, as its spawner put it.
        assert "0 deleted" in hub.log_text()
    assert f"instance {labels['jupyter-alice']['lsst-hub/instance']}" in first.log_text()
    assert f"instance {labels['jupyter-erin']['lsst-hub/instance']}" in second.log_text()


@pytest.mark.slow
@needs_root
def test_renaming_a_user_keeps_their_running_server(
    cluster: Cluster, hub_with_service: Callable[..., RunningHub]
) -> None:
    hub = hub_with_service(interval=1, extra="c.JupyterHub.cleanup_servers = False\n")
    spawn(hub, "alice")
    uid = pod_uid(cluster, "jupyter-alice")
    response = hub.api("PATCH", "/users/alice", json={"name": "alice2"})
    assert response.status_code == 200, response.text
    # The orphan service, every second: the pod is alice2's server's.
    seen = service_passes(hub)
    wait_for(lambda: service_passes(hub) >= seen + 3, what="three passes after the rename")
    assert pod_uid(cluster, "jupyter-alice") == uid
    assert server_ready(hub, "alice2")
    assert "deleting orphan" not in hub.log_text()
    hub.stop()

    # The spawner's own pass at hub start (no service), reading the hub's database.
    # An orphan beside it shows that the pass ran.
    cluster.create_pods(labeled_pod("jupyter-zed", "zed"))
    restarted = start_hub(
        hub.directory,
        hub_config(cluster, "c.JupyterHub.cleanup_servers = False\n"),
        env={"KUBECONFIG": str(cluster.kubeconfig),
             "JUPYTERHUB_CRYPT_KEY": hub.env["JUPYTERHUB_CRYPT_KEY"]},
    )  # fmt: skip
    try:
        wait_for(lambda: "jupyter-zed" not in cluster.pods(), what="the orphan deleted")
        assert pod_uid(cluster, "jupyter-alice") == uid
        assert server_ready(restarted, "alice2")
    finally:
        restarted.stop()
