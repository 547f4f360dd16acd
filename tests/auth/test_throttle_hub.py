"""Login throttling inside a real JupyterHub behind configurable-http-proxy.

The client address the throttle keys on is JupyterHub's ``request.remote_ip``:
tornado (``xheaders``) takes it from ``X-Real-Ip``, which the proxy passes
through from the client, else from the ``X-Forwarded-For`` entry the proxy adds.
The tests choose their address with ``X-Real-Ip``, as any client can: the reason
the per-name ceiling exists.
"""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.support.hub_fixtures import RunningHub, login, new_session
from tests.support.ldap_fixtures import authenticator_config
from tests.support.slapd import Slapd

pytestmark = pytest.mark.slow

StartHub = Callable[..., RunningHub]


def hub_config(settings: dict[str, Any]) -> str:
    lines = [
        'c.JupyterHub.authenticator_class = "lsst-ldap"',
        "c.Authenticator.enable_auth_state = True",
    ]
    lines += [f"c.LDAPAuthenticator.{key} = {value!r}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def from_address(address: str) -> requests.Session:
    """A browser session whose requests claim to come from ``address``."""
    session = new_session()
    session.headers["X-Real-Ip"] = address
    return session


def logins(hub: RunningHub, outcome: str) -> float:
    """``lsst_hub_ldap_logins_total`` for ``outcome``, read from the hub's metrics."""
    text = hub.request("GET", "/hub/metrics").text
    match = re.search(rf'lsst_hub_ldap_logins_total{{outcome="{outcome}"}} (\S+)', text)
    return float(match.group(1)) if match else 0.0


def test_owner_gets_in_while_another_address_hammers_the_name(
    jupyterhub_factory: StartHub, slapd: Slapd
) -> None:
    settings = {
        **authenticator_config(slapd),
        "failed_login_limit": 3,
        "failed_login_window": 600.0,
    }
    hub = jupyterhub_factory(hub_config(settings))
    attacker = from_address("203.0.113.66")
    for i in range(8):
        assert login(hub, "alice", f"Wr0ng-{i}", session=attacker).status_code == 403
    assert login(hub, "alice", "alicepw", session=attacker).status_code == 403
    assert logins(hub, "bad_credentials") == 3  # only 3 of the 8 reached the directory
    assert logins(hub, "throttled") == 6

    owner = from_address("192.0.2.10")
    assert login(hub, "alice", "alicepw", session=owner).status_code == 302
    assert owner.get(f"{hub.url}/hub/home", timeout=60).status_code == 200
    log = hub.log_text()
    assert "'alice' from '203.0.113.66' throttled: failed_login_limit (3)" in log
    assert " 500 " not in log


def test_distributed_guesser_is_capped_through_the_hub(
    jupyterhub_factory: StartHub, slapd: Slapd
) -> None:
    settings = {
        **authenticator_config(slapd),
        "failed_login_limit": 3,
        "failed_login_window": 600.0,
        "failed_login_name_limit": 5,
        "failed_login_max_wait": 0.0,
    }
    hub = jupyterhub_factory(hub_config(settings))

    def guess(i: int) -> int:
        session = from_address(f"10.9.{i // 250}.{i % 250 + 1}")
        return login(hub, "bob", f"guess-{i}", session=session).status_code

    # 40 addresses at once, one guess each: under the per-address limit every one.
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(guess, range(40)))
    assert codes == [403] * 40
    assert logins(hub, "bad_credentials") == 5  # the ceiling, in flight included
    assert logins(hub, "throttled") == 35
    assert "failed_login_name_limit (5) reached across addresses" in hub.log_text()
    # Other names are not affected.
    assert login(hub, "alice", "alicepw", session=from_address("10.9.0.1")).status_code == 302
