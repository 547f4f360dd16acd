"""Being in the hub's database never keeps anyone allowed (issue 7, item 5).

JupyterHub's ``allow_existing_users`` defaults to on whenever ``allowed_users``
is set, and then every user in the database is added to ``allowed_users`` (at
hub start and when a user is created): someone who got in through an allowed
group stayed allowed after leaving it. With the LDAP authenticator, leaving every
allowed group revokes access in every combination of ``allowed_users``,
``allowed_groups`` and ``allow_existing_users`` (unset, True, False).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from tests.auth.policy_support import User, hub_config
from tests.support.hub_fixtures import RunningHub, login, new_session
from tests.support.ldap_fixtures import authenticator_config
from tests.support.ldap_fixtures import login as auth_login
from tests.support.slapd import Slapd, user_dn

Make = Callable[..., Any]
StartHub = Callable[..., RunningHub]

UNSET = "unset"
COMBINATIONS = [
    pytest.param(
        users,
        groups,
        existing,
        id=f"users={users or '-'},groups={groups or '-'},existing={existing}",
    )
    for users, groups, existing in itertools.product(
        [set(), {"alice"}], [set(), {"jupyterhub-users"}], [UNSET, True, False]
    )
    if users or groups
]


def settings(users: set[str], groups: set[str], existing: Any) -> dict[str, Any]:
    # Copies: JupyterHub's add_user adds names to the very set it was given.
    values: dict[str, Any] = {"allowed_users": set(users), "allowed_groups": set(groups)}
    if existing is not UNSET:
        values["allow_existing_users"] = existing
    return values


@pytest.mark.parametrize(("users", "groups", "existing"), COMBINATIONS)
async def test_a_known_user_outside_every_allowed_group_is_refused(
    make_authenticator: Make, slapd: Slapd, users: set[str], groups: set[str], existing: Any
) -> None:
    auth = make_authenticator(**settings(users, groups, existing))
    # JupyterHub calls add_user for every user in its database at start, and for a
    # user it creates (first login, admin page): bob is such a known user.
    auth.add_user(SimpleNamespace(name="bob"))
    auth.add_user(SimpleNamespace(name="alice"))
    with slapd.without_member("jupyterhub-users", user_dn("bob")):
        assert await auth_login(auth, "bob", "bobpw") is None
        assert await auth.refresh_user(User("bob")) is False
    # Those the settings do allow still get in.
    assert await auth_login(auth, "alice", "alicepw") is not None
    if groups:
        assert await auth_login(auth, "bob", "bobpw") is not None


def test_allow_existing_users_is_off_unless_set(make_authenticator: Make) -> None:
    assert make_authenticator(allowed_users={"alice"}).allow_existing_users is False
    assert make_authenticator(allow_existing_users=True).allow_existing_users is True


def test_allow_existing_users_set_is_reported(make_authenticator: Make, caplog: Any) -> None:
    auth = make_authenticator(allow_existing_users=True)
    auth.check_allow_config()
    assert "allow_existing_users = True has no effect" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("existing", [UNSET, True])
def test_leaving_the_group_ends_access_with_allowed_users_set(
    jupyterhub_factory: StartHub, slapd: Slapd, existing: Any
) -> None:
    values = {**authenticator_config(slapd), **settings({"alice"}, {"jupyterhub-users"}, existing)}
    hub = jupyterhub_factory(hub_config(values, "c.Authenticator.auth_refresh_age = 1"))
    session = new_session()
    assert login(hub, "bob", "bobpw", session=session).status_code == 302
    with slapd.without_member("jupyterhub-users", user_dn("bob")):
        assert login(hub, "bob", "bobpw").status_code == 403
        time.sleep(1.5)  # past auth_refresh_age: the session is refreshed
        home = session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=60)
        assert home.status_code == 302 and "/hub/login" in home.headers["Location"]
    assert login(hub, "bob", "bobpw").status_code == 302
    assert login(hub, "alice", "alicepw").status_code == 302


def test_refreshes_turned_off_are_reported(make_authenticator: Make, caplog: Any) -> None:
    make_authenticator(auth_refresh_age=900).check_allow_config()
    assert "auth_refresh_age = 0" not in caplog.text
    make_authenticator(auth_refresh_age=0).check_allow_config()
    assert "auth_refresh_age = 0: identities are never re-read" in caplog.text
