"""The authenticator inside a real JupyterHub (subprocess, configurable-http-proxy)."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

import pytest
import requests

from tests.auth.policy_support import hub_config
from tests.support.hub_fixtures import RunningHub, login, new_session
from tests.support.ldap_fixtures import BlackHole, authenticator_config
from tests.support.slapd import Slapd, user_dn

pytestmark = pytest.mark.slow

StartHub = Callable[..., RunningHub]


def test_login_through_hub(jupyterhub_factory: StartHub, slapd: Slapd) -> None:
    hub = jupyterhub_factory(
        hub_config(authenticator_config(slapd), "c.Authenticator.manage_groups = True")
    )

    wrong = login(hub, "alice", "Wr0ng-pw-xyz")
    assert wrong.status_code == 403
    empty = login(hub, "alice", "")
    assert empty.status_code == 403
    hostile = login(hub, "*)(uid=*", "x")
    assert hostile.status_code == 403

    session = new_session()
    ok = login(hub, "Alice", "alicepw", session=session)
    assert ok.status_code == 302
    assert session.get(f"{hub.url}/hub/home", timeout=60).status_code == 200

    # The identity the spawner will read, through the hub's REST API.
    user = hub.api("GET", "users/alice").json()
    assert user["admin"] is True
    assert user["auth_state"]["uid_number"] == 10001
    assert user["auth_state"]["home_directory"] == "/gpfs/home/alice"
    assert sorted(user["groups"]) == ["hpcusers", "jupyterhub-admins", "jupyterhub-users"]

    metrics = hub.request("GET", "/hub/metrics").text
    assert 'lsst_hub_ldap_logins_total{outcome="bad_credentials"} 1.0' in metrics
    assert 'lsst_hub_ldap_logins_total{outcome="success"} 1.0' in metrics

    log = hub.log_text()
    assert "Wr0ng-pw-xyz" not in log and "alicepw" not in log
    assert " 500 " not in log


def test_session_ends_after_leaving_allowed_group(
    jupyterhub_factory: StartHub, slapd: Slapd
) -> None:
    hub = jupyterhub_factory(
        hub_config(authenticator_config(slapd), "c.Authenticator.auth_refresh_age = 1")
    )
    session = new_session()
    assert login(hub, "bob", "bobpw", session=session).status_code == 302
    home = f"{hub.url}/hub/home"
    assert session.get(home, allow_redirects=False, timeout=60).status_code == 200
    with slapd.without_member("jupyterhub-users", user_dn("bob")):
        time.sleep(1.5)  # let auth_state age past auth_refresh_age
        response = session.get(home, allow_redirects=False, timeout=60)
        assert response.status_code == 302
        assert "/hub/login" in response.headers["Location"]
        assert login(hub, "bob", "bobpw").status_code == 403
    assert "no longer allowed" in hub.log_text()


def test_hub_stays_responsive_while_directory_hangs(
    jupyterhub_factory: StartHub, slapd: Slapd, black_hole: BlackHole
) -> None:
    settings = {
        **authenticator_config(slapd),
        "server_urls": [black_hole.url("ldaps")],
        # Long enough that the other requests surely finish first, even on a busy machine.
        "connect_timeout": 10.0,
        "operation_timeout": 10.0,
    }
    hub = jupyterhub_factory(hub_config(settings))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        pending = pool.submit(login, hub, "alice", "alicepw")
        deadline = time.monotonic() + 30
        while black_hole.accepted == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert black_hole.accepted >= 1, "the login never reached the hanging server"
        # The login is stuck in LDAP; the hub still answers other requests.
        health = requests.get(f"{hub.url}/hub/health", timeout=60)
        page = requests.get(f"{hub.url}/hub/login", timeout=60)
        assert health.status_code == 200 and page.status_code == 200
        assert not pending.done(), "login finished before the other requests were served"
        response = pending.result(timeout=120)
    assert response.status_code == 403
    assert "directory unavailable" in hub.log_text()


def test_list_valued_settings_from_the_config_file(
    jupyterhub_factory: StartHub, slapd: Slapd
) -> None:
    # Options that take a string or a list, set as lists in a real config file
    # (several templates need the service account: it checks the earlier ones).
    settings = {
        **authenticator_config(slapd),
        "bind_dn_template": [
            "uid={username},ou=robots,dc=example,dc=org",  # no such branch
            "uid={username},ou=people,dc=example,dc=org",
        ],
        "display_name_attribute": ["displayName", "givenName"],
        "login_timeout": 60.0,
    }
    hub = jupyterhub_factory(hub_config(settings))
    assert login(hub, "alice", "alicepw").status_code == 302
    state = hub.api("GET", "users/alice").json()["auth_state"]
    assert state["ldap_dn"] == "uid=alice,ou=people,dc=example,dc=org"
    assert state["display_name"] == "Alice"  # alice has no displayName
    assert login(hub, "bob", "wrong").status_code == 403
