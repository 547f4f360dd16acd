"""Concurrent LDAP logins: lsst-hub's LDAPAuthenticator vs jupyterhub-ldapauthenticator.

Run as ``python -m benchmarks.bench_login [LOGINS] [ROUNDS]`` (defaults 200 and 3).
Starts a throwaway slapd (the test fixture's code), then for each authenticator
fires LOGINS logins at once over StartTLS (search with the service account,
bind as the user, read groups), while a ticker coroutine measures how late the
event loop wakes it up. Prints the figures and writes them into
docs/benchmarks.md (section ``login``). Needs ``pip install
jupyterhub-ldapauthenticator`` for the comparison.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks._report import write_section
from tests.support.ldap_fixtures import authenticator_config
from tests.support.slapd import PEOPLE_DN, SVC_DN, SVC_PW, Slapd, group_dn, start_slapd

TICK = 0.005  # the ticker asks to wake up every 5 ms
GOAL_LAG_P99 = 0.020
GOAL_SPEEDUP = 10.0
USERS = [("alice", "alicepw"), ("bob", "bobpw")]


@dataclass
class Round:
    logins: int
    failures: int
    wall: float
    latencies: list[float]
    lags: list[float]

    @property
    def rate(self) -> float:
        return self.logins / self.wall


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


async def one_round(auth: Any, logins: int) -> Round:
    """Fire ``logins`` logins at once; measure latency and event-loop lag."""
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(TICK)
            lags.append(max(0.0, time.perf_counter() - before - TICK))

    async def timed(username: str, password: str, started: float) -> tuple[float, bool]:
        result = await auth.authenticate(None, {"username": username, "password": password})
        return time.perf_counter() - started, result is not None

    tick_task = asyncio.create_task(ticker())
    await asyncio.sleep(TICK * 2)  # let the ticker start
    started = time.perf_counter()
    results = await asyncio.gather(*(timed(*USERS[i % len(USERS)], started) for i in range(logins)))
    wall = time.perf_counter() - started
    stop.set()
    await tick_task
    return Round(
        logins=logins,
        failures=sum(1 for _, ok in results if not ok),
        wall=wall,
        latencies=[latency for latency, _ in results],
        lags=lags,
    )


def ours(server: Slapd) -> Any:
    from lsst_hub.auth import LDAPAuthenticator

    auth = LDAPAuthenticator(**authenticator_config(server), failed_login_limit=0)
    auth.log.setLevel(logging.WARNING)
    return auth


def upstream(server: Slapd) -> Any:
    from ldapauthenticator import LDAPAuthenticator as Upstream

    auth = Upstream(
        server_address="localhost",
        server_port=server.ldap_port,
        tls_strategy="before_bind",
        tls_kwargs={"ca_certs_file": str(server.ca_file), "validate": ssl.CERT_REQUIRED},
        lookup_dn=True,
        lookup_dn_search_user=SVC_DN,
        lookup_dn_search_password=SVC_PW,
        lookup_dn_user_dn_attribute="uid",
        user_search_base=PEOPLE_DN,
        user_attribute="uid",
        allowed_groups=[group_dn("jupyterhub-users")],
    )
    auth.log.setLevel(logging.WARNING)
    return auth


async def measure(make: Callable[[Slapd], Any], server: Slapd, logins: int, rounds: int) -> Round:
    auth = make(server)
    # One login first: imports, the thread pool and the service connection pool.
    assert await auth.authenticate(None, {"username": "alice", "password": "alicepw"})
    done = [await one_round(auth, logins) for _ in range(rounds)]
    return sorted(done, key=lambda r: r.wall)[len(done) // 2]  # the median round


def row(name: str, r: Round) -> str:
    ms = 1000
    return (
        f"| {name} | {r.rate:.0f} | {percentile(r.latencies, 50) * ms:.0f} "
        f"| {percentile(r.latencies, 99) * ms:.0f} | {percentile(r.lags, 99) * ms:.1f} "
        f"| {max(r.lags, default=0) * ms:.0f} | {r.failures} |"
    )


async def main(logins: int, rounds: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_slapd(Path(tmp) / "slapd")
        try:
            mine = await measure(ours, server, logins, rounds)
            try:
                theirs: Round | None = await measure(upstream, server, logins, rounds)
                upstream_version = _version("jupyterhub-ldapauthenticator")
            except ImportError:
                theirs, upstream_version = None, "not installed"
        finally:
            server.destroy()

    lag_p99 = percentile(mine.lags, 99)
    lines = [
        "## Logins (LDAP authenticator)",
        "",
        f"{logins} logins fired at once (alice and bob alternating) against a local slapd "
        "over StartTLS, verified against the test CA: service-account search, user bind, "
        "group search. The event-loop lag is how late a coroutine that sleeps 5 ms is woken "
        f"up while the logins run. Median of {rounds} rounds, after one warm-up login.",
        "",
        "| authenticator | logins/s | p50 login ms | p99 login ms | loop lag p99 ms "
        "| loop lag max ms | failed |",
        "|---|---|---|---|---|---|---|",
        row(f"lsst-hub {_version('lsst-hub')}", mine),
    ]
    if theirs is not None:
        lines.append(row(f"jupyterhub-ldapauthenticator {upstream_version}", theirs))
    lines += ["", "Goals:", ""]
    met = "met" if lag_p99 <= GOAL_LAG_P99 else "**not met**"
    lines.append(
        f"- event-loop lag p99 <= {GOAL_LAG_P99 * 1000:.0f} ms: {lag_p99 * 1000:.1f} ms, {met}"
    )
    if theirs is not None:
        speedup = mine.rate / theirs.rate
        met = "met" if speedup >= GOAL_SPEEDUP else "**not met**"
        lines.append(
            f"- throughput >= {GOAL_SPEEDUP:.0f}x jupyterhub-ldapauthenticator: "
            f"{speedup:.1f}x, {met}"
        )
    else:
        lines.append("- throughput comparison: jupyterhub-ldapauthenticator not installed")
    return "\n".join(lines)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    logins = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    report = asyncio.run(main(logins, rounds))
    print(report)
    write_section("login", report)
