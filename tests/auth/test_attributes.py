"""Configurable attribute names, against the real slapd.

The person ``ada`` carries both the nis schema's attributes and, through the
test-only auxiliary class ``testADAccount`` (tests/support/ldap/test-ad.schema),
Active-Directory-style ones with *different* values: every mapped value in the
result proves that the configured attribute, not the default one, was read.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from lsst_hub.auth.attributes import is_attribute_name
from lsst_hub.identity import AUTH_STATE_KEYS
from tests.support.ldap_fixtures import login, outcome_count
from tests.support.slapd import PEOPLE_DN, Slapd, group_dn

Make = Callable[..., Any]

AD_NAMES = {
    "uid_attribute": "sAMAccountName",
    "uid_number_attribute": "msSFU30UidNumber",
    "gid_number_attribute": "msSFU30GidNumber",
    "home_directory_attribute": "unixHomeDirectory",
    "display_name_attribute": "givenName",
    "email_attribute": "userPrincipalName",
    "group_name_attribute": "sAMAccountName",
    "group_gid_attribute": "msSFU30GidNumber",
}

# The entry's DN says uid=adperson; its sAMAccountName (the login name when
# uid_attribute is mapped) is "ada".
ADA_DN = f"uid=adperson,{PEOPLE_DN}"
ADA_MAPPED = {
    "uid_number": 30001,
    "gid_number": 30000,
    "home_directory": "/gpfs/home/ada",
    "display_name": "Ada",
    "email": "ada@corp.example.org",
    "groups": [
        {"name": "ad-gon-team", "gid": 30001, "dn": group_dn("adteam-gon")},
        {"name": "ad-posix-team", "gid": 30000, "dn": group_dn("adteam-posix")},
    ],
}
# ada's objectGUID: its little-endian bytes are not valid UTF-8.
ADA_GUID = uuid.UUID("1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b")


@pytest.fixture(scope="module")
def ada(slapd: Slapd) -> Iterator[str]:
    """The person ada and two groups that name her, with AD-style attributes."""
    dn = slapd.add_user(
        "adperson",
        "adapw",
        uid_number=40001,  # the nis values: must NOT show up when mapped
        gid_number=40000,
        home="/home/legacy",
        classes=["testADAccount"],
        extra={
            "displayName": "Wrong Display",
            "givenName": "Ada",
            "mail": "legacy@example.org",
            "sAMAccountName": "ada",
            "msSFU30UidNumber": 30001,
            "msSFU30GidNumber": 30000,
            "unixHomeDirectory": "/gpfs/home/ada",
            "userPrincipalName": "ada@corp.example.org",
            "objectGUID": ADA_GUID.bytes_le,
        },
    )
    posix = slapd.add_group(
        "adteam-posix",
        gid_number=40000,
        members=["ada", "adperson"],  # memberUid holds the login name of either mode
        classes=["testADAccount"],
        extra={"sAMAccountName": "ad-posix-team", "msSFU30GidNumber": 30000},
    )
    names = slapd.add_group(
        "adteam-gon",
        members=[dn],
        classes=["testADAccount"],
        extra={"sAMAccountName": "ad-gon-team", "msSFU30GidNumber": 30001},
    )
    yield dn
    for entry in (names, posix, dn):
        slapd.delete(entry)


@pytest.fixture(params=["search-bind", "direct-bind"])
def ad_mode(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """(login name, trait overrides) for both ways of finding the user."""
    access = {"allowed_groups": {"ad-gon-team"}, "admin_groups": {"ad-posix-team"}}
    if request.param == "search-bind":
        # The default user_search_filter, built from uid_attribute, finds her.
        return "ada", {**AD_NAMES, **access}
    template = {"bind_dn_template": f"uid={{username}},{PEOPLE_DN}"}
    return "adperson", {**AD_NAMES, **access, **template}


def by_name(state: dict[str, Any]) -> dict[str, Any]:
    """The identity in auth_state (not the authenticator's bookkeeping), groups sorted."""
    identity = {k: v for k, v in state.items() if k in AUTH_STATE_KEYS}
    return {**identity, "groups": sorted(state["groups"], key=lambda g: g["name"])}


async def test_mapped_attributes_are_read(
    make_authenticator: Make, ada: str, ad_mode: tuple[str, dict[str, Any]]
) -> None:
    name, overrides = ad_mode
    auth = make_authenticator(manage_groups=True, unique_id_attribute=["objectGUID"], **overrides)
    result = await login(auth, name, "adapw")
    assert result is not None
    assert by_name(result["auth_state"]) == {
        "ldap_dn": ada,
        "unique_id": str(ADA_GUID),
        **ADA_MAPPED,
    }
    # Group names from group_name_attribute drive allowed_groups, admin_groups
    # and JupyterHub groups alike.
    assert result["admin"] is True
    assert sorted(result["groups"]) == ["ad-gon-team", "ad-posix-team"]
    assert await login(auth, name, "wrong") is None


async def test_default_filter_uses_uid_attribute(make_authenticator: Make, ada: str) -> None:
    auth = make_authenticator(uid_attribute="sAMAccountName", allowed_groups={"adteam-gon"})
    assert auth.user_search_filter == "(&(objectClass=posixAccount)(sAMAccountName={username}))"
    result = await login(auth, "ada", "adapw")
    assert result is not None and result["auth_state"]["ldap_dn"] == ada
    # The uid is no longer the login name.
    assert await login(auth, "adperson", "adapw") is None
    # An explicit filter still wins over uid_attribute ...
    auth = make_authenticator(
        uid_attribute="sAMAccountName",
        user_search_filter="(&(objectClass=testADAccount)(sAMAccountName={username}))",
        allowed_groups={"adteam-gon"},
    )
    assert await login(auth, "ada", "adapw") is not None
    # ... but the entry it finds must hold the name in uid_attribute: a filter on
    # another attribute cannot make "adperson" (ada's uid) a login name for her.
    auth = make_authenticator(
        uid_attribute="sAMAccountName",
        user_search_filter="(&(objectClass=posixAccount)(uid={username}))",
        allowed_groups={"adteam-gon"},
    )
    assert await login(auth, "adperson", "adapw") is None


async def test_refresh_reads_mapped_attributes(make_authenticator: Make, ada: str) -> None:
    auth = make_authenticator(
        **AD_NAMES, allowed_groups={"ad-gon-team"}, unique_id_attribute=["objectGUID"]
    )
    result = await auth.refresh_user(SimpleNamespace(name="ada"))
    assert isinstance(result, dict)
    assert by_name(result["auth_state"]) == {
        "ldap_dn": ada,
        "unique_id": str(ADA_GUID),
        **ADA_MAPPED,
    }


async def test_binary_object_guid_is_stored_as_its_uuid_string(
    make_authenticator: Make, slapd: Slapd
) -> None:
    # Without a schema ldap3 decodes any value that happens to be valid UTF-8: this
    # GUID's bytes are all ASCII, so only reading it raw keeps the same form as ada's.
    guid = uuid.UUID("41424344-4546-4748-494a-4b4c4d4e4f50")
    assert guid.bytes_le.decode("ascii") == "DCBAFEHGIJKLMNOP"
    dn = slapd.add_user(
        "guido", "guidopw", uid_number=30011, classes=["testADAccount"],
        extra={"objectGUID": guid.bytes_le},
    )  # fmt: skip
    try:
        auth = make_authenticator(
            allowed_groups=set(), allowed_users={"guido"}, unique_id_attribute=["objectGUID"]
        )
        result = await login(auth, "guido", "guidopw")
        assert result is not None and result["auth_state"]["unique_id"] == str(guid)
        # The default list tries entryUUID first, which slapd gives every entry.
        result = await login(make_authenticator(allowed_users={"guido"}), "guido", "guidopw")
        assert result is not None
        assert result["auth_state"]["unique_id"] == slapd.entry_uuid(dn)
        # An empty list reads none.
        auth = make_authenticator(allowed_users={"guido"}, unique_id_attribute=[])
        result = await login(auth, "guido", "guidopw")
        assert result is not None and "unique_id" not in result["auth_state"]
    finally:
        slapd.delete(dn)


async def test_display_name_fallback_and_optional_attributes(make_authenticator: Make) -> None:
    # alice has cn and givenName but no displayName.
    auth = make_authenticator(display_name_attribute=["displayName", "givenName", "cn"])
    result = await login(auth, "alice", "alicepw")
    assert result is not None and result["auth_state"]["display_name"] == "Alice"
    auth = make_authenticator(display_name_attribute="", email_attribute="", group_gid_attribute="")
    result = await login(auth, "alice", "alicepw")
    assert result is not None
    state = result["auth_state"]
    assert "display_name" not in state and "email" not in state
    assert {g["name"]: g["gid"] for g in state["groups"]} == {
        "hpcusers": None,
        "jupyterhub-users": None,
        "jupyterhub-admins": None,
    }


async def test_missing_mapped_attribute_is_named(
    make_authenticator: Make, caplog: pytest.LogCaptureFixture
) -> None:
    # alice has homeDirectory but no unixHomeDirectory.
    auth = make_authenticator(home_directory_attribute="unixHomeDirectory")
    before = outcome_count("incomplete_identity")
    with caplog.at_level(logging.ERROR):
        assert await login(auth, "alice", "alicepw") is None
    assert outcome_count("incomplete_identity") - before == 1
    assert "unixHomeDirectory" in caplog.text


async def test_changing_an_attribute_name_at_run_time_takes_effect(
    make_authenticator: Make,
) -> None:
    auth = make_authenticator()
    result = await login(auth, "alice", "alicepw")
    assert result is not None and result["auth_state"]["display_name"] == "Alice Archer"
    auth.display_name_attribute = "givenName"
    result = await login(auth, "alice", "alicepw")
    assert result is not None and result["auth_state"]["display_name"] == "Alice"
    # The default user filter follows uid_attribute; a written one does not.
    auth.uid_attribute = "sAMAccountName"
    assert auth.user_search_filter == "(&(objectClass=posixAccount)(sAMAccountName={username}))"
    assert await login(auth, "alice", "alicepw") is None  # alice has no sAMAccountName
    auth = make_authenticator(user_search_filter="(uid={username})")
    auth.uid_attribute = "sAMAccountName"
    assert auth.user_search_filter == "(uid={username})"


@pytest.mark.parametrize(
    ("trait", "value"),
    [
        ("uid_attribute", "uid)(objectClass=*"),
        ("uid_attribute", ""),
        ("uid_number_attribute", "uid number"),
        ("gid_number_attribute", ""),
        ("home_directory_attribute", "1home"),
        ("display_name_attribute", ["cn", "bad*"]),
        ("email_attribute", "mail,cn"),
        ("group_name_attribute", ""),
        ("group_gid_attribute", "gid\x00"),
        ("unique_id_attribute", ["entryUUID", "bad)(x"]),
    ],
    ids=repr,
)
def test_bad_attribute_names_are_refused(make_authenticator: Make, trait: str, value: Any) -> None:
    from traitlets import TraitError

    with pytest.raises((TraitError, ValueError)):
        make_authenticator(**{trait: value})


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("uid", True),
        ("sAMAccountName", True),
        ("ms-DS-Foo", True),
        ("cn;lang-en", True),
        ("2.5.4.3", True),
        ("", False),
        ("1uid", False),
        ("uid=", False),
        ("u id", False),
        ("2.5", True),
        ("2.", False),
        ("cn;", False),
    ],
)
def test_attribute_name_syntax(value: str, ok: bool) -> None:
    assert is_attribute_name(value) is ok
