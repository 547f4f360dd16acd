"""Pytest fixtures for a real OpenLDAP server (see :mod:`tests.support.slapd`).

Fixtures
--------
``slapd``
    Session-wide :class:`~tests.support.slapd.Slapd` with the test data
    (alice/alicepw, bob/bobpw, carol/``cärol pw!``, service account
    ``cn=jupyterhub,ou=services,dc=example,dc=org``/svcpw, groups hpcusers,
    jupyterhub-users, jupyterhub-admins). Tests that change it must undo the
    change (``slapd.without_member(...)``) or use entries of their own
    (``slapd.add_user``/``slapd.delete``), so test order does not matter.
    Never stop it: use ``slapd_factory`` for a server you can stop.
``slapd_factory``
    ``slapd_factory()`` starts another, private server with the same data
    (all servers of one test share one CA); stopped and deleted after the
    test. Use it to stop/start a server mid-test (``server.stop()``,
    ``server.start()``, ``with server.stopped(): ...``).
    ``slapd_factory(log_stats=True)`` keeps that server's access log
    (``server.log_text()``: connections, binds, searches).
``ldap_authenticator_config``
    Keyword arguments for :class:`lsst_hub.auth.LDAPAuthenticator` that work
    against ``slapd`` (search-then-bind over StartTLS, allowed group
    jupyterhub-users, admin group jupyterhub-admins).
``make_authenticator``
    ``make_authenticator(**overrides)`` builds an LDAPAuthenticator from that
    config plus overrides; closed after the test.
``black_hole``
    A loopback TCP server that accepts connections and never answers
    (``black_hole.port``, ``black_hole.url("ldaps")``).
``closed_port``
    A loopback port nothing listens on.

Helpers
-------
``login(auth, username, password)``
    A login through ``get_authenticated_user``, JupyterHub's outer login API, as
    the hub calls it: the auth model, or None.
``outcome_count(outcome)``
    The ``lsst_hub_ldap_logins_total`` count for one outcome (0 before any).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from .slapd import GROUPS_DN, PEOPLE_DN, SVC_DN, SVC_PW, Slapd, free_port, start_slapd


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """The session's shared slapd (see the module docstring)."""
    server = start_slapd(tmp_path_factory.mktemp("slapd"))
    yield server
    server.destroy()


@pytest.fixture
def slapd_factory(tmp_path: Path) -> Iterator[Callable[..., Slapd]]:
    """Start private slapd instances that the test may stop and restart."""
    servers: list[Slapd] = []

    def make(*, log_stats: bool = False) -> Slapd:
        server = start_slapd(
            tmp_path / f"slapd{len(servers)}",
            share_ca_with=servers[0] if servers else None,
            log_stats=log_stats,
        )
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.destroy()


def authenticator_config(server: Slapd) -> dict[str, Any]:
    """LDAPAuthenticator keyword arguments for ``server`` (search-then-bind, StartTLS)."""
    return {
        "server_urls": [server.ldap_url],
        "tls_ca_file": str(server.ca_file),
        "search_bind_dn": SVC_DN,
        "search_bind_password": SVC_PW,
        "user_search_base": PEOPLE_DN,
        "group_search_base": GROUPS_DN,
        "allowed_groups": {"jupyterhub-users"},
        "admin_groups": {"jupyterhub-admins"},
        # Generous: other engineers' tests load the same 2 cores.
        "connect_timeout": 10.0,
        "operation_timeout": 10.0,
    }


@pytest.fixture
def ldap_authenticator_config(slapd: Slapd) -> dict[str, Any]:
    """Keyword arguments for an LDAPAuthenticator against the session slapd."""
    return authenticator_config(slapd)


@pytest.fixture
def make_authenticator(ldap_authenticator_config: dict[str, Any]) -> Iterator[Callable[..., Any]]:
    """Build LDAPAuthenticators: ``make_authenticator(**trait_overrides)``."""
    from lsst_hub.auth import LDAPAuthenticator

    made: list[Any] = []

    def make(**overrides: Any) -> Any:
        auth = LDAPAuthenticator(**{**ldap_authenticator_config, **overrides})
        made.append(auth)
        return auth

    yield make
    for auth in made:
        auth.directory.close()
        if auth._executor_obj is not None:
            auth._executor_obj.shutdown(wait=False, cancel_futures=True)


class BlackHole:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers."""

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="black-hole", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)  # keep it open, read nothing, answer nothing

    def url(self, scheme: str = "ldap") -> str:
        """``SCHEME://localhost:PORT``."""
        return f"{scheme}://localhost:{self.port}"

    def close(self) -> None:
        """Stop accepting and drop every held connection."""
        self._closed.set()
        # close() alone does not wake a thread blocked in accept() on Linux (the
        # join below would wait its full 5 s); shutdown() does.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in self._held:
            conn.close()
        self._thread.join(5)


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    """A server that accepts connections and never answers."""
    hole = BlackHole()
    yield hole
    hole.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with no listener (connections are refused)."""
    return free_port()


async def login(auth: Any, username: Any, password: Any) -> dict[str, Any] | None:
    """Log in through ``get_authenticated_user`` (normalisation, allow and admin checks)."""
    result: dict[str, Any] | None = await auth.get_authenticated_user(
        None, {"username": username, "password": password}
    )
    return result


def outcome_count(outcome: str) -> float:
    """The login counter for ``outcome`` (0 when it has not been counted yet)."""
    value = REGISTRY.get_sample_value("lsst_hub_ldap_logins_total", {"outcome": outcome})
    return value or 0.0
