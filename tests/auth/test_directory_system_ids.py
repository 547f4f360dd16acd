"""No root and no system ids: logins of directory entries with such ids are refused.

The test directory holds ``sysuser`` (uidNumber 1), ``rootgid`` (gidNumber 0) and
``wheeluser`` (listed in the posixGroup ``wheel``, gidNumber 0), all in the
allowed group ``jupyterhub-users``: only their ids can refuse them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.ldap_fixtures import login, outcome_count
from tests.support.slapd import PEOPLE_DN, SYSTEM_ID_PASSWORDS

Make = Callable[..., Any]

TEMPLATE = "uid={username}," + PEOPLE_DN
EXPECTED = {
    "sysuser": "uidNumber 1 is below min_uid (1000)",
    "rootgid": "gidNumber 0 is below min_gid (1000)",
    "wheeluser": "group id 0 is in refused_gids",
}


@pytest.fixture(params=["search-bind", "direct-bind"])
def mode(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "search-bind":
        return {}
    return {"bind_dn_template": TEMPLATE, "search_bind_dn": "", "search_bind_password": ""}


@pytest.mark.parametrize("username", sorted(EXPECTED))
async def test_system_ids_are_refused_at_login(
    make_authenticator: Make,
    mode: dict[str, Any],
    username: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth = make_authenticator(**mode)  # allowed_groups: jupyterhub-users
    before = outcome_count("system_id")
    with caplog.at_level(logging.ERROR):
        assert await login(auth, username, SYSTEM_ID_PASSWORDS[username]) is None
    assert outcome_count("system_id") - before == 1
    assert EXPECTED[username] in caplog.text
    assert "min_uid, min_gid, refused_gids" in caplog.text  # the settings that decide
    # Others in the same group still get in.
    assert await login(auth, "bob", "bobpw") is not None


async def test_limits_are_settings(make_authenticator: Make) -> None:
    auth = make_authenticator(min_uid=1)
    result = await login(auth, "sysuser", SYSTEM_ID_PASSWORDS["sysuser"])
    assert result is not None and result["auth_state"]["uid_number"] == 1
    # A site may refuse more groups, e.g. a docker group.
    auth = make_authenticator(refused_gids={0, 10000})
    assert await login(auth, "bob", "bobpw") is None  # bob's primary gid is 10000
    auth = make_authenticator(min_gid=0, refused_gids=set())
    result = await login(auth, "rootgid", SYSTEM_ID_PASSWORDS["rootgid"])
    assert result is not None and result["auth_state"]["gid_number"] == 0
    auth = make_authenticator(refused_gids=set())
    result = await login(auth, "wheeluser", SYSTEM_ID_PASSWORDS["wheeluser"])
    assert result is not None
    assert {"name": "wheel", "gid": 0} in [
        {"name": g["name"], "gid": g["gid"]} for g in result["auth_state"]["groups"]
    ]


@pytest.mark.parametrize(("trait", "value"), [("min_uid", -1), ("min_gid", -5)])
def test_negative_minimum_is_refused(make_authenticator: Make, trait: str, value: int) -> None:
    from traitlets import TraitError

    with pytest.raises((TraitError, ValueError)):
        make_authenticator(**{trait: value})


def test_defaults() -> None:
    from lsst_hub.auth import LDAPAuthenticator

    traits = LDAPAuthenticator.class_traits()
    assert traits["min_uid"].default_value == 1000
    assert traits["min_gid"].default_value == 1000
    assert LDAPAuthenticator().refused_gids == {0}
