"""The login flow: form → throttle → directory (thread pool) → identity → policy → auth model.

:func:`authenticate` is :meth:`LDAPAuthenticator.authenticate
<lsst_hub.auth.LDAPAuthenticator.authenticate>`. Every login ends in one outcome,
counted in ``lsst_hub_ldap_logins_total`` and reported in one log line (never with
the password); any refusal is None, which JupyterHub answers with a 403.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..identity import Identity
from .access import Refusal
from .errors import DirectoryError, unexpected
from .model import admit
from .policy import VERIFIED_KEY, EntryRecord, entry_record
from .throttle import LoginThrottledError
from .throttle import Refusal as ThrottleRefusal

if TYPE_CHECKING:
    from .authenticator import LDAPAuthenticator

__all__ = ["authenticate", "client_address", "shown"]

#: What a login ends in: an outcome label and, on success, the auth model.
Result = tuple[str, dict[str, Any] | None]


def shown(username: object) -> str:
    """A username as it may appear in a log line: quoted and cut short."""
    text = repr(username)
    return text if len(text) <= 80 else text[:77] + "..."


def client_address(handler: Any) -> str:
    """The client's address as JupyterHub sees it (``""`` when there is no request)."""
    address = getattr(getattr(handler, "request", None), "remote_ip", None)
    return address if isinstance(address, str) else ""


def _shown_address(address: str) -> str:
    return shown(address) if address else "an unknown address"


async def authenticate(
    auth: LDAPAuthenticator, handler: Any, data: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Check the login form against the directory: the auth model, or None.

    Every failure is logged and counted in ``lsst_hub_ldap_logins_total``, the
    time taken in ``lsst_hub_ldap_login_duration_seconds``.
    """
    started = time.perf_counter()
    outcome, model = await _login(auth, handler, data or {})
    metrics.LDAP_LOGINS.labels(outcome).inc()
    metrics.LDAP_LOGIN_DURATION.labels(outcome).observe(time.perf_counter() - started)
    return model


async def _login(auth: LDAPAuthenticator, handler: Any, data: dict[str, Any]) -> Result:
    form = _read_form(auth, data)
    if isinstance(form, str):
        return form, None
    username, password = form
    identity = await _check_password(auth, username, password, client_address(handler))
    if isinstance(identity, str):
        return identity, None
    found = await admit(auth, identity, await _hub_user_record(auth, handler, username))
    if isinstance(found, Refusal):
        auth.log.log(found.level, "LDAP login refused for %r: %s", username, found.reason)
        return found.outcome, None
    # When the password was last checked: direct-bind sessions expire by it.
    found["auth_state"][VERIFIED_KEY] = time.time()
    auth.log.info("LDAP login for %r (uid %d)", username, identity.uid_number)
    return "success", found


def _read_form(auth: LDAPAuthenticator, data: dict[str, Any]) -> tuple[str, str] | str:
    """The normalized username and the password, or the outcome that refuses them."""
    raw_name, password = data.get("username"), data.get("password")
    if not isinstance(raw_name, str) or not isinstance(password, str):
        auth.log.warning("LDAP login refused: username or password missing from the form")
        return "invalid_input"
    username = auth.normalize_username(raw_name)
    if not username or not password.strip():
        auth.log.warning("LDAP login refused for %s: empty username or password", shown(username))
        return "invalid_input"
    if not re.fullmatch(auth.username_pattern, username):
        auth.log.warning(
            "LDAP login refused for %s: does not match username_pattern", shown(username)
        )
        return "invalid_input"
    if not auth.server_urls:
        auth.log.error("LDAP login for %r impossible: server_urls is empty", username)
        return "directory_error"
    return username, password


async def _check_password(
    auth: LDAPAuthenticator, username: str, password: str, address: str
) -> Identity | str:
    """The directory's identity for a right password, or the outcome that refuses it.

    The attempt counts against the throttle from the start until the directory
    answers (in flight), so simultaneous attempts cannot get past the limits. A
    refused password or name counts as a failure, a right one clears the
    address's failures, anything else (directory errors, timeouts,
    cancellation) counts as nothing.
    """
    # A local: the traits (and so the throttle) may change meanwhile.
    throttle = auth.throttle
    try:
        attempt = throttle.begin(username, address)
    except LoginThrottledError as exc:
        _log_throttled(auth, username, address, exc)
        return "throttled"
    try:
        if attempt.delay > 0:
            auth.log.info(
                "LDAP login for %r from %s waits %.1f s: failed_login_name_limit reached",
                username,
                _shown_address(address),
                attempt.delay,
            )
            await asyncio.sleep(attempt.delay)
        identity = await auth.call_directory(auth.directory.authenticate, username, password)
    except DirectoryError as exc:
        if exc.wrong_password:
            throttle.failed(attempt)
        auth.log.log(exc.level, "LDAP login failed for %r: %s: %s", username, exc.reason, exc)
        return exc.outcome
    except Exception as exc:
        # Never a 500 for a login.
        auth.log.error("LDAP login failed for %r with an unexpected %s", username, unexpected(exc))
        return "error"
    else:
        throttle.succeeded(attempt)
    finally:
        throttle.release(attempt)  # a no-op after failed() or succeeded()
    return identity


async def _hub_user_record(
    auth: LDAPAuthenticator, handler: Any, username: str
) -> EntryRecord | None:
    """The entry that owns the hub user ``username``, as its ``auth_state`` records it.

    None when the hub user does not exist or recorded no entry (it never logged
    in through the directory), or without a request handler (no hub around).
    """
    find_user = getattr(handler, "find_user", None)
    if find_user is None or not auth.enable_auth_state:
        return None
    user = find_user(username)
    return None if user is None else entry_record(await user.get_auth_state())


def _log_throttled(
    auth: LDAPAuthenticator, username: str, address: str, exc: LoginThrottledError
) -> None:
    where = _shown_address(address)
    if exc.reason is ThrottleRefusal.ADDRESS:
        auth.log.warning(
            "LDAP login for %r from %s throttled: failed_login_limit (%d) reached "
            "for this address; next try in %.0f s",
            username,
            where,
            auth.failed_login_limit,
            exc.retry_after,
        )
    elif exc.reason is ThrottleRefusal.NAME:
        auth.log.warning(
            "LDAP login for %r from %s throttled: failed_login_name_limit (%d) reached "
            "across addresses; next free slot in %.0f s, beyond failed_login_max_wait",
            username,
            where,
            auth.failed_login_name_limit,
            exc.retry_after,
        )
    else:
        auth.log.error(
            "LDAP login for %r from %s throttled: the login throttle is full "
            "(throttle_max_names = %d) of names that are throttled or in flight",
            username,
            where,
            auth.throttle_max_names,
        )
