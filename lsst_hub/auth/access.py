"""Who may use the hub, decided once, in one place, for every login and every refresh.

:func:`decide` takes the identity the directory (and the site's
``modify_auth_state_hook``) gave and answers with a :class:`Refusal` or a
:class:`Granted`, in this order:

1. id limits: no root, no system account (``min_uid``, ``min_gid``,
   ``refused_gids``, see :func:`~lsst_hub.identity.id_problems`);
2. entry ownership: the entry must be the one that owns the hub user's name
   (see :func:`~.policy.ownership_problem`);
3. allowed: ``allow_all``, ``allowed_users`` or a member of ``allowed_groups``;
4. admin: member of ``admin_groups`` or in ``admin_users``.

No I/O: the caller reads the directory and ``auth_state`` and acts on the answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..identity import Identity, id_problems
from .policy import EntryRecord, GroupRule, ownership_problem

__all__ = ["AccessRules", "Granted", "Refusal", "admin_status", "decide"]


@dataclass(frozen=True)
class Refusal:
    """Why someone may not use the hub.

    Parameters
    ----------
    outcome
        The metrics label (``system_id``, ``entry_changed``, ``not_allowed``,
        ``invalid_auth_state``).
    level
        The log level of the line that reports it.
    reason
        The log line's words for it, naming the settings that decide.
    """

    outcome: str
    level: int
    reason: str


@dataclass(frozen=True)
class Granted:
    """Someone may use the hub; ``admin`` is the hub's admin flag to set (None: leave it)."""

    admin: bool | None


@dataclass(frozen=True)
class AccessRules:
    """The authenticator's settings that decide, as :func:`decide` reads them.

    Parameters
    ----------
    min_uid, min_gid, refused_gids
        The id limits.
    admin_groups
        The parsed ``admin_groups``.
    admin_users
        ``admin_users``.
    allowed_groups
        ``allowed_groups`` as configured, for the log line of a refusal.
    allowed
        Whether the identity is allowed (``allow_all``, ``allowed_users``,
        ``allowed_groups``): the authenticator's ``check_allowed``, which sites
        may override.
    """

    min_uid: int
    min_gid: int
    refused_gids: frozenset[int]
    admin_groups: GroupRule
    admin_users: frozenset[str]
    allowed_groups: frozenset[str]
    allowed: Callable[[Identity], bool]


def admin_status(
    identity: Identity, admin_groups: GroupRule, admin_users: frozenset[str]
) -> bool | None:
    """True in ``admin_groups`` or ``admin_users``; else False (None without admin_groups).

    None leaves the hub's admin flag as it is, so with no admin groups an admin
    set by hand stays one; with admin groups the directory decides.
    """
    if admin_groups.matches(identity.groups) or identity.username in admin_users:
        return True
    return False if admin_groups else None


def decide(identity: Identity, record: EntryRecord | None, rules: AccessRules) -> Refusal | Granted:
    """The one access decision (see the module docstring for its order).

    Parameters
    ----------
    identity
        The person as read now.
    record
        The entry that owns the hub user's name, as recorded in its
        ``auth_state``; None when there is none (a new hub user).
    rules
        The settings.
    """
    problems = id_problems(
        identity, min_uid=rules.min_uid, min_gid=rules.min_gid, refused_gids=rules.refused_gids
    )
    if problems:
        # Root and the system accounts are never reachable through the directory.
        reason = "; ".join(problems) + " (settings min_uid, min_gid, refused_gids)"
        return Refusal("system_id", logging.ERROR, reason)
    problem = ownership_problem(record, EntryRecord.of(identity))
    if problem is not None and record is not None:
        # A username given to a new person is not adopted (fail closed): the old hub
        # user keeps its servers, tokens and groups until an admin deletes or renames it.
        name = identity.username
        reason = (
            f"another directory entry now holds the name: {problem} (the hub user belongs "
            f"to {record.describe()}). If the name was given to a new person, delete or "
            f"rename the old hub user {name!r} first (admin page, or DELETE "
            f"/hub/api/users/{name})"
        )
        return Refusal("entry_changed", logging.ERROR, reason)
    if not rules.allowed(identity):
        reason = f"not in allowed_users or allowed_groups {sorted(rules.allowed_groups)}"
        return Refusal("not_allowed", logging.WARNING, reason)
    return Granted(admin_status(identity, rules.admin_groups, rules.admin_users))
