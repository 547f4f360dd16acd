"""TLS modes, failover between servers, and a directory that never answers."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import REGISTRY

from lsst_hub.auth.directory import _Deadline
from tests.support.ldap_fixtures import BlackHole, authenticator_config, login, outcome_count
from tests.support.slapd import Slapd

Make = Callable[..., Any]


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
        conn = directory._connect(endpoint, None, None, _Deadline(None))
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
    # Throttling off: it holds back simultaneous attempts for one name, and this test
    # is about logins queueing for the two threads.
    auth = make_authenticator(executor_threads=2, failed_login_limit=0)
    results = await asyncio.gather(*(login(auth, "bob", "bobpw") for _ in range(20)))
    assert all(r is not None and r["name"] == "bob" for r in results)


async def test_stale_pooled_connections_are_all_replaced(
    make_authenticator: Make, slapd_factory: Callable[[], Slapd]
) -> None:
    first, second = slapd_factory(), slapd_factory()
    auth = make_authenticator(
        **{**authenticator_config(first), "server_urls": [first.ldap_url, second.ldap_url]}
    )
    directory = auth.directory
    # Two service connections in the pool, both to the first server (as after a
    # burst of logins).
    with directory._service(_Deadline(None)), directory._service(_Deadline(None)):
        pass
    assert len(directory._pool) == 2
    first.stop()
    # The first pooled connection fails; the retry must not take the second, just
    # as dead one, but bind anew (on the second server).
    assert await login(auth, "alice", "alicepw") is not None


# -- the overall deadline of one login ---------------------------------------------


@pytest.fixture
def black_holes() -> Any:
    holes = [BlackHole() for _ in range(3)]
    yield holes
    for hole in holes:
        hole.close()


async def test_login_timeout_caps_many_hanging_servers(
    make_authenticator: Make,
    slapd: Slapd,
    black_holes: list[BlackHole],
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = make_authenticator(
        server_urls=[hole.url("ldap") for hole in black_holes],
        # Each server may take 4 s: 12 s or more for the three, far past the deadline.
        connect_timeout=4,
        operation_timeout=4,
        login_timeout=1.5,
        executor_threads=1,
    )
    before = outcome_count("directory_error")
    with caplog.at_level(logging.ERROR):
        assert await login(auth, "alice", "alicepw") is None
    assert outcome_count("directory_error") - before == 1
    assert "login_timeout" in caplog.text and "directory unavailable" in caplog.text
    # The abandoned pool thread ends by itself: with a single thread the next login
    # can only run after it has, and it does.
    auth.server_urls = [slapd.ldaps_url]
    auth.login_timeout = 120
    assert await login(auth, "alice", "alicepw") is not None
    # It stopped at the deadline rather than going on through the list.
    assert [hole.accepted for hole in black_holes] == [1, 0, 0]


async def test_waiting_for_a_thread_counts_against_login_timeout(
    make_authenticator: Make, black_hole: BlackHole
) -> None:
    auth = make_authenticator(
        server_urls=[black_hole.url("ldap")],
        connect_timeout=10,
        operation_timeout=10,
        login_timeout=4,
        executor_threads=1,
    )
    first = asyncio.create_task(login(auth, "alice", "alicepw"))
    for _ in range(6000):  # the first login holds the only thread once it hangs
        if black_hole.accepted:
            break
        await asyncio.sleep(0.01)
    assert black_hole.accepted == 1
    auth.login_timeout = 0.5  # read when a login starts: only the second one has it
    before = outcome_count("directory_error")
    assert await login(auth, "bob", "bobpw") is None
    assert outcome_count("directory_error") - before == 1
    assert not first.done()  # the second gave up while still queued...
    assert await first is None
    await auth._in_thread(lambda: None)  # the pool is idle now
    assert black_hole.accepted == 1  # ...and never ran


async def test_refresh_keeps_session_after_login_timeout(
    make_authenticator: Make, black_holes: list[BlackHole]
) -> None:
    auth = make_authenticator(
        server_urls=[hole.url("ldap") for hole in black_holes],
        connect_timeout=4,
        operation_timeout=4,
        login_timeout=1,
    )
    before = REGISTRY.get_sample_value(
        "lsst_hub_ldap_refreshes_total", {"outcome": "directory_error"}
    )
    assert await auth.refresh_user(type("U", (), {"name": "alice"})()) is True
    after = REGISTRY.get_sample_value(
        "lsst_hub_ldap_refreshes_total", {"outcome": "directory_error"}
    )
    assert (after or 0) - (before or 0) == 1
