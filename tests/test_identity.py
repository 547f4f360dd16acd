"""The auth_state contract between authenticator and spawner."""

from __future__ import annotations

from typing import Any

import pytest

from lsst_hub.identity import (
    AUTH_STATE_KEYS,
    DEFAULT_MIN_GID,
    DEFAULT_MIN_UID,
    DEFAULT_REFUSED_GIDS,
    Group,
    Identity,
    IdentityError,
    id_problems,
)

pytestmark = pytest.mark.line_independent

ALICE = Identity(
    username="alice",
    ldap_dn="uid=alice,ou=people,dc=example,dc=org",
    uid_number=10001,
    gid_number=10000,
    home_directory="/gpfs/home/alice",
    groups=(
        Group("hpcusers", 10000, "cn=hpcusers,ou=groups,dc=example,dc=org"),
        Group("jupyterhub-users", None, "cn=jupyterhub-users,ou=groups,dc=example,dc=org"),
        Group("astro", 20001),
    ),
    display_name="Alice Archer",
    email="alice@example.org",
    unique_id="6f1d3c2e-8a4b-1040-9a0e-5f2b7c9d1e3a",
)


def test_round_trip_keeps_every_field() -> None:
    state = ALICE.to_auth_state()
    assert state == {
        "ldap_dn": "uid=alice,ou=people,dc=example,dc=org",
        "uid_number": 10001,
        "gid_number": 10000,
        "home_directory": "/gpfs/home/alice",
        "groups": [
            {"name": "hpcusers", "gid": 10000, "dn": "cn=hpcusers,ou=groups,dc=example,dc=org"},
            {
                "name": "jupyterhub-users",
                "gid": None,
                "dn": "cn=jupyterhub-users,ou=groups,dc=example,dc=org",
            },
            {"name": "astro", "gid": 20001, "dn": ""},
        ],
        "display_name": "Alice Archer",
        "email": "alice@example.org",
        "unique_id": "6f1d3c2e-8a4b-1040-9a0e-5f2b7c9d1e3a",
    }
    assert Identity.from_auth_state("alice", state) == ALICE


def test_auth_state_keys_name_every_identity_key() -> None:
    assert set(ALICE.to_auth_state()) == AUTH_STATE_KEYS  # ALICE has every optional field


def test_auth_state_written_before_dns_and_unique_ids_still_reads() -> None:
    old = {k: v for k, v in ALICE.to_auth_state().items() if k != "unique_id"}
    old["groups"] = [{"name": g["name"], "gid": g["gid"]} for g in old["groups"]]
    ident = Identity.from_auth_state("alice", old)
    assert ident.unique_id is None
    assert [(g.name, g.gid, g.dn) for g in ident.groups] == [
        ("hpcusers", 10000, ""),
        ("jupyterhub-users", None, ""),
        ("astro", 20001, ""),
    ]


def test_same_named_groups_are_kept_apart_but_named_once() -> None:
    # Two groups called "admins" in different branches are two groups (by DN);
    # JupyterHub's groups are by name, so the name is listed once.
    ident = Identity(
        "bob",
        "uid=bob",
        10002,
        10000,
        "/gpfs/home/bob",
        groups=(
            Group("admins", None, "cn=admins,ou=delegated,dc=example,dc=org"),
            Group("admins", None, "cn=admins,ou=groups,dc=example,dc=org"),
        ),
    )
    assert ident.group_names == ["admins"]
    back = Identity.from_auth_state("bob", ident.to_auth_state())
    assert [g.dn for g in back.groups] == [
        "cn=admins,ou=delegated,dc=example,dc=org",
        "cn=admins,ou=groups,dc=example,dc=org",
    ]


def test_optional_fields_are_left_out_when_absent() -> None:
    bare = Identity("bob", "uid=bob", 10002, 10000, "/gpfs/home/bob")
    assert "display_name" not in bare.to_auth_state()
    assert "email" not in bare.to_auth_state()
    assert Identity.from_auth_state("bob", bare.to_auth_state()) == bare


def test_supplemental_gids_include_primary_and_skip_non_posix_groups() -> None:
    assert ALICE.supplemental_gids == [10000, 20001]
    assert ALICE.group_names == ["hpcusers", "jupyterhub-users", "astro"]


@pytest.mark.parametrize("state", [None, {}])
def test_missing_auth_state_names_the_admin_fix(state: dict[str, Any] | None) -> None:
    with pytest.raises(IdentityError, match=r"enable_auth_state.*JUPYTERHUB_CRYPT_KEY"):
        Identity.from_auth_state("alice", state)


GOOD = ALICE.to_auth_state()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"uid_number": None}, "uid_number"),
        ({"uid_number": True}, "uid_number"),
        ({"uid_number": "abc"}, "not a number"),
        ({"gid_number": -1}, "negative"),
        ({"home_directory": ""}, "home_directory"),
        ({"home_directory": None}, "home_directory"),
        ({"groups": [{"gid": 1}]}, "malformed group"),
        ({"groups": [{"name": "x", "gid": "12"}]}, "non-integer gid"),
        ({"groups": [{"name": "x", "gid": 12, "dn": ["cn=x"]}]}, "malformed dn"),
    ],
)
def test_malformed_auth_state_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        Identity.from_auth_state("alice", {**GOOD, **change})


def test_numeric_strings_are_accepted() -> None:
    # Some directories hand back uidNumber as a string; the value is what matters.
    ident = Identity.from_auth_state("alice", {**GOOD, "uid_number": "10001"})
    assert ident.uid_number == 10001


def person(uid: int = 10001, gid: int = 10000, *groups: Group) -> Identity:
    return Identity("p", "uid=p", uid, gid, "/gpfs/home/p", groups=groups)


def test_default_limits() -> None:
    # Root, the system accounts (below 1000) and root's group.
    assert min(DEFAULT_MIN_UID, DEFAULT_MIN_GID) == 1000 and set(DEFAULT_REFUSED_GIDS) == {0}
    assert id_problems(ALICE) == []
    assert id_problems(person(1000, 1000)) == []


@pytest.mark.parametrize(
    ("ident", "expected"),
    [
        (person(0), ["uidNumber 0 is below min_uid (1000)"]),
        (person(1), ["uidNumber 1 is below min_uid (1000)"]),
        (person(999), ["uidNumber 999 is below min_uid (1000)"]),
        (person(10001, 999), ["gidNumber 999 is below min_gid (1000)"]),
        (
            person(10001, 0),
            ["gidNumber 0 is below min_gid (1000)", "group id 0 is in refused_gids"],
        ),
        (person(10001, 10000, Group("wheel", 0)), ["group id 0 is in refused_gids"]),
        (person(10001, 10000, Group("odd", -3)), ["group id -3 is negative"]),
        (person(10001, 10000, Group("no-gid", None)), []),
    ],
    ids=repr,
)
def test_system_ids_are_named(ident: Identity, expected: list[str]) -> None:
    assert id_problems(ident) == expected


def test_limits_are_settings() -> None:
    assert id_problems(person(500, 500), min_uid=500, min_gid=500) == []
    problems = id_problems(person(10001, 10000, Group("docker", 999)), refused_gids={999})
    assert problems == ["group id 999 is in refused_gids"]
    assert id_problems(person(10001, 10000, Group("wheel", 0)), refused_gids=set()) == []


def test_withdrawn_identity_says_log_in_again() -> None:
    # What the authenticator leaves after a refused refresh: no identity, a reason.
    state = {"cleared": "no longer allowed", "entry": {"ldap_dn": "uid=a,ou=people"}}
    with pytest.raises(IdentityError, match=r"withdrawn .*no longer allowed.*log in again"):
        Identity.from_auth_state("a", state)
