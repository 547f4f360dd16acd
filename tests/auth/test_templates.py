"""Several ``bind_dn_template`` values, against the real slapd.

The rule under test: a username belongs to the entry of the first template whose
DN exists. ``alice`` exists both in ``ou=people`` (alicepw) and in ``ou=guests``
(guestpw, another uid); ``dave`` only in ``ou=guests``; ``ou=robots`` does not exist.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.ldap_fixtures import login, outcome_count
from tests.support.slapd import BASE_DN, PEOPLE_DN, Slapd

Make = Callable[..., Any]

GUESTS_DN = f"ou=guests,{BASE_DN}"
PEOPLE = f"uid={{username}},{PEOPLE_DN}"
GUESTS = f"uid={{username}},{GUESTS_DN}"
ROBOTS = f"uid={{username}},ou=robots,{BASE_DN}"  # no such branch


@pytest.fixture(scope="module")
def guests(slapd: Slapd) -> Iterator[None]:
    slapd.add_entry(GUESTS_DN, ["organizationalUnit"], {"ou": "guests"})
    alice = slapd.add_user("alice", "guestpw", uid_number=50001, parent=GUESTS_DN)
    dave = slapd.add_user("dave", "davepw", uid_number=50002, parent=GUESTS_DN)
    yield
    for dn in (dave, alice, GUESTS_DN):
        slapd.delete(dn)


@pytest.fixture(params=["with-service-account", "without-service-account"])
def make(request: pytest.FixtureRequest, make_authenticator: Make, guests: None) -> Make:
    """make(templates) -> authenticator; with or without the service account."""
    extra: dict[str, Any] = {"allowed_groups": set(), "allowed_users": {"alice", "bob", "dave"}}
    if request.param == "without-service-account":
        extra.update(search_bind_dn="", search_bind_password="")

    def build(templates: Any) -> Any:
        return make_authenticator(bind_dn_template=templates, **extra)

    return build


async def test_missing_branch_falls_through_to_the_next_template(make: Make) -> None:
    auth = make([ROBOTS, PEOPLE])
    result = await login(auth, "alice", "alicepw")
    assert result is not None
    assert result["auth_state"]["ldap_dn"] == f"uid=alice,{PEOPLE_DN}"
    assert result["auth_state"]["uid_number"] == 10001


async def test_user_found_by_a_later_template(make: Make) -> None:
    auth = make([PEOPLE, GUESTS])
    result = await login(auth, "dave", "davepw")
    assert result is not None
    assert result["auth_state"]["ldap_dn"] == f"uid=dave,{GUESTS_DN}"
    assert result["auth_state"]["uid_number"] == 50002
    bob = await login(auth, "bob", "bobpw")  # found by the first template
    assert bob is not None and bob["auth_state"]["uid_number"] == 10002


async def test_password_of_a_later_entry_never_takes_over(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    auth = make([PEOPLE, GUESTS])
    before = outcome_count("bad_credentials")
    with caplog.at_level(logging.WARNING):
        # guestpw fits uid=alice,ou=guests, but alice of ou=people owns "alice".
        assert await login(auth, "alice", "guestpw") is None
    assert outcome_count("bad_credentials") - before == 1
    assert "earlier bind_dn_template" in caplog.text
    result = await login(auth, "alice", "alicepw")
    assert result is not None and result["auth_state"]["uid_number"] == 10001


async def test_template_order_decides(make: Make) -> None:
    auth = make([GUESTS, PEOPLE])
    assert await login(auth, "alice", "alicepw") is None
    result = await login(auth, "alice", "guestpw")
    assert result is not None
    assert result["auth_state"]["ldap_dn"] == f"uid=alice,{GUESTS_DN}"
    assert result["auth_state"]["uid_number"] == 50001


async def test_wrong_password_fails_on_every_template(make: Make) -> None:
    auth = make([ROBOTS, PEOPLE, GUESTS])
    before = outcome_count("bad_credentials")
    assert await login(auth, "alice", "wrong") is None
    assert await login(auth, "nobody", "wrong") is None
    assert outcome_count("bad_credentials") - before == 2


async def test_single_template_in_a_list(make: Make) -> None:
    result = await login(make([PEOPLE]), "alice", "alicepw")
    assert result is not None and result["auth_state"]["uid_number"] == 10001


async def test_refresh_follows_the_same_rule(make_authenticator: Make, guests: None) -> None:
    auth = make_authenticator(
        bind_dn_template=[ROBOTS, GUESTS, PEOPLE], allowed_groups=set(), allow_all=True
    )
    alice = await auth.refresh_user(SimpleNamespace(name="alice"))
    assert isinstance(alice, dict) and alice["auth_state"]["uid_number"] == 50001
    bob = await auth.refresh_user(SimpleNamespace(name="bob"))
    assert isinstance(bob, dict) and bob["auth_state"]["uid_number"] == 10002
    assert await auth.refresh_user(SimpleNamespace(name="nobody")) is False


@pytest.mark.parametrize(
    "value",
    [
        "uid=alice,ou=people",
        "uid={user},ou=people,dc=example,dc=org",
        "uid={username},ou=people,dc=example,dc=org,{",
        "{username}",
        [PEOPLE, "cn=static,dc=example,dc=org"],
        [PEOPLE, "uid={username}={username}"],
    ],
    ids=repr,
)
def test_bad_templates_are_refused(make_authenticator: Make, value: Any) -> None:
    from traitlets import TraitError

    with pytest.raises((TraitError, ValueError)):
        make_authenticator(bind_dn_template=value)


@pytest.mark.parametrize(
    ("trait", "value"),
    [
        ("user_search_filter", "(uid={user})"),
        ("user_search_filter", "(uid={username})(x={0})"),
        ("user_search_filter", "(&(uid={username})(gidNumber={gid_number}))"),
        ("user_search_filter", "(&(uid={username})(manager={dn}))"),
        ("group_search_filter", "(member={member})"),
        ("group_search_filter", "(cn={username)"),
    ],
    ids=repr,
)
def test_bad_filters_are_refused(make_authenticator: Make, trait: str, value: str) -> None:
    from traitlets import TraitError

    with pytest.raises((TraitError, ValueError)):
        make_authenticator(**{trait: value})


def test_group_filter_placeholders_are_accepted(make_authenticator: Make) -> None:
    value = "(|(memberUid={username})(member={dn})(gidNumber={gid_number}))"
    assert make_authenticator(group_search_filter=value).group_search_filter == value
