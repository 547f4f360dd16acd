"""Login throttling through the real authenticator against the real test slapd.

Logins go through ``get_authenticated_user`` with a handler whose
``request.remote_ip`` is the client address, as JupyterHub passes it. What
reaches the directory is counted by :class:`CountingDirectory`, a subclass of
our own :class:`LDAPDirectory` whose ``authenticate`` (the one call a login
makes into the directory) records each wrong password the real slapd refused.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from lsst_hub.auth.directory import InvalidCredentialsError, LDAPDirectory, UserNotFoundError
from lsst_hub.identity import Identity
from tests.support.ldap_fixtures import outcome_count

Make = Callable[..., Any]


class CountingDirectory(LDAPDirectory):
    """The real directory code, counting the wrong passwords slapd refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self.wrong: list[str] = []
        self.right: list[str] = []

    def authenticate(self, username: str, password: str, deadline: float | None = None) -> Identity:
        try:
            identity = super().authenticate(username, password, deadline)
        except (InvalidCredentialsError, UserNotFoundError):
            with self._lock:
                self.wrong.append(username)
            raise
        with self._lock:
            self.right.append(username)
        return identity


def counted(auth: Any) -> CountingDirectory:
    """Give ``auth`` a counting directory with the settings its traits made."""
    directory = CountingDirectory(auth.directory.settings)
    auth.directory.close()
    auth._directory_obj = directory
    return directory


def handler(address: str) -> Any:
    """What the authenticator reads of JupyterHub's login handler."""
    return SimpleNamespace(request=SimpleNamespace(remote_ip=address))


async def login(auth: Any, username: str, password: str, address: str) -> dict[str, Any] | None:
    result: dict[str, Any] | None = await auth.get_authenticated_user(
        handler(address), {"username": username, "password": password}
    )
    return result


async def test_concurrent_guesses_reach_the_directory_at_most_limit_times(
    make_authenticator: Make,
) -> None:
    auth = make_authenticator(failed_login_limit=3, failed_login_window=600)
    directory = counted(auth)
    passwords = [f"guess{i}" for i in range(200)]
    passwords[150] = "bobpw"  # the right one, hidden late among the guesses
    before = outcome_count("throttled")
    results = await asyncio.gather(
        *(login(auth, "bob", password, "198.51.100.7") for password in passwords)
    )
    assert results == [None] * 200
    assert directory.right == []
    assert len(directory.wrong) == 3
    assert outcome_count("throttled") - before == 197
    # The budget stays spent: the right password from that address is still refused.
    assert await login(auth, "bob", "bobpw", "198.51.100.7") is None
    assert len(directory.wrong) == 3 and directory.right == []


async def test_directory_errors_release_their_place(
    make_authenticator: Make, closed_port: int
) -> None:
    auth = make_authenticator(failed_login_limit=2, failed_login_window=600)
    urls = auth.server_urls
    auth.server_urls = [f"ldap://localhost:{closed_port}"]
    before = outcome_count("directory_error")
    results = await asyncio.gather(*(login(auth, "bob", "bobpw", "192.0.2.1") for _ in range(5)))
    assert results == [None] * 5
    assert outcome_count("directory_error") - before == 2  # 2 in flight, 3 throttled
    auth.server_urls = urls
    directory = counted(auth)
    assert await login(auth, "bob", "bobpw", "192.0.2.1") is not None
    assert directory.right == ["bob"]


async def test_owner_gets_in_from_their_address_while_another_is_throttled(
    make_authenticator: Make,
) -> None:
    auth = make_authenticator(failed_login_limit=3, failed_login_window=600)
    directory = counted(auth)
    for _ in range(20):
        assert await login(auth, "alice", "Wr0ng", "203.0.113.66") is None
    assert len(directory.wrong) == 3
    assert await login(auth, "alice", "alicepw", "203.0.113.66") is None  # throttled
    result = await login(auth, "alice", "alicepw", "192.0.2.10")
    assert result is not None and result["name"] == "alice"
    # The owner's success frees only the owner's address.
    assert await login(auth, "alice", "alicepw", "203.0.113.66") is None
    assert directory.right == ["alice"]


async def test_distributed_guesser_is_capped_by_the_name_ceiling(
    make_authenticator: Make,
) -> None:
    auth = make_authenticator(
        failed_login_limit=3,
        failed_login_window=600,
        failed_login_name_limit=5,
        failed_login_max_wait=0,
    )
    directory = counted(auth)
    addresses = [f"10.1.{i // 200}.{i % 200 + 1}" for i in range(300)]
    passwords = [f"guess{i}" for i in range(300)]
    passwords[250] = "bobpw"  # from its own, clean address
    results = await asyncio.gather(
        *(login(auth, "bob", pw, ip) for pw, ip in zip(passwords, addresses, strict=True))
    )
    assert results == [None] * 300
    assert len(directory.wrong) == 5 and directory.right == []
    # Afterwards, one new address after another: still nothing reaches the directory.
    for i in range(20):
        assert await login(auth, "bob", f"again{i}", f"10.2.0.{i + 1}") is None
    assert len(directory.wrong) == 5
    # Other names are not affected.
    assert await login(auth, "alice", "alicepw", "10.2.0.1") is not None


async def test_ceiling_slows_the_owner_instead_of_refusing(
    make_authenticator: Make, caplog: pytest.LogCaptureFixture
) -> None:
    # Ceiling 4 per 4 s: once used up, one slot a second; the owner waits for it.
    auth = make_authenticator(
        failed_login_limit=2,
        failed_login_window=4,
        failed_login_name_limit=4,
        failed_login_max_wait=30,
    )
    directory = counted(auth)
    for address in ("192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2"):
        assert await login(auth, "alice", "Wr0ng", address) is None
    assert len(directory.wrong) == 4
    before = outcome_count("throttled")
    with caplog.at_level(logging.INFO):
        result = await login(auth, "alice", "alicepw", "192.0.2.3")
    assert result is not None and directory.right == ["alice"]
    assert outcome_count("throttled") == before
    assert "waits" in caplog.text and "failed_login_name_limit reached" in caplog.text


async def test_eviction_does_not_free_a_throttled_name(make_authenticator: Make) -> None:
    # A made-up name's slot refills within 10 ms, so it can be forgotten soon after.
    auth = make_authenticator(
        failed_login_limit=2,
        failed_login_window=600,
        failed_login_name_limit=60_000,
        throttle_max_names=20,
    )
    directory = counted(auth)
    for _ in range(2):
        assert await login(auth, "bob", "Wr0ng", "198.51.100.7") is None
    for i in range(100):
        await login(auth, f"madeup{i}", "x", "198.51.100.7")
    assert len(auth.throttle) <= 20
    # More made-up names reached the directory than are remembered: some were forgotten...
    assert len(directory.wrong) > 2 + 20
    # ...but not bob's throttled address.
    assert await login(auth, "bob", "bobpw", "198.51.100.7") is None
    assert directory.right == []


async def test_memory_full_of_throttled_names_refuses_new_ones(
    make_authenticator: Make, caplog: pytest.LogCaptureFixture
) -> None:
    auth = make_authenticator(failed_login_limit=1, failed_login_window=600, throttle_max_names=3)
    directory = counted(auth)
    for name in ("alice", "bob", "carol"):
        assert await login(auth, name, "Wr0ng", "198.51.100.7") is None
    before = outcome_count("throttled")
    with caplog.at_level(logging.WARNING):
        assert await login(auth, "zed", "Wr0ng", "198.51.100.7") is None
    assert outcome_count("throttled") - before == 1
    assert directory.wrong == ["alice", "bob", "carol"]
    assert "throttle_max_names = 3" in caplog.text


@pytest.mark.parametrize(
    "bad",
    [
        {"failed_login_limit": -1},
        {"failed_login_window": 0},
        {"failed_login_name_limit": 0},
        {"failed_login_max_wait": -1},
        {"throttle_max_names": 0},
    ],
)
def test_impossible_throttle_settings_are_refused(make_authenticator: Make, bad: Any) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        make_authenticator(**bad)


def test_throttle_follows_its_settings(make_authenticator: Make) -> None:
    auth = make_authenticator()
    throttle = auth.throttle
    assert (throttle.limit, throttle.window, throttle.name_limit) == (5, 300, 20)
    assert (throttle.max_wait, throttle.max_names) == (5, 100_000)
    auth = make_authenticator(failed_login_limit=7, throttle_max_names=50)
    assert auth.failed_login_name_limit == 28  # four times the per-address limit
    assert (auth.throttle.name_limit, auth.throttle.max_names) == (28, 50)
    auth.failed_login_max_wait = 1.5
    assert auth.throttle.max_wait == 1.5  # a new throttle for the new settings
