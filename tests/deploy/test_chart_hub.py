"""The chart's own hub configuration, end to end, with lsst-hub as the image has it.

The real chart is rendered with the overlay, the example site file and a test site file
(``LOCAL_VALUES`` below: the LDAP server, a service token for the test, and one
``hub.extraConfig`` entry with this machine's addresses). The hub's ConfigMap and Secret
are laid out as the hub Deployment mounts them, with the container's environment, and
the Deployment's command (``jupyterhub --config .../jupyterhub_config.py --upgrade-db``)
runs the chart's ``jupyterhub_config.py`` + ``z2jh.py`` in the hub image's Python
environment (JupyterHub 5.5.0 and the chart's pins, lsst-hub from the wheel as the
Dockerfile installs it). The proxy is configurable-http-proxy with the chart's command
line, TLS from the site's Secret. Kubernetes is the devcluster with RBAC enforced (the
chart's hub Role and ``helm-values/cluster-rbac.yaml``), LDAP a real slapd over TLS.
A person logs in over HTTPS, starts a server (a pod running as them, on the least-loaded
node, with their home mounted), and logs out, which stops it. Twice: with the hub's
database in sqlite (the chart's default) and in PostgreSQL (``helm-values/db-postgres.yaml``,
a real server started on loopback, :mod:`tests.deploy.postgres_support`).

Changed from the pod, and nothing else:

- the directory ``/usr/local/etc/jupyterhub`` (rewritten in the two Python files);
- addresses: the hub listens on 127.0.0.1 and a free port instead of ``:8081``, the
  proxy's API and the services' ``localhost:8081`` follow (``hub.extraConfig.zz-local``);
  the Services' ``*_SERVICE_HOST`` are 127.0.0.1;
- Kubernetes access: a kubeconfig with the hub ServiceAccount's token instead of the
  in-cluster one; the LDAP CA file is the test CA's path instead of the ConfigMap mount;
- the notebook command (``singleuser.cmd``): a shell that records its uid in the home
  and answers HTTP (no notebook image here);
- with PostgreSQL, ``hub.db.url`` names the local server;
- the hub starts with SIGINT ignored, as under a wrapper or init that ignores it: at the
  end it gets SIGTERM, as from Kubernetes, and must exit with its services, none of
  which may ignore SIGINT (the hub stops them with SIGINT and waits 10 s for each).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from scripts.demo import PEOPLE, Demo
from tests.deploy.chart_support import (
    HELM_VALUES,
    chart_proxy_command,
    find,
    lay_out_hub_config,
    render,
    secret_data,
    site_tls,
)
from tests.deploy.demo_support import demo_state_dir
from tests.deploy.hub_image_support import HubEnv
from tests.deploy.hub_stop_support import alive, ignored_signals, service_pids
from tests.deploy.postgres_support import Postgres
from tests.support.slapd import GROUPS_DN, PEOPLE_DN, SVC_DN, SVC_PW, free_port

# The hub runs from the hub image's own environment (its pins, JupyterHub 5.5), whichever
# line the tests run on.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.line_independent,
    pytest.mark.skipif(
        os.geteuid() != 0 or not Path("/usr/bin/python3").exists(),
        reason="the devcluster runs servers as the people's uids (needs root)",
    ),
]

NAMESPACE = "jupyterhub"
SERVER = "id -u > whoami; exec /usr/bin/python3 -m http.server 8888 --bind 0.0.0.0"

LOCAL_VALUES = """
hub:
  config:
    LDAPAuthenticator:
      server_urls: [{ldaps_url}]
      tls_ca_file: {ca_file}
      search_bind_dn: {svc_dn}
      user_search_base: {people_dn}
      group_search_base: {groups_dn}
      allowed_groups: [jupyterhub-users]
      admin_groups: [jupyterhub-admins]
    LSSTSpawner:
      allowed_home_roots: [/gpfs/home]
  services:
    test-admin: {{}}
  loadRoles:
    test-admin:
      scopes: [admin:users, admin:servers]
      services: [test-admin]
  extraConfig:
    zz-local: |
      c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
      c.JupyterHub.hub_connect_url = "http://127.0.0.1:{hub_port}"
      c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
      for service in c.JupyterHub.services:
          if "command" in service:
              service["command"] = [
                  a.replace("localhost:8081", "127.0.0.1:{hub_port}") for a in service["command"]
              ]
singleuser:
  cmd: [/bin/sh, -c, "{server}"]
"""


def wait_for(
    what: str, check: Callable[[], Any], log: Path, timeout: float = 120.0,
    processes: list[subprocess.Popen[bytes]] | None = None,
) -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes or []:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-6000:]
                pytest.fail(f"{process.args[0]} exited before {what}:\n{tail}")
        with contextlib.suppress(requests.RequestException):
            value = check()
            if value:
                return value
        time.sleep(0.3)
    pytest.fail(f"no {what} after {timeout} s:\n{log.read_text(errors='replace')[-6000:]}")


@pytest.fixture
def site() -> Iterator[Demo]:
    """slapd and the RBAC-enforcing devcluster (process runtime), as the demo runs them."""
    with demo_state_dir() as state:
        demo = Demo(state, port=free_port())
        try:
            demo.prepare()
            demo.start_ldap()
            demo.start_cluster()
            yield demo
        finally:
            demo.stop()


def filler_pod(name: str, node: str) -> dict[str, Any]:
    """Another team's pod in another namespace, taking 2 CPUs on ``node``."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "securityContext": {"runAsUser": 65534, "runAsGroup": 65534},
            "containers": [
                {
                    "name": "work",
                    "image": "registry.df.example.org/batch:1",
                    "command": ["/bin/sleep", "600"],
                    "resources": {"requests": {"cpu": "2", "memory": "1Gi"}},
                }
            ],
        },
    }


def test_login_spawn_logout_through_the_chart_config(site: Demo, hub_image_env: HubEnv) -> None:
    run_chart_hub(site, hub_image_env)


def test_the_same_with_the_hub_database_in_postgres(
    site: Demo, hub_image_env: HubEnv, postgres: Postgres
) -> None:
    run_chart_hub(site, hub_image_env, postgres)
    # The hub kept its state there: the person, and no sqlite file beside it.
    assert postgres.sql("SELECT name FROM users") == "alice\n"


def run_chart_hub(site: Demo, hub_image_env: HubEnv, postgres: Postgres | None = None) -> None:
    assert site.slapd is not None
    work = site.state / "chart-hub"
    work.mkdir()
    hub_port = free_port()
    ports = {"https": free_port(), "http": free_port(), "api": free_port()}
    local = work / "local-values.yaml"
    local.write_text(
        LOCAL_VALUES.format(
            ldaps_url=site.slapd.ldaps_url, ca_file=site.slapd.ca_file, svc_dn=SVC_DN,
            people_dn=PEOPLE_DN, groups_dn=GROUPS_DN, hub_port=hub_port,
            api_port=ports["api"], server=SERVER,
        )
    )  # fmt: skip
    site_secrets = {"lsst-hub-ldap/password": SVC_PW}
    files = [local]
    if postgres is not None:
        db = work / "local-db.yaml"
        db.write_text(f"hub:\n  db:\n    url: {postgres.url}\n")
        files = [HELM_VALUES / "db-postgres.yaml", local, db]
        site_secrets["lsst-hub-db/password"] = postgres.password
    objects = render(*files)
    config_dir = work / "usr-local-etc-jupyterhub"
    env = lay_out_hub_config(objects, config_dir, site_secrets)
    token = secret_data(find(objects, "Secret", "hub"))["hub.services.test-admin.apiToken"]
    ca, tls_dir = site_tls(work)
    env.update(
        PATH=f"{hub_image_env.bin}:/usr/bin:/bin",  # the image's python3 and jupyterhub first
        KUBECONFIG=str(site.hub_kubeconfig),
        HOME=str(work),
    )
    hub_url = f"http://127.0.0.1:{hub_port}"
    https = f"https://127.0.0.1:{ports['https']}"
    log = work / "hub-and-proxy.log"
    srv = work / "srv-jupyterhub"  # the hub's PVC mount and working directory
    srv.mkdir()
    container = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]
    args = [a.replace("/usr/local/etc/jupyterhub", str(config_dir)) for a in container["args"]]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with log.open("wb") as out:
            for argv, cwd in (
                (chart_proxy_command(objects, tls_dir, ports, hub_url), work),
                (args, srv),
            ):
                processes.append(
                    subprocess.Popen(
                        argv,
                        cwd=cwd,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        preexec_fn=ignore_sigint,
                    )
                )
        wait_for(
            "hub health over HTTPS",
            lambda: requests.get(f"{https}/hub/health", verify=ca, timeout=5).ok,
            log,
            processes=processes,
        )
        run_the_session(site, https, ca, token, log)
        assert (srv / "jupyterhub.sqlite").exists() is (postgres is None)
        stop_the_hub(processes[1], log)
    finally:
        for process in reversed(processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_the_hub(hub: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, as Kubernetes sends it: the hub exits, and its services with it."""
    services = service_pids(hub.pid)
    assert set(services) == {"jupyterhub-idle-culler", "lsst-orphan-pods"}
    ignoring = [name for name, pid in services.items() if signal.SIGINT in ignored_signals(pid)]
    assert ignoring == [], "the hub stops its services with SIGINT"
    hub.send_signal(signal.SIGTERM)
    # Only a guard against a hang: benchmarks/bench_hub_stop.py measures the time.
    assert hub.wait(120) == 0, log.read_text(errors="replace")[-6000:]
    assert [name for name, pid in services.items() if alive(pid)] == []
    assert "orphan pod service stopping" in log.read_text(errors="replace")


def run_the_session(site: Demo, https: str, ca: Path, token: str, log: Path) -> None:
    uid, gid, password, _ = PEOPLE["alice"]
    verify = str(ca)  # per request: requests prefers $REQUESTS_CA_BUNDLE to Session.verify

    def api(method: str, path: str) -> requests.Response:
        return requests.request(
            method, f"{https}/hub/api/{path}", headers={"Authorization": f"token {token}"},
            verify=verify, timeout=30,
        )  # fmt: skip

    def kube(path: str) -> Any:
        answer = site.kube("GET", path)
        return None if answer.status_code == 404 else answer.json()

    # Other teams' work fills node-1 and node-2: node-3 is the least loaded.
    nodes = sorted(n["metadata"]["name"] for n in kube("/api/v1/nodes")["items"])
    assert nodes == ["node-1", "node-2", "node-3"]
    for i, node in enumerate(nodes[:2]):
        created = site.kube(
            "POST", "/api/v1/namespaces/default/pods", json=filler_pod(f"batch-{i}", node)
        )
        assert created.status_code == 201, created.text

    # A person logs in over HTTPS with their LDAP password ...
    session = requests.Session()
    page = session.get(f"{https}/hub/login", verify=verify, timeout=30)
    page.raise_for_status()
    login = session.post(
        f"{https}/hub/login",
        data={"username": "alice", "password": password, "_xsrf": session.cookies.get("_xsrf")},
        verify=verify, allow_redirects=False, timeout=60,
    )  # fmt: skip
    assert login.status_code == 302, login.text[:2000]
    # ... and starts their server.
    session.get(f"{https}/hub/spawn", verify=verify, timeout=60)

    def ready() -> bool:
        server = (api("GET", "users/alice").json().get("servers") or {}).get("")
        return bool(server and server.get("ready"))

    wait_for("alice's server ready", ready, log, timeout=180)
    pod = kube(f"/api/v1/namespaces/{NAMESPACE}/pods/jupyter-alice")
    assert pod["spec"]["securityContext"]["runAsUser"] == uid
    assert pod["spec"]["securityContext"]["runAsGroup"] == gid
    assert pod["spec"]["nodeName"] == "node-3"
    assert pod["metadata"]["labels"]["lsst-hub/instance"] == "jhub"  # the Helm release
    assert not pod["spec"].get("initContainers")
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]
              if "persistentVolumeClaim" in v]  # fmt: skip
    assert claims == ["home-alice"]
    whoami = site.host_root / "gpfs" / "home" / "alice" / "whoami"
    assert whoami.read_text().strip() == str(uid)
    assert whoami.stat().st_uid == uid

    # Logging out stops the server (hub.shutdownOnLogout): the pod goes, the home stays.
    session.get(f"{https}/hub/logout", verify=verify, timeout=60)
    wait_for(
        "alice's pod deleted",
        lambda: kube(f"/api/v1/namespaces/{NAMESPACE}/pods/jupyter-alice") is None,
        log,
    )
    wait_for(
        "the hub forgets alice's server",
        lambda: "" not in (api("GET", "users/alice").json().get("servers") or {}),
        log,
    )
    assert kube("/api/v1/persistentvolumes/gpfs-home-alice")["status"]["phase"] == "Bound"
    assert whoami.exists()
    # The orphan-pod service reached the hub at its local address, with the spawner's
    # namespace and instance label, and could list the pods with the hub's RBAC (its
    # first pass runs once the hub has started it, in the background).
    done = f"orphan pod pass done in {NAMESPACE} for instance jhub: 0 deleted"
    wait_for("the orphan-pod service's first pass", lambda: done in log.read_text(), log)
    text = log.read_text(errors="replace")
    assert "Loading extra config: lsst-hub-orphan-pods" in text
    assert "orphan pod pass failed" not in text
    assert "Traceback" not in text, text[-6000:]
