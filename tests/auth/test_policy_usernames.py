"""username_pattern holds wherever JupyterHub creates or renames users (issue 7, item 14).

JupyterHub checks names with ``validate_username``, which uses ``username_regex``;
that regex is compiled only when ``username_pattern`` *changes*, so a default
pattern was never applied outside our own login code: the admin API created and
renamed users to any name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from tests.auth.policy_support import hub_config
from tests.support.hub_fixtures import RunningHub, login
from tests.support.ldap_fixtures import authenticator_config
from tests.support.slapd import Slapd

Make = Callable[..., Any]
StartHub = Callable[..., RunningHub]

# Names JupyterHub itself accepts but the spawner cannot run a pod as.
BAD = ["9lives", "bad!name", "semi;colon", "a" * 40, "ünïcode", "space inside", "dollar$"]


@pytest.mark.parametrize("name", BAD)
def test_default_pattern_refuses(make_authenticator: Make, name: str) -> None:
    auth = make_authenticator()
    assert auth.validate_username(name) is False
    with pytest.raises(ValueError, match="Invalid username"):
        auth.add_user(type("User", (), {"name": name})())


def test_default_pattern_accepts_posix_names(make_authenticator: Make) -> None:
    auth = make_authenticator()
    for name in ["alice", "_svc", "a.b-c_d", "x" * 32]:
        assert auth.validate_username(name) is True


def test_configured_pattern_is_a_full_match(make_authenticator: Make) -> None:
    # JupyterHub's own check is a prefix match: "[a-z]+" would pass "abc!".
    auth = make_authenticator(username_pattern="[a-z]+")
    assert auth.validate_username("abc") is True
    assert auth.validate_username("abc!") is False


@pytest.mark.slow
def test_admin_api_cannot_create_or_rename_to_a_bad_name(
    jupyterhub_factory: StartHub, slapd: Slapd
) -> None:
    hub = jupyterhub_factory(hub_config(authenticator_config(slapd)))
    for name in BAD:
        created = hub.api("POST", f"users/{quote(name)}")
        assert created.status_code == 400, (name, created.status_code, created.text)
        assert hub.api("GET", f"users/{quote(name)}").status_code == 404
    several = hub.api("POST", "users", json={"usernames": ["fine", *BAD]})
    assert several.status_code == 400, several.text
    assert hub.api("GET", "users/fine").status_code == 404  # nothing created

    assert login(hub, "bob", "bobpw").status_code == 302
    for name in BAD:
        renamed = hub.api("PATCH", "users/bob", json={"name": name})
        assert renamed.status_code == 400, (name, renamed.status_code, renamed.text)
    assert hub.api("GET", "users/bob").status_code == 200

    # Good names still work through the same API.
    assert hub.api("POST", "users/new.person").status_code == 201
    assert hub.api("PATCH", "users/new.person", json={"name": "other_person"}).status_code == 200
