"""jupyterhub_config.py for an external database, an external proxy and HA mode.

The first tests load the file as JupyterHub does (:func:`tests.deploy.test_config.load`).
The last starts a real hub with it: the database in a real PostgreSQL on loopback
(:mod:`tests.deploy.postgres_support`), a configurable-http-proxy started by the test,
LDAP from the session's slapd, a dev cluster for the spawner, in HA mode (as
``lsst-hub-ha`` runs it).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url
from traitlets.config import Config

from devcluster.testing import DevClusterProcess
from tests.deploy.hub_stop_support import PASSWORD, USER
from tests.deploy.import_support import class_or_skip
from tests.deploy.postgres_support import Postgres
from tests.deploy.test_config import CONFIG, SITE_ENV, load
from tests.support.hub_fixtures import NODE_BIN, RunningHub, login
from tests.support.slapd import GROUPS_DN, PEOPLE_DN, SVC_DN, SVC_PW, Slapd, free_port

PG = "postgresql://jupyterhub@db.example.org:5432/jupyterhub"
#: What HA mode needs, as a site sets it.
HA_ENV = dict(
    SITE_ENV,
    LSST_HUB_HA="1",
    LSST_HUB_DB_URL=PG,
    LSST_HUB_DB_PASSWORD="pw",
    LSST_HUB_PROXY_API_URL="http://proxy-api:8001",
)


@pytest.fixture(autouse=True)
def _proxy_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy token, as a site with an external proxy has (tests may remove it)."""
    monkeypatch.setenv("CONFIGPROXY_AUTH_TOKEN", "proxy-token")


def db_url(c: Config) -> str:
    url: str = c.JupyterHub.db_url
    return url


# -- the database URL ----------------------------------------------------------------


def test_no_database_url_keeps_jupyterhubs_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "db_url" not in load(monkeypatch, SITE_ENV).JupyterHub


def test_password_from_the_variable_is_escaped_into_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = "p@ss w:rd/?#%"
    c = load(monkeypatch, dict(SITE_ENV, LSST_HUB_DB_URL=PG, LSST_HUB_DB_PASSWORD=password))
    url = make_url(db_url(c))
    assert url.password == password
    assert (url.drivername, url.username, url.host, url.port, url.database) == (
        "postgresql+psycopg", "jupyterhub", "db.example.org", 5432, "jupyterhub",
    )  # fmt: skip


def test_password_from_a_file_loses_only_its_line_break(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "db-password"
    secret.write_text(" from a file@\n")  # a leading blank is part of the password
    env = dict(SITE_ENV, LSST_HUB_DB_URL=PG, LSST_HUB_DB_PASSWORD_FILE=str(secret))
    env["LSST_HUB_DB_PASSWORD"] = "the file wins"
    assert make_url(db_url(load(monkeypatch, env))).password == " from a file@"


def test_password_inside_the_url_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(SITE_ENV, LSST_HUB_DB_URL="postgresql://jupyterhub:s%40cret@db:5432/jupyterhub")
    url = db_url(load(monkeypatch, env))
    assert url == "postgresql+psycopg://jupyterhub:s%40cret@db:5432/jupyterhub"
    assert make_url(url).password == "s@cret"


def test_explicit_driver_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(SITE_ENV, LSST_HUB_DB_URL="postgresql+psycopg2://jupyterhub@db/jupyterhub")
    assert db_url(load(monkeypatch, env)) == "postgresql+psycopg2://jupyterhub@db/jupyterhub"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"LSST_HUB_DB_URL": "postgresql://jupyterhub:secret-pw@db/jupyterhub",
             "LSST_HUB_DB_PASSWORD": "secret-pw"},
            "LSST_HUB_DB_URL: a password is both in the URL and given separately",
        ),
        ({"LSST_HUB_DB_PASSWORD": "secret-pw"}, "LSST_HUB_DB_URL is not"),
        ({"LSST_HUB_DB_URL": "db:secret-pw@nowhere"}, "LSST_HUB_DB_URL: not a database URL"),
    ],
)  # fmt: skip
def test_database_settings_refused_without_showing_the_password(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    with pytest.raises(RuntimeError, match=message) as caught:
        load(monkeypatch, dict(SITE_ENV, **env))
    assert "secret-pw" not in str(caught.value)


# -- the proxy -----------------------------------------------------------------------


def test_external_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    c = load(monkeypatch, dict(SITE_ENV, LSST_HUB_PROXY_API_URL="http://10.0.0.5:8001"))
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.ConfigurableHTTPProxy.api_url == "http://10.0.0.5:8001"
    # The token is JupyterHub's to read from the environment, not written here.
    assert "auth_token" not in c.ConfigurableHTTPProxy
    cls = class_or_skip("jupyterhub.proxy.ConfigurableHTTPProxy")
    traits = cls.class_traits(config=True)
    assert set(c.ConfigurableHTTPProxy) <= set(traits)


def test_external_proxy_needs_its_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFIGPROXY_AUTH_TOKEN")
    with pytest.raises(RuntimeError, match="LSST_HUB_PROXY_API_URL is set: set CONFIGPROXY_AUTH"):
        load(monkeypatch, dict(SITE_ENV, LSST_HUB_PROXY_API_URL="http://10.0.0.5:8001"))


def test_without_the_variable_the_hub_starts_its_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFIGPROXY_AUTH_TOKEN")
    assert "ConfigurableHTTPProxy" not in load(monkeypatch, SITE_ENV)


# -- HA mode -------------------------------------------------------------------------


def test_ha_mode_with_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    c = load(monkeypatch, HA_ENV)
    assert make_url(db_url(c)).get_backend_name() == "postgresql"
    assert c.JupyterHub.cleanup_servers is False
    assert c.ConfigurableHTTPProxy.should_start is False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # (A password needs a server database: an empty variable is an unset one.)
        ({"LSST_HUB_DB_URL": "", "LSST_HUB_DB_PASSWORD": ""},
         "sqlite.*set LSST_HUB_DB_URL to a postgresql:// URL"),
        ({"LSST_HUB_DB_URL": "sqlite:////srv/jupyterhub/jupyterhub.sqlite",
          "LSST_HUB_DB_PASSWORD": ""}, "sqlite.*set LSST_HUB_DB_URL"),
        ({"LSST_HUB_CLEANUP_SERVERS": "true"},
         "LSST_HUB_CLEANUP_SERVERS is true: a handover would stop every server"),
        ({"LSST_HUB_PROXY_API_URL": ""}, "proxy must outlive a hub.*set LSST_HUB_PROXY_API_URL"),
    ],
)  # fmt: skip
def test_ha_mode_refuses(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, str], message: str
) -> None:
    with pytest.raises(RuntimeError, match="LSST_HUB_HA is set") as caught:
        load(monkeypatch, dict(HA_ENV, **change))
    (problem,) = str(caught.value).splitlines()[1:]  # one problem, one line
    assert re.search(message, problem), problem


def test_ha_mode_lists_every_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    env = dict(SITE_ENV, LSST_HUB_HA="true", LSST_HUB_CLEANUP_SERVERS="true")
    with pytest.raises(RuntimeError) as caught:
        load(monkeypatch, env)
    lines = str(caught.value).splitlines()
    assert len(lines) == 4
    assert [line.startswith("- ") for line in lines[1:]] == [True] * 3


def test_without_ha_mode_nothing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # The single hub's defaults: sqlite, its own proxy, and the demo's cleanup.
    monkeypatch.delenv("CONFIGPROXY_AUTH_TOKEN")
    c = load(monkeypatch, dict(SITE_ENV, LSST_HUB_CLEANUP_SERVERS="true"))
    assert c.JupyterHub.cleanup_servers is True


# -- a real hub: PostgreSQL and an external proxy --------------------------------------


def proxy_routes(api_url: str, token: str) -> dict[str, dict[str, object]]:
    answer = requests.get(
        f"{api_url}/api/routes", headers={"Authorization": f"token {token}"}, timeout=10
    )
    answer.raise_for_status()
    routes: dict[str, dict[str, object]] = answer.json()
    return routes


def wait_until(what: str, check: object, seconds: float = 60.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if check():
                return
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
def external_proxy(tmp_path: Path) -> Iterator[tuple[str, str, str, subprocess.Popen[bytes]]]:
    """configurable-http-proxy on its own: (public URL, API URL, token, process)."""
    token = secrets.token_hex(16)
    port, api_port = free_port(), free_port()
    argv = [str(NODE_BIN / "configurable-http-proxy"), "--ip", "127.0.0.1", "--port", str(port),
            "--api-ip", "127.0.0.1", "--api-port", str(api_port)]  # fmt: skip
    env = dict(os.environ, CONFIGPROXY_AUTH_TOKEN=token)
    with (tmp_path / "proxy.log").open("wb") as log:
        process = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    api_url = f"http://127.0.0.1:{api_port}"
    try:
        wait_until("the proxy's API", lambda: proxy_routes(api_url, token) is not None)
        yield f"http://127.0.0.1:{port}", api_url, token, process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.mark.slow
def test_hub_with_postgres_and_an_external_proxy(
    tmp_path: Path,
    slapd: Slapd,
    postgres: Postgres,
    external_proxy: tuple[str, str, str, subprocess.Popen[bytes]],
    devcluster_process: Callable[..., DevClusterProcess],
) -> None:
    public_url, proxy_api_url, proxy_token, proxy = external_proxy
    # The spawner reads its cluster's kubeconfig when a person first comes by.
    cluster = devcluster_process(nodes=1, runtime="noop")
    work = tmp_path / "hub"  # the hub's working directory: its sqlite would go here
    work.mkdir()
    password_file = tmp_path / "db-password"
    password_file.write_text(postgres.password + "\n")
    ldap_password_file = tmp_path / "ldap-password"
    ldap_password_file.write_text(SVC_PW + "\n")
    hub_port, admin_token = free_port(), secrets.token_hex(16)
    config = tmp_path / "jupyterhub_config.py"
    # The repository's file, plus what a test needs: a free hub port, DEBUG (the
    # level that logs the database URL), an admin token for the API.
    config.write_text(
        "c = get_config()  # noqa\n"
        'c.JupyterHub.hub_ip = "127.0.0.1"\n'
        f"c.JupyterHub.hub_port = {hub_port}\n"
        'c.JupyterHub.log_level = "DEBUG"\n'
        f"load_subconfig({str(CONFIG)!r})\n"
        "c.JupyterHub.services.append("
        f'{{"name": "test-admin", "api_token": {admin_token!r}, "admin": True}})\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LSST_HUB_")}
    env.update(
        KUBECONFIG=str(cluster.kubeconfig),
        PYTHONUNBUFFERED="1",
        JUPYTERHUB_CRYPT_KEY=secrets.token_hex(32),
        CONFIGPROXY_AUTH_TOKEN=proxy_token,
        LSST_HUB_HA="1",  # as lsst-hub-ha runs it: the HA checks pass
        LSST_HUB_DB_URL=postgres.url,  # a plain postgresql:// URL, no password in it
        LSST_HUB_DB_PASSWORD_FILE=str(password_file),
        LSST_HUB_PROXY_API_URL=proxy_api_url,
        LSST_HUB_BIND_URL=public_url,
        LSST_HUB_LDAP_URLS=slapd.ldap_url,
        LSST_HUB_LDAP_CA_FILE=str(slapd.ca_file),
        LSST_HUB_LDAP_SEARCH_BIND_DN=SVC_DN,
        LSST_HUB_LDAP_SEARCH_PASSWORD_FILE=str(ldap_password_file),
        LSST_HUB_LDAP_USER_SEARCH_BASE=PEOPLE_DN,
        LSST_HUB_LDAP_GROUP_SEARCH_BASE=GROUPS_DN,
        LSST_HUB_ALLOWED_GROUPS="jupyterhub-users",
        LSST_HUB_CULL_TIMEOUT="0",  # no managed services: not what this test is about
        LSST_HUB_ORPHAN_SERVICE="false",
    )
    log_path = tmp_path / "jupyterhub.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
    hub_url = f"http://127.0.0.1:{hub_port}"
    hub = RunningHub(public_url, hub_url, admin_token, work, process, log_path, env)
    try:

        def healthy() -> bool:
            assert process.poll() is None, log_path.read_text()
            return requests.get(f"{public_url}/hub/health", timeout=5).status_code == 200

        wait_until("the hub's health through the external proxy", healthy, 90)
        # The hub gave the proxy its route ...
        route = proxy_routes(proxy_api_url, proxy_token)["/"]
        assert route["target"] == hub_url
        assert route["hub"] is True
        # ... and keeps its state in PostgreSQL, none in a sqlite file.
        tables = set(
            postgres.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").split()
        )
        assert {"alembic_version", "users", "servers", "api_tokens"} <= tables
        assert list(work.glob("*.sqlite")) == []
        # A person logs in through the proxy; the hub records them there.
        assert login(hub, USER, PASSWORD).status_code == 302
        assert postgres.sql("SELECT name FROM users") == f"{USER}\n"
        assert hub.api("GET", f"/users/{USER}").json()["name"] == USER
        text = log_path.read_text()
        # The driver lsst-hub installs, and the password only where JupyterHub hides it.
        assert "Connecting to db: postgresql+psycopg://jupyterhub:[redacted]@127.0.0.1" in text
        assert postgres.password not in text
        assert "Not starting proxy" in text
    finally:
        hub.stop()
    # The proxy is the hub's no more: it outlives the hub, route and all (what a
    # standby hub taking over relies on).
    assert proxy.poll() is None
    assert proxy_routes(proxy_api_url, proxy_token)["/"]["target"] == hub_url
