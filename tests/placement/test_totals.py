"""ClusterTotals behaviors that the reference has no notion of: reservations,
usage bookkeeping, malformed objects, relists."""

from __future__ import annotations

from collections import Counter

import pytest

from lsst_hub.placement import NodeUsage
from lsst_hub.placement.totals import ClusterTotals

from .objects import node, pod

pytestmark = pytest.mark.line_independent

GiB = 1 << 30


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(clock: Clock) -> ClusterTotals:
    totals = ClusterTotals(clock=clock, reservation_ttl=60.0)
    for name in ("a", "b", "c", "d"):
        totals.set_node(node(name, cpu="16", memory="64Gi"))
    return totals


def test_reservations_spread_a_burst(book: ClusterTotals) -> None:
    # Twelve logins at once, none of whose pods has appeared yet.
    chosen = []
    for i in range(12):
        placement = book.choose(2, 4 * GiB)
        assert placement.node is not None
        book.reserve(f"jhub/jupyter-user{i}", placement.node, 2, 4 * GiB)
        chosen.append(placement.node)
    assert Counter(chosen) == {"a": 3, "b": 3, "c": 3, "d": 3}


def test_without_reservations_a_burst_piles_up(book: ClusterTotals) -> None:
    # The contrast that makes the test above meaningful.
    assert {book.choose(2, 4 * GiB).node for _ in range(12)} == {"a"}


def test_reservation_counts_until_its_pod_is_bound(book: ClusterTotals) -> None:
    book.reserve("jhub/jupyter-alice", "a", 2, 4 * GiB)
    assert book.totals("a").cpu_reserved == 2000
    pending = pod("jupyter-alice", None, cpu="2", memory="4Gi", namespace="jhub", phase="Pending")
    book.set_pod(pending)
    assert book.totals("a").cpu_reserved == 2000  # not bound yet: still reserved
    book.set_pod(pod("jupyter-alice", "a", cpu="2", memory="4Gi", namespace="jhub"))
    totals = book.totals("a")
    assert (totals.cpu_reserved, totals.pods_reserved) == (0, 0)
    assert (totals.cpu_requested, totals.pods) == (2000, 1)  # counted once, as itself
    assert book.reservations() == {}


def test_reservation_taken_over_by_a_pod_on_another_node(book: ClusterTotals) -> None:
    book.reserve("jhub/jupyter-alice", "a", 2, 4 * GiB)
    book.set_pod(pod("jupyter-alice", "b", cpu="2", memory="4Gi", namespace="jhub"))
    assert book.totals("a").cpu_reserved == 0
    assert book.totals("b").cpu_requested == 2000


def test_release_drops_a_reservation(book: ClusterTotals) -> None:
    book.reserve("jhub/jupyter-alice", "a", 2, 4 * GiB)
    assert book.release("jhub/jupyter-alice") is True
    assert book.release("jhub/jupyter-alice") is False
    assert book.totals("a").cpu_reserved == 0


def test_reservation_expires(book: ClusterTotals, clock: Clock) -> None:
    book.reserve("jhub/jupyter-alice", "a", 2, 4 * GiB)
    clock.now = 59.0
    assert book.totals("a").cpu_reserved == 2000
    clock.now = 60.0
    assert book.totals("a").cpu_reserved == 0
    assert book.choose(2, 4 * GiB).node == "a"


def test_reserving_again_replaces_and_restarts_the_timer(book: ClusterTotals, clock: Clock) -> None:
    book.reserve("jhub/jupyter-alice", "a", 2, 4 * GiB)
    clock.now = 50.0
    book.reserve("jhub/jupyter-alice", "b", 1, GiB)
    assert book.totals("a").cpu_reserved == 0
    clock.now = 70.0  # the first reservation's expiry must not drop the second one
    assert book.totals("b").cpu_reserved == 1000
    clock.now = 110.0
    assert book.totals("b").cpu_reserved == 0


def test_reservation_fills_a_node(book: ClusterTotals) -> None:
    for name in ("b", "c", "d"):
        book.remove_node(name)
    book.reserve("jhub/big", "a", 15, GiB)
    placement = book.choose(2, GiB)
    assert placement.node is None
    assert "1 has too little free CPU" in placement.reason


def test_reservations_count_as_unmeasured_usage(book: ClusterTotals) -> None:
    book.set_usage({name: NodeUsage(1.0, GiB) for name in ("a", "b", "c", "d")})
    book.reserve("jhub/x", "a", 8, GiB)
    placement = book.choose(1, GiB, load_metric="usage")
    assert placement.node == "b"
    assert placement.usage_cpu_fraction == pytest.approx(2 / 16)


def test_usage_window_prunes_measured_pods(book: ClusterTotals) -> None:
    book.set_pod(pod("p", "a", cpu="4", created="2026-01-01T00:00:00Z"))
    book.set_pod(pod("q", "a", cpu="2", created="2026-01-01T00:10:00Z"))
    before_q = 1767225900.0  # 2026-01-01T00:05:00Z
    book.set_usage({"a": NodeUsage(1.0, GiB, before_q)})
    assert book.totals("a").cpu_unmeasured == 2000
    book.set_usage({"a": NodeUsage(1.0, GiB, before_q + 3600)})
    assert book.totals("a").cpu_unmeasured == 0
    book.set_usage(None)
    assert book.totals("a").usage is None


def test_pods_before_their_node_are_counted_when_it_arrives() -> None:
    book = ClusterTotals()
    book.set_pod(pod("p", "late", cpu="6"))
    book.set_node(node("late", cpu="8"))
    book.set_node(node("other", cpu="8"))
    assert book.choose(4, 0).node == "other"
    assert book.totals("late").cpu_requested == 6000


def test_deleted_node_is_never_chosen(book: ClusterTotals) -> None:
    for name in ("a", "b", "c"):
        book.remove_node(name)
    assert book.choose(1, GiB).node == "d"
    book.remove_node("d")
    assert book.choose(1, GiB).node is None
    assert book.node_names() == []


def test_node_turning_not_ready_is_skipped(book: ClusterTotals) -> None:
    book.set_node(node("a", cpu="16", memory="64Gi", ready=False))
    assert book.choose(1, GiB).node == "b"
    book.set_node(node("a", cpu="16", memory="64Gi"))
    assert book.choose(1, GiB).node == "a"


def test_label_change_updates_cached_selector_masks(book: ClusterTotals) -> None:
    assert book.choose(1, GiB, node_selector={"gpu": "yes"}).node is None
    book.set_node(node("c", cpu="16", memory="64Gi", labels={"gpu": "yes"}))
    assert book.choose(1, GiB, node_selector={"gpu": "yes"}).node == "c"


def test_many_nodes_grow_the_arrays() -> None:
    book = ClusterTotals()
    for i in range(300):
        book.set_node(node(f"n{i:03d}", cpu="4"))
        book.set_pod(pod(f"p{i}", f"n{i:03d}", cpu="1" if i != 257 else "0"))
    assert book.choose(1, 0, node_selector={"kubernetes.io/hostname": "n257"}).node == "n257"
    assert book.choose(1, 0).node == "n257"


def test_malformed_objects_are_rejected_on_relist(book: ClusterTotals) -> None:
    bad_node = node("bad", cpu="lots")
    bad_pod = pod("bad", "a", cpu="lots")
    rejected = book.replace_nodes([node("a"), bad_node])
    assert [name for name, _ in rejected] == ["bad"]
    assert book.node_names() == ["a"]
    rejected = book.replace_pods([pod("good", "a"), bad_pod])
    assert [key for key, _ in rejected] == ["default/bad"]
    assert book.totals("a").pods == 1


def test_relist_drops_vanished_pods(book: ClusterTotals) -> None:
    book.set_pod(pod("p", "a", cpu="4"))
    book.set_pod(pod("q", "a", cpu="2"))
    book.replace_pods([pod("q", "a", cpu="2")])
    assert book.totals("a").cpu_requested == 2000


def test_ties_go_to_the_lowest_name_after_nodes_come_and_go(book: ClusterTotals) -> None:
    assert book.choose(1, GiB).node == "a"
    book.set_node(node("0-new", cpu="16", memory="64Gi"))
    assert book.choose(1, GiB).node == "0-new"
    book.remove_node("0-new")
    book.remove_node("a")
    assert book.choose(1, GiB).node == "b"
    book.set_node(node("aa", cpu="16", memory="64Gi"))  # reuses a's slot
    assert book.choose(1, GiB).node == "aa"
