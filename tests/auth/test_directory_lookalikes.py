"""Look-alike names: the entry found must carry the username exactly, against the real slapd.

OpenLDAP compares ``uid`` with caseIgnoreMatch after LDAPprep (Unicode
compatibility mapping, case folding, insignificant spaces), so the filter
``(uid=kate)`` and the DN ``uid=kate,...`` also find an entry whose uid is
``Kate`` spelled with the Kelvin sign, ``kate`` in fullwidth letters or ``kate ``
with a trailing space, and ``finn`` finds ``ﬁnn`` (a ligature). Such an entry
must neither claim the name (log in as hub user ``finn``) nor lock its owner out
(make the search ambiguous, or look like an earlier template's entry).

In ``ou=lookalikes``: entries ``cn=look-N`` carrying look-alike uids of ``kate``,
and ``uid=ﬁnn`` and ``uid=<Kelvin>ate`` (uid RDNs, for direct bind). The real
``kate`` lives in ``ou=people``; there is no real ``finn``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.ldap_fixtures import login, outcome_count
from tests.support.slapd import BASE_DN, PEOPLE_DN, Slapd, _hash

Make = Callable[..., Any]

LOOK_DN = f"ou=lookalikes,{BASE_DN}"
KELVIN_KATE = "\u212aate"
FULLWIDTH_KATE = "\uff4b\uff41\uff54\uff45"
LIGATURE_FINN = "\ufb01nn"
KATE_LOOKALIKES = [KELVIN_KATE, FULLWIDTH_KATE, "kate ", " kate", "KATE\u00a0"]
LOOK_PW = "lookpw"
PEOPLE = f"uid={{username}},{PEOPLE_DN}"
LOOK = f"uid={{username}},{LOOK_DN}"
ALLOWED = {"allowed_groups": set(), "allowed_users": {"kate", "finn"}}


def _posix(uid: str, number: int) -> dict[str, Any]:
    return {
        "uid": uid,
        "cn": f"look-{number}",
        "sn": "Alike",
        "uidNumber": number,
        "gidNumber": 20000,
        "homeDirectory": f"/gpfs/home/look{number}",
        "userPassword": _hash(LOOK_PW),
    }


@pytest.fixture(scope="module")
def lookalikes(slapd: Slapd) -> Iterator[None]:
    classes = ["inetOrgPerson", "posixAccount"]
    made = [slapd.add_entry(LOOK_DN, ["organizationalUnit"], {"ou": "lookalikes"})]
    made.append(slapd.add_user("kate", "katepw", uid_number=32001))
    for number, uid in enumerate(KATE_LOOKALIKES, start=32100):
        made.append(slapd.add_entry(f"cn=look-{number},{LOOK_DN}", classes, _posix(uid, number)))
    # uid RDNs, where a template's DN leads.
    made.append(
        slapd.add_entry(f"uid={LIGATURE_FINN},{LOOK_DN}", classes, _posix(LIGATURE_FINN, 32200))
    )
    made.append(
        slapd.add_entry(f"uid={KELVIN_KATE},{LOOK_DN}", classes, _posix(KELVIN_KATE, 32201))
    )
    yield
    for dn in reversed(made):
        slapd.delete(dn)


def test_the_directory_does_match_lookalikes(slapd: Slapd, lookalikes: None) -> None:
    # The premise: without the exact check these entries answer for kate and finn.
    with slapd.admin() as conn:
        conn.search(BASE_DN, "(uid=kate)", attributes=["uid"])
        assert len(conn.entries) == 1 + len(KATE_LOOKALIKES) + 1
        conn.search(BASE_DN, "(uid=finn)", attributes=["uid"])
        assert [e.entry_dn for e in conn.entries] == [f"uid={LIGATURE_FINN},{LOOK_DN}"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("kate", True),
        ("Kate", True),
        ("KATE", True),
        (KELVIN_KATE, False),
        (FULLWIDTH_KATE, False),
        ("kate ", False),
        (" kate", False),
        ("kate\u00a0", False),
        ("k\u0430te", False),  # Cyrillic a
        ("kat\u00e9", False),
        ("kat", False),
    ],
    ids=repr,
)
def test_only_ascii_case_may_differ(value: str, expected: bool) -> None:
    from lsst_hub.auth.attributes import same_name

    assert same_name(value, "kate") is expected


# -- search with the service account --------------------------------------------


async def test_search_lookalike_does_not_claim_a_name(
    make_authenticator: Make, lookalikes: None
) -> None:
    auth = make_authenticator(user_search_base=BASE_DN, **ALLOWED)
    before = outcome_count("unknown_user")
    # ﬁnn's own password, as "finn": the only entry the filter finds is not finn's.
    assert await login(auth, "finn", LOOK_PW) is None
    assert outcome_count("unknown_user") - before == 1
    assert await auth.refresh_user(SimpleNamespace(name="finn")) is False


async def test_search_lookalikes_do_not_lock_the_owner_out(
    make_authenticator: Make, lookalikes: None
) -> None:
    auth = make_authenticator(user_search_base=BASE_DN, **ALLOWED)
    result = await login(auth, "kate", "katepw")
    assert result is not None
    assert result["auth_state"]["ldap_dn"] == f"uid=kate,{PEOPLE_DN}"
    assert result["auth_state"]["uid_number"] == 32001
    assert await login(auth, "kate", LOOK_PW) is None  # no look-alike's password fits
    refreshed = await auth.refresh_user(SimpleNamespace(name="kate"))
    assert isinstance(refreshed, dict) and refreshed["auth_state"]["uid_number"] == 32001


# -- direct bind -----------------------------------------------------------------


@pytest.mark.parametrize("service", [True, False], ids=["service", "no-service"])
async def test_bound_lookalike_does_not_claim_a_name(
    make_authenticator: Make, lookalikes: None, service: bool
) -> None:
    # uid=finn,ou=lookalikes binds as uid=ﬁnn with ﬁnn's password.
    extra = {} if service else {"search_bind_dn": "", "search_bind_password": ""}
    auth = make_authenticator(bind_dn_template=LOOK, **ALLOWED, **extra)
    before = outcome_count("bad_credentials")
    assert await login(auth, "finn", LOOK_PW) is None
    assert outcome_count("bad_credentials") - before == 1
    if service:
        assert await auth.refresh_user(SimpleNamespace(name="finn")) is False


async def test_earlier_template_lookalike_does_not_lock_the_owner_out(
    make_authenticator: Make, lookalikes: None
) -> None:
    # uid=kate,ou=lookalikes "exists" as the Kelvin-sign entry; kate's entry is the
    # later template's.
    auth = make_authenticator(bind_dn_template=[LOOK, PEOPLE], **ALLOWED)
    result = await login(auth, "kate", "katepw")
    assert result is not None and result["auth_state"]["uid_number"] == 32001
    assert await login(auth, "kate", LOOK_PW) is None
    refreshed = await auth.refresh_user(SimpleNamespace(name="kate"))
    assert isinstance(refreshed, dict)
    assert refreshed["auth_state"]["ldap_dn"] == f"uid=kate,{PEOPLE_DN}"
    assert refreshed["auth_state"]["uid_number"] == 32001
