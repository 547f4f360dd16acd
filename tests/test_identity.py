"""The auth_state contract between authenticator and spawner."""

from __future__ import annotations

from typing import Any

import pytest

from lsst_hub.identity import Group, Identity, IdentityError

ALICE = Identity(
    username="alice",
    ldap_dn="uid=alice,ou=people,dc=example,dc=org",
    uid_number=10001,
    gid_number=10000,
    home_directory="/gpfs/home/alice",
    groups=(Group("hpcusers", 10000), Group("jupyterhub-users", None), Group("astro", 20001)),
    display_name="Alice Archer",
    email="alice@example.org",
)


def test_round_trip_keeps_every_field() -> None:
    state = ALICE.to_auth_state()
    assert state == {
        "ldap_dn": "uid=alice,ou=people,dc=example,dc=org",
        "uid_number": 10001,
        "gid_number": 10000,
        "home_directory": "/gpfs/home/alice",
        "groups": [
            {"name": "hpcusers", "gid": 10000},
            {"name": "jupyterhub-users", "gid": None},
            {"name": "astro", "gid": 20001},
        ],
        "display_name": "Alice Archer",
        "email": "alice@example.org",
    }
    assert Identity.from_auth_state("alice", state) == ALICE


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
    ],
)
def test_malformed_auth_state_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        Identity.from_auth_state("alice", {**GOOD, **change})


def test_numeric_strings_are_accepted() -> None:
    # Some directories hand back uidNumber as a string; the value is what matters.
    ident = Identity.from_auth_state("alice", {**GOOD, "uid_number": "10001"})
    assert ident.uid_number == 10001
