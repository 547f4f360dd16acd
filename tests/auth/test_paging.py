"""Group searches larger than the server's size limit: paged, or refused clearly.

slapd answers at most 500 entries a search by default. The private server of
these tests lets the hub's service account page through any number
(``size.prtotal=unlimited``, as a site grants it) and keeps the default for
everyone else, so both sides are real.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.ldap_fixtures import authenticator_config, login, outcome_count
from tests.support.slapd import GROUPS_DN, PEOPLE_DN, Slapd

GROUPS = 620  # more than slapd's default size limit of 500


@pytest.fixture
def crowded(slapd_factory: Callable[[], Slapd]) -> Slapd:
    """A private slapd where ``dana`` belongs to 620 POSIX groups and the allowed one."""
    server = slapd_factory()
    server.add_user("dana", "danapw", uid_number=30001, gid_number=30001)
    server.add_member("jupyterhub-users", "uid=dana," + PEOPLE_DN)
    with server.admin() as conn:
        for i in range(GROUPS):
            ok = conn.add(
                f"cn=team{i:03d},{GROUPS_DN}",
                ["posixGroup"],
                {"cn": f"team{i:03d}", "gidNumber": 40000 + i, "memberUid": ["dana"]},
            )
            assert ok, conn.result
    return server


def make(server: Slapd, **overrides: Any) -> Any:
    from lsst_hub.auth import LDAPAuthenticator

    return LDAPAuthenticator(**{**authenticator_config(server), **overrides})


async def test_every_group_arrives_through_paging(crowded: Slapd) -> None:
    auth = make(crowded, search_page_size=200)
    result = await login(auth, "dana", "danapw")
    assert result is not None
    groups = {g["name"]: g["gid"] for g in result["auth_state"]["groups"]}
    assert len(groups) == GROUPS + 1
    assert groups["team000"] == 40000 and groups[f"team{GROUPS - 1:03d}"] == 40000 + GROUPS - 1
    assert groups["jupyterhub-users"] is None
    auth.directory.close()


async def test_unpaged_search_cut_short_is_refused_not_truncated(
    crowded: Slapd, caplog: pytest.LogCaptureFixture
) -> None:
    # Without paging the server stops at 500 groups: a login with 500 of 621
    # groups would silently miss some (perhaps the admin one), so it is refused.
    auth = make(crowded, search_page_size=0)
    before = outcome_count("directory_error")
    with caplog.at_level(logging.ERROR):
        assert await login(auth, "dana", "danapw") is None
    assert outcome_count("directory_error") == before + 1
    assert "size limit" in caplog.text and "size.prtotal" in caplog.text
    assert "danapw" not in caplog.text
    auth.directory.close()


async def test_direct_bind_under_default_limit_is_refused_with_the_fix(
    crowded: Slapd, caplog: pytest.LogCaptureFixture
) -> None:
    # The person's own bind keeps slapd's default total limit, paged or not.
    auth = make(
        crowded,
        bind_dn_template="uid={username}," + PEOPLE_DN,
        search_bind_dn="",
        search_bind_password="",
    )
    with caplog.at_level(logging.ERROR):
        assert await login(auth, "dana", "danapw") is None
    assert "after 500 entries" in caplog.text
    auth.directory.close()


async def test_small_pages_give_the_same_identity(slapd: Slapd) -> None:
    # A page size below the number of groups still returns the same identity as
    # one unpaged search on the session server.
    paged = await login(make(slapd, search_page_size=1), "alice", "alicepw")
    unpaged = await login(make(slapd, search_page_size=0), "alice", "alicepw")
    assert paged is not None and unpaged is not None
    key = lambda s: sorted(g["name"] for g in s["auth_state"]["groups"])  # noqa: E731
    assert key(paged) == key(unpaged) and len(key(paged)) == 3


def test_negative_page_size_is_refused() -> None:
    from lsst_hub.auth import LDAPAuthenticator

    with pytest.raises(ValueError, match="search_page_size"):
        LDAPAuthenticator(search_page_size=-1)
