"""What identifies the entry and its groups: entryUUID and group DNs in auth_state.

A username reused for another person is told apart by the entry's stable unique
attribute (slapd's ``entryUUID`` here); access rules name groups by DN, so every
group entry keeps its DN, and two same-named groups in different branches stay two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.ldap_fixtures import login
from tests.support.slapd import ADMIN_DN, BASE_DN, PEOPLE_DN, Slapd, group_dn, user_dn

Make = Callable[..., Any]

DELEGATED_DN = f"ou=delegated,{BASE_DN}"
TEMPLATE = "uid={username}," + PEOPLE_DN


@pytest.fixture(params=["search-bind", "direct-bind"])
def mode(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "search-bind":
        return {}
    return {"bind_dn_template": TEMPLATE, "search_bind_dn": "", "search_bind_password": ""}


async def test_auth_state_carries_the_entry_uuid(
    make_authenticator: Make, slapd: Slapd, mode: dict[str, Any]
) -> None:
    auth = make_authenticator(**mode)
    result = await login(auth, "alice", "alicepw")
    assert result is not None
    uuid = slapd.entry_uuid(user_dn("alice"))
    assert result["auth_state"]["unique_id"] == uuid
    assert result["auth_state"]["ldap_dn"] == user_dn("alice")


async def test_refresh_carries_the_entry_uuid(make_authenticator: Make, slapd: Slapd) -> None:
    auth = make_authenticator()
    refreshed = await auth.refresh_user(SimpleNamespace(name="bob"))
    assert isinstance(refreshed, dict)
    assert refreshed["auth_state"]["unique_id"] == slapd.entry_uuid(user_dn("bob"))


async def test_a_recreated_entry_has_another_unique_id(
    make_authenticator: Make, slapd: Slapd
) -> None:
    # The same DN, uid and uidNumber: only the unique id tells the new entry apart.
    auth = make_authenticator(allowed_groups=set(), allowed_users={"reused"})
    dn = slapd.add_user("reused", "firstpw", uid_number=33001)
    try:
        first = await login(auth, "reused", "firstpw")
        slapd.delete(dn)
        slapd.add_user("reused", "secondpw", uid_number=33001)
        second = await login(auth, "reused", "secondpw")
    finally:
        slapd.delete(dn)
    assert first is not None and second is not None
    assert first["auth_state"]["ldap_dn"] == second["auth_state"]["ldap_dn"]
    assert first["auth_state"]["unique_id"] != second["auth_state"]["unique_id"]


async def test_groups_carry_their_dns(make_authenticator: Make, mode: dict[str, Any]) -> None:
    result = await login(make_authenticator(**mode), "alice", "alicepw")
    assert result is not None
    assert sorted((g["name"], g["dn"]) for g in result["auth_state"]["groups"]) == [
        ("hpcusers", group_dn("hpcusers")),
        ("jupyterhub-admins", group_dn("jupyterhub-admins")),
        ("jupyterhub-users", group_dn("jupyterhub-users")),
    ]


@pytest.fixture
def delegated_admins(slapd: Slapd) -> Iterator[str]:
    """A second group called jupyterhub-admins, in a branch others may write to."""
    ou = slapd.add_entry(DELEGATED_DN, ["organizationalUnit"], {"ou": "delegated"})
    dn = slapd.add_entry(
        f"cn=jupyterhub-admins,{DELEGATED_DN}",
        ["groupOfNames"],
        {"cn": "jupyterhub-admins", "member": [user_dn("alice"), user_dn("bob"), ADMIN_DN]},
    )
    yield dn
    slapd.delete(dn)
    slapd.delete(ou)


async def test_same_named_groups_are_kept_apart(
    make_authenticator: Make, delegated_admins: str
) -> None:
    auth = make_authenticator(group_search_base=BASE_DN, manage_groups=True)
    alice = await login(auth, "alice", "alicepw")
    assert alice is not None
    admins = [g["dn"] for g in alice["auth_state"]["groups"] if g["name"] == "jupyterhub-admins"]
    assert sorted(admins) == sorted([group_dn("jupyterhub-admins"), delegated_admins])
    assert sorted(alice["groups"]) == ["hpcusers", "jupyterhub-admins", "jupyterhub-users"]
    bob = await login(auth, "bob", "bobpw")
    assert bob is not None
    admins = [g["dn"] for g in bob["auth_state"]["groups"] if g["name"] == "jupyterhub-admins"]
    assert admins == [delegated_admins]  # only the delegated one: a rule by DN can tell
