"""An unknown user costs the directory the same work as a wrong password (search-then-bind).

Not a timed test (the figures are in docs/benchmarks.md, from
benchmarks/bench_login_timing.py): slapd's own access log shows what each
refusal made the directory do. A wrong password costs a service-account search,
then a new connection, StartTLS and a bind that fails; an unknown username must
cost the same, or the time to refuse tells which names exist.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from tests.support.ldap_fixtures import authenticator_config, login, outcome_count
from tests.support.slapd import PEOPLE_DN, SVC_DN, Slapd

STARTTLS_OID = "1.3.6.1.4.1.1466.20037"


def operations(log: str) -> dict[str, list[str]]:
    """What the access log shows, by kind: new connections, StartTLS, binds (not the service's)."""
    binds = re.findall(r'conn=\d+ op=\d+ BIND dn="([^"]*)" method=128', log)
    return {
        "connections": re.findall(r"conn=\d+ fd=\d+ ACCEPT", log),
        "starttls": re.findall(rf"EXT oid={re.escape(STARTTLS_OID)}", log),
        "user binds": [dn for dn in binds if dn.lower() != SVC_DN.lower()],
        "searches": re.findall(r"conn=\d+ op=\d+ SRCH base=", log),
        "closed": re.findall(r"conn=\d+ fd=\d+ closed", log),
    }


async def refusal(server: Slapd, auth: Any, username: str, password: str) -> dict[str, list[str]]:
    """The directory's work for one refused login, from the access log."""
    start = len(server.log_text())
    assert await login(auth, username, password) is None
    # slapd logs a connection's end after the client's unbind: wait for it.
    deadline = time.monotonic() + 20
    while True:
        seen = operations(server.log_text()[start:])
        if len(seen["closed"]) >= len(seen["connections"]) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.05)


async def test_unknown_user_costs_a_bind_like_a_wrong_password(
    slapd_factory: Callable[..., Slapd],
) -> None:
    from lsst_hub.auth import LDAPAuthenticator

    server = slapd_factory(log_stats=True)
    auth = LDAPAuthenticator(**authenticator_config(server), failed_login_limit=0)
    try:
        assert await login(auth, "alice", "alicepw") is not None  # fills the service pool
        before = outcome_count("bad_credentials"), outcome_count("unknown_user")
        wrong = await refusal(server, auth, "bob", "not-bobs-password")
        unknown = await refusal(server, auth, "nosuchperson", "not-bobs-password")
        after = outcome_count("bad_credentials"), outcome_count("unknown_user")
    finally:
        auth.directory.close()
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)  # still told apart in logs
    assert wrong["user binds"] == [f"uid=bob,{PEOPLE_DN}"]
    # The same steps: one search (pooled connection), one new connection, StartTLS
    # and one bind that fails, as a DN that cannot exist under the user search base.
    for kind in ("connections", "starttls", "user binds", "searches"):
        assert len(unknown[kind]) == len(wrong[kind]) == 1, (kind, wrong, unknown)
    (decoy,) = unknown["user binds"]
    assert decoy.endswith("," + PEOPLE_DN) and "nosuchperson" not in decoy
    results = re.findall(r"op=\d+ RESULT tag=97 err=(\d+)", server.log_text())
    assert results[-2:] == ["49", "49"]  # invalidCredentials, both
