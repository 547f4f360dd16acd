"""Talk to the LDAP directory with ldap3: servers, TLS, failover, timeouts, search and bind.

Everything here is *blocking* and must be called through the authenticator's
bounded thread pool, never on the event loop. The module knows nothing about
JupyterHub: it turns a username and password into an
:class:`~lsst_hub.identity.Identity` or one of the exceptions below.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from ..identity import Group, Identity

__all__ = [
    "DirectoryError",
    "DirectorySettings",
    "DirectoryUnavailableError",
    "IncompleteIdentityError",
    "InvalidCredentialsError",
    "LDAPDirectory",
    "UserNotFoundError",
]

log = logging.getLogger(__name__)

#: LDAP result code for a wrong password or unknown bind DN (RFC 4511).
_INVALID_CREDENTIALS = 49
#: How long an idle service-account connection is reused before it is replaced, so
#: that the pool returns to the first server some time after a failover.
_POOL_MAX_AGE = 60.0

_USER_ATTRIBUTES = ["uid", "uidNumber", "gidNumber", "homeDirectory", "cn", "displayName", "mail"]
_GROUP_ATTRIBUTES = ["cn", "gidNumber"]

# Errors that mean "this server is not usable right now": try the next one.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ldap_exc.LDAPCommunicationError,
    ldap_exc.LDAPStartTLSError,
    ldap_exc.LDAPCertificateError,
    ldap_exc.LDAPResponseTimeoutError,
    ldap_exc.LDAPSessionTerminatedByServerError,
    ssl.SSLError,
    OSError,
)


class DirectoryError(Exception):
    """Base class of the failures a login can end in."""


class DirectoryUnavailableError(DirectoryError):
    """No configured server could be used (refused, timed out, TLS failed, dropped)."""


class InvalidCredentialsError(DirectoryError):
    """The directory refused the password (or it cannot be sent at all)."""


class UserNotFoundError(DirectoryError):
    """The user search found no entry (or more than one) for the username."""


class IncompleteIdentityError(DirectoryError):
    """The entry lacks a POSIX attribute the spawner needs."""


@dataclass(frozen=True)
class DirectorySettings:
    """Everything :class:`LDAPDirectory` needs; built from the authenticator's traits.

    ``bind_dn_template`` chooses direct bind; without it the service account
    (``search_bind_dn``) searches for the user's DN first.
    """

    server_urls: tuple[str, ...]
    starttls: bool = True
    tls_ca_file: str | None = None
    tls_verify: bool = True
    allow_insecure: bool = False
    connect_timeout: float = 5.0
    operation_timeout: float = 10.0
    bind_dn_template: str = ""
    search_bind_dn: str = ""
    search_bind_password: str = ""
    user_search_base: str = ""
    user_search_filter: str = "(&(objectClass=posixAccount)(uid={username}))"
    group_search_base: str = ""
    group_search_filter: str = (
        "(|(&(objectClass=posixGroup)(memberUid={username}))"
        "(&(objectClass=groupOfNames)(member={dn})))"
    )
    pool_size: int = 4
    server_retry_interval: float = 30.0


@dataclass(frozen=True)
class _Endpoint:
    url: str
    host: str
    port: int
    use_ssl: bool
    tls: ldap3.Tls
    starttls: bool  # StartTLS after connecting (ldap:// with starttls on)
    encrypted: bool  # the password travels encrypted


def _first(attrs: Mapping[str, Any], name: str) -> Any:
    """First value of an attribute (ldap3 gives lists without a schema), or None."""
    for key, value in attrs.items():
        if key.lower() == name.lower():
            if isinstance(value, list | tuple):
                return value[0] if value else None
            return value
    return None


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class LDAPDirectory:
    """Blocking access to the directory, with ordered failover between servers.

    Thread-safe: the authenticator calls it from several pool threads at once.
    User binds always use a fresh connection; searches by the service account
    reuse a small pool of bound connections.
    """

    def __init__(self, settings: DirectorySettings) -> None:
        self.settings = settings
        self._endpoints = [self._endpoint(url) for url in settings.server_urls]
        self._pool: list[tuple[float, ldap3.Connection]] = []
        self._pool_lock = threading.Lock()
        # url -> monotonic time until which a server that just failed is tried last.
        self._down_until: dict[str, float] = {}

    # -- connections -------------------------------------------------------
    def _endpoint(self, url: str) -> _Endpoint:
        parts = urlsplit(url if "://" in url else f"ldap://{url}")
        scheme = parts.scheme.lower()
        if scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise ValueError(f"not an ldap:// or ldaps:// URL: {url!r}")
        use_ssl = scheme == "ldaps"
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if self.settings.tls_verify else ssl.CERT_NONE,
            ca_certs_file=self.settings.tls_ca_file or None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
        starttls = not use_ssl and self.settings.starttls
        port = parts.port or (636 if use_ssl else 389)
        return _Endpoint(url, parts.hostname, port, use_ssl, tls, starttls, use_ssl or starttls)

    def _server(self, endpoint: _Endpoint) -> ldap3.Server:
        # A new Server each time: a Server remembers refused addresses for minutes
        # ("invalid server address") even after the LDAP server is back; our own
        # retry interval decides when a failed server is tried again.
        return ldap3.Server(
            endpoint.host,
            port=endpoint.port,
            use_ssl=endpoint.use_ssl,
            tls=endpoint.tls,
            get_info=ldap3.NONE,  # the default reads and parses the schema on every bind
            connect_timeout=self.settings.connect_timeout,
        )

    @property
    def _receive_timeout(self) -> int:
        # ldap3 packs receive_timeout with struct 'LL' on Linux: it must be an int.
        return max(1, math.ceil(self.settings.operation_timeout))

    def _connect(
        self, endpoint: _Endpoint, user: str | None, password: str | None
    ) -> ldap3.Connection:
        """Open (and secure) a connection; raise one of _CONNECTION_ERRORS if the server fails."""
        conn = ldap3.Connection(
            self._server(endpoint),
            user=user,
            password=password,
            receive_timeout=self._receive_timeout,
            auto_referrals=False,
            read_only=True,
            raise_exceptions=False,
        )
        try:
            conn.open(read_server_info=False)
            # ldap3 never sets TCP_NODELAY; without it the first request after a TLS
            # handshake waits ~40 ms for the peer's delayed ACK.
            if conn.socket is not None:
                conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if endpoint.starttls and not conn.start_tls(read_server_info=False):
                raise ldap_exc.LDAPStartTLSError(f"StartTLS refused: {conn.result}")
        except BaseException:
            _close(conn)
            raise
        return conn

    def _usable_endpoints(self) -> list[_Endpoint]:
        """Servers in configured order, those that failed recently moved to the end.

        A dead first server would otherwise cost a full timeout on every bind.
        """
        now = time.monotonic()
        fresh: list[_Endpoint] = []
        recently_failed: list[_Endpoint] = []
        for endpoint in self._endpoints:
            if not (endpoint.encrypted or self.settings.allow_insecure):
                log.error(
                    "LDAP server %s skipped: it would receive passwords unencrypted "
                    "(use ldaps://, enable starttls, or set allow_insecure)",
                    endpoint.url,
                )
            elif self._down_until.get(endpoint.url, 0.0) > now:
                recently_failed.append(endpoint)
            else:
                fresh.append(endpoint)
        return fresh + recently_failed

    def _mark_down(self, endpoint: _Endpoint, reason: str) -> None:
        log.warning("LDAP server %s failed, trying the next one: %s", endpoint.url, reason)
        self._down_until[endpoint.url] = time.monotonic() + self.settings.server_retry_interval

    def _bind(self, dn: str, password: str) -> ldap3.Connection:
        """Bind as ``dn`` on the first server that answers; return the bound connection.

        Raises
        ------
        InvalidCredentialsError
            The server refused the password: not a reason to try the next server.
        DirectoryUnavailableError
            No server could be reached.
        """
        failures: list[str] = []
        for endpoint in self._usable_endpoints():
            try:
                conn = self._connect(endpoint, dn, password)
            except _CONNECTION_ERRORS as exc:
                failures.append(f"{endpoint.url}: {_describe(exc)}")
                self._mark_down(endpoint, failures[-1])
                continue
            try:
                ok = conn.bind(read_server_info=False)
            except (ldap_exc.LDAPSASLPrepError, ldap_exc.LDAPPasswordIsMandatoryError) as exc:
                # A password ldap3 cannot send (e.g. with a newline) cannot be right.
                _close(conn)
                raise InvalidCredentialsError(
                    f"password not sendable ({type(exc).__name__})"
                ) from None
            except _CONNECTION_ERRORS as exc:
                _close(conn)
                failures.append(f"{endpoint.url}: {_describe(exc)}")
                self._mark_down(endpoint, failures[-1])
                continue
            if ok:
                self._down_until.pop(endpoint.url, None)
                return conn
            result = conn.result or {}
            _close(conn)
            code = result.get("result")
            if code == _INVALID_CREDENTIALS:
                raise InvalidCredentialsError(f"invalid credentials for {dn!r} on {endpoint.url}")
            if code in (None, 0) or code >= 80:  # client-side errors (connection lost)
                failures.append(f"{endpoint.url}: bind failed ({result.get('description')})")
                self._mark_down(endpoint, failures[-1])
                continue
            # Any other answer (unwillingToPerform, ...) is the directory's verdict.
            raise InvalidCredentialsError(
                f"bind as {dn!r} refused by {endpoint.url}: {result.get('description')}"
            )
        raise DirectoryUnavailableError("no LDAP server usable: " + ("; ".join(failures) or "none"))

    @contextmanager
    def _service(self) -> Iterator[ldap3.Connection]:
        """A bound service-account connection from the pool (returned after use)."""
        conn = None
        now = time.monotonic()
        with self._pool_lock:
            while self._pool:
                born, candidate = self._pool.pop()
                if now - born < _POOL_MAX_AGE:
                    conn = candidate
                    break
                _close(candidate)
            else:
                born = now
        if conn is None:
            try:
                conn = self._bind(self.settings.search_bind_dn, self.settings.search_bind_password)
            except InvalidCredentialsError as exc:
                raise DirectoryUnavailableError(f"service account refused: {exc}") from None
            born = now
        healthy = False
        try:
            yield conn
            healthy = True
        finally:
            if healthy:
                with self._pool_lock:
                    if len(self._pool) < self.settings.pool_size:
                        self._pool.append((born, conn))
                        conn = None
            if conn is not None:
                _close(conn)

    def _service_search(
        self, base: str, flt: str, attributes: Sequence[str], *, scope: str = ldap3.SUBTREE
    ) -> list[tuple[str, dict[str, Any]]]:
        """Search with the service account, retrying once on a fresh connection.

        A pooled connection can be stale (the server restarted or failed over).
        """
        for attempt in (1, 2):
            try:
                with self._service() as conn:
                    return _search(conn, base, flt, attributes, scope=scope)
            except _CONNECTION_ERRORS as exc:
                if attempt == 2:
                    raise DirectoryUnavailableError(f"search failed: {_describe(exc)}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the pooled service connections."""
        with self._pool_lock:
            pool, self._pool = self._pool, []
        for _, conn in pool:
            _close(conn)

    # -- public operations -------------------------------------------------
    def _user_filter(self, username: str) -> str:
        return self.settings.user_search_filter.format(username=escape_filter_chars(username))

    def _group_filter(self, username: str, dn: str) -> str:
        return self.settings.group_search_filter.format(
            username=escape_filter_chars(username), dn=escape_filter_chars(dn)
        )

    def _find_user(self, username: str) -> tuple[str, dict[str, Any]]:
        entries = self._service_search(
            self.settings.user_search_base, self._user_filter(username), _USER_ATTRIBUTES
        )
        if len(entries) != 1:
            raise UserNotFoundError(f"user search for {username!r} found {len(entries)} entries")
        dn, attrs = entries[0]
        return dn, attrs

    def authenticate(self, username: str, password: str) -> Identity:
        """Check the password and read the identity.

        ``username`` must already be normalised and validated; it is escaped
        here before it goes into a DN or a filter.

        Raises
        ------
        InvalidCredentialsError, UserNotFoundError, IncompleteIdentityError,
        DirectoryUnavailableError
        """
        if self.settings.bind_dn_template:
            dn = self.settings.bind_dn_template.format(username=escape_rdn(username))
            conn = self._bind(dn, password)
            try:
                found = _search(conn, dn, "(objectClass=*)", _USER_ATTRIBUTES, scope=ldap3.BASE)
                if not found:
                    raise UserNotFoundError(f"{dn!r} bound but cannot be read")
                attrs = found[0][1]
                if self.settings.search_bind_dn:
                    groups = self._groups(username, dn)
                else:
                    groups = _parse_groups(
                        _search(
                            conn,
                            self.settings.group_search_base,
                            self._group_filter(username, dn),
                            _GROUP_ATTRIBUTES,
                        )
                    )
            except _CONNECTION_ERRORS as exc:
                raise DirectoryUnavailableError(
                    f"reading {dn!r} failed: {_describe(exc)}"
                ) from None
            finally:
                _close(conn)
            return _identity(username, dn, attrs, groups)

        dn, attrs = self._find_user(username)
        _close(self._bind(dn, password))
        return _identity(username, dn, attrs, self._groups(username, dn))

    def lookup(self, username: str) -> Identity:
        """Re-read a user's identity and groups with the service account (no password).

        Raises
        ------
        UserNotFoundError, IncompleteIdentityError, DirectoryUnavailableError
        """
        if self.settings.bind_dn_template:
            dn = self.settings.bind_dn_template.format(username=escape_rdn(username))
            found = self._service_search(dn, "(objectClass=*)", _USER_ATTRIBUTES, scope=ldap3.BASE)
            if not found:
                raise UserNotFoundError(f"{dn!r} no longer exists")
            attrs = found[0][1]
        else:
            dn, attrs = self._find_user(username)
        return _identity(username, dn, attrs, self._groups(username, dn))

    def _groups(self, username: str, dn: str) -> list[Group]:
        return _parse_groups(
            self._service_search(
                self.settings.group_search_base,
                self._group_filter(username, dn),
                _GROUP_ATTRIBUTES,
            )
        )


def _search(
    conn: ldap3.Connection,
    base: str,
    flt: str,
    attributes: Sequence[str],
    *,
    scope: str = ldap3.SUBTREE,
) -> list[tuple[str, dict[str, Any]]]:
    """Run one search; return (dn, attributes) pairs. Missing base = no entries."""
    ok = conn.search(base, flt, scope, attributes=list(attributes))
    result = conn.result or {}
    code = result.get("result")
    if not ok and code not in (0, 32):  # 32 noSuchObject: an empty answer
        if code is None or code >= 80:
            raise ldap_exc.LDAPCommunicationError(f"search failed: {result.get('description')}")
        raise DirectoryUnavailableError(f"search in {base!r} refused: {result.get('description')}")
    return [
        (item["dn"], dict(item.get("attributes") or {}))
        for item in conn.response or []
        if item.get("type") == "searchResEntry"
    ]


def _parse_groups(entries: list[tuple[str, dict[str, Any]]]) -> list[Group]:
    groups: dict[str, Group] = {}
    for _, attrs in entries:
        name = _first(attrs, "cn")
        if name:
            groups.setdefault(str(name), Group(str(name), _as_int(_first(attrs, "gidNumber"))))
    return list(groups.values())


def _identity(username: str, dn: str, attrs: Mapping[str, Any], groups: list[Group]) -> Identity:
    uid = _as_int(_first(attrs, "uidNumber"))
    gid = _as_int(_first(attrs, "gidNumber"))
    home = _first(attrs, "homeDirectory")
    missing = [
        name
        for name, value in (("uidNumber", uid), ("gidNumber", gid), ("homeDirectory", home))
        if value is None or value == ""
    ]
    if missing or uid is None or gid is None:
        raise IncompleteIdentityError(f"{dn!r} lacks POSIX attribute(s) {', '.join(missing)}")
    display = _first(attrs, "displayName") or _first(attrs, "cn")
    mail = _first(attrs, "mail")
    return Identity(
        username=username,
        ldap_dn=dn,
        uid_number=uid,
        gid_number=gid,
        home_directory=str(home),
        groups=tuple(groups),
        display_name=str(display) if display else None,
        email=str(mail) if mail else None,
    )


def _describe(exc: BaseException) -> str:
    """A short, password-free description of a connection failure."""
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _close(conn: ldap3.Connection) -> None:
    # Closing a broken connection may fail; there is nothing left to do then.
    with contextlib.suppress(Exception):
        conn.unbind()
