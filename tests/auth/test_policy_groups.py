"""allowed_groups and admin_groups name groups by cn or by DN (issue 7, item 10).

The test directory holds two groups named ``science``: the site's own
``cn=science,ou=groups`` (member olga) and one a delegated group admin created in
``ou=delegated,ou=groups`` (member ivan), both under the group search base. A rule
naming the group by DN lets only olga in; by name it lets both in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lsst_hub.auth.policy import GroupRule, is_dn, normalize_dn
from lsst_hub.identity import Group
from tests.support.ldap_fixtures import login

Make = Callable[..., Any]

SCIENCE_DN = "cn=science,ou=groups,dc=example,dc=org"
DELEGATED_DN = "cn=science,ou=delegated,ou=groups,dc=example,dc=org"
PASSWORDS = {"olga": "olgapw", "ivan": "ivanpw"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SCIENCE_DN, True),
        ("CN=Science, OU=Groups, DC=example, DC=org", True),
        ("cn=science", False),  # one RDN: a name, not a DN
        ("science", False),
        ("jupyterhub-users", False),
        ("a=b,c", False),  # contains = and , but does not parse
        ("cn=x,", False),
    ],
)
def test_what_counts_as_a_dn(text: str, expected: bool) -> None:
    assert is_dn(text) is expected


def test_dns_compare_as_ldap_compares_them() -> None:
    same = [
        SCIENCE_DN,
        "CN=Science,OU=groups,DC=Example,DC=ORG",
        "cn=science, ou=groups, dc=example, dc=org",
        "cn=sci\\65nce,ou=groups,dc=example,dc=org",  # hex escape of "e"
    ]
    assert len({normalize_dn(text) for text in same}) == 1
    assert normalize_dn(DELEGATED_DN) != normalize_dn(SCIENCE_DN)
    # Multi-valued RDNs: the order of the values does not count.
    assert normalize_dn("cn=a+uid=b,dc=x,dc=y") == normalize_dn("uid=B+cn=A,dc=x,dc=y")
    # An escaped comma is part of the value, not a separator.
    assert normalize_dn("cn=a\\,b,dc=x") != normalize_dn("cn=a,b=c,dc=x")


def test_rule_matches_names_and_dns() -> None:
    rule = GroupRule.parse({"hpcusers", SCIENCE_DN.upper()})
    assert rule.matches([Group("hpcusers", 10000, "cn=hpcusers,ou=elsewhere,dc=x")])
    assert rule.matches([Group("science", None, SCIENCE_DN)])
    assert not rule.matches([Group("science", None, DELEGATED_DN)])
    # An auth_state written before group DNs were kept never matches a DN rule.
    assert not rule.matches([Group("science", None, "")])
    assert not GroupRule.parse(set())


async def test_allowed_group_by_dn_ignores_a_same_named_group(make_authenticator: Make) -> None:
    auth = make_authenticator(allowed_groups={SCIENCE_DN}, admin_groups=set())
    olga = await login(auth, "olga", PASSWORDS["olga"])
    assert olga is not None
    assert {"name": "science", "gid": None, "dn": SCIENCE_DN} in olga["auth_state"]["groups"]
    assert await login(auth, "ivan", PASSWORDS["ivan"]) is None


async def test_allowed_group_by_dn_written_differently(make_authenticator: Make) -> None:
    auth = make_authenticator(allowed_groups={"CN=Science, OU=Groups, DC=Example, DC=org"})
    assert await login(auth, "olga", PASSWORDS["olga"]) is not None
    assert await login(auth, "ivan", PASSWORDS["ivan"]) is None


async def test_allowed_group_by_name_matches_every_group_of_that_name(
    make_authenticator: Make,
) -> None:
    # What naming by DN protects against: by cn, the delegated group counts too.
    auth = make_authenticator(allowed_groups={"science"})
    assert await login(auth, "olga", PASSWORDS["olga"]) is not None
    assert await login(auth, "ivan", PASSWORDS["ivan"]) is not None


async def test_admin_group_by_dn(make_authenticator: Make) -> None:
    auth = make_authenticator(allowed_groups={"science"}, admin_groups={SCIENCE_DN})
    olga = await login(auth, "olga", PASSWORDS["olga"])
    ivan = await login(auth, "ivan", PASSWORDS["ivan"])
    assert olga is not None and ivan is not None
    assert olga["admin"] is True
    assert ivan["admin"] is False


async def test_refresh_applies_dn_rules(make_authenticator: Make) -> None:
    auth = make_authenticator(allowed_groups={SCIENCE_DN})

    class User:
        def __init__(self, name: str) -> None:
            self.name = name
            self.state: dict[str, Any] | None = None

        async def get_auth_state(self) -> dict[str, Any] | None:
            return self.state

        async def save_auth_state(self, state: dict[str, Any] | None) -> None:
            self.state = state

    refreshed = await auth.refresh_user(User("olga"))
    assert isinstance(refreshed, dict) and refreshed["name"] == "olga"
    assert await auth.refresh_user(User("ivan")) is False
