"""Admin rights follow the directory (issue 7, item 2).

Someone removed from every admin group, and not in ``admin_users``, is no longer
an admin after their next login or identity refresh, and can no longer reach
other people's servers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.auth.policy_support import hub_config, people, user_token, with_token
from tests.support.hub_fixtures import RunningHub, login, new_session
from tests.support.ldap_fixtures import authenticator_config
from tests.support.ldap_fixtures import login as auth_login
from tests.support.slapd import Slapd, user_dn

Make = Callable[..., Any]
StartHub = Callable[..., RunningHub]


@pytest.mark.parametrize(
    ("admin_groups", "admin_users", "bob_admin"),
    [
        ({"jupyterhub-admins"}, set(), False),  # the directory decides
        ({"jupyterhub-admins"}, {"bob"}, True),  # admin_users still counts
        (set(), set(), None),  # no admin groups: we have no say
    ],
)
async def test_admin_status_of_a_login(
    make_authenticator: Make, admin_groups: set[str], admin_users: set[str], bob_admin: Any
) -> None:
    auth = make_authenticator(admin_groups=admin_groups, admin_users=admin_users)
    alice = await auth_login(auth, "alice", "alicepw")
    bob = await auth_login(auth, "bob", "bobpw")
    assert alice is not None and bob is not None
    assert alice["admin"] is (True if admin_groups else None)
    assert bob["admin"] is bob_admin


async def test_admin_status_of_a_refresh(make_authenticator: Make, slapd: Slapd) -> None:
    auth = make_authenticator()

    class User:
        name = "ada"

        async def get_auth_state(self) -> None:
            return None

        async def save_auth_state(self, state: Any) -> None:
            pass

    with people(slapd) as made:
        made.add("ada", "adapw", 20102, ["jupyterhub-users", "jupyterhub-admins"])
        assert (await auth.refresh_user(User()))["admin"] is True
        made.leave("ada", "jupyterhub-admins")
        assert (await auth.refresh_user(User()))["admin"] is False


@pytest.mark.slow
def test_admin_rights_end_after_leaving_the_admin_group(
    jupyterhub_factory: StartHub, slapd: Slapd
) -> None:
    settings = authenticator_config(slapd)
    hub = jupyterhub_factory(hub_config(settings, "c.Authenticator.auth_refresh_age = 1"))
    with people(slapd) as made:
        made.add("adam", "adampw", 20101, ["jupyterhub-users", "jupyterhub-admins"])
        session = new_session()
        assert login(hub, "adam", "adampw", session=session).status_code == 302
        assert login(hub, "alice", "alicepw").status_code == 302
        assert hub.api("GET", "users/adam").json()["admin"] is True
        token = user_token(hub, "adam")
        assert "access:servers" in with_token(hub, "GET", "user", token).json()["scopes"]
        assert with_token(hub, "GET", "users/alice", token).status_code == 200

        # Refresh (a token request once auth_refresh_age has passed).
        made.leave("adam", "jupyterhub-admins")
        time.sleep(1.5)
        with_token(hub, "GET", "user", token)
        assert hub.api("GET", "users/adam").json()["admin"] is False
        scopes = with_token(hub, "GET", "user", token).json()["scopes"]
        # Opening another user's server needs access:servers without a filter.
        assert "access:servers" not in scopes
        assert "access:servers!user=adam" in scopes
        assert with_token(hub, "GET", "users/alice", token).status_code in (403, 404)

        # Login: back in the admin group, then out again before the next login.
        made.slapd.add_member("jupyterhub-admins", user_dn("adam"))
        made.made["adam"].append("jupyterhub-admins")
        assert login(hub, "adam", "adampw").status_code == 302
        assert hub.api("GET", "users/adam").json()["admin"] is True
        made.leave("adam", "jupyterhub-admins")
        assert login(hub, "adam", "adampw").status_code == 302
        assert hub.api("GET", "users/adam").json()["admin"] is False
        assert with_token(hub, "GET", "users/alice", token).status_code in (403, 404)


@pytest.mark.slow
def test_admin_set_by_hand_is_revoked_when_admin_groups_decide(
    jupyterhub_factory: StartHub, slapd: Slapd
) -> None:
    hub = jupyterhub_factory(hub_config(authenticator_config(slapd)))
    assert login(hub, "bob", "bobpw").status_code == 302
    assert hub.api("PATCH", "users/bob", json={"admin": True}).status_code == 200
    assert hub.api("GET", "users/bob").json()["admin"] is True
    assert login(hub, "bob", "bobpw").status_code == 302
    assert hub.api("GET", "users/bob").json()["admin"] is False
