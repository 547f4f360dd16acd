"""LDAPAuthenticator against the real test slapd: binds, groups, identity, hostile input.

Logins go through ``get_authenticated_user``, JupyterHub's outer login API
(normalization, allow and admin checks), exactly as the hub calls it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from lsst_hub.identity import AUTH_STATE_KEYS, Identity
from tests.support.ldap_fixtures import login, outcome_count
from tests.support.slapd import PASSWORDS, PEOPLE_DN, Slapd, group_dn, user_dn

Make = Callable[..., Any]
TEMPLATE = "uid={username}," + PEOPLE_DN

ALICE_STATE = {
    "ldap_dn": "uid=alice,ou=people,dc=example,dc=org",
    "uid_number": 10001,
    "gid_number": 10000,
    "home_directory": "/gpfs/home/alice",
    "groups": [
        {"name": "hpcusers", "gid": 10000, "dn": group_dn("hpcusers")},
        {"name": "jupyterhub-users", "gid": None, "dn": group_dn("jupyterhub-users")},
        {"name": "jupyterhub-admins", "gid": None, "dn": group_dn("jupyterhub-admins")},
    ],
    "display_name": "Alice Archer",
    "email": "alice@example.org",
}


def by_name(state: dict[str, Any]) -> dict[str, Any]:
    """The identity in auth_state, groups sorted: the directory does not promise an order."""
    identity = {k: v for k, v in state.items() if k in AUTH_STATE_KEYS}
    return {**identity, "groups": sorted(state["groups"], key=lambda g: g["name"])}


def alice_state(slapd: Slapd) -> dict[str, Any]:
    """ALICE_STATE with the entryUUID this slapd gave alice's entry."""
    return by_name({**ALICE_STATE, "unique_id": slapd.entry_uuid(user_dn("alice"))})


@pytest.fixture(params=["search-bind", "direct-bind"])
def mode(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Search-then-bind (service account) or direct bind (template, no service account)."""
    if request.param == "search-bind":
        return {}
    return {"bind_dn_template": TEMPLATE, "search_bind_dn": "", "search_bind_password": ""}


async def test_login_returns_exact_identity(
    make_authenticator: Make, mode: dict[str, Any], slapd: Slapd
) -> None:
    auth = make_authenticator(**mode)
    result = await login(auth, "alice", "alicepw")
    assert result is not None
    assert result["name"] == "alice"
    assert by_name(result["auth_state"]) == alice_state(slapd)
    # The spawner's side of the contract reads it back.
    identity = Identity.from_auth_state("alice", result["auth_state"])
    assert identity.supplemental_gids == [10000]


async def test_non_ascii_password(make_authenticator: Make, slapd: Slapd) -> None:
    auth = make_authenticator(allowed_groups=set(), allowed_users={"carol"})
    result = await login(auth, "carol", PASSWORDS["carol"])
    assert result is not None
    assert result["auth_state"]["groups"] == []  # carol is in no group
    assert result["auth_state"]["gid_number"] == 10003


async def test_username_is_trimmed_and_lower_cased(make_authenticator: Make) -> None:
    result = await login(make_authenticator(), "  ALICE \t", "alicepw")
    assert result is not None
    assert result["name"] == "alice"


async def test_wrong_password_and_unknown_user_fail(
    make_authenticator: Make, mode: dict[str, Any]
) -> None:
    auth = make_authenticator(**mode)
    before = outcome_count("bad_credentials"), outcome_count("unknown_user")
    assert await login(auth, "alice", "bobpw") is None
    assert await login(auth, "nosuchuser", "whatever") is None
    after = outcome_count("bad_credentials"), outcome_count("unknown_user")
    if mode:  # direct bind cannot tell a missing DN from a wrong password
        assert after[0] - before[0] == 2
    else:
        assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


async def test_allowed_groups(make_authenticator: Make) -> None:
    auth = make_authenticator()  # allowed_groups = {"jupyterhub-users"}
    before = outcome_count("not_allowed")
    assert await login(auth, "bob", "bobpw") is not None
    assert await login(auth, "carol", PASSWORDS["carol"]) is None  # right password, no group
    assert outcome_count("not_allowed") - before == 1


async def test_allowed_users_still_admit(make_authenticator: Make) -> None:
    auth = make_authenticator(allowed_users={"carol"})
    assert await login(auth, "carol", PASSWORDS["carol"]) is not None


async def test_no_allow_config_admits_nobody(make_authenticator: Make) -> None:
    # JupyterHub's rule since 5.0: some allow configuration (or allow_all) is needed.
    auth = make_authenticator(allowed_groups=set())
    assert await login(auth, "alice", "alicepw") is None
    auth = make_authenticator(allowed_groups=set(), allow_all=True)
    assert await login(auth, "alice", "alicepw") is not None


async def test_admin_groups_and_admin_users(make_authenticator: Make) -> None:
    auth = make_authenticator(admin_users={"bob"})
    alice = await login(auth, "alice", "alicepw")
    bob = await login(auth, "bob", "bobpw")
    assert alice is not None and alice["admin"] is True
    # bob is not in jupyterhub-admins: the directory must not revoke admin_users.
    assert bob is not None and bob["admin"] is True
    auth = make_authenticator()
    bob = await login(auth, "bob", "bobpw")
    assert bob is not None and not bob["admin"]


async def test_manage_groups(make_authenticator: Make) -> None:
    result = await login(make_authenticator(manage_groups=True), "alice", "alicepw")
    assert result is not None
    assert sorted(result["groups"]) == ["hpcusers", "jupyterhub-admins", "jupyterhub-users"]
    result = await login(make_authenticator(manage_groups=False), "alice", "alicepw")
    assert result is not None and "groups" not in result


async def test_every_group_kind_counts(make_authenticator: Make, slapd: Slapd) -> None:
    # posixGroup by memberUid, groupOfNames by member and groupOfUniqueNames by
    # uniqueMember, the three shapes directories use for membership.
    dn = slapd.add_entry(
        "cn=unique-team,ou=groups,dc=example,dc=org",
        ["groupOfUniqueNames"],
        {"cn": "unique-team", "uniqueMember": [user_dn("bob")]},
    )
    try:
        result = await login(make_authenticator(), "bob", "bobpw")
        assert result is not None
        names = {g["name"] for g in result["auth_state"]["groups"]}
        assert "unique-team" in names and "jupyterhub-users" in names
        carol = await login(make_authenticator(allow_all=True), "carol", PASSWORDS["carol"])
        assert carol is not None
        assert "unique-team" not in {g["name"] for g in carol["auth_state"]["groups"]}
    finally:
        slapd.delete(dn)


async def test_primary_group_counts_without_listing_the_member(
    make_authenticator: Make, slapd: Slapd
) -> None:
    # POSIX: the group of a person's gidNumber is theirs even when its memberUid does
    # not list them (user-private groups, site-wide primary groups), as `id` shows.
    dn = slapd.add_user("erin", "erinpw", uid_number=31001, gid_number=31000)
    group = slapd.add_group("erin-lab", gid_number=31000)
    other = slapd.add_group("other-lab", gid_number=31002)
    try:
        result = await login(make_authenticator(allow_all=True), "erin", "erinpw")
        assert result is not None
        groups = {g["name"]: g["gid"] for g in result["auth_state"]["groups"]}
        assert groups == {"erin-lab": 31000}
        # and admission by group follows: the primary group may be the allowed one
        auth = make_authenticator(allowed_groups={"erin-lab"})
        assert await login(auth, "erin", "erinpw") is not None
    finally:
        for entry in (dn, group, other):
            slapd.delete(entry)


async def test_user_without_posix_attributes_fails(
    make_authenticator: Make, slapd: Slapd, caplog: pytest.LogCaptureFixture
) -> None:
    dn = slapd.add_user("nonposix", "nonposixpw", posix=False)
    try:
        auth = make_authenticator(
            bind_dn_template=TEMPLATE, allowed_users={"nonposix"}, allowed_groups=set()
        )
        before = outcome_count("incomplete_identity")
        with caplog.at_level(logging.INFO):
            assert await login(auth, "nonposix", "nonposixpw") is None
        assert outcome_count("incomplete_identity") - before == 1
        assert "uidNumber" in caplog.text and "nonposix" in caplog.text
    finally:
        slapd.delete(dn)


async def test_negative_uid_number_is_refused_at_login(
    make_authenticator: Make, slapd: Slapd, caplog: pytest.LogCaptureFixture
) -> None:
    # The directory's INTEGER syntax allows it; the auth_state contract does not.
    dn = slapd.add_user("neguid", "neguidpw", uid_number=-5)
    try:
        auth = make_authenticator(allowed_users={"neguid"}, allowed_groups=set())
        before = outcome_count("incomplete_identity")
        with caplog.at_level(logging.ERROR):
            assert await login(auth, "neguid", "neguidpw") is None
        assert outcome_count("incomplete_identity") - before == 1
        assert "uidNumber not a usable id ('-5')" in caplog.text
    finally:
        slapd.delete(dn)


HOSTILE_USERNAMES = [
    "*",
    "alice*",
    "*)(uid=*",
    "alice)(uid=*",
    "admin)(|(uid=*",
    "alice)(|(objectClass=*",
    "(uid=alice)",
    "alice\\",
    "alice\\2a",
    "alice\x00",
    "\x00",
    "alice,ou=people,dc=example,dc=org",
    "alice+cn=x",
    'alice"',
    "alice;bob",
    "alice=",
    "#alice",
    " alice\n",
    "alice/../bob",
    "ålice",
    "\u0430lice",  # Cyrillic a
    "a" * 10_000,
    "",
    "   ",
    "\n",
]


@pytest.mark.parametrize("username", HOSTILE_USERNAMES, ids=repr)
@pytest.mark.parametrize("pattern", ["default-pattern", "any-pattern"])
async def test_hostile_usernames_get_nobody_in(
    make_authenticator: Make, mode: dict[str, Any], username: str, pattern: str
) -> None:
    # "any-pattern" switches username_pattern off, so only escaping stands between
    # the name and the filter/DN.
    extra = {"username_pattern": ".*"} if pattern == "any-pattern" else {}
    auth = make_authenticator(**mode, **extra)
    for password in ("alicepw", "*", "wrong"):
        result = await login(auth, username, password)
        # Only trimming and lower-casing may turn a name into alice's.
        if username.strip().lower() == "alice" and password == "alicepw":
            assert result is not None and result["name"] == "alice"
        else:
            assert result is None, (username, password)


HOSTILE_PASSWORDS = [
    "",
    " ",
    "\t\n",
    "*",
    "alicepw\x00",
    "alicepw\n",
    "alice\npw",
    "\x00",
    "alicepw ",
    " alicepw",
    "ALICEPW",
    "p" * 100_000,
    "ålicepw",
    ")(userPassword=*",
]


@pytest.mark.parametrize("password", HOSTILE_PASSWORDS, ids=lambda p: repr(p)[:40])
async def test_hostile_passwords_fail_cleanly(
    make_authenticator: Make, mode: dict[str, Any], password: str
) -> None:
    assert await login(make_authenticator(**mode), "alice", password) is None


@pytest.mark.parametrize(
    "data",
    [{}, {"username": "alice"}, {"password": "alicepw"}, {"username": None, "password": "x"},
     {"username": ["alice"], "password": "alicepw"}, {"username": "alice", "password": 1}],
    ids=repr,
)  # fmt: skip
async def test_malformed_form_data(make_authenticator: Make, data: dict[str, Any]) -> None:
    before = outcome_count("invalid_input")
    assert await make_authenticator().authenticate(None, data) is None
    assert outcome_count("invalid_input") - before == 1


async def test_empty_input_refused_before_ldap(make_authenticator: Make, closed_port: int) -> None:
    # The only server is unreachable: reaching LDAP would count a directory_error.
    auth = make_authenticator(server_urls=[f"ldaps://localhost:{closed_port}"])
    before = outcome_count("invalid_input"), outcome_count("directory_error")
    for username, password in [("", "x"), ("  ", "x"), ("alice", ""), ("alice", "  ")]:
        assert await login(auth, username, password) is None
    after = outcome_count("invalid_input"), outcome_count("directory_error")
    assert (after[0] - before[0], after[1] - before[1]) == (4, 0)


async def test_throttling(make_authenticator: Make, closed_port: int) -> None:
    auth = make_authenticator(failed_login_limit=3, failed_login_window=600)
    for _ in range(3):
        assert await login(auth, "bob", "wrong") is None
    before = outcome_count("throttled"), outcome_count("directory_error")
    # The right password is refused now, and alice is not affected.
    assert await login(auth, "bob", "bobpw") is None
    assert await login(auth, "alice", "alicepw") is not None
    # A throttled attempt never reaches the directory: with the directory gone it
    # is still "throttled", not "directory_error".
    auth.server_urls = [f"ldap://localhost:{closed_port}"]
    assert await login(auth, "bob", "bobpw") is None
    after = outcome_count("throttled"), outcome_count("directory_error")
    assert (after[0] - before[0], after[1] - before[1]) == (2, 0)


async def test_success_resets_failure_count(make_authenticator: Make) -> None:
    auth = make_authenticator(failed_login_limit=2, failed_login_window=600)
    assert await login(auth, "bob", "wrong") is None
    assert await login(auth, "bob", "bobpw") is not None
    assert await login(auth, "bob", "wrong") is None
    assert await login(auth, "bob", "bobpw") is not None


async def test_metrics_count_each_outcome(make_authenticator: Make) -> None:
    auth = make_authenticator()
    cases = [
        ("success", "alice", "alicepw"),
        ("bad_credentials", "alice", "nope"),
        ("unknown_user", "zed", "nope"),
        ("not_allowed", "carol", PASSWORDS["carol"]),
        ("invalid_input", "al ice", "x"),
    ]
    for outcome, username, password in cases:
        before = outcome_count(outcome)
        await login(auth, username, password)
        assert outcome_count(outcome) - before == 1, outcome
    count = REGISTRY.get_sample_value(
        "lsst_hub_ldap_login_duration_seconds_count", {"outcome": "success"}
    )
    assert count is not None and count >= 1


def test_metrics_module_can_be_imported_twice() -> None:
    import lsst_hub.metrics as metrics

    first = metrics.LDAP_LOGINS
    reloaded = importlib.reload(metrics)
    assert reloaded.LDAP_LOGINS is first


async def test_passwords_never_logged(
    make_authenticator: Make, caplog: pytest.LogCaptureFixture, closed_port: int
) -> None:
    secret = "s3cret-Pa55word"
    auth = make_authenticator(failed_login_limit=2, failed_login_window=600)
    with caplog.at_level(logging.DEBUG):
        await login(auth, "alice", secret)  # bad credentials
        await login(auth, "zed", secret)  # unknown user
        await login(auth, "alice", secret + "\n")  # unsendable
        await login(auth, "alice", secret)  # throttled
        await login(auth, "al)(ice", secret)  # invalid input
        await login(auth, "carol", PASSWORDS["carol"])  # not allowed
        await login(auth, "alice", "alicepw")  # success
        auth.server_urls = [f"ldap://localhost:{closed_port}"]
        await login(auth, "bob", secret)  # directory down
    assert "throttled" in caplog.text and "directory unavailable" in caplog.text
    for password in (secret, PASSWORDS["carol"], "alicepw"):
        assert password not in caplog.text


# -- refresh_user -----------------------------------------------------------


async def test_refresh_keeps_current_user(make_authenticator: Make, slapd: Slapd) -> None:
    auth = make_authenticator(manage_groups=True)
    result = await auth.refresh_user(SimpleNamespace(name="alice"))
    assert isinstance(result, dict)
    assert by_name(result["auth_state"]) == alice_state(slapd)
    assert result["admin"] is True
    assert "jupyterhub-users" in result["groups"]


async def test_refresh_after_leaving_allowed_group_requires_login(
    make_authenticator: Make, slapd: Slapd
) -> None:
    auth = make_authenticator()
    assert await auth.refresh_user(SimpleNamespace(name="bob"))
    with slapd.without_member("jupyterhub-users", user_dn("bob")):
        assert await auth.refresh_user(SimpleNamespace(name="bob")) is False
        assert await login(auth, "bob", "bobpw") is None
    assert await auth.refresh_user(SimpleNamespace(name="bob"))


async def test_refresh_after_user_deleted_requires_login(
    make_authenticator: Make, slapd: Slapd, mode: dict[str, Any]
) -> None:
    dn = slapd.add_user("leaver", "leaverpw", uid_number=20001)
    slapd.add_member("jupyterhub-users", dn)
    try:
        # refresh_user needs the service account, so keep it in both modes.
        auth = make_authenticator(**{k: v for k, v in mode.items() if "search" not in k})
        assert await login(auth, "leaver", "leaverpw") is not None
        refreshed = await auth.refresh_user(SimpleNamespace(name="leaver"))
        assert isinstance(refreshed, dict)
        assert refreshed["auth_state"]["uid_number"] == 20001
        slapd.remove_member("jupyterhub-users", dn)
        slapd.delete(dn)
        assert await auth.refresh_user(SimpleNamespace(name="leaver")) is False
    finally:
        with contextlib.suppress(RuntimeError):  # already removed when the test passed
            slapd.remove_member("jupyterhub-users", dn)
        slapd.delete(dn)


async def test_refresh_with_directory_down_keeps_session(
    make_authenticator: Make, closed_port: int
) -> None:
    auth = make_authenticator(server_urls=[f"ldaps://localhost:{closed_port}"])
    assert await auth.refresh_user(SimpleNamespace(name="alice")) is True


async def test_refresh_without_service_account_is_skipped(make_authenticator: Make) -> None:
    auth = make_authenticator(bind_dn_template=TEMPLATE, search_bind_dn="")
    assert await auth.refresh_user(SimpleNamespace(name="nosuchuser")) is True


def test_entry_point_and_lazy_import() -> None:
    from importlib.metadata import entry_points

    import lsst_hub
    from lsst_hub.auth import LDAPAuthenticator

    (ep,) = entry_points(group="jupyterhub.authenticators", name="lsst-ldap")
    assert ep.load() is LDAPAuthenticator
    assert lsst_hub.LDAPAuthenticator is LDAPAuthenticator


@pytest.mark.parametrize(
    ("trait", "value"),
    [
        ("server_urls", ["http://ldap.example.org"]),
        ("server_urls", ["ldap://"]),
        ("bind_dn_template", "uid=alice,ou=people"),
        ("user_search_filter", "(uid=alice)"),
        ("connect_timeout", 0),
        ("executor_threads", 0),
        ("login_timeout", 0),
        ("login_timeout", -1),
        ("tls_ca_file", "/nonexistent/ca.pem"),
    ],
)
def test_bad_configuration_is_refused(make_authenticator: Make, trait: str, value: Any) -> None:
    from traitlets import TraitError

    with pytest.raises((TraitError, ValueError)):
        make_authenticator(**{trait: value})
