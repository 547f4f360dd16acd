"""The auth model that login and refresh hand to JupyterHub, built the same way for both.

:func:`admit` turns the identity the directory gave into the auth model
(``name``, ``auth_state``, ``admin``, ``groups``) or a
:class:`~.access.Refusal`:

1. ``auth_state`` is the identity (:meth:`~lsst_hub.identity.Identity.to_auth_state`);
2. the site's ``modify_auth_state_hook``, when set, returns the ``auth_state`` to
   store: it may add keys and change the identity's, but what it returns must
   still hold a valid identity (:meth:`~lsst_hub.identity.Identity.from_auth_state`)
   and be JSON, or the login or refresh is refused (``invalid_auth_state``);
3. :func:`~.access.decide` decides on that identity, so the id limits, the entry
   ownership and the allowed and admin groups apply to what is stored.

The flows add their own bookkeeping key (``password_verified_at``) afterwards.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..identity import Identity, IdentityError
from .access import Refusal, decide
from .errors import unexpected
from .policy import VERIFIED_KEY, EntryRecord

if TYPE_CHECKING:
    from .authenticator import LDAPAuthenticator

__all__ = ["admit", "run_modify_hook"]


def _broken(what: str) -> Refusal:
    return Refusal("invalid_auth_state", logging.ERROR, f"modify_auth_state_hook {what}")


async def run_modify_hook(
    auth: LDAPAuthenticator, identity: Identity
) -> tuple[dict[str, Any], Identity] | Refusal:
    """The ``auth_state`` the site's hook makes of ``identity``, and the identity it holds.

    Without a hook: ``identity``'s auth_state and ``identity``. A hook that raises,
    returns no mapping, or returns one without a valid identity or that is not JSON
    gives a :class:`~.access.Refusal` that says why (an exception by its type and
    place only: its message might hold a secret).
    """
    state = identity.to_auth_state()
    hook = auth.modify_auth_state_hook
    if hook is None:
        return state, identity
    try:
        result = hook(auth, state)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        return _broken(f"raised {unexpected(exc)}")
    if not isinstance(result, Mapping):
        shown = "None" if result is None else f"a {type(result).__name__}"
        return _broken(f"returned {shown} instead of the auth_state")
    state = dict(result)
    # The flows' own bookkeeping is theirs to write, not the hook's.
    state.pop(VERIFIED_KEY, None)
    try:
        changed = Identity.from_auth_state(identity.username, state)
    except IdentityError as exc:
        return _broken(f"returned an auth_state without a valid identity: {exc}")
    except Exception as exc:
        return _broken(f"returned an auth_state that cannot be read: {unexpected(exc)}")
    try:
        json.dumps(state)
    except (TypeError, ValueError) as exc:
        return _broken(f"returned an auth_state that is not JSON: {exc}")
    # The identity's keys as the spawner reads them (e.g. a uid number given as text).
    state.update(changed.to_auth_state())
    return state, changed


async def admit(
    auth: LDAPAuthenticator, identity: Identity, record: EntryRecord | None
) -> dict[str, Any] | Refusal:
    """The auth model for ``identity``, or why the person may not use the hub.

    Parameters
    ----------
    auth
        The authenticator (its hook and settings).
    identity
        The person as the directory has them now.
    record
        The entry that owns the hub user's name (from its ``auth_state``), if any.
    """
    hooked = await run_modify_hook(auth, identity)
    if isinstance(hooked, Refusal):
        return hooked
    state, identity = hooked
    verdict = decide(identity, record, auth.access_rules())
    if isinstance(verdict, Refusal):
        return verdict
    model: dict[str, Any] = {"name": identity.username, "auth_state": state, "admin": verdict.admin}
    if auth.manage_groups:
        model["groups"] = identity.group_names
    return model
