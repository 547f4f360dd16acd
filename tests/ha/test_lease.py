"""``LeaseCandidate`` against the devcluster over HTTP: attempts, limits, the checked release."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes_asyncio import client

from lsst_hub.ha.lease import LeaseCandidate
from lsst_hub.ha.settings import HASettings

pytestmark = pytest.mark.line_independent


def settings(identity: str) -> HASettings:
    return HASettings(
        lease_namespace="default", identity=identity, lease_duration=3,
        renew_deadline=2, retry_period=1,
    )  # fmt: skip


async def holder(api: Any) -> str | None:
    lease = await client.CoordinationV1Api(api).read_namespaced_lease("jupyterhub-hub", "default")
    return lease.spec.holder_identity  # type: ignore[no-any-return]


async def test_first_candidate_takes_the_lease_and_the_second_waits(
    devcluster: Any, kube_api: Any
) -> None:
    a = LeaseCandidate(settings("a"), kube_api)
    b = LeaseCandidate(settings("b"), kube_api)
    assert (await a.attempt(2)).held
    seen = await b.attempt(2)
    assert not seen.held and seen.holder == "a" and seen.error is None
    assert 0 < (b.expires_in() or 0) <= 3
    assert await holder(kube_api) == "a"
    lease = await client.CoordinationV1Api(kube_api).read_namespaced_lease(
        "jupyterhub-hub", "default"
    )
    # Written in UTC with microseconds (the library alone writes local time).
    assert lease.spec.renew_time.utcoffset().total_seconds() == 0


async def test_an_attempt_against_a_hanging_api_server_gives_up_at_its_limit(
    devcluster: Any, kube_api: Any
) -> None:
    a = LeaseCandidate(settings("a"), kube_api)
    devcluster.faults.add(verb="get", resource="leases", delay=30)
    attempt = await a.attempt(0.5)
    assert not attempt.held and attempt.error is not None and "no answer" in attempt.error


async def test_an_api_error_is_a_failed_attempt_not_a_crash(devcluster: Any, kube_api: Any) -> None:
    a = LeaseCandidate(settings("a"), kube_api)
    devcluster.faults.add(verb="get", resource="leases", status=500)
    attempt = await a.attempt(2)
    assert not attempt.held and attempt.error is not None


async def test_release_lets_the_standby_in_at_once(devcluster: Any, kube_api: Any) -> None:
    a = LeaseCandidate(settings("a"), kube_api)
    b = LeaseCandidate(settings("b"), kube_api)
    assert (await a.attempt(2)).held
    assert not (await b.attempt(2)).held
    assert await a.release(2)
    assert await holder(kube_api) is None
    assert (await b.attempt(2)).held  # no waiting for expiry


async def test_release_leaves_a_lease_written_by_someone_else_since_it_was_read(
    devcluster: Any, kube_api: Any
) -> None:
    a = LeaseCandidate(settings("a"), kube_api)
    assert (await a.attempt(2)).held
    # Hold the release's write back; meanwhile another writer takes the Lease.
    devcluster.faults.add(verb="update", resource="leases", delay=1.0)
    release = asyncio.create_task(a.release(5))
    await asyncio.sleep(0.3)
    api = client.CoordinationV1Api(kube_api)
    lease = await api.read_namespaced_lease("jupyterhub-hub", "default")
    lease.spec.holder_identity = "thief"
    devcluster.faults.clear()  # the thief's own write goes through at once
    await api.replace_namespaced_lease("jupyterhub-hub", "default", lease)
    assert await release is False
    assert await holder(kube_api) == "thief"


async def test_release_of_a_lease_held_by_another_does_nothing(
    devcluster: Any, kube_api: Any
) -> None:
    a = LeaseCandidate(settings("a"), kube_api)
    b = LeaseCandidate(settings("b"), kube_api)
    assert (await a.attempt(2)).held
    assert not await b.release(2)
    assert await holder(kube_api) == "a"
