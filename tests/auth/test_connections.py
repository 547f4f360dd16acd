"""TLS modes, failover between servers, and a directory that never answers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY

from tests.support.ldap_fixtures import BlackHole, authenticator_config
from tests.support.slapd import Slapd

Make = Callable[..., Any]


def outcome_count(outcome: str) -> float:
    value = REGISTRY.get_sample_value("lsst_hub_ldap_logins_total", {"outcome": outcome})
    return value or 0.0


async def login(auth: Any, username: str, password: str) -> dict[str, Any] | None:
    result: dict[str, Any] | None = await auth.get_authenticated_user(
        None, {"username": username, "password": password}
    )
    return result


# -- TLS ----------------------------------------------------------------------


async def test_starttls_verified_against_test_ca(make_authenticator: Make, slapd: Slapd) -> None:
    auth = make_authenticator(server_urls=[slapd.ldap_url], starttls=True)
    assert await login(auth, "alice", "alicepw") is not None


async def test_ldaps_verified_against_test_ca(make_authenticator: Make, slapd: Slapd) -> None:
    auth = make_authenticator(server_urls=[slapd.ldaps_url])
    assert await login(auth, "alice", "alicepw") is not None


async def test_wrong_ca_is_refused(make_authenticator: Make, slapd: Slapd) -> None:
    for url in (slapd.ldap_url, slapd.ldaps_url):
        auth = make_authenticator(server_urls=[url], tls_ca_file=str(slapd.other_ca_file))
        before = outcome_count("directory_error")
        assert await login(auth, "alice", "alicepw") is None, url
        assert outcome_count("directory_error") - before == 1


async def test_unverified_tls_accepts_unknown_ca(make_authenticator: Make, slapd: Slapd) -> None:
    auth = make_authenticator(
        server_urls=[slapd.ldaps_url], tls_ca_file=str(slapd.other_ca_file), tls_verify=False
    )
    assert await login(auth, "alice", "alicepw") is not None


async def test_plain_ldap_needs_allow_insecure(
    make_authenticator: Make, slapd: Slapd, caplog: Any
) -> None:
    auth = make_authenticator(server_urls=[slapd.ldap_url], starttls=False)
    assert await login(auth, "alice", "alicepw") is None
    assert "unencrypted" in caplog.text
    auth = make_authenticator(server_urls=[slapd.ldap_url], starttls=False, allow_insecure=True)
    assert await login(auth, "alice", "alicepw") is not None


async def test_insecure_server_skipped_for_a_secure_one(
    make_authenticator: Make, slapd: Slapd
) -> None:
    auth = make_authenticator(server_urls=[slapd.ldap_url, slapd.ldaps_url], starttls=False)
    assert await login(auth, "alice", "alicepw") is not None


def test_connections_set_tcp_nodelay(make_authenticator: Make, slapd: Slapd) -> None:
    # Without TCP_NODELAY every fresh TLS bind waits ~40 ms for a delayed ACK.
    for url in (slapd.ldap_url, slapd.ldaps_url):
        directory = make_authenticator(server_urls=[url]).directory
        (endpoint,) = directory._endpoints
        conn = directory._connect(endpoint, None, None)
        try:
            assert conn.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            assert conn.tls_started or endpoint.use_ssl
        finally:
            conn.unbind()


# -- failover -----------------------------------------------------------------


async def test_closed_port_is_skipped(
    make_authenticator: Make, slapd: Slapd, closed_port: int
) -> None:
    auth = make_authenticator(server_urls=[f"ldap://localhost:{closed_port}", slapd.ldaps_url])
    assert await login(auth, "alice", "alicepw") is not None
    assert await auth.refresh_user(type("U", (), {"name": "alice"})())


async def test_failover_when_servers_stop_mid_test(
    make_authenticator: Make, slapd_factory: Callable[[], Slapd]
) -> None:
    first, second = slapd_factory(), slapd_factory()
    auth = make_authenticator(
        **{**authenticator_config(first), "server_urls": [first.ldap_url, second.ldaps_url]}
    )
    assert await login(auth, "alice", "alicepw") is not None
    first.stop()  # pooled service connections to it are now dead too
    assert await login(auth, "alice", "alicepw") is not None
    assert await login(auth, "bob", "bobpw") is not None
    first.start()
    second.stop()
    assert await login(auth, "alice", "alicepw") is not None
    assert await auth.refresh_user(type("U", (), {"name": "bob"})()) not in (False, None)
    first.stop()
    before = outcome_count("directory_error")
    assert await login(auth, "alice", "alicepw") is None  # both down: a clean failure
    assert await auth.refresh_user(type("U", (), {"name": "bob"})()) is True  # session kept
    assert outcome_count("directory_error") - before == 1


async def test_wrong_password_is_not_retried_on_next_server(
    make_authenticator: Make, slapd_factory: Callable[[], Slapd]
) -> None:
    first, second = slapd_factory(), slapd_factory()
    second.set_password("alice", "only-on-second")
    auth = make_authenticator(
        **{**authenticator_config(first), "server_urls": [first.ldap_url, second.ldap_url]}
    )
    # The first server answers "invalid credentials": that is final.
    assert await login(auth, "alice", "only-on-second") is None
    first.stop()
    assert await login(auth, "alice", "only-on-second") is not None


# -- a server that accepts and never answers ------------------------------------


async def test_black_hole_fails_within_timeout_without_blocking(
    make_authenticator: Make, black_hole: BlackHole
) -> None:
    auth = make_authenticator(
        server_urls=[black_hole.url("ldap")], connect_timeout=1, operation_timeout=1
    )
    started = time.monotonic()
    task = asyncio.create_task(login(auth, "alice", "alicepw"))
    # While the directory hangs, the event loop keeps serving other coroutines.
    ticks = 0
    while not task.done():
        await asyncio.sleep(0.05)
        ticks += 1
    assert await task is None
    assert black_hole.accepted >= 1
    assert ticks >= 2
    # Generous bound (the timeouts say ~2 s): it ended by timeout, not by test timeout.
    assert time.monotonic() - started < 60


async def test_black_hole_then_real_server(
    make_authenticator: Make, slapd: Slapd, black_hole: BlackHole
) -> None:
    auth = make_authenticator(
        server_urls=[black_hole.url("ldaps"), slapd.ldaps_url],
        connect_timeout=1,
        operation_timeout=1,
    )
    assert await login(auth, "alice", "alicepw") is not None
    # The hanging server is now tried last: the next login does not wait for it.
    accepted = black_hole.accepted
    assert await login(auth, "bob", "bobpw") is not None
    assert black_hole.accepted == accepted


async def test_many_logins_wait_for_pool_threads(make_authenticator: Make) -> None:
    auth = make_authenticator(executor_threads=2)
    results = await asyncio.gather(*(login(auth, "bob", "bobpw") for _ in range(20)))
    assert all(r is not None and r["name"] == "bob" for r in results)
