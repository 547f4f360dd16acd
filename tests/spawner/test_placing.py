"""The spawner's placement glue: the request, and a reservation's life."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio.client import ApiClient

from lsst_hub.placement import ClusterCache
from lsst_hub.spawner import SpawnError
from lsst_hub.spawner.placing import Reservation, choose_node, pod_request
from tests.placement.objects import node

pytestmark = pytest.mark.line_independent


@pytest.fixture
async def cache() -> AsyncIterator[ClusterCache]:
    # Fed by hand, never started: no API call is made.
    async with ApiClient() as client:
        found = ClusterCache(client, metrics_interval=None)
        for name in ("node-1", "node-2"):
            found.book.set_node(node(name))
        yield found


@pytest.mark.parametrize(
    ("traits", "expected"),
    [
        ((0.5, 2.0, 512, 1024), (0.5, 512)),
        ((None, 2.0, None, 1024), (2.0, 1024)),
        ((None, None, None, None), (0.0, 0)),
    ],
)
def test_pod_request_is_the_guarantee_else_the_limit(
    traits: tuple[float | None, float | None, int | None, int | None],
    expected: tuple[float, int],
) -> None:
    assert pod_request(*traits) == expected


def choose(cache: ClusterCache, key: str, exclude: tuple[str, ...] = ()) -> Reservation:
    _, reservation = choose_node(
        cache, key=key, cpu=1.0, memory=2**30, node_selector={}, tolerations=[],
        node_affinity=[], load_metric="requests", exclude=exclude,
    )  # fmt: skip
    return reservation


async def test_a_reservation_holds_room_until_released_once(cache: ClusterCache) -> None:
    first = choose(cache, "jhub/jupyter-a")
    # The room is held: the next spawn goes to the other node.
    second = choose(cache, "jhub/jupyter-b")
    assert {first.node, second.node} == {"node-1", "node-2"}
    assert cache.book.reservations() == {"jhub/jupyter-a": first.node,
                                         "jhub/jupyter-b": second.node}  # fmt: skip
    first.release()
    first.release()  # a second release (the spawn failed, then stopped) does nothing
    assert cache.book.reservations() == {"jhub/jupyter-b": second.node}


async def test_no_node_fails_with_the_reason_and_reserves_nothing(cache: ClusterCache) -> None:
    with pytest.raises(SpawnError) as info:
        choose(cache, "jhub/jupyter-c", exclude=("node-1", "node-2"))
    assert info.value.status_code == 503
    assert cache.book.reservations() == {}
