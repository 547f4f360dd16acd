"""Several ``bind_dn_template`` values, against the real slapd.

The rule under test: a username belongs to the entry of the first template whose
DN exists. ``alice`` exists both in ``ou=people`` (alicepw) and in ``ou=guests``
(guestpw, another uid); ``dave`` only in ``ou=guests``; ``ou=robots`` does not exist.
The test slapd's ACL hides ``ou=people`` from entries under ``ou=guests``, so only
the service account can tell that ``uid=alice,ou=people`` exists: several
templates without one are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import ldap3
import pytest
from traitlets import TraitError
from traitlets.config import Config

from lsst_hub.auth.directory import DirectoryUnavailableError, LDAPDirectory
from tests.support.ldap_fixtures import login, outcome_count
from tests.support.slapd import BASE_DN, PEOPLE_DN, SVC_DN, SVC_PW, Slapd

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


ALLOWED: dict[str, Any] = {"allowed_groups": set(), "allowed_users": {"alice", "bob", "dave"}}
NO_SERVICE_ACCOUNT = {"search_bind_dn": "", "search_bind_password": ""}


@pytest.fixture
def make(make_authenticator: Make, guests: None) -> Make:
    """make(templates) -> authenticator with the service account (several templates need it)."""

    def build(templates: Any) -> Any:
        return make_authenticator(bind_dn_template=templates, **ALLOWED)

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


@pytest.mark.parametrize("service", [{}, NO_SERVICE_ACCOUNT], ids=["service", "no-service"])
async def test_single_template_in_a_list(
    make_authenticator: Make, guests: None, service: dict[str, str]
) -> None:
    auth = make_authenticator(bind_dn_template=[PEOPLE], **ALLOWED, **service)
    result = await login(auth, "alice", "alicepw")
    assert result is not None and result["auth_state"]["uid_number"] == 10001
    guest = make_authenticator(bind_dn_template=GUESTS, **ALLOWED, **service)
    result = await login(guest, "alice", "guestpw")
    assert result is not None and result["auth_state"]["uid_number"] == 50001


# -- several templates need the service account ------------------------------


def test_guests_cannot_see_people(slapd: Slapd, guests: None) -> None:
    # The premise: bound as the guest, the real alice's entry "does not exist".
    server = ldap3.Server("127.0.0.1", port=slapd.ldap_port, get_info=ldap3.NONE)
    with ldap3.Connection(server, f"uid=alice,{GUESTS_DN}", "guestpw", auto_bind=True) as conn:
        conn.search(f"uid=alice,{PEOPLE_DN}", "(objectClass=*)", ldap3.BASE)
        assert conn.result["description"] == "noSuchObject"
        conn.search(f"uid=dave,{GUESTS_DN}", "(objectClass=*)", ldap3.BASE)
        assert conn.result["description"] == "success"


@pytest.mark.parametrize("order", ["templates-first", "service-account-first"])
def test_several_templates_without_service_account_refused_at_start(
    make_authenticator: Make, order: str
) -> None:
    settings: dict[str, Any] = {"bind_dn_template": [PEOPLE, GUESTS], **NO_SERVICE_ACCOUNT}
    if order == "service-account-first":
        settings = dict(reversed(settings.items()))
    with pytest.raises((TraitError, ValueError), match="search_bind_dn") as refused:
        make_authenticator(**settings)
    assert "single bind_dn_template" in str(refused.value)
    # As a config file sets them (the hub builds its authenticator from it).
    from lsst_hub.auth import LDAPAuthenticator

    with pytest.raises((TraitError, ValueError), match="search_bind_dn"):
        LDAPAuthenticator(config=Config({"LDAPAuthenticator": settings}))


async def test_hidden_entry_is_not_taken_over_without_service_account(
    make_authenticator: Make, slapd: Slapd, guests: None, caplog: pytest.LogCaptureFixture
) -> None:
    # The directory alone, as a misconfigured or changed setup would reach it: the
    # guest's own connection cannot see uid=alice,ou=people, so guestpw would make
    # the guest the hub user alice. It refuses instead, naming what to set.
    settings = make_authenticator(bind_dn_template=PEOPLE).directory.settings
    directory = LDAPDirectory(
        replace(
            settings, bind_dn_templates=(PEOPLE, GUESTS), search_bind_dn="", search_bind_password=""
        )
    )
    try:
        with pytest.raises(DirectoryUnavailableError, match="search_bind_dn"):
            directory.authenticate("alice", "guestpw")
    finally:
        directory.close()
    # Through the authenticator: fine with the service account, refused (as a
    # directory_error with a log line) once it is taken away at run time.
    auth = make_authenticator(bind_dn_template=[PEOPLE, GUESTS], **ALLOWED)
    assert await login(auth, "alice", "guestpw") is None
    auth.search_bind_dn = ""
    before = outcome_count("directory_error")
    with caplog.at_level(logging.ERROR):
        assert await login(auth, "alice", "guestpw") is None
        assert await login(auth, "dave", "davepw") is None
    assert outcome_count("directory_error") - before == 2
    assert "or use a single bind_dn_template" in caplog.text


async def test_service_account_sees_through_the_acl(make: Make, slapd: Slapd) -> None:
    # The same directory with a service account: the guest is refused, alice gets in.
    auth = make([PEOPLE, GUESTS])
    assert auth.search_bind_dn == SVC_DN and auth.search_bind_password == SVC_PW
    assert await login(auth, "alice", "guestpw") is None
    result = await login(auth, "alice", "alicepw")
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
        "cn=home,uid={username},ou=people,dc=example,dc=org",  # not the entry's own name
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
