"""The refresh flow: re-read the person every ``auth_refresh_age`` seconds.

:func:`refresh_user` is :meth:`LDAPAuthenticator.refresh_user
<lsst_hub.auth.LDAPAuthenticator.refresh_user>`: auth_state → directory (thread
pool, service account) → identity → policy → auth model, the same policy and
auth model as a login (:func:`~.model.admit`). Each refresh is counted in
``lsst_hub_ldap_refreshes_total`` by outcome.

A refused refresh (False: log in again) also replaces ``auth_state`` with one that
holds no identity, only the record of the entry that owned the name
(:func:`~.policy.cleared_auth_state`): no server can start from the stale identity
whatever JupyterHub does with the refusal (JupyterHub 6.1+ ignores it on token
requests unless ``auth_refresh_strict``), and a later login by another entry is
still refused.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from .. import metrics
from .access import Refusal
from .errors import DirectoryError, unexpected
from .model import admit
from .policy import CLEARED_KEY, VERIFIED_KEY, EntryRecord, cleared_auth_state, entry_record

if TYPE_CHECKING:
    from .authenticator import LDAPAuthenticator

__all__ = ["refresh_user"]


async def refresh_user(auth: LDAPAuthenticator, user: Any) -> bool | dict[str, Any]:
    """Re-read ``user``'s identity and groups; see :meth:`.LDAPAuthenticator.refresh_user`."""
    name = user.name
    if not auth.server_urls:
        metrics.LDAP_REFRESHES.labels("skipped").inc()
        return True
    state = await user.get_auth_state() if auth.enable_auth_state else None
    record = entry_record(state)
    if not auth.search_bind_dn:
        return await _refresh_by_age(auth, user, state, record)
    try:
        identity = await auth.call_directory(auth.directory.lookup, name)
    except DirectoryError as exc:
        if exc.ends_session:
            refusal = Refusal(exc.refresh_outcome, exc.level, f"{exc.reason}: {exc}")
            return await _refuse(auth, user, record, refusal)
        auth.log.warning("LDAP refresh of %r postponed, %s: %s", name, exc.reason, exc)
        metrics.LDAP_REFRESHES.labels(exc.refresh_outcome).inc()
        return True
    except Exception as exc:
        auth.log.error("LDAP refresh of %r postponed after an unexpected %s", name, unexpected(exc))
        metrics.LDAP_REFRESHES.labels("error").inc()
        return True
    found = await admit(auth, identity, record)
    if isinstance(found, Refusal):
        return await _refuse(auth, user, record, found)
    if state and isinstance(state.get(VERIFIED_KEY), int | float):
        found["auth_state"][VERIFIED_KEY] = state[VERIFIED_KEY]
    metrics.LDAP_REFRESHES.labels("current").inc()
    return found


async def _refresh_by_age(
    auth: LDAPAuthenticator, user: Any, state: dict[str, Any] | None, record: EntryRecord | None
) -> bool:
    """Direct bind without a service account: the last password check must be recent.

    Nothing can verify the person between logins, so a refresh more than
    ``auth_refresh_age`` seconds after the password check is refused (the time
    is kept in ``auth_state``: a hub restart does not reset it). Spawns always
    refresh first (``refresh_pre_spawn``), so none starts after that; other
    requests are refused at JupyterHub's next periodic refresh, which after a
    hub restart may come up to one more ``auth_refresh_age`` later. A session
    from before this check was kept (no time recorded) must log in once.
    """
    if not auth.enable_auth_state:
        metrics.LDAP_REFRESHES.labels("skipped").inc()
        return True
    if not state or CLEARED_KEY in state:
        metrics.LDAP_REFRESHES.labels("expired").inc()
        return False
    verified = state.get(VERIFIED_KEY)
    age = auth.auth_refresh_age
    if not age:
        metrics.LDAP_REFRESHES.labels("skipped").inc()
        return True
    if isinstance(verified, bool) or not isinstance(verified, int | float):
        reason = "no password check recorded and no service account to re-read the entry"
        return await _refuse(auth, user, record, Refusal("expired", logging.WARNING, reason))
    elapsed = time.time() - verified
    if elapsed > age:
        reason = (
            f"last gave the password {elapsed:.0f} s ago, more than auth_refresh_age "
            f"({age} s), and there is no service account to re-read the entry"
        )
        return await _refuse(auth, user, record, Refusal("expired", logging.WARNING, reason))
    metrics.LDAP_REFRESHES.labels("current").inc()
    return True


async def _refuse(
    auth: LDAPAuthenticator, user: Any, record: EntryRecord | None, refusal: Refusal
) -> bool:
    """Log and count a refused refresh, clear the identity from ``auth_state``; False."""
    cleared = "; its identity is cleared" if auth.enable_auth_state else ""
    auth.log.log(
        refusal.level,
        "LDAP refresh: %r is no longer allowed, login required (%s): %s%s",
        user.name,
        refusal.outcome,
        refusal.reason,
        cleared,
    )
    metrics.LDAP_REFRESHES.labels(refusal.outcome).inc()
    if auth.enable_auth_state:
        await user.save_auth_state(cleared_auth_state(record, refusal.outcome))
    return False
