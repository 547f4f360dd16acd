"""The standby hub for real: two wrapped hubs, PostgreSQL, slapd, the devcluster, CHP.

One deployment (``HASite``, the demo's HA mode) serves the module's tests; each test
starts from two running wrappers, one leading (a stopped one is started again as a
standby, as Kubernetes restarts a container). The issue's three cases:

(a) ``kill -9`` of the leader's process group: the standby's hub answers a login
    through the proxy; a server started before stays reachable through the proxy
    during and after; the new leader stops it (pod deleted, home kept).
(b) SIGTERM of the leader (a rolling upgrade): handover without waiting for the
    Lease to expire.
(c) a partition between the leader and the API server: the old hub stopped before
    the new leader started it; never two hubs.

How fast is for the benchmark (``benchmarks/bench_failover.py``), not asserted here,
except where speed is the behaviour: a SIGTERM handover that waited for the Lease to
expire is a bug.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .site import HUBS, HASite, fail_over, ha_site
from .support import poll_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="servers run as the people's uids: root"),
]

LEASE_DURATION = 10  # lsst-hub-ha's default, which the demo uses


@pytest.fixture(scope="module")
def site() -> Iterator[HASite]:
    with ha_site() as running:
        yield running


@pytest.fixture
def pair(site: HASite) -> HASite:
    site.ensure_pair()
    return site


def test_kill_9_of_the_leader_keeps_servers_and_the_standby_takes_over(pair: HASite) -> None:
    site = pair
    marker = site.home("alice") / "kept-across-failover.txt"
    session = site.start_server("alice", "alicepw")
    marker.write_text("mine\n")
    os.chown(marker, 10001, 10000)
    pods_before = site.pods()
    assert any("alice" in p for p in pods_before)
    assert site.server_answers(session, "alice")

    passes_before = {n: site.log(n).count("orphan pod pass done") for n in HUBS}
    result = fail_over(site, "kill-9", session)

    assert result.new is not None and result.new != result.old
    assert result.old_exit is not None and result.old_exit < 0  # killed, not stopped
    # The standby had JupyterHub imported ahead (python -m jupyterhub: warm).
    assert site.events(result.new, "hub-started")[-1].fields["warm"] == "true"
    assert result.server_failures == 0, f"the server failed {result.server_failures} probes"
    assert result.server_checks > 0
    assert site.server_answers(session, "alice")
    # The new leader's orphan-pod service makes its first pass at start: the running
    # server's pod is known to the hub (from the shared database), so it stays.
    assert result.new is not None
    new = result.new
    poll_until(
        lambda: site.log(new).count("orphan pod pass done") > passes_before[new],
        60,
        "the new leader's first orphan pod pass",
    )
    assert "0 deleted" in site.log(new).rsplit("orphan pod pass done", 1)[1].splitlines()[0]
    assert site.pods() == pods_before  # nothing restarted or cleaned up
    # The new leader's hub knows the server and stops it: pod deleted, home kept.
    assert site.stop_server(session, "alice") in (202, 204)
    poll_until(lambda: not any("alice" in p for p in site.pods()), 120, "alice's pod deleted")
    assert marker.read_text() == "mine\n"


def test_sigterm_hands_over_without_waiting_for_the_lease(pair: HASite) -> None:
    site = pair
    session = site.start_server("bob", "bobpw")
    result = fail_over(site, "sigterm", session, user="bob", probe=("alice", "alicepw"))

    assert result.old_exit == 0
    assert result.new is not None and result.new != result.old
    assert result.server_failures == 0
    released = site.events(result.old, "released")
    assert released, "the leader did not release the Lease"
    leading = [e for e in site.events(result.new, "leading") if e.t > released[-1].t]
    assert leading, "the standby did not take over after the release"
    assert leading[0].t - released[-1].t < LEASE_DURATION / 2, "it waited for expiry"
    assert site.stop_server(session, "bob") in (202, 204)


def test_a_partitioned_leader_stops_its_hub_before_the_standby_starts(site: HASite) -> None:
    site.ensure_pair(leader="hub-a")  # hub-a reaches the API server through a cuttable proxy
    assert site.api_proxy is not None
    started = {n: len(site.events(n, "hub-started")) for n in HUBS}
    site.api_proxy.cut()
    try:
        assert site.wrapper("hub-a").wait(60) == 3  # lost the Lease: exit non-zero
        poll_until(
            lambda: len(site.events("hub-b", "hub-started")) > started["hub-b"],
            60,
            "hub-b's hub to start",
        )
        poll_until(site.healthy, 60, "the new hub to answer through the proxy")
    finally:
        site.api_proxy.restore()
    old_exit = site.events("hub-a", "hub-exited")[-1]
    new_start = site.events("hub-b", "hub-started")[-1]
    new_leading = site.events("hub-b", "leading")[-1]
    fenced = [e for e in site.events("hub-a") if e.name in ("fence", "lease-lost")]
    assert fenced and fenced[-1].t <= old_exit.t
    # Never two hubs: the old one had exited before the new leader existed.
    assert old_exit.t < new_leading.t <= new_start.t
    assert site.leader() == "hub-b"
    assert site.login("alice", "alicepw")[1] == 302
