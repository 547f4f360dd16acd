"""The chart's proxy serves the hub with TLS; plain HTTP only redirects.

The overlay's default (the site's certificate in a Secret) runs for real below; the
two documented variants (``helm-values/tls-letsencrypt.yaml``, ``tls-offload.yaml``)
are rendered and read.

configurable-http-proxy runs with the command line the chart renders for the overlay
(``proxy.https.type: secret``), in front of a real JupyterHub that uses it as its proxy
(as in the chart: the hub does not start the proxy, it adds routes through its API).
The certificate comes from the Secret ``kubectl create secret tls`` writes (the command
``docs/how-to/deploy-z2jh.md`` gives), laid out as the chart mounts it.

Changed from the pod, and only this: addresses and ports (127.0.0.1 and free ports for
``--ip``, ``--api-ip``, ``--port``, ``--redirect-port``, ``--redirect-to``, ``--api-port``),
the hub's address in ``--default-target``/``--error-target``, and the Secret's mount
directory. The hub uses JupyterHub's dummy authenticator, which accepts any password:
a login that reached it would succeed, so a refused one shows it never arrived.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import kubernetes_validate
import pytest
import requests
import yaml

from tests.deploy.chart_support import (
    HELM_VALUES,
    KUBERNETES_VERSION,
    ROOT,
    TOOLS_BIN,
    chart_proxy_command,
    chart_values,
    find,
    render,
    site_tls,
)
from tests.support.slapd import free_port

# -- the documented variants, rendered ---------------------------------------------


def test_letsencrypt_variant_redirects_http_and_keeps_the_one_ip() -> None:
    objects = render(HELM_VALUES / "tls-letsencrypt.yaml")
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    public = find(objects, "Service", "proxy-public")
    assert public["spec"]["selector"]["component"] == "autohttps"
    assert {p["port"]: p["targetPort"] for p in public["spec"]["ports"]} == {
        443: "https",
        80: "http",
    }
    exposed = [o for o in objects if o["kind"] == "Service" and o["spec"].get("type") not in
               (None, "ClusterIP")]  # fmt: skip
    assert [s["metadata"]["name"] for s in exposed] == ["proxy-public"]
    dynamic = yaml.safe_load(find(objects, "ConfigMap", "autohttps")["data"]["dynamic.yaml"])
    routers = dynamic["http"]["routers"]
    plain = [r for r in routers.values() if r["entrypoints"] == ["http"]]
    assert plain and all(r["middlewares"] == ["redirect"] for r in plain)
    assert dynamic["http"]["middlewares"]["redirect"]["redirectScheme"]["scheme"] == "https"
    https = chart_values(objects)["proxy"]["https"]
    assert https["hosts"] and https["letsencrypt"]["contactEmail"]


def test_offload_variant_closes_port_80() -> None:
    objects = render(HELM_VALUES / "tls-offload.yaml")
    public = find(objects, "Service", "proxy-public")
    # Decrypted traffic from the TLS terminator arrives on 443; nothing else comes in.
    assert {p["port"]: p["targetPort"] for p in public["spec"]["ports"]} == {443: "http"}
    assert public["spec"]["type"] == "LoadBalancer"


# -- the default, run: configurable-http-proxy with the chart's flags ---------------


@dataclass
class TLSHub:
    https_url: str
    http_url: str
    ca: Path
    log: Path


def wait_until(check: object, what: str, processes: list[subprocess.Popen[bytes]],
               log: Path, timeout: float = 60.0) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"{process.args[0]} exited before {what}:\n{log.read_text()}")
        with contextlib.suppress(requests.RequestException):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.2)
    pytest.fail(f"no {what} after {timeout} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def tls_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSHub]:
    tmp_path = tmp_path_factory.mktemp("tls-hub")
    ca_crt, tls_dir = site_tls(tmp_path)
    ports = {"https": free_port(), "http": free_port(), "api": free_port()}
    hub_port = free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    token = secrets.token_hex(16)
    env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": token}
    log = tmp_path / "hub-and-proxy.log"
    processes: list[subprocess.Popen[bytes]] = []
    with log.open("wb") as out:
        chp_command = chart_proxy_command(render(), tls_dir, ports, hub_url)
        processes.append(
            subprocess.Popen(
                chp_command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        )
        config = tmp_path / "jupyterhub_config.py"
        config.write_text(
            f"""\
c = get_config()  # noqa
# As the chart's hub: the proxy runs elsewhere; the hub only manages its routes.
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{ports["api"]}"
c.JupyterHub.hub_bind_url = "{hub_url}"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.db_url = "sqlite:///{tmp_path / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = "{tmp_path / "cookie_secret"}"
"""
        )
        hub_env = {**env, "PATH": f"{TOOLS_BIN}:{env['PATH']}", "PYTHONPATH": str(ROOT)}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)],
                cwd=tmp_path,
                env=hub_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    hub = TLSHub(
        https_url=f"https://127.0.0.1:{ports['https']}",
        http_url=f"http://127.0.0.1:{ports['http']}",
        ca=ca_crt,
        log=log,
    )
    try:
        wait_until(
            lambda: requests.get(f"{hub.https_url}/hub/health", verify=ca_crt, timeout=5).ok,
            "hub health over HTTPS", processes, log,
        )  # fmt: skip
        yield hub
    finally:
        for process in reversed(processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def post_login(session: requests.Session, base: str, page_url: str, username: str,
               **kwargs: object) -> requests.Response:  # fmt: skip
    page = session.get(page_url, timeout=30, **kwargs)  # type: ignore[arg-type]
    page.raise_for_status()
    return session.post(
        f"{base}/hub/login",
        data={"username": username, "password": "any", "_xsrf": session.cookies.get("_xsrf", "")},
        allow_redirects=False, timeout=30, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.slow
def test_login_over_https_works(tls_hub: TLSHub) -> None:
    # verify= on each request: requests prefers $REQUESTS_CA_BUNDLE to Session.verify.
    response = post_login(
        requests.Session(), tls_hub.https_url, f"{tls_hub.https_url}/hub/login", "alice",
        verify=str(tls_hub.ca),
    )  # fmt: skip
    session_cookies = response.cookies
    assert response.status_code == 302, response.text[:500]
    assert any(c.name.startswith("jupyterhub-") and c.secure for c in session_cookies)
    assert "User logged in: alice" in tls_hub.log.read_text()


@pytest.mark.slow
def test_http_redirects_to_https(tls_hub: TLSHub) -> None:
    response = requests.get(f"{tls_hub.http_url}/hub/login?next=%2Fhub%2F", allow_redirects=False,
                            timeout=30)  # fmt: skip
    assert response.status_code == 301
    assert response.headers["Location"] == f"{tls_hub.https_url}/hub/login?next=%2Fhub%2F"


@pytest.mark.slow
def test_login_over_http_is_never_accepted(tls_hub: TLSHub) -> None:
    # A form posted to the plain-HTTP port, even with a valid _xsrf from the real page:
    # the proxy answers with a redirect and the hub never sees the password.
    session = requests.Session()
    response = session.post(
        f"{tls_hub.http_url}/hub/login",
        data={"username": "mallory", "password": "secret-over-http"},
        allow_redirects=False, timeout=30,
    )  # fmt: skip
    assert response.status_code == 301
    assert response.headers["Location"].startswith(tls_hub.https_url)
    assert not response.cookies
    # Following the redirect the way browsers do after a 301 (a GET, no body) only
    # shows the login page again; nobody is logged in.
    followed = session.post(
        f"{tls_hub.http_url}/hub/login",
        data={"username": "mallory", "password": "secret-over-http"},
        timeout=30, verify=str(tls_hub.ca),
    )  # fmt: skip
    assert followed.url.startswith(f"{tls_hub.https_url}/hub/login")
    assert followed.request.method == "GET"
    log = tls_hub.log.read_text()
    assert "mallory" not in log
    assert "secret-over-http" not in log
    # Plain HTTP on the TLS port is no way in either.
    with pytest.raises(requests.RequestException):
        requests.post(f"http://{tls_hub.https_url.split('://')[1]}/hub/login", timeout=10)
