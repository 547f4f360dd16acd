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
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from ..identity import Identity
from .attributes import AttributeNames, groups_from_entries, holds_name, identity_from_entry
from .errors import (
    DirectoryError,
    DirectoryUnavailableError,
    IncompleteIdentityError,
    InvalidCredentialsError,
    LoginTimeoutError,
    SearchLimitError,
    UserNotFoundError,
)

__all__ = [
    "DirectoryError",
    "DirectorySettings",
    "DirectoryUnavailableError",
    "IncompleteIdentityError",
    "InvalidCredentialsError",
    "LDAPDirectory",
    "LoginTimeoutError",
    "UserNotFoundError",
    "template_setup_problem",
    "username_attributes",
]

log = logging.getLogger(__name__)

#: LDAP result code for a wrong password or unknown bind DN (RFC 4511).
_INVALID_CREDENTIALS = 49
#: How long an idle service-account connection is reused before it is replaced, so
#: that the pool returns to the first server some time after a failover.
_POOL_MAX_AGE = 60.0

#: RFC 2696 simple paged results, which OpenLDAP and Active Directory both support.
_PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"

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


@dataclass(frozen=True)
class DirectorySettings:
    """Everything :class:`LDAPDirectory` needs, each value from the authenticator's
    trait of that name (the traits hold the defaults and their documentation).

    ``bind_dn_templates`` (``bind_dn_template``) chooses direct bind; without them
    the service account (``search_bind_dn``) searches for the user's DN first.
    ``pool_size`` is ``executor_threads``.
    """

    server_urls: tuple[str, ...]
    starttls: bool
    tls_ca_file: str | None
    tls_verify: bool
    allow_insecure: bool
    connect_timeout: float
    operation_timeout: float
    server_retry_interval: float
    bind_dn_templates: tuple[str, ...]
    search_bind_dn: str
    search_bind_password: str
    user_search_base: str
    user_search_filter: str
    group_search_base: str
    group_search_filter: str
    search_page_size: int
    pool_size: int
    attributes: AttributeNames


def username_attributes(template: str) -> tuple[tuple[str, str], ...]:
    """The (attribute, value template) pairs of ``template``'s first RDN that hold ``{username}``.

    The entry a DN template names must carry the username in those attributes
    exactly (see :func:`~.attributes.same_name`): the server matches a DN with
    the attribute's matching rule, which finds ``uid=ﬁve`` for ``uid=five``.

    Raises
    ------
    ValueError
        When ``template`` is not a DN or ``{username}`` is not in its first RDN
        (the entry's own name), so the entry could not be checked.
    """
    try:
        parts = parse_dn(template)
    except LDAPInvalidDnError as exc:
        raise ValueError(f"{template!r} is not a DN: {exc}") from None
    first_rdn: list[tuple[str, str]] = []
    for attribute, value, separator in parts:
        first_rdn.append((attribute, value))
        if separator != "+":  # ',' or the end closes the first RDN
            break
    found = tuple((a, v) for a, v in first_rdn if "{username}" in v)
    if not found:
        raise ValueError(
            f"{template!r}: {{username}} must be in the first RDN (the entry's own name, "
            "e.g. uid={username},ou=people,...)"
        )
    return found


def template_setup_problem(templates: Sequence[str], search_bind_dn: str) -> str | None:
    """Why these DN templates cannot be used safely, or None.

    With several templates a username belongs to the first one whose entry
    exists, so the earlier entries must be checked. Only a service account can
    check them: a directory may hide ``ou=people`` from a person bound as
    ``uid=alice,ou=guests`` (it answers noSuchObject), and that guest would
    then log in as the hub user ``alice``.
    """
    if len(templates) > 1 and not search_bind_dn:
        return (
            f"bind_dn_template has {len(templates)} templates but search_bind_dn is empty: "
            "without a service account the hub cannot prove which entry owns a username "
            "(the directory may hide an earlier template's entry from the person binding). "
            "Set search_bind_dn and search_bind_password to a read-only service account "
            "that can read every template's entries, or use a single bind_dn_template"
        )
    return None


@dataclass(frozen=True)
class _Template:
    """One ``bind_dn_template`` and the attributes its entry must carry the username in."""

    text: str
    name_parts: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> _Template:
        return cls(text, username_attributes(text))

    def dn(self, username: str) -> str:
        return self.text.format(username=escape_rdn(username))

    def owns(self, attrs: dict[str, Any], username: str) -> bool:
        """Whether the entry read at :meth:`dn` is exactly ``username``'s, not a look-alike."""
        return all(
            holds_name(attrs, attribute, value.format(username=username))
            for attribute, value in self.name_parts
        )


@dataclass(frozen=True)
class _Endpoint:
    url: str
    host: str
    port: int
    use_ssl: bool
    tls: ldap3.Tls
    starttls: bool  # StartTLS after connecting (ldap:// with starttls on)
    encrypted: bool  # the password travels encrypted


class _Deadline:
    """The end of one login or refresh (``time.monotonic()`` value, None: no end).

    Every socket wait is cut to the time left, and no further server is tried
    once it has passed; so a thread whose caller gave up stops by itself.
    """

    def __init__(self, at: float | None) -> None:
        self.at = at

    def remaining(self) -> float:
        return math.inf if self.at is None else self.at - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def clamp(self, timeout: float) -> float:
        # A tiny positive floor: 0 would turn a socket non-blocking, not time out.
        return max(0.001, min(timeout, self.remaining()))

    def check(self, failures: Sequence[str] = ()) -> None:
        if self.expired():
            tried = "; ".join(failures)
            raise LoginTimeoutError(
                "login_timeout reached" + (f" after: {tried}" if tried else " before any answer")
            )


class LDAPDirectory:
    """Blocking access to the directory, with ordered failover between servers.

    Thread-safe: the authenticator calls it from several pool threads at once.
    User binds always use a fresh connection; searches by the service account
    reuse a small pool of bound connections.
    """

    def __init__(self, settings: DirectorySettings) -> None:
        self.settings = settings
        self._endpoints = [self._endpoint(url) for url in settings.server_urls]
        self._templates = tuple(_Template.parse(t) for t in settings.bind_dn_templates)
        # A user entry read through a template also shows the attributes the
        # username is in (the RDN's, e.g. uid), to check it is not a look-alike.
        wanted = [*settings.attributes.user]
        wanted += [a for t in self._templates for a, _ in t.name_parts]
        self._entry_attributes = list({a.lower(): a for a in reversed(wanted)}.values())[::-1]
        # Binary attributes are read raw: ldap3 without a schema decodes whatever
        # happens to be valid UTF-8, so an objectGUID would change form by chance.
        self._raw_attributes = {a.lower() for a in settings.attributes.unique_id}
        self._pool: list[tuple[float, ldap3.Connection]] = []
        self._pool_lock = threading.Lock()
        # url -> monotonic time until which a server that just failed is tried last.
        self._down_until: dict[str, float] = {}

    @property
    def names(self) -> AttributeNames:
        """The attribute names entries are read with."""
        return self.settings.attributes

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

    def _server(self, endpoint: _Endpoint, connect_timeout: float) -> ldap3.Server:
        # A new Server each time: a Server remembers refused addresses for minutes
        # ("invalid server address") even after the LDAP server is back; our own
        # retry interval decides when a failed server is tried again.
        return ldap3.Server(
            endpoint.host,
            port=endpoint.port,
            use_ssl=endpoint.use_ssl,
            tls=endpoint.tls,
            get_info=ldap3.NONE,  # the default reads and parses the schema on every bind
            connect_timeout=connect_timeout,
        )

    def _arm(self, conn: ldap3.Connection, deadline: _Deadline) -> None:
        """Bound the next socket waits by the operation timeout and the time left.

        ldap3 sets the socket timeout once, when it connects; a pooled connection
        must not wait past the deadline of the login now using it.
        """
        deadline.check()
        if conn.socket is not None:
            conn.socket.settimeout(deadline.clamp(self.settings.operation_timeout))

    def _connect(
        self, endpoint: _Endpoint, user: str | None, password: str | None, deadline: _Deadline
    ) -> ldap3.Connection:
        """Open (and secure) a connection; raise one of _CONNECTION_ERRORS if the server fails."""
        conn = ldap3.Connection(
            self._server(endpoint, deadline.clamp(self.settings.connect_timeout)),
            user=user,
            password=password,
            # Bounds the TLS handshake of ldaps://. ldap3 packs it with struct 'LL'
            # on Linux, so it must be a whole number: rounded up, at least 1 s.
            receive_timeout=max(1, math.ceil(deadline.clamp(self.settings.operation_timeout))),
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
            if endpoint.starttls:
                self._arm(conn, deadline)
                if not conn.start_tls(read_server_info=False):
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

    def _server_failed(self, endpoint: _Endpoint, failures: list[str], deadline: _Deadline) -> None:
        """Note a failed server and go on with the next, unless the deadline has passed.

        A server whose wait was cut short by the deadline is not marked down: it
        did not get its full timeout.
        """
        deadline.check(failures)
        log.warning("LDAP server %s failed, trying the next one: %s", endpoint.url, failures[-1])
        self._down_until[endpoint.url] = time.monotonic() + self.settings.server_retry_interval

    def _bind(self, dn: str, password: str, deadline: _Deadline) -> ldap3.Connection:
        """Bind as ``dn`` on the first server that answers; return the bound connection.

        Raises
        ------
        InvalidCredentialsError
            The server refused the password: not a reason to try the next server.
        LoginTimeoutError
            The deadline passed; no further server is tried.
        DirectoryUnavailableError
            No server could be reached.
        """
        failures: list[str] = []
        for endpoint in self._usable_endpoints():
            deadline.check(failures)
            try:
                conn = self._connect(endpoint, dn, password, deadline)
            except _CONNECTION_ERRORS as exc:
                failures.append(f"{endpoint.url}: {_describe(exc)}")
                self._server_failed(endpoint, failures, deadline)
                continue
            try:
                self._arm(conn, deadline)
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
                self._server_failed(endpoint, failures, deadline)
                continue
            except BaseException:
                _close(conn)
                raise
            if ok:
                self._down_until.pop(endpoint.url, None)
                return conn
            result = conn.result or {}
            _close(conn)
            code = result.get("result")
            if code == _INVALID_CREDENTIALS:
                raise InvalidCredentialsError(
                    f"invalid credentials for {dn!r} on {endpoint.url}", ambiguous=True
                )
            if code in (None, 0) or code >= 80:  # client-side errors (connection lost)
                failures.append(f"{endpoint.url}: bind failed ({result.get('description')})")
                self._server_failed(endpoint, failures, deadline)
                continue
            # Any other answer (unwillingToPerform, ...) is the directory's verdict.
            raise InvalidCredentialsError(
                f"bind as {dn!r} refused by {endpoint.url}: {result.get('description')}"
            )
        raise DirectoryUnavailableError("no LDAP server usable: " + ("; ".join(failures) or "none"))

    @contextmanager
    def _service(self, deadline: _Deadline) -> Iterator[ldap3.Connection]:
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
                conn = self._bind(
                    self.settings.search_bind_dn, self.settings.search_bind_password, deadline
                )
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

    def _search(
        self,
        conn: ldap3.Connection,
        base: str,
        flt: str,
        attributes: Sequence[str],
        deadline: _Deadline,
        *,
        scope: str = ldap3.SUBTREE,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Run one search, page by page; return (dn, attributes) pairs.

        A missing base is an empty answer. A search the server cuts short at its
        size limit raises :class:`SearchLimitError`: a silently truncated group
        list would give the person fewer groups (or none of the admin ones).
        """
        page = self.settings.search_page_size if scope != ldap3.BASE else 0
        entries: list[tuple[str, dict[str, Any]]] = []
        cookie: bytes | None = None
        while True:
            self._arm(conn, deadline)
            paging = {"paged_size": page, "paged_cookie": cookie} if page else {}
            conn.search(base, flt, scope, attributes=list(attributes), **paging)
            result = conn.result or {}
            code = result.get("result")
            for item in conn.response or []:
                if item.get("type") != "searchResEntry":
                    continue
                attrs = dict(item.get("attributes") or {})
                for key, values in (item.get("raw_attributes") or {}).items():
                    if key.lower() in self._raw_attributes:
                        attrs[key] = list(values)
                entries.append((item["dn"], attrs))
            if code == 4:  # sizeLimitExceeded
                raise SearchLimitError(
                    f"the search in {base!r} for {flt!r} stopped at the server's size "
                    f"limit after {len(entries)} entries; raise the limit for the "
                    "account that searches (OpenLDAP: 'limits dn.exact=<DN> "
                    "size.prtotal=unlimited'), or narrow group_search_base"
                )
            if code not in (0, 32):  # 32 noSuchObject: an empty answer
                if code is None or code >= 80:
                    raise ldap_exc.LDAPCommunicationError(
                        f"search failed: {result.get('description')}"
                    )
                raise DirectoryUnavailableError(
                    f"search in {base!r} refused: {result.get('description')}"
                )
            cookie = _paged_cookie(result) if page else None
            if not cookie:
                return entries

    def _service_search(
        self,
        base: str,
        flt: str,
        attributes: Sequence[str],
        deadline: _Deadline,
        *,
        scope: str = ldap3.SUBTREE,
    ) -> list[tuple[str, dict[str, Any]]]:
        """Search with the service account, retrying once on a fresh connection.

        A pooled connection can be stale (the server restarted or failed over);
        then the others in the pool are too, so the pool is emptied and the
        retry binds anew.
        """
        for attempt in (1, 2):
            try:
                with self._service(deadline) as conn:
                    return self._search(conn, base, flt, attributes, deadline, scope=scope)
            except _CONNECTION_ERRORS as exc:
                deadline.check([f"search: {_describe(exc)}"])
                if attempt == 2:
                    raise DirectoryUnavailableError(f"search failed: {_describe(exc)}") from None
                self.close()
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

    def _group_filter(self, person: Identity) -> str:
        return self.settings.group_search_filter.format(
            username=escape_filter_chars(person.username),
            dn=escape_filter_chars(person.ldap_dn),
            gid_number=person.gid_number,
        )

    def _find_user(self, username: str, deadline: _Deadline) -> tuple[str, dict[str, Any]]:
        """The one entry whose ``uid_attribute`` is ``username`` exactly.

        The filter finds look-alikes too (``ﬁve`` for ``five``, see
        :func:`~.attributes.same_name`); they are dropped before counting, so a
        look-alike entry neither claims the name nor makes it ambiguous.
        """
        entries = self._service_search(
            self.settings.user_search_base,
            self._user_filter(username),
            self.names.user,
            deadline,
        )
        exact = [(dn, a) for dn, a in entries if holds_name(a, self.names.uid, username)]
        if len(exact) != 1:
            raise UserNotFoundError(
                f"user search for {username!r} found {len(entries)} entries, {len(exact)} "
                f"of them with {self.names.uid} {username!r} exactly (uid_attribute; "
                "only ASCII letter case may differ)"
            )
        return exact[0]

    def _decoy_bind(self, password: str, deadline: _Deadline) -> None:
        """Bind as a DN that cannot exist, as a wrong password would be tried.

        An unknown username then costs the same connection, TLS handshake and
        bind as a known one with a wrong password, so the time to refuse does
        not tell which names exist. The password sent is random, of the same
        length: the person's password goes to their own entry only.
        """
        base = self.settings.user_search_base
        rdn = f"cn=lsst-hub-no-such-user-{secrets.token_hex(8)}"
        decoy = secrets.token_urlsafe(len(password))[: len(password)] or "x"
        with contextlib.suppress(InvalidCredentialsError):
            _close(self._bind(f"{rdn},{base}" if base else rdn, decoy, deadline))

    def _identity(self, username: str, dn: str, attrs: dict[str, Any]) -> Identity:
        return identity_from_entry(username, dn, attrs, (), self.names)

    def authenticate(self, username: str, password: str, deadline: float | None = None) -> Identity:
        """Check the password and read the identity.

        ``username`` must already be normalized and validated; it is escaped
        here before it goes into a DN or a filter. ``deadline`` is a
        :func:`time.monotonic` time after which no server is tried and no
        socket waits any longer (None: only the per-server timeouts).

        Raises
        ------
        InvalidCredentialsError, UserNotFoundError, IncompleteIdentityError,
        DirectoryUnavailableError, LoginTimeoutError
        """
        limit = _Deadline(deadline)
        if self._templates:
            return self._authenticate_direct(username, password, limit)
        try:
            dn, attrs = self._find_user(username, limit)
        except UserNotFoundError:
            self._decoy_bind(password, limit)
            raise
        _close(self._bind(dn, password, limit))
        return self._with_groups(self._identity(username, dn, attrs), limit)

    def _authenticate_direct(self, username: str, password: str, deadline: _Deadline) -> Identity:
        """Direct bind with the DN templates, in order.

        The rule: a username belongs to the entry of the *first* template whose
        DN names an entry carrying the username exactly. A server answers
        "invalid credentials" both for a wrong password and for a DN that does
        not exist, so after that answer the next template is tried; when a
        later DN accepts the password, the earlier DNs are checked, with the
        service account, to name no such entry, or the login is refused.
        Otherwise a password valid for ``uid=x,ou=guests`` would log in as the
        person ``uid=x,ou=people`` (same hub user, other uid). An entry the
        server matched by its looser rules (``uid=ﬁve`` for ``uid=five``) is not
        the user's, whatever the password. Any other refusal ends the login at once.
        """
        problem = template_setup_problem(
            self.settings.bind_dn_templates, self.settings.search_bind_dn
        )
        if problem:
            raise DirectoryUnavailableError(problem)
        refusals: list[str] = []
        for index, template in enumerate(self._templates):
            dn = template.dn(username)
            try:
                conn = self._bind(dn, password, deadline)
            except InvalidCredentialsError as exc:
                if not exc.ambiguous:
                    raise
                refusals.append(str(exc))
                continue
            try:
                found = self._search(
                    conn, dn, "(objectClass=*)", self._entry_attributes, deadline, scope=ldap3.BASE
                )
                if not found:
                    raise UserNotFoundError(f"{dn!r} bound but cannot be read")
                entry_dn, attrs = found[0]
                if not template.owns(attrs, username):
                    refusals.append(f"{entry_dn!r} does not carry the name {username!r} exactly")
                    continue
                for earlier in self._templates[:index]:
                    if self._exists(earlier, username, deadline):
                        raise InvalidCredentialsError(
                            f"the password fits {dn!r}, but {earlier.dn(username)!r} from an "
                            "earlier bind_dn_template exists and owns this username"
                        )
                # Groups are read as the service account when there is one, else
                # as the person.
                service = bool(self.settings.search_bind_dn)
                person = self._with_groups(
                    self._identity(username, entry_dn, attrs), deadline, None if service else conn
                )
            except _CONNECTION_ERRORS as exc:
                deadline.check([f"reading {dn!r}: {_describe(exc)}"])
                raise DirectoryUnavailableError(
                    f"reading {dn!r} failed: {_describe(exc)}"
                ) from None
            finally:
                _close(conn)
            return person
        raise InvalidCredentialsError("; ".join(refusals))

    def _exists(self, template: _Template, username: str, deadline: _Deadline) -> bool:
        """Whether ``template`` names an entry that is ``username``'s (service account).

        A look-alike entry there (``uid=ﬁve`` for ``five``) does not count.
        """
        found = self._service_search(
            template.dn(username),
            "(objectClass=*)",
            self._entry_attributes,
            deadline,
            scope=ldap3.BASE,
        )
        return bool(found) and template.owns(found[0][1], username)

    def lookup(self, username: str, deadline: float | None = None) -> Identity:
        """Re-read a user's identity and groups with the service account (no password).

        With DN templates the first template whose entry exists names the user,
        as for a login.

        Raises
        ------
        UserNotFoundError, IncompleteIdentityError, DirectoryUnavailableError,
        LoginTimeoutError
        """
        limit = _Deadline(deadline)
        if self._templates:
            for template in self._templates:
                found = self._service_search(
                    template.dn(username),
                    "(objectClass=*)",
                    self._entry_attributes,
                    limit,
                    scope=ldap3.BASE,
                )
                if found and template.owns(found[0][1], username):
                    dn, attrs = found[0]
                    break
            else:
                dns = [t.dn(username) for t in self._templates]
                raise UserNotFoundError(f"no entry of {username!r} at {dns!r}")
        else:
            dn, attrs = self._find_user(username, limit)
        return self._with_groups(self._identity(username, dn, attrs), limit)

    def _with_groups(
        self, person: Identity, deadline: _Deadline, conn: ldap3.Connection | None = None
    ) -> Identity:
        """``person`` with their groups, searched on ``conn`` (default: the service account).

        The identity comes first because the filter needs the primary gid: an entry
        without its POSIX attributes is refused before any group search.
        """
        args = (
            self.settings.group_search_base,
            self._group_filter(person),
            self.names.group,
            deadline,
        )
        found = self._service_search(*args) if conn is None else self._search(conn, *args)
        return replace(person, groups=tuple(groups_from_entries(found, self.names)))


def _paged_cookie(result: dict[str, Any]) -> bytes | None:
    """The simple-paged-results cookie of a search result; empty or absent = last page."""
    control = (result.get("controls") or {}).get(_PAGED_RESULTS_OID) or {}
    cookie = (control.get("value") or {}).get("cookie")
    return bytes(cookie) if cookie else None


def _describe(exc: BaseException) -> str:
    """A short, password-free description of a connection failure."""
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _close(conn: ldap3.Connection) -> None:
    # Closing a broken connection may fail; there is nothing left to do then.
    with contextlib.suppress(Exception):
        conn.unbind()
