"""Which directory attributes hold what, and turning entries into an Identity (pure).

Sites name their attributes differently (``uid`` or ``sAMAccountName``,
``homeDirectory`` or ``unixHomeDirectory``, ...). :class:`AttributeNames`
holds the names the authenticator's ``*_attribute`` traits give; the
functions here read an entry, as ldap3 returns it, with those names. No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..identity import Group, Identity

__all__ = [
    "AttributeNames",
    "IncompleteIdentityError",
    "groups_from_entries",
    "identity_from_entry",
    "is_attribute_name",
]

# An attribute description of RFC 4512: a name or a numeric OID, with options
# (``cn;lang-en``). Nothing else may reach a filter built from a trait value.
_ATTRIBUTE = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)(?:;[A-Za-z0-9-]+)*")


def is_attribute_name(value: str) -> bool:
    """Whether ``value`` is a well-formed LDAP attribute description."""
    return _ATTRIBUTE.fullmatch(value) is not None


class IncompleteIdentityError(Exception):
    """The entry lacks a POSIX attribute the spawner needs."""


@dataclass(frozen=True)
class AttributeNames:
    """Attribute names of user and group entries (see the authenticator's traits).

    ``display_name`` is tried in order; an empty ``email`` or ``group_gid``
    means the directory has no such attribute.
    """

    uid: str = "uid"
    uid_number: str = "uidNumber"
    gid_number: str = "gidNumber"
    home_directory: str = "homeDirectory"
    display_name: tuple[str, ...] = ("displayName", "cn")
    email: str = "mail"
    group_name: str = "cn"
    group_gid: str = "gidNumber"

    @property
    def user(self) -> list[str]:
        """Attributes to request for a user entry."""
        names = [self.uid, self.uid_number, self.gid_number, self.home_directory]
        names += [*self.display_name, self.email]
        return _unique(names)

    @property
    def group(self) -> list[str]:
        """Attributes to request for a group entry."""
        return _unique([self.group_name, self.group_gid])


def _unique(names: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        if name:
            seen.setdefault(name.lower(), name)
    return list(seen.values())


def first_value(attrs: Mapping[str, Any], name: str) -> Any:
    """First value of an attribute (ldap3 gives lists without a schema), or None."""
    if not name:
        return None
    for key, value in attrs.items():
        if key.lower() == name.lower():
            if isinstance(value, list | tuple):
                return value[0] if value else None
            return value
    return None


def as_int(value: Any) -> int | None:
    """``value`` as an int, or None when it is not a number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def groups_from_entries(
    entries: Iterable[tuple[str, Mapping[str, Any]]], names: AttributeNames
) -> list[Group]:
    """Groups from group entries, in directory order, without repeated names."""
    groups: dict[str, Group] = {}
    for _, attrs in entries:
        name = first_value(attrs, names.group_name)
        if name:
            gid = as_int(first_value(attrs, names.group_gid))
            groups.setdefault(str(name), Group(str(name), gid))
    return list(groups.values())


def identity_from_entry(
    username: str,
    dn: str,
    attrs: Mapping[str, Any],
    groups: Iterable[Group],
    names: AttributeNames,
) -> Identity:
    """The :class:`~lsst_hub.identity.Identity` a user entry describes.

    Raises
    ------
    IncompleteIdentityError
        When the uid number, gid number or home directory is missing or not
        usable; the message names the attributes as configured.
    """
    raw_uid = first_value(attrs, names.uid_number)
    raw_gid = first_value(attrs, names.gid_number)
    home = first_value(attrs, names.home_directory)
    uid, gid = as_int(raw_uid), as_int(raw_gid)
    problems = [
        f"{name} {'missing' if raw is None or raw == '' else f'not a usable id ({raw!r})'}"
        for name, raw, number in (
            (names.uid_number, raw_uid, uid),
            (names.gid_number, raw_gid, gid),
        )
        # Negative ids are refused by the auth_state contract (Identity.from_auth_state).
        if number is None or number < 0
    ]
    if home is None or home == "":
        problems.append(f"{names.home_directory} missing")
    if problems or uid is None or gid is None:
        raise IncompleteIdentityError(f"{dn!r} lacks POSIX attribute(s): {', '.join(problems)}")
    display = next(
        (v for v in (first_value(attrs, n) for n in names.display_name) if v),
        None,
    )
    mail = first_value(attrs, names.email)
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
