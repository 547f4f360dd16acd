"""The POSIX identity of a person: the one contract between authenticator and spawner.

The authenticator reads it from LDAP and stores it in JupyterHub's encrypted
``auth_state``; the spawner reads it back to run the pod as that person. The
``auth_state`` keys (``ldap_dn``, ``unique_id``, ``uid_number``, ``gid_number``,
``home_directory``, ``groups``, ``display_name``, ``email``) are a public
contract: change them only with a migration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AUTH_STATE_KEYS",
    "CLEARED_KEY",
    "DEFAULT_MIN_GID",
    "DEFAULT_MIN_UID",
    "DEFAULT_REFUSED_GIDS",
    "Group",
    "Identity",
    "IdentityError",
    "id_problems",
]

#: The ``auth_state`` keys of the identity (other keys there belong to the
#: authenticator's bookkeeping, not to the identity).
AUTH_STATE_KEYS = frozenset(
    {
        "ldap_dn",
        "unique_id",
        "uid_number",
        "gid_number",
        "home_directory",
        "groups",
        "display_name",
        "email",
    }
)
#: auth_state key of an identity the authenticator withdrew: why it was withdrawn.
CLEARED_KEY = "cleared"

#: Lowest uidNumber a person may run as: below it are root and the system accounts.
DEFAULT_MIN_UID = 1000
#: Lowest primary gidNumber a person may run with.
DEFAULT_MIN_GID = 1000
#: Group ids never handed to a pod, even as a supplementary group (root's group).
DEFAULT_REFUSED_GIDS = frozenset({0})


class IdentityError(ValueError):
    """``auth_state`` is missing or does not hold a usable POSIX identity."""


@dataclass(frozen=True)
class Group:
    """A directory group the person belongs to.

    Parameters
    ----------
    name
        The group's ``cn``.
    gid
        Its ``gidNumber``, or None for a group that is not a POSIX group
        (a ``groupOfNames`` used only for access rules).
    dn
        The group entry's distinguished name, so that access rules can name a
        group exactly (a same-named group elsewhere under the search base is a
        different group). Empty when unknown (auth_state written before it was kept).
    """

    name: str
    gid: int | None = None
    dn: str = ""


def _int_field(state: Mapping[str, Any], key: str) -> int:
    value = state.get(key)
    # bool is an int subclass; a True uid would silently become uid 1.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise IdentityError(f"auth_state has no usable {key!r} (got {value!r})")
    try:
        number = int(value)
    except ValueError:
        raise IdentityError(f"auth_state {key!r} is not a number: {value!r}") from None
    if number < 0:
        raise IdentityError(f"auth_state {key!r} is negative: {number}")
    return number


@dataclass(frozen=True)
class Identity:
    """A person's POSIX identity as read from the directory.

    Parameters
    ----------
    username
        The JupyterHub username (normalized, lower case).
    ldap_dn
        The person's distinguished name in the directory.
    unique_id
        The value of the entry's stable unique attribute (``entryUUID``,
        ``objectGUID``, ...), which survives renames and tells a reused
        username's new entry from the old one; None when the directory has none.
    uid_number, gid_number
        ``uidNumber`` and primary ``gidNumber``.
    home_directory
        ``homeDirectory``, an absolute path on the shared file system.
    groups
        Every group the person belongs to, POSIX or not.
    display_name, email
        ``cn``/``displayName`` and ``mail`` when the directory has them.
    """

    username: str
    ldap_dn: str
    uid_number: int
    gid_number: int
    home_directory: str
    groups: tuple[Group, ...] = field(default_factory=tuple)
    display_name: str | None = None
    email: str | None = None
    unique_id: str | None = None

    @property
    def group_names(self) -> list[str]:
        """Names of all groups, in directory order, each name once.

        Two groups may share a name (in different branches of the directory);
        :attr:`groups` keeps both with their DNs, JupyterHub's groups are by name.
        """
        return list(dict.fromkeys(g.name for g in self.groups))

    @property
    def supplemental_gids(self) -> list[int]:
        """Every POSIX group gid, primary gid included, sorted and without repeats."""
        gids = {self.gid_number}
        gids.update(g.gid for g in self.groups if g.gid is not None)
        return sorted(gids)

    def to_auth_state(self) -> dict[str, Any]:
        """Return the JSON-serializable ``auth_state`` form."""
        state: dict[str, Any] = {
            "ldap_dn": self.ldap_dn,
            "uid_number": self.uid_number,
            "gid_number": self.gid_number,
            "home_directory": self.home_directory,
            "groups": [{"name": g.name, "gid": g.gid, "dn": g.dn} for g in self.groups],
        }
        if self.unique_id:
            state["unique_id"] = self.unique_id
        if self.display_name:
            state["display_name"] = self.display_name
        if self.email:
            state["email"] = self.email
        return state

    @classmethod
    def from_auth_state(cls, username: str, state: Mapping[str, Any] | None) -> Identity:
        """Rebuild an Identity from ``auth_state``.

        Raises
        ------
        IdentityError
            When ``state`` is None or lacks a required key; the message names
            what is missing so an admin can act on it.
        """
        if state and CLEARED_KEY in state:
            # The authenticator cleared the identity (person removed, or the name
            # now belongs to another entry): only a new password login may restore it.
            raise IdentityError(
                f"the identity of {username!r} was withdrawn ({state[CLEARED_KEY]}): "
                "log in again with your password"
            )
        if not state:
            raise IdentityError(
                f"no auth_state for user {username!r}: enable "
                "c.Authenticator.enable_auth_state, set JUPYTERHUB_CRYPT_KEY, and log in "
                "through the LDAP authenticator"
            )
        home = state.get("home_directory")
        if not isinstance(home, str) or not home:
            raise IdentityError(f"auth_state of {username!r} has no home_directory")
        groups: list[Group] = []
        for raw in state.get("groups") or []:
            if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
                raise IdentityError(f"auth_state of {username!r} has a malformed group: {raw!r}")
            gid = raw.get("gid")
            if gid is not None and (isinstance(gid, bool) or not isinstance(gid, int)):
                raise IdentityError(f"group {raw['name']!r} has a non-integer gid {gid!r}")
            dn = raw.get("dn") or ""
            if not isinstance(dn, str):
                raise IdentityError(f"group {raw['name']!r} has a malformed dn {dn!r}")
            groups.append(Group(name=raw["name"], gid=gid, dn=dn))
        return cls(
            username=username,
            ldap_dn=str(state.get("ldap_dn") or ""),
            uid_number=_int_field(state, "uid_number"),
            gid_number=_int_field(state, "gid_number"),
            home_directory=home,
            groups=tuple(groups),
            display_name=state.get("display_name") or None,
            email=state.get("email") or None,
            unique_id=str(state["unique_id"]) if state.get("unique_id") else None,
        )


def id_problems(
    identity: Identity,
    *,
    min_uid: int = DEFAULT_MIN_UID,
    min_gid: int = DEFAULT_MIN_GID,
    refused_gids: frozenset[int] | set[int] = DEFAULT_REFUSED_GIDS,
) -> list[str]:
    """Say why ``identity`` must not run a server; empty when it may.

    Root and the system accounts must never be reachable through a directory
    entry, whoever wrote it: the authenticator refuses such a login, the
    spawner refuses such a spawn and the final pod check refuses such a pod.

    Parameters
    ----------
    identity
        The person's identity.
    min_uid, min_gid
        Lowest ``uidNumber`` and primary ``gidNumber`` allowed.
    refused_gids
        Group ids refused as primary or supplementary group.

    Returns
    -------
    list of str
        One sentence per problem, naming the setting that decides it.
    """
    problems: list[str] = []
    if identity.uid_number < min_uid:
        problems.append(f"uidNumber {identity.uid_number} is below min_uid ({min_uid})")
    if identity.gid_number < min_gid:
        problems.append(f"gidNumber {identity.gid_number} is below min_gid ({min_gid})")
    for gid in [identity.gid_number, *(g.gid for g in identity.groups if g.gid is not None)]:
        if gid < 0:
            problems.append(f"group id {gid} is negative")
        elif gid in refused_gids:
            problems.append(f"group id {gid} is in refused_gids")
    return sorted(set(problems))
