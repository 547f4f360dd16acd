"""Access rules that need no I/O: groups named by cn or DN, and who owns a username.

Group rules
    :attr:`~lsst_hub.auth.LDAPAuthenticator.allowed_groups` and ``admin_groups``
    name groups by ``cn`` or by DN. An entry that contains ``=`` and ``,`` and
    parses as a DN is a DN and matches only the group entry with that DN
    (compared as LDAP compares them: attribute types and values without regard
    to case, insignificant spaces or escaping); anything else is a ``cn``.
    Naming a group by DN is what keeps a same-named group created elsewhere under
    the search base from granting anything.

Entry ownership
    A hub user belongs to the directory entry that first logged in under the
    name. :func:`entry_record` reads what identifies that entry from
    ``auth_state`` (``unique_id``, ``ldap_dn``, ``uid_number``);
    :func:`ownership_problem` says why a freshly read identity is another entry.
    When a refresh is refused the identity is replaced by
    :func:`cleared_auth_state`, which keeps only that record, so that the
    spawner has nothing to run and a later login by a new owner of the name is
    still recognized.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import parse_dn

from ..identity import CLEARED_KEY, Group, Identity

__all__ = [
    "CLEARED_KEY",
    "ENTRY_KEY",
    "VERIFIED_KEY",
    "EntryRecord",
    "GroupRule",
    "cleared_auth_state",
    "entry_record",
    "groups_of",
    "is_dn",
    "normalize_dn",
    "ownership_problem",
]

#: auth_state key of a cleared identity: the record of the entry that owned the name.
ENTRY_KEY = "entry"
#: auth_state key: when the person's password was last checked (Unix time, seconds).
VERIFIED_KEY = "password_verified_at"

_ESCAPE = re.compile(r"\\([0-9A-Fa-f]{2})|\\(.)", re.DOTALL)
_SPACES = re.compile(r"\s+")

#: A normalized DN: RDNs in order, each a sorted tuple of (type, value) pairs.
NormalDN = tuple[tuple[tuple[str, str], ...], ...]


def _unescape(value: str) -> str:
    """An RFC 4514 attribute value with its escapes resolved (``\\2c``, ``\\,``)."""
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(value):
        out += value[position : match.start()].encode()
        hex_pair, char = match.groups()
        out += bytes.fromhex(hex_pair) if hex_pair else char.encode()
        position = match.end()
    out += value[position:].encode()
    return out.decode("utf-8", errors="surrogateescape")


def _fold(value: str) -> str:
    # As caseIgnoreMatch compares (RFC 4518): compatibility forms, case, and runs
    # of spaces do not count.
    folded = unicodedata.normalize("NFKC", value).casefold()
    return _SPACES.sub(" ", folded).strip()


def _parse(text: str) -> NormalDN | None:
    try:
        parts = parse_dn(text, strip=True)
    except (LDAPInvalidDnError, ValueError, IndexError, TypeError):
        return None
    rdns: list[tuple[tuple[str, str], ...]] = []
    current: list[tuple[str, str]] = []
    for attribute, value, separator in parts:
        current.append((attribute.strip().lower(), _fold(_unescape(value))))
        if separator != "+":
            rdns.append(tuple(sorted(current)))
            current = []
    if current:
        rdns.append(tuple(sorted(current)))
    return tuple(rdns) if rdns else None


def is_dn(text: str) -> bool:
    """Whether a configured group entry names a group by DN (not by cn).

    It must contain ``=`` and ``,`` and parse as a DN; ``cn=x`` alone is a name.
    """
    return "=" in text and "," in text and _parse(text) is not None


def normalize_dn(text: str) -> NormalDN | None:
    """``text`` in a form in which DNs equal under LDAP's matching rules are equal.

    None when ``text`` is not a DN.
    """
    return _parse(text)


@dataclass(frozen=True)
class GroupRule:
    """A configured set of groups (``allowed_groups``, ``admin_groups``).

    Parameters
    ----------
    names
        Group ``cn`` values, matched exactly.
    dns
        Normalized DNs, matched against the group entries' DNs.
    """

    names: frozenset[str]
    dns: frozenset[NormalDN]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> GroupRule:
        """Split configured entries into DNs and names (see :func:`is_dn`)."""
        names: set[str] = set()
        dns: set[NormalDN] = set()
        for entry in entries:
            normal = normalize_dn(entry) if is_dn(entry) else None
            if normal is None:
                names.add(entry)
            else:
                dns.add(normal)
        return cls(frozenset(names), frozenset(dns))

    def __bool__(self) -> bool:
        return bool(self.names or self.dns)

    def matches(self, groups: Iterable[Group]) -> bool:
        """Whether any of ``groups`` is named by this rule.

        A group whose DN is unknown (``""``, auth_state written before group DNs
        were kept) never matches a DN entry.
        """
        for group in groups:
            if group.name in self.names:
                return True
            if self.dns and group.dn and normalize_dn(group.dn) in self.dns:
                return True
        return False


def groups_of(state: Mapping[str, Any] | None) -> list[Group]:
    """The groups in ``auth_state``, tolerating old or partial states."""
    found: list[Group] = []
    for raw in (state or {}).get("groups") or []:
        if isinstance(raw, Mapping) and isinstance(raw.get("name"), str) and raw["name"]:
            dn = raw.get("dn")
            found.append(Group(name=raw["name"], dn=dn if isinstance(dn, str) else ""))
    return found


@dataclass(frozen=True)
class EntryRecord:
    """What identifies the directory entry that owns a hub username."""

    ldap_dn: str = ""
    unique_id: str | None = None
    uid_number: int | None = None

    @classmethod
    def of(cls, identity: Identity) -> EntryRecord:
        """The record of ``identity``'s entry."""
        return cls(identity.ldap_dn, identity.unique_id, identity.uid_number)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as kept in a cleared ``auth_state``."""
        record: dict[str, Any] = {"ldap_dn": self.ldap_dn, "uid_number": self.uid_number}
        if self.unique_id:
            record["unique_id"] = self.unique_id
        return record

    def describe(self) -> str:
        """A short text for log lines."""
        parts = [f"dn {self.ldap_dn!r}", f"uid {self.uid_number}"]
        if self.unique_id:
            parts.append(f"unique id {self.unique_id!r}")
        return ", ".join(parts)


def entry_record(state: Mapping[str, Any] | None) -> EntryRecord | None:
    """The owning entry recorded in ``auth_state`` (full or cleared); None if none is."""
    if not isinstance(state, Mapping):
        return None
    source = state.get(ENTRY_KEY) if CLEARED_KEY in state else state
    if not isinstance(source, Mapping):
        return None
    dn = source.get("ldap_dn")
    unique_id = source.get("unique_id")
    number = source.get("uid_number")
    record = EntryRecord(
        ldap_dn=dn if isinstance(dn, str) else "",
        unique_id=str(unique_id) if unique_id else None,
        uid_number=number if isinstance(number, int) and not isinstance(number, bool) else None,
    )
    if not record.ldap_dn and record.unique_id is None and record.uid_number is None:
        return None
    return record


def ownership_problem(record: EntryRecord | None, found: EntryRecord) -> str | None:
    """Why the entry ``found`` now is not the one ``record`` describes; None if it is.

    The unique id decides when both sides have one (an entry may be moved or
    renamed); otherwise the DN. A changed uid number is refused in any case: the
    files of the hub user's home belong to the old one. No record: nothing to
    compare with (a hub user that never logged in through the directory).
    """
    if record is None:
        return None
    if record.unique_id and found.unique_id:
        if record.unique_id != found.unique_id:
            return f"unique id {found.unique_id!r} is not the recorded {record.unique_id!r}"
    elif (
        record.ldap_dn
        and found.ldap_dn
        and normalize_dn(record.ldap_dn) != normalize_dn(found.ldap_dn)
    ):
        return f"dn {found.ldap_dn!r} is not the recorded {record.ldap_dn!r}"
    if (
        record.uid_number is not None
        and found.uid_number is not None
        and record.uid_number != found.uid_number
    ):
        return f"uid number {found.uid_number} is not the recorded {record.uid_number}"
    return None


def cleared_auth_state(record: EntryRecord | None, reason: str) -> dict[str, Any] | None:
    """The ``auth_state`` that replaces a refused identity.

    It holds no identity (the spawner refuses to start anything from it), only
    ``reason`` and the record of the entry that owned the name. None when there
    is no record to keep.
    """
    if record is None:
        return None
    return {CLEARED_KEY: reason, ENTRY_KEY: record.to_dict()}
