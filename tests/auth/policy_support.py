"""Helpers of the access-policy tests (``tests/auth/test_policy_*.py``).

People made here are added to the session's slapd for one test and removed
after it (entry and group memberships), so the shared directory is left as found.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import requests
from prometheus_client import REGISTRY

from tests.support.hub_fixtures import RunningHub
from tests.support.slapd import Slapd, user_dn


class User:
    """What refresh_user reads of a hub user: its name and auth_state."""

    def __init__(self, name: str, state: dict[str, Any] | None = None) -> None:
        self.name = name
        self.state = state

    async def get_auth_state(self) -> dict[str, Any] | None:
        return self.state

    async def save_auth_state(self, state: dict[str, Any] | None) -> None:
        self.state = state


def refresh_count(outcome: str) -> float:
    """The ``lsst_hub_ldap_refreshes_total`` count for one outcome (0 before any)."""
    value = REGISTRY.get_sample_value("lsst_hub_ldap_refreshes_total", {"outcome": outcome})
    return value or 0.0


def hub_config(settings: dict[str, Any], *extra: str) -> str:
    """Config text for a hub with the LDAP authenticator (``settings`` are its traits)."""
    lines = [
        'c.JupyterHub.authenticator_class = "lsst-ldap"',  # the entry point
        "c.Authenticator.enable_auth_state = True",
        *extra,
    ]
    lines += [f"c.LDAPAuthenticator.{key} = {value!r}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


class People:
    """Adds people to a slapd and removes them (and their memberships) afterwards."""

    def __init__(self, slapd: Slapd) -> None:
        self.slapd = slapd
        self.made: dict[str, list[str]] = {}

    def add(self, uid: str, password: str, uid_number: int, groups: Sequence[str] = ()) -> str:
        """Add ``uid`` (gid = uid number) as a member of the groupOfNames ``groups``."""
        dn = self.slapd.add_user(uid, password, uid_number=uid_number, gid_number=uid_number)
        self.made[uid] = []
        for group in groups:
            self.slapd.add_member(group, dn)
            self.made[uid].append(group)
        return dn

    def leave(self, uid: str, group: str) -> None:
        """Remove ``uid`` from ``group``."""
        self.slapd.remove_member(group, user_dn(uid))
        self.made[uid].remove(group)

    def delete(self, uid: str) -> None:
        """Remove ``uid`` from its groups and delete the entry."""
        for group in list(self.made.get(uid, [])):
            self.leave(uid, group)
        self.slapd.delete(user_dn(uid))
        self.made.pop(uid, None)

    def clean(self) -> None:
        """Delete everyone added."""
        for uid in list(self.made):
            with contextlib.suppress(Exception):
                self.delete(uid)


@contextlib.contextmanager
def people(slapd: Slapd) -> Iterator[People]:
    """A :class:`People` whose entries are deleted when the block ends."""
    made = People(slapd)
    try:
        yield made
    finally:
        made.clean()


def with_token(hub: RunningHub, method: str, path: str, token: str, **kwargs: Any) -> Any:
    """A REST API call (``path`` after ``/hub/api/``) with ``token`` instead of the admin's."""
    url = f"{hub.api_url}/{path.lstrip('/')}"
    headers = {"Authorization": f"token {token}"}
    return requests.request(method, url, headers=headers, timeout=60, **kwargs)


def user_token(hub: RunningHub, name: str) -> str:
    """An API token of ``name`` (with the person's own permissions), made by the admin."""
    response = hub.api("POST", f"users/{name}/tokens", json={"note": "policy test"})
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


def auth_state(hub: RunningHub, name: str) -> dict[str, Any] | None:
    """The user's auth_state as the admin sees it."""
    state: dict[str, Any] | None = hub.api("GET", f"users/{name}").json().get("auth_state")
    return state


def holds_identity(state: dict[str, Any] | None) -> bool:
    """Whether an auth_state still holds anything a spawner could run a pod with."""
    state = state or {}
    return any(key in state for key in ("uid_number", "gid_number", "home_directory", "groups"))
