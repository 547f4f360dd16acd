"""``modify_auth_state_hook``: sites extend the identity without overriding private methods.

The hook is called as ``hook(authenticator, auth_state)`` (it may be async) on every
login and every refresh that re-reads the directory, before the auth_state is
stored. What it returns must still hold a valid identity, and the access decision
(id limits, entry ownership, allowed, admin) is made on that identity; a hook that
fails or breaks the identity refuses the login or refresh with a log line naming the
hook (outcome ``invalid_auth_state``), never a 500.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from lsst_hub.identity import Identity
from tests.auth.policy_support import User, holds_identity, hub_config, refresh_count
from tests.support.hub_fixtures import RunningHub
from tests.support.hub_fixtures import login as hub_login
from tests.support.ldap_fixtures import authenticator_config, login, outcome_count
from tests.support.slapd import Slapd, user_dn

Make = Callable[..., Any]
StartHub = Callable[..., RunningHub]


class Recorder:
    """A hook that adds a site key and records what it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def __call__(self, authenticator: Any, auth_state: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((authenticator, dict(auth_state)))
        auth_state["site"] = {"quota_gb": 50, "dn": auth_state["ldap_dn"]}
        return auth_state


async def test_hook_extends_auth_state_on_login_and_refresh(make_authenticator: Make) -> None:
    hook = Recorder()
    auth = make_authenticator(modify_auth_state_hook=hook, enable_auth_state=True)
    model = await login(auth, "alice", "alicepw")
    assert model is not None
    assert model["auth_state"]["site"] == {"quota_gb": 50, "dn": user_dn("alice")}
    assert model["auth_state"]["uid_number"] == 10001
    ((called_with, seen),) = hook.calls
    assert called_with is auth
    # The hook sees the identity, not the authenticator's bookkeeping keys.
    assert seen["uid_number"] == 10001 and "password_verified_at" not in seen
    assert "password_verified_at" in model["auth_state"]

    user = User("alice", model["auth_state"])
    refreshed = await auth.refresh_user(user)
    assert isinstance(refreshed, dict)
    assert refreshed["auth_state"]["site"]["quota_gb"] == 50
    assert len(hook.calls) == 2


async def test_async_hook(make_authenticator: Make) -> None:
    async def hook(authenticator: Any, auth_state: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {**auth_state, "scratch": f"/scratch/{auth_state['uid_number']}"}

    auth = make_authenticator(modify_auth_state_hook=hook)
    model = await login(auth, "bob", "bobpw")
    assert model is not None and model["auth_state"]["scratch"] == "/scratch/10002"


async def test_hook_may_change_the_identity_and_the_decision_follows(
    make_authenticator: Make,
) -> None:
    def home_on_lustre(authenticator: Any, auth_state: dict[str, Any]) -> dict[str, Any]:
        auth_state["home_directory"] = auth_state["home_directory"].replace("/gpfs", "/lustre")
        return auth_state

    model = await login(make_authenticator(modify_auth_state_hook=home_on_lustre), "bob", "bobpw")
    assert model is not None and model["auth_state"]["home_directory"] == "/lustre/home/bob"

    # The id limits apply to what the hook returns: no hook can hand out gid 0.
    def root_group(authenticator: Any, auth_state: dict[str, Any]) -> dict[str, Any]:
        return {**auth_state, "gid_number": 0}

    auth = make_authenticator(modify_auth_state_hook=root_group)
    before = outcome_count("system_id")
    assert await login(auth, "bob", "bobpw") is None
    assert outcome_count("system_id") - before == 1


def drop_uid(authenticator: Any, auth_state: dict[str, Any]) -> dict[str, Any]:
    del auth_state["uid_number"]
    return auth_state


def returns_nothing(authenticator: Any, auth_state: dict[str, Any]) -> None:
    auth_state["forgot"] = "to return it"


SECRET = "".join(["s3", "cr3t"])


def raises(authenticator: Any, auth_state: dict[str, Any]) -> dict[str, Any]:
    raise KeyError(f"quota service down, token={SECRET}")


def not_json(authenticator: Any, auth_state: dict[str, Any]) -> dict[str, Any]:
    return {**auth_state, "projects": {"a", "b"}}


def clears(authenticator: Any, auth_state: dict[str, Any]) -> dict[str, Any]:
    return {"cleared": "by the hook"}


BROKEN = [
    (drop_uid, "no usable 'uid_number'"),
    (returns_nothing, "returned None"),
    (raises, "raised KeyError"),
    (not_json, "not JSON"),
    (clears, "was withdrawn"),
]


@pytest.mark.parametrize(("hook", "said"), BROKEN, ids=[h.__name__ for h, _ in BROKEN])
async def test_broken_hook_refuses_the_login_with_a_log_line(
    make_authenticator: Make, caplog: pytest.LogCaptureFixture, hook: Any, said: str
) -> None:
    auth = make_authenticator(modify_auth_state_hook=hook)
    before = outcome_count("invalid_auth_state")
    with caplog.at_level(logging.ERROR):
        assert await login(auth, "alice", "alicepw") is None
    assert outcome_count("invalid_auth_state") - before == 1
    assert "modify_auth_state_hook" in caplog.text and said in caplog.text
    assert SECRET not in caplog.text  # an exception's message may carry secrets


@pytest.mark.parametrize(("hook", "said"), BROKEN[:3], ids=[h.__name__ for h, _ in BROKEN[:3]])
async def test_broken_hook_refuses_the_refresh_and_clears_the_identity(
    make_authenticator: Make, caplog: pytest.LogCaptureFixture, hook: Any, said: str
) -> None:
    auth = make_authenticator(enable_auth_state=True)
    model = await login(auth, "bob", "bobpw")
    assert model is not None
    user = User("bob", model["auth_state"])
    auth.modify_auth_state_hook = hook
    before = refresh_count("invalid_auth_state")
    with caplog.at_level(logging.ERROR):
        assert await auth.refresh_user(user) is False
    assert refresh_count("invalid_auth_state") - before == 1
    assert "modify_auth_state_hook" in caplog.text and said in caplog.text
    assert not holds_identity(user.state)
    assert user.state is not None and user.state["cleared"] == "invalid_auth_state"
    with pytest.raises(ValueError, match="withdrawn"):
        Identity.from_auth_state("bob", user.state)


def test_hook_must_be_callable(make_authenticator: Make) -> None:
    from traitlets import TraitError

    with pytest.raises(TraitError):
        make_authenticator(modify_auth_state_hook="not callable")


HUB_HOOKS = """
def _site_hook(authenticator, auth_state):
    if auth_state["uid_number"] == 10002:
        raise RuntimeError("bob's quota lookup failed")
    auth_state["site_quota_gb"] = 50
    return auth_state

c.LDAPAuthenticator.modify_auth_state_hook = _site_hook
"""


@pytest.mark.slow
def test_hook_in_a_real_hub(jupyterhub_factory: StartHub, slapd: Slapd) -> None:
    hub = jupyterhub_factory(hub_config(authenticator_config(slapd), HUB_HOOKS))
    assert hub_login(hub, "alice", "alicepw").status_code == 302
    state = hub.api("GET", "users/alice").json()["auth_state"]
    assert state["site_quota_gb"] == 50 and state["uid_number"] == 10001
    assert hub_login(hub, "bob", "bobpw").status_code == 403
    log = hub.log_text()
    assert "modify_auth_state_hook raised RuntimeError" in log
    assert " 500 " not in log
