"""Which directory attributes hold what, and turning entries into an Identity (pure).

Sites name their attributes differently (``uid`` or ``sAMAccountName``,
``homeDirectory`` or ``unixHomeDirectory``, ...). :class:`AttributeNames`
holds the names the authenticator's ``*_attribute`` traits give; the
functions here read an entry, as ldap3 returns it, with those names. No I/O.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..identity import Group, Identity
from .errors import IncompleteIdentityError

__all__ = [
    "AttributeNames",
    "all_values",
    "groups_from_entries",
    "holds_name",
    "identity_from_entry",
    "is_attribute_name",
    "same_name",
    "unique_id_from_entry",
]

#: Binary GUIDs in Microsoft's mixed-endian layout, written as the usual UUID string.
_GUID_ATTRIBUTES = frozenset({"objectguid"})

# Only A-Z fold: Unicode case folding and compatibility mapping (the ligature
# "ﬁ", fullwidth letters, the Kelvin sign) are what must NOT make two names equal.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# An attribute description of RFC 4512: a name or a numeric OID, with options
# (``cn;lang-en``). Nothing else may reach a filter built from a trait value.
_ATTRIBUTE = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)(?:;[A-Za-z0-9-]+)*")


def is_attribute_name(value: str) -> bool:
    """Whether ``value`` is a well-formed LDAP attribute description."""
    return _ATTRIBUTE.fullmatch(value) is not None


@dataclass(frozen=True)
class AttributeNames:
    """Attribute names of user and group entries, each from the authenticator's
    ``*_attribute`` trait of that name (the traits hold the defaults).

    ``display_name`` and ``unique_id`` are tried in order; an empty ``email`` or
    ``group_gid`` means the directory has no such attribute.
    """

    uid: str
    uid_number: str
    gid_number: str
    home_directory: str
    display_name: tuple[str, ...]
    email: str
    group_name: str
    group_gid: str
    unique_id: tuple[str, ...]

    @property
    def user(self) -> list[str]:
        """Attributes to request for a user entry (operational ones by name)."""
        names = [self.uid, self.uid_number, self.gid_number, self.home_directory]
        names += [*self.display_name, self.email, *self.unique_id]
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


def all_values(attrs: Mapping[str, Any], name: str) -> list[Any]:
    """Every value of an attribute (ldap3 gives lists without a schema); [] when absent."""
    if not name:
        return []
    for key, value in attrs.items():
        if key.lower() == name.lower():
            return list(value) if isinstance(value, list | tuple) else [value]
    return []


def first_value(attrs: Mapping[str, Any], name: str) -> Any:
    """First value of an attribute, or None."""
    values = all_values(attrs, name)
    return values[0] if values else None


def same_name(value: str, username: str) -> bool:
    """Whether a directory value names ``username``: equal but for ASCII letter case.

    The directory's own matching rules (LDAPprep: Unicode compatibility mapping,
    case folding, insignificant spaces) also find ``ﬁve`` (a ligature), ``five`` in
    fullwidth letters and ``five `` for ``five``, and ``Kate`` spelled with the Kelvin
    sign (U+212A) for ``kate``; such an entry must
    neither claim a username nor, by making the answer ambiguous, lock its owner out.
    """
    return value.translate(_ASCII_LOWER) == username.translate(_ASCII_LOWER)


def holds_name(attrs: Mapping[str, Any], name: str, username: str) -> bool:
    """Whether attribute ``name`` of an entry has a value that is :func:`same_name`."""
    return any(isinstance(v, str) and same_name(v, username) for v in all_values(attrs, name))


def unique_id_from_entry(attrs: Mapping[str, Any], names: Iterable[str]) -> str | None:
    """The first of ``names`` the entry has, as a stable string; None when none.

    A 16-byte ``objectGUID`` is written as Active Directory shows it
    (``uuid.UUID(bytes_le=...)``), other binary values in hex.
    """
    for name in names:
        value = first_value(attrs, name)
        if value is None or value == "" or value == b"":
            continue
        if isinstance(value, bytes | bytearray):
            raw = bytes(value)
            if name.lower() in _GUID_ATTRIBUTES and len(raw) == 16:
                return str(uuid.UUID(bytes_le=raw))
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                return raw.hex()
        return str(value)
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
    """Groups from group entries, in directory order, each entry once.

    Two entries with the same name in different places are two groups: both are
    kept, with their DNs, so that a rule naming a group by DN is not fooled by a
    same-named group elsewhere under the search base.
    """
    groups: dict[str, Group] = {}
    for dn, attrs in entries:
        name = first_value(attrs, names.group_name)
        if name:
            gid = as_int(first_value(attrs, names.group_gid))
            groups.setdefault(dn.lower() if dn else f"\0{name}", Group(str(name), gid, dn))
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
        raise IncompleteIdentityError(
            f"{dn!r} lacks POSIX attribute(s): {', '.join(problems)}; the spawner needs a "
            f"uid number ({names.uid_number}), a gid number ({names.gid_number}) and a "
            f"home directory ({names.home_directory})"
        )
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
        unique_id=unique_id_from_entry(attrs, names.unique_id),
    )
