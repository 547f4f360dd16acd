"""One access decision for login and refresh, and the errors that carry their outcome.

Login and refresh share one decision (``lsst_hub.auth.access.decide``): id limits
(``min_uid``, ``min_gid``, ``refused_gids``), entry ownership, allowed, admin. The
refresh used to skip the id limits: a person whose gid became 0 in the directory
kept their session and could start servers with it until they logged in again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any

import ldap3
import pytest

from lsst_hub.auth import errors
from lsst_hub.auth.attributes import AttributeNames
from lsst_hub.auth.directory import DirectorySettings
from tests.auth.policy_support import People, User, holds_identity, people, refresh_count
from tests.support.ldap_fixtures import login, outcome_count
from tests.support.slapd import Slapd, user_dn

Make = Callable[..., Any]


def set_attribute(slapd: Slapd, uid: str, attribute: str, value: object) -> None:
    with slapd.admin() as conn:
        ok = conn.modify(user_dn(uid), {attribute: [(ldap3.MODIFY_REPLACE, [value])]})
        assert ok, conn.result


@pytest.fixture
def made(slapd: Slapd) -> Iterator[People]:
    with people(slapd) as found:
        yield found


@pytest.mark.parametrize(
    ("attribute", "value", "problem"),
    [
        ("gidNumber", 0, "gidNumber 0 is below min_gid (1000)"),
        ("uidNumber", 1, "uidNumber 1 is below min_uid (1000)"),
    ],
)
async def test_refresh_refuses_system_ids_and_clears_the_identity(
    make_authenticator: Make,
    slapd: Slapd,
    made: People,
    caplog: pytest.LogCaptureFixture,
    attribute: str,
    value: int,
    problem: str,
) -> None:
    auth = make_authenticator(enable_auth_state=True)
    made.add("gina", "ginapw", 20501, ["jupyterhub-users"])
    model = await login(auth, "gina", "ginapw")
    assert model is not None
    user = User("gina", model["auth_state"])
    refreshed = await auth.refresh_user(user)
    assert isinstance(refreshed, dict) and refreshed["auth_state"]["gid_number"] == 20501

    set_attribute(slapd, "gina", attribute, value)
    before = refresh_count("system_id")
    with caplog.at_level(logging.WARNING):
        assert await auth.refresh_user(user) is False
    assert refresh_count("system_id") - before == 1
    assert problem in caplog.text and "min_uid, min_gid, refused_gids" in caplog.text
    # The identity is gone (the spawner has nothing to run), the entry's record stays.
    assert not holds_identity(user.state)
    assert user.state is not None and user.state["cleared"] == "system_id"
    assert user.state["entry"]["ldap_dn"] == user_dn("gina")
    # And the login says the same.
    before = outcome_count("system_id")
    assert await login(auth, "gina", "ginapw") is None
    assert outcome_count("system_id") - before == 1


async def test_refresh_refuses_a_refused_supplementary_gid(
    make_authenticator: Make, slapd: Slapd, made: People
) -> None:
    auth = make_authenticator(enable_auth_state=True, refused_gids={0, 10000})
    made.add("hugo", "hugopw", 20502, ["jupyterhub-users"])
    model = await login(auth, "hugo", "hugopw")
    assert model is not None
    user = User("hugo", model["auth_state"])
    slapd.add_member("hpcusers", "hugo")  # the posixGroup hpcusers has gid 10000
    try:
        assert await auth.refresh_user(user) is False
    finally:
        slapd.remove_member("hpcusers", "hugo")
    assert user.state is not None and user.state["cleared"] == "system_id"


def test_directory_errors_carry_their_outcome_and_log_level() -> None:
    expected = {
        errors.InvalidCredentialsError: ("bad_credentials", logging.WARNING),
        errors.UserNotFoundError: ("unknown_user", logging.WARNING),
        errors.IncompleteIdentityError: ("incomplete_identity", logging.ERROR),
        errors.DirectoryUnavailableError: ("directory_error", logging.ERROR),
        errors.LoginTimeoutError: ("directory_error", logging.ERROR),
        errors.SearchLimitError: ("directory_error", logging.ERROR),
    }
    for kind, (outcome, level) in expected.items():
        assert issubclass(kind, errors.DirectoryError)
        assert (kind.outcome, kind.level) == (outcome, level), kind
    # Only a refused password or name counts against the login throttle.
    counted = {kind for kind in expected if kind.wrong_password}
    assert counted == {errors.InvalidCredentialsError, errors.UserNotFoundError}
    # Unknown user and wrong password are the same to the person.
    assert errors.InvalidCredentialsError.reason != errors.UserNotFoundError.reason


def test_settings_have_no_defaults_of_their_own() -> None:
    # The authenticator's traits are the only defaults: the settings it hands to
    # the directory name every value.
    for settings in (DirectorySettings, AttributeNames):
        fields = dataclasses.fields(settings)
        assert fields
        for field in fields:
            assert field.default is dataclasses.MISSING, (settings, field.name)
            assert field.default_factory is dataclasses.MISSING, (settings, field.name)


def test_directory_settings_follow_the_traits(make_authenticator: Make) -> None:
    from lsst_hub.auth import LDAPAuthenticator

    auth = make_authenticator(uid_attribute="sAMAccountName", display_name_attribute="")
    settings = auth.directory.settings
    traits = LDAPAuthenticator.class_traits()
    assert settings.group_search_filter == traits["group_search_filter"].default_value
    assert settings.user_search_filter == "(&(objectClass=posixAccount)(sAMAccountName={username}))"
    assert settings.attributes.uid == "sAMAccountName"
    assert settings.attributes.display_name == ()
    assert settings.attributes.unique_id == tuple(traits["unique_id_attribute"].default())
    assert settings.attributes.unique_id == ("entryUUID", "nsUniqueId", "ipaUniqueID", "objectGUID")
