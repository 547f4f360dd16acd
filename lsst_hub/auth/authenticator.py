"""The JupyterHub authenticator: its settings (traits) and JupyterHub's entry points.

The work is in the modules beside it, in the order a login runs:
:mod:`.login` (form, throttle, directory, auth model), :mod:`.throttle`,
:mod:`.directory` (blocking ldap3 code, run in the thread pool here),
:mod:`.attributes` (entry → :class:`~lsst_hub.identity.Identity`),
:mod:`.model` (the site's hook, then the decision), :mod:`.access` (the one access
decision), :mod:`.policy` (group rules, entry ownership); :mod:`.refresh` re-reads
the person the same way.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

from jupyterhub.auth import Authenticator
from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn
from traitlets import Bool, Float, Integer, List, Set, Unicode, default, observe, validate
from traitlets import Callable as CallableTrait
from traitlets import Union as UnionTrait

from ..identity import DEFAULT_MIN_GID, DEFAULT_MIN_UID, DEFAULT_REFUSED_GIDS, Identity
from . import login, refresh
from .access import AccessRules
from .attributes import AttributeNames, is_attribute_name
from .directory import (
    DirectorySettings,
    LDAPDirectory,
    LoginTimeoutError,
    template_setup_problem,
    username_attributes,
)
from .policy import GroupRule, groups_of
from .throttle import LoginThrottle

__all__ = ["LDAPAuthenticator"]

T = TypeVar("T")

#: Traits naming the LDAP attributes read from the directory (checked alike).
_ATTRIBUTE_TRAITS = (
    "uid_attribute",
    "uid_number_attribute",
    "gid_number_attribute",
    "home_directory_attribute",
    "display_name_attribute",
    "email_attribute",
    "group_name_attribute",
    "group_gid_attribute",
    "unique_id_attribute",
)

#: Traits that shape the directory connection: changing one rebuilds it.
_DIRECTORY_TRAITS = [
    "server_urls",
    "starttls",
    "tls_ca_file",
    "tls_verify",
    "allow_insecure",
    "connect_timeout",
    "operation_timeout",
    "server_retry_interval",
    "bind_dn_template",
    "search_bind_dn",
    "search_bind_password",
    "user_search_base",
    "user_search_filter",
    "group_search_base",
    "group_search_filter",
    "search_page_size",
    "executor_threads",
    *_ATTRIBUTE_TRAITS,
]

#: Attribute-name traits that may be empty (the directory has no such attribute).
_OPTIONAL_ATTRIBUTE_TRAITS = {
    "display_name_attribute",
    "email_attribute",
    "group_gid_attribute",
    "unique_id_attribute",
}


def _as_list(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """A trait that takes one string or a list of them, as a list (empty string: [])."""
    if isinstance(value, str):
        return [value] if value else []
    return list(value)


class LDAPAuthenticator(Authenticator):
    """Log in against an LDAP directory and record the person's POSIX identity.

    On success the user's ``auth_state`` holds the
    :class:`~lsst_hub.identity.Identity` the spawner runs the server as
    (enable ``c.Authenticator.enable_auth_state`` and set
    ``JUPYTERHUB_CRYPT_KEY``). All LDAP calls run in a bounded thread pool
    with timeouts, so a slow directory never stalls the hub.
    """

    # -- servers and TLS ---------------------------------------------------
    server_urls = List(
        Unicode(),
        config=True,
        help="""LDAP servers, tried in order, e.g. ``["ldaps://ldap1:636", "ldap://ldap2:389"]``.

        A server that refuses the connection, times out, fails TLS or drops the
        connection is skipped and the next one is tried (and tried last for
        :attr:`server_retry_interval` seconds). A wrong password is the
        directory's answer and is not retried elsewhere. ``ldaps://`` uses TLS
        from the start; ``ldap://`` uses StartTLS unless :attr:`starttls` is off.
        """,
    )
    starttls = Bool(
        True,
        config=True,
        help="Upgrade ``ldap://`` connections with StartTLS before anything is sent.",
    )
    tls_ca_file = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""PEM file of the certificate authorities that sign the LDAP servers'
        certificates. Unset: the system's trust store.""",
    )
    tls_verify = Bool(
        True,
        config=True,
        help="""Verify the servers' TLS certificates and host names. Turn off only to
        debug: without verification anyone on the network path can read passwords.""",
    )
    allow_insecure = Bool(
        False,
        config=True,
        help="""Allow sending passwords over unencrypted ``ldap://`` connections
        (when :attr:`starttls` is off). Without it such servers are skipped with an
        error in the log.""",
    )
    connect_timeout = Float(
        5.0,
        config=True,
        help="Seconds to wait for a TCP connection and TLS handshake to one LDAP server.",
    )
    operation_timeout = Float(
        10.0,
        config=True,
        help="""Seconds to wait for the answer to one LDAP operation (bind, search,
        StartTLS). Rounded up to whole seconds, the resolution ldap3 supports.""",
    )
    server_retry_interval = Float(
        30.0,
        config=True,
        help="""After a server fails, it is tried after the others for this many
        seconds, so a dead first server does not cost a timeout on every login.""",
    )
    login_timeout = Float(
        30.0,
        config=True,
        help="""Seconds one login (or identity refresh) may take in all: waiting for a
        free thread, every server tried, every bind and search. When they are up the
        login fails as ``directory_error`` with a log line, even if servers are left
        to try. Keep it above :attr:`connect_timeout` plus :attr:`operation_timeout`
        so that at least one slow server gets its full chance.""",
    )
    executor_threads = Integer(
        4,
        config=True,
        help="""Threads that run the blocking LDAP calls: at most this many logins
        talk to the directory at once, further logins wait their turn without
        blocking the hub. More threads do not add throughput on a small hub (ldap3
        is pure Python and holds the GIL) but make the hub's event loop less
        responsive; raise it only when the directory itself is slow to answer.""",
    )

    # -- finding and binding the user --------------------------------------
    bind_dn_template = UnionTrait(
        [Unicode(), List(Unicode())],
        default_value="",
        config=True,
        help="""Direct bind: the user's DN with ``{username}``, e.g.
        ``uid={username},ou=people,dc=example,dc=org``, or a list of such
        templates. The username is DN-escaped. Leave empty to search for the user
        with the service account (:attr:`search_bind_dn`) instead.

        With a list, a username belongs to the entry of the *first* template
        whose DN exists. Templates are tried in order; the next one is tried only
        after the server's "invalid credentials" answer (which it gives for a
        missing DN too). When a later template's DN accepts the password, the
        earlier DNs are checked with the service account to be absent; if one
        exists the login is refused, so a password that fits ``uid=x,ou=guests``
        never logs in the person ``uid=x,ou=people``. Several templates therefore
        need :attr:`search_bind_dn` (the hub refuses to start without it): a
        directory may hide ``ou=people`` from guests, and only the service account
        sees every branch.

        ``{username}`` must be in the first RDN (the entry's own name), and the
        entry found must hold the username there exactly: an entry the server
        matches by its looser rules (``uid=ﬁve`` for ``uid=five``) is not the
        user's.""",
    )
    search_bind_dn = Unicode(
        "",
        config=True,
        help="""DN of a read-only service account used to find users (when
        :attr:`bind_dn_template` is empty), read their groups and re-read their
        identity every ``auth_refresh_age`` seconds.""",
    )
    search_bind_password = Unicode(
        "",
        config=True,
        help="Password of :attr:`search_bind_dn`.",
    )
    user_search_base = Unicode(
        "",
        config=True,
        help="Where users are searched (subtree), e.g. ``ou=people,dc=example,dc=org``.",
    )
    user_search_filter = Unicode(
        config=True,
        help="""Filter that finds exactly one user entry; ``{username}`` is replaced by
        the filter-escaped username. Default:
        ``(&(objectClass=posixAccount)(UID={username}))`` where ``UID`` is
        :attr:`uid_attribute`.""",
    )
    group_search_base = Unicode(
        "",
        config=True,
        help="Where groups are searched (subtree), e.g. ``ou=groups,dc=example,dc=org``.",
    )
    group_search_filter = Unicode(
        "(|(&(objectClass=posixGroup)(|(memberUid={username})(gidNumber={gid_number})))"
        "(&(objectClass=groupOfNames)(member={dn}))"
        "(&(objectClass=groupOfUniqueNames)(uniqueMember={dn})))",
        config=True,
        help="""Filter for the groups a user belongs to; ``{username}``, ``{dn}``
        (the user's DN) and ``{gid_number}`` (the primary gid) are filter-escaped.
        The default covers posixGroup ``memberUid`` and the posixGroup of the
        primary gid (a member without being listed, as ``id`` shows it),
        groupOfNames ``member`` and groupOfUniqueNames ``uniqueMember``. Group names are the ``cn``;
        ``gidNumber`` is kept when present.""",
    )
    search_page_size = Integer(
        500,
        config=True,
        help="""Entries per page of a user or group search (RFC 2696 simple paged
        results), so that a person in more groups than the server returns at once
        gets all of them. ``0`` sends no paging control, for a server that does not
        support it. A search the server still cuts short at its total size limit
        fails the login with a log line naming the limit to raise, rather than
        giving the person an incomplete list of groups.""",
    )

    # -- attribute names ---------------------------------------------------
    uid_attribute = Unicode(
        "uid",
        config=True,
        help="""Attribute holding the login name, used in the default
        :attr:`user_search_filter` (``sAMAccountName`` in Active Directory). The
        entry found must hold the username in it exactly (only ASCII letter case may
        differ): entries the directory's matching rules find for look-alike names
        (``ﬁve`` for ``five``, fullwidth letters, trailing spaces, the Kelvin sign)
        are ignored.""",
    )
    uid_number_attribute = Unicode(
        "uidNumber",
        config=True,
        help="Attribute holding the user's numeric uid (required).",
    )
    gid_number_attribute = Unicode(
        "gidNumber",
        config=True,
        help="Attribute holding the user's primary numeric gid (required).",
    )
    home_directory_attribute = Unicode(
        "homeDirectory",
        config=True,
        help="""Attribute holding the user's home directory (required;
        ``unixHomeDirectory`` in Active Directory).""",
    )
    display_name_attribute = UnionTrait(
        [Unicode(), List(Unicode())],
        default_value=["displayName", "cn"],
        config=True,
        help="""Attribute holding the user's display name, or a list of them tried in
        order (the first one the entry has wins). Empty: no display name.""",
    )
    email_attribute = Unicode(
        "mail",
        config=True,
        help="Attribute holding the user's e-mail address. Empty: no e-mail address.",
    )
    group_name_attribute = Unicode(
        "cn",
        config=True,
        help="""Attribute holding a group's name, as used in :attr:`allowed_groups`,
        :attr:`admin_groups` and JupyterHub groups.""",
    )
    group_gid_attribute = Unicode(
        "gidNumber",
        config=True,
        help="""Attribute holding a group's numeric gid (groups without it are kept,
        without a gid). Empty: groups have no gid.""",
    )

    unique_id_attribute = List(
        Unicode(),
        # OpenLDAP, 389/Red Hat DS, FreeIPA, Active Directory.
        default_value=["entryUUID", "nsUniqueId", "ipaUniqueID", "objectGUID"],
        config=True,
        help="""Stable unique attributes of a user entry, tried in order; the first
        the entry has is kept in ``auth_state`` as ``unique_id``, which tells a new
        entry under a reused username from the old one. Requested by name (they are
        operational attributes). ``objectGUID`` (binary) is stored as Active
        Directory writes it (``uuid.UUID(bytes_le=...)``). Empty: none is read.""",
    )

    # -- which ids may run -------------------------------------------------
    min_uid = Integer(
        DEFAULT_MIN_UID,
        config=True,
        help="""Lowest ``uidNumber`` that may log in. Below it are root and the
        system accounts, which no directory entry may reach: such a login is
        refused (outcome ``system_id``) with a log line naming this setting.""",
    )
    min_gid = Integer(
        DEFAULT_MIN_GID,
        config=True,
        help="""Lowest primary ``gidNumber`` that may log in (outcome ``system_id``
        below it).""",
    )
    refused_gids = Set(
        Integer(),
        default_value=set(DEFAULT_REFUSED_GIDS),
        config=True,
        help="""Group ids refused as primary or supplementary group: a person in such
        a group (or in one with a negative gid) cannot log in (outcome
        ``system_id``). Default ``{0}``, root's group.""",
    )

    # -- who may log in ----------------------------------------------------
    allowed_groups = Set(
        Unicode(),
        config=True,
        help="""Directory groups whose members may log in, in addition to
        ``allowed_users``. Without this, ``allowed_users`` or ``allow_all`` nobody
        can log in. Re-checked on every identity refresh: a user who left every
        allowed group must log in again (and is refused).

        Each entry is a group's name (:attr:`group_name_attribute`, ``cn``) or its
        DN, e.g. ``cn=jupyterhub-users,ou=groups,dc=example,dc=org``: an entry
        that contains ``=`` and ``,`` and parses as a DN is a DN. A DN matches only
        that group entry (compared as LDAP does: case, spaces and escaping do not
        count), so a same-named group created elsewhere under
        :attr:`group_search_base` grants nothing; a name matches every group of
        that name. Name groups by DN where others may create groups.

        Being in the hub's database grants nothing: ``allow_existing_users`` is
        off unless set, and even set it does not keep anyone allowed (see
        :meth:`add_user`).""",
    )
    admin_groups = Set(
        Unicode(),
        config=True,
        help="""Directory groups whose members are JupyterHub admins, by name or DN
        as in :attr:`allowed_groups`.

        When set, admin rights follow the directory: at every login and identity
        refresh a member becomes admin and anyone else who is not in
        ``admin_users`` stops being admin, including admin rights given by hand
        on the admin page. When empty, admin status is ``admin_users`` and
        whatever admins set by hand.""",
    )
    failed_login_limit = Integer(
        5,
        config=True,
        help="""Wrong passwords allowed for one username from one client address
        within :attr:`failed_login_window`. Further attempts from that address are
        refused without asking the directory until the oldest failure leaves the
        window. An attempt counts from the moment it starts, so any number of
        simultaneous attempts cannot get past the limit; a successful login clears
        its address's failures, and an attempt that ends in a directory error counts
        as nothing. Other addresses are not affected, so nobody can lock a name out;
        :attr:`failed_login_name_limit` caps guessing from many addresses. 0 turns all
        login throttling off.

        The client address is JupyterHub's ``request.remote_ip``. Behind
        configurable-http-proxy, tornado takes it from the ``X-Real-Ip`` header, else
        from the last ``X-Forwarded-For`` entry (the one the proxy adds). The proxy
        passes a client's own ``X-Real-Ip`` through unchanged, so a client can claim
        any address: that is why the per-name ceiling exists. Logins without a
        request share one "unknown address".""",
    )
    failed_login_window = Float(
        300.0,
        config=True,
        help="""Seconds over which :attr:`failed_login_limit` counts wrong passwords
        and :attr:`failed_login_name_limit` spreads attempts.""",
    )
    failed_login_name_limit = Integer(
        config=True,
        help="""Ceiling per username across all client addresses: this many attempts
        at once, then one every ``failed_login_window / failed_login_name_limit``
        seconds (a successful login, or a directory error, gives its place back). A
        guesser using many addresses thus gets at most this many wrong passwords per
        :attr:`failed_login_window` to the directory over time (at most twice as many
        in the first window, the initial burst included). An attempt beyond the
        ceiling waits for the next free slot when it is at most
        :attr:`failed_login_max_wait` seconds away, else it is refused as throttled:
        while a name is under attack from many addresses its owner is slowed, never
        locked out for good. Keep it well above :attr:`failed_login_limit`, so that
        one address hammering a name never reaches it. Default: four times
        :attr:`failed_login_limit` (20).""",
    )
    failed_login_max_wait = Float(
        5.0,
        config=True,
        help="""Longest wait, in seconds, for a slot under
        :attr:`failed_login_name_limit`; a login whose slot is further away is refused
        as throttled rather than queued. The wait does not block the hub. 0 refuses at
        once.""",
    )
    throttle_max_names = Integer(
        100_000,
        config=True,
        help="""Usernames the login throttle remembers at most, bounding its memory.
        When full, the least recently used name that restricts nothing (no attempt in
        flight, no address at its :attr:`failed_login_limit`, its
        :attr:`failed_login_name_limit` unused) is forgotten, which changes no
        decision; a throttled name is never forgotten in favor of new ones. When
        every remembered name is throttled or in flight, a login for a name not yet
        remembered is refused as throttled, with a log line naming this setting.""",
    )

    # -- extending auth_state ----------------------------------------------
    modify_auth_state_hook = CallableTrait(
        None,
        allow_none=True,
        config=True,
        help="""A function that extends or changes the ``auth_state`` before it is
        stored, as OAuthenticator has: ``hook(authenticator, auth_state)`` returns the
        ``auth_state`` to store (it may change the dict it got and return it). It may
        be ``async``; a plain function runs on the hub's event loop, so one that waits
        for I/O should be ``async``.

        It runs on every login and on every refresh that re-reads the directory,
        after the directory answered and before anything is decided: it gets the
        identity's keys (see :doc:`/reference/auth-state`), not the authenticator's
        own bookkeeping, and may add keys of its own (the spawner ignores them) or
        change the identity's, e.g. map the home directory (the hub username is not
        among the keys: ``ldap_dn`` and ``uid_number`` identify the person). What it
        returns must still hold a valid identity (``uid_number``, ``gid_number``,
        ``home_directory``, well-formed ``groups``) and be JSON; the limits and rules
        (:attr:`min_uid`, :attr:`min_gid`, :attr:`refused_gids`, entry ownership,
        :attr:`allowed_groups`, :attr:`admin_groups`) then apply to it.
        A hook that raises, or returns something else, refuses the login (403) or
        the refresh (the identity is cleared, the person must log in again) with a
        log line naming this setting (outcome ``invalid_auth_state``); an
        exception is logged by its type and place only, never its message.

        Example::

            async def add_quota(authenticator, auth_state):
                auth_state["quota_gb"] = await my_site.quota(auth_state["uid_number"])
                return auth_state

            c.LDAPAuthenticator.modify_auth_state_hook = add_quota
        """,
    )

    @staticmethod
    def _user_filter_for(uid_attribute: str) -> str:
        return f"(&(objectClass=posixAccount)({uid_attribute}={{username}}))"

    @default("user_search_filter")
    def _default_user_search_filter(self) -> str:
        return self._user_filter_for(self.uid_attribute)

    @observe("uid_attribute")
    def _follow_uid_attribute(self, change: Any) -> None:
        # A default filter computed before uid_attribute changed follows it; a
        # filter the admin wrote stays as written.
        if self.user_search_filter == self._user_filter_for(change["old"]):
            self.user_search_filter = self._user_filter_for(change["new"])

    @default("failed_login_name_limit")
    def _default_failed_login_name_limit(self) -> int:
        return max(1, 4 * self.failed_login_limit)

    @default("username_pattern")
    def _default_username_pattern(self) -> str:
        # A portable POSIX login name: what the spawner can run a pod as.
        return r"^[a-z_][a-z0-9_.-]{0,31}$"

    @default("username_regex")
    def _default_username_regex(self) -> re.Pattern[str] | None:
        # JupyterHub compiles username_regex only when username_pattern *changes*;
        # a default pattern never does, and JupyterHub would accept any name.
        return re.compile(self.username_pattern) if self.username_pattern else None

    def validate_username(self, username: str) -> bool:
        """JupyterHub's checks, then :attr:`username_pattern` on the whole name.

        JupyterHub asks this wherever a user is created or renamed: logins, the
        admin page and REST API (``POST /users``, ``PATCH`` renames),
        ``allowed_users``/``admin_users`` and token config at start. A name the
        spawner could not run a pod as never becomes a hub user.
        """
        if not super().validate_username(username):
            return False
        pattern = self.username_pattern
        # fullmatch: JupyterHub's own check is re.match, a prefix match.
        return not pattern or re.fullmatch(pattern, username) is not None

    @default("allow_existing_users")
    def _default_allow_existing_users(self) -> bool:
        # JupyterHub turns it on whenever allowed_users is set, and then everyone
        # who ever logged in (through a group) stays allowed after leaving it.
        return False

    @default("auth_refresh_strict")
    def _default_auth_refresh_strict(self) -> bool:
        # JupyterHub 6.1+ (the trait is new there; older lines always behave as if
        # True): a refresh we refuse must also stop token requests and admin
        # spawns, or a removed person keeps starting servers with an API token.
        return True

    # -- checks ------------------------------------------------------------
    @validate("server_urls")
    def _check_server_urls(self, proposal: Any) -> list[str]:
        urls: list[str] = list(proposal["value"])
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme.lower() not in ("ldap", "ldaps") or not parts.hostname:
                raise ValueError(f"server_urls: {url!r} is not an ldap:// or ldaps:// URL")
        return urls

    @validate("bind_dn_template")
    def _check_template(self, proposal: Any) -> Any:
        value = proposal["value"]
        for template in _as_list(value):
            if "{username}" not in template:
                raise ValueError(f"bind_dn_template {template!r} must contain {{username}}")
            # A typo ({user}, a stray brace, a broken DN) would otherwise fail every
            # login at run time; refuse it when the hub starts.
            try:
                parse_dn(template.format(username="x"))
                # The entry's own RDN must hold the name, so that the entry can be
                # checked to carry it exactly (not a look-alike the server matched).
                username_attributes(template)
            except (KeyError, IndexError, ValueError, LDAPInvalidDnError) as exc:
                raise ValueError(
                    f"bind_dn_template {template!r} is not a DN template: {exc!r}"
                ) from None
        return value

    @validate("min_uid", "min_gid")
    def _check_min_id(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if value < 0:
            raise ValueError(f"{proposal['trait'].name} must be 0 or more, got {value}")
        return value

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Settings that are only unsafe together are checked once all are set (a
        # config file sets them in any order); the directory refuses such logins too.
        problem = template_setup_problem(_as_list(self.bind_dn_template), self.search_bind_dn)
        if problem:
            raise ValueError(problem)

    @validate("user_search_filter", "group_search_filter")
    def _check_filter(self, proposal: Any) -> str:
        name = proposal["trait"].name
        value: str = proposal["value"]
        if "{username}" not in value and name == "user_search_filter":
            raise ValueError("user_search_filter must contain {username}")
        # The placeholders each filter is formatted with (see LDAPDirectory).
        fields = {"username": "x"}
        if name == "group_search_filter":
            fields.update(dn="x", gid_number="1")
        try:
            value.format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            allowed = " and ".join("{" + f + "}" for f in fields)
            raise ValueError(
                f"{name} {value!r}: only {allowed} may appear in braces "
                f"(write a literal brace as {{{{ or }}}}): {exc!r}"
            ) from None
        return value

    @validate(*_ATTRIBUTE_TRAITS)
    def _check_attribute(self, proposal: Any) -> Any:
        name = proposal["trait"].name
        value = proposal["value"]
        names = _as_list(value)
        if not names and name not in _OPTIONAL_ATTRIBUTE_TRAITS:
            raise ValueError(f"{name} must not be empty")
        for item in names:
            # These names end up in filters and attribute lists: only well-formed ones.
            if not is_attribute_name(item):
                raise ValueError(f"{name}: {item!r} is not an LDAP attribute name")
        return value

    @validate("tls_ca_file")
    def _check_ca_file(self, proposal: Any) -> str | None:
        value: str | None = proposal["value"]
        # ldap3 would only fail at the first login, with an opaque error.
        if value and not os.access(value, os.R_OK):
            raise ValueError(f"tls_ca_file {value!r} does not exist or is not readable")
        return value

    @validate("connect_timeout", "operation_timeout", "login_timeout")
    def _check_timeout(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if value <= 0:
            raise ValueError(f"{proposal['trait'].name} must be positive, got {value}")
        return value

    @validate("failed_login_limit", "failed_login_name_limit", "throttle_max_names")
    def _check_throttle_count(self, proposal: Any) -> int:
        name = proposal["trait"].name
        value = int(proposal["value"])
        least = 0 if name == "failed_login_limit" else 1
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value}")
        return value

    @validate("failed_login_window", "failed_login_max_wait")
    def _check_throttle_time(self, proposal: Any) -> float:
        name = proposal["trait"].name
        value = float(proposal["value"])
        if name == "failed_login_window" and value <= 0:
            raise ValueError(f"failed_login_window must be positive, got {value}")
        if value < 0:
            raise ValueError(f"{name} must be 0 or more, got {value}")
        return value

    @validate("executor_threads")
    def _check_threads(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if value < 1:
            raise ValueError("executor_threads must be at least 1")
        return value

    @validate("search_page_size")
    def _check_page_size(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if value < 0:
            raise ValueError(f"search_page_size must be 0 (no paging) or more, got {value}")
        return value

    # -- plumbing ----------------------------------------------------------
    _directory_obj: LDAPDirectory | None = None
    _executor_obj: ThreadPoolExecutor | None = None
    _throttle_obj: LoginThrottle | None = None

    @observe(*_DIRECTORY_TRAITS)
    def _reset_directory(self, change: Any) -> None:
        if self._directory_obj is not None:
            self._directory_obj.close()
        self._directory_obj = None
        if change["name"] == "executor_threads" and self._executor_obj is not None:
            self._executor_obj.shutdown(wait=False)
            self._executor_obj = None

    @observe(
        "failed_login_limit",
        "failed_login_window",
        "failed_login_name_limit",
        "failed_login_max_wait",
        "throttle_max_names",
    )
    def _reset_throttle(self, change: Any) -> None:
        self._throttle_obj = None

    @property
    def directory(self) -> LDAPDirectory:
        """The :class:`.LDAPDirectory` built from the current traits."""
        if self._directory_obj is None:
            self._directory_obj = LDAPDirectory(
                DirectorySettings(
                    server_urls=tuple(self.server_urls),
                    starttls=self.starttls,
                    tls_ca_file=self.tls_ca_file,
                    tls_verify=self.tls_verify,
                    allow_insecure=self.allow_insecure,
                    connect_timeout=self.connect_timeout,
                    operation_timeout=self.operation_timeout,
                    server_retry_interval=self.server_retry_interval,
                    bind_dn_templates=tuple(_as_list(self.bind_dn_template)),
                    search_bind_dn=self.search_bind_dn,
                    search_bind_password=self.search_bind_password,
                    user_search_base=self.user_search_base,
                    user_search_filter=self.user_search_filter,
                    group_search_base=self.group_search_base,
                    group_search_filter=self.group_search_filter,
                    pool_size=self.executor_threads,
                    search_page_size=self.search_page_size,
                    attributes=AttributeNames(
                        uid=self.uid_attribute,
                        uid_number=self.uid_number_attribute,
                        gid_number=self.gid_number_attribute,
                        home_directory=self.home_directory_attribute,
                        display_name=tuple(_as_list(self.display_name_attribute)),
                        email=self.email_attribute,
                        group_name=self.group_name_attribute,
                        group_gid=self.group_gid_attribute,
                        unique_id=tuple(self.unique_id_attribute),
                    ),
                )
            )
        return self._directory_obj

    @property
    def throttle(self) -> LoginThrottle:
        """The login throttle built from the ``failed_login_*`` traits."""
        if self._throttle_obj is None:
            self._throttle_obj = LoginThrottle(
                self.failed_login_limit,
                self.failed_login_window,
                name_limit=self.failed_login_name_limit,
                max_wait=self.failed_login_max_wait,
                max_names=self.throttle_max_names,
            )
        return self._throttle_obj

    async def _in_thread(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking LDAP code in the bounded pool, off the event loop."""
        if self._executor_obj is None:
            self._executor_obj = ThreadPoolExecutor(
                max_workers=self.executor_threads, thread_name_prefix="lsst-hub-ldap"
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor_obj, func, *args)

    async def call_directory(self, func: Callable[..., T], *args: Any) -> T:
        """Run the blocking ``func(*args, deadline)`` in the bounded thread pool, off
        the event loop; give up after :attr:`login_timeout`.

        Python cannot stop a thread, so a call we give up on is abandoned, not
        killed. It ends by itself soon after: ``deadline`` makes the directory
        code cut every socket wait (connect, TLS, bind, search) to the time left
        and try no further server once it has passed, so the thread returns to
        the pool within about a second of the deadline (ldap3 rounds the TLS
        handshake timeout up to whole seconds). A call still queued for a free
        thread is canceled and never runs.

        Raises
        ------
        LoginTimeoutError
            When :attr:`login_timeout` has passed.
        """
        timeout = self.login_timeout
        deadline = time.monotonic() + timeout
        try:
            return await asyncio.wait_for(self._in_thread(func, *args, deadline), timeout)
        except TimeoutError:
            raise LoginTimeoutError(f"gave up after login_timeout ({timeout:g} s)") from None

    # -- JupyterHub API ----------------------------------------------------
    def normalize_username(self, username: str) -> str:
        """Strip surrounding white space and lower-case (then ``username_map``)."""
        return super().normalize_username(username.strip())  # type: ignore[no-any-return]

    def check_allow_config(self) -> None:
        """JupyterHub's start-up check, and warnings for settings that weaken ours."""
        super().check_allow_config()
        if self.allow_existing_users:
            self.log.warning(
                "Authenticator.allow_existing_users = True has no effect with "
                "LDAPAuthenticator: being in the hub's database never lets anyone log "
                "in. Access follows allowed_users and allowed_groups; remove the setting."
            )
        if not self.auth_refresh_age:
            # JupyterHub then never calls refresh_user, not even with refresh_pre_spawn.
            self.log.warning(
                "Authenticator.auth_refresh_age = 0: identities are never re-read, so "
                "a person removed from the directory or from every allowed group keeps "
                "their session and can start servers until they log out"
            )

    def add_user(self, user: Any) -> None:
        """Check the new hub user's name; never add it to ``allowed_users``.

        JupyterHub's version adds every user in its database to
        ``allowed_users`` when ``allow_existing_users`` is on, so whoever once got
        in through :attr:`allowed_groups` would stay allowed after leaving every
        allowed group. Here access is ``allowed_users`` as configured plus
        :attr:`allowed_groups`, whatever ``allow_existing_users`` says.

        Raises
        ------
        ValueError
            When the name does not pass :meth:`validate_username`.
        """
        if not self.validate_username(user.name):
            raise ValueError(f"Invalid username: {user.name}")

    def check_allowed(self, username: str, authentication: dict[str, Any] | None = None) -> bool:
        """Allowed by ``allow_all``/``allowed_users`` or a member of :attr:`allowed_groups`."""
        if super().check_allowed(username, authentication):
            return True
        groups = groups_of((authentication or {}).get("auth_state"))
        return GroupRule.parse(self.allowed_groups).matches(groups)

    def access_rules(self) -> AccessRules:
        """The settings the access decision (:func:`.access.decide`) reads, as they are now."""
        return AccessRules(
            min_uid=self.min_uid,
            min_gid=self.min_gid,
            refused_gids=frozenset(self.refused_gids),
            admin_groups=GroupRule.parse(self.admin_groups),
            admin_users=frozenset(self.admin_users),
            allowed_groups=frozenset(self.allowed_groups),
            allowed=self._allows,
        )

    def _allows(self, identity: Identity) -> bool:
        model = {"name": identity.username, "auth_state": identity.to_auth_state()}
        return bool(self.allow_all or self.check_allowed(identity.username, model))

    async def authenticate(
        self, handler: Any, data: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Check the login form against the directory (see :mod:`.login`).

        Returns the auth model (name, auth_state, admin, groups) or None for
        any failure; every failure is logged (never with the password) and
        counted in ``lsst_hub_ldap_logins_total``. A username whose hub user
        belongs to another directory entry is refused (outcome
        ``entry_changed``): the old hub user keeps its servers, tokens and groups
        until an admin deletes or renames it.
        """
        return await login.authenticate(self, handler, data)

    async def refresh_user(self, user: Any, handler: Any = None) -> bool | dict[str, Any]:
        """Re-read identity and groups (JupyterHub calls this every ``auth_refresh_age``).

        With the service account the entry is read again and passes the same
        decision as a login: the refresh is refused (False: log in again) when
        the person is gone from the directory, lost a POSIX attribute, now has a
        system id (``min_uid``, ``min_gid``, ``refused_gids``), left every allowed
        group, or the name now belongs to another entry (another unique id, or DN
        when either side has none, or another uid number than recorded). Without a
        service account (direct bind) nothing can be re-read: the refresh is
        refused once the last password check is older than ``auth_refresh_age``.
        True when the directory cannot be reached (the session is kept) or no
        server is configured; otherwise the updated auth model.

        A refused refresh also replaces ``auth_state`` with one that holds no
        identity (only the record of the entry that owned the name), so no server
        can start from the stale identity whatever JupyterHub does with the refusal
        (JupyterHub 6.1+ ignores it on token requests unless
        ``auth_refresh_strict``), and a later login by another entry is refused.
        See :mod:`.refresh`.
        """
        return await refresh.refresh_user(self, user)
