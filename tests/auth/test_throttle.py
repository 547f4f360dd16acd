"""Login throttling, pure: :class:`LoginThrottle` with a hand-driven clock (no sleeps)."""

from __future__ import annotations

import pytest

from lsst_hub.auth.throttle import Attempt, LoginThrottle, LoginThrottledError, Refusal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(throttle: LoginThrottle, name: str, address: str = "a") -> Refusal:
    with pytest.raises(LoginThrottledError) as info:
        throttle.begin(name, address)
    return info.value.reason


def fail(throttle: LoginThrottle, name: str, address: str = "a") -> None:
    throttle.failed(throttle.begin(name, address))


# -- hard limit per (name, address) ------------------------------------------


def test_throttled_after_limit_failures_within_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(3, 60, name_limit=12, max_wait=5, max_names=100_000, clock=clock)
    for _ in range(3):
        fail(throttle, "alice")
    with pytest.raises(LoginThrottledError) as info:
        throttle.begin("alice", "a")
    assert info.value.reason is Refusal.ADDRESS
    assert info.value.retry_after == 60


def test_attempts_in_flight_count_against_the_limit() -> None:
    # 200 attempts start before any of them ends: only `limit` are admitted.
    throttle = LoginThrottle(3, 60, name_limit=12, max_wait=5, max_names=100_000, clock=Clock())
    admitted: list[Attempt] = []
    refusals = 0
    for _ in range(200):
        try:
            admitted.append(throttle.begin("alice", "a"))
        except LoginThrottledError as exc:
            assert exc.reason is Refusal.ADDRESS
            refusals += 1
    assert (len(admitted), refusals) == (3, 197)
    for attempt in admitted:
        throttle.failed(attempt)
    assert refused(throttle, "alice") is Refusal.ADDRESS


def test_success_releases_its_place_and_clears_failures() -> None:
    throttle = LoginThrottle(2, 60, name_limit=8, max_wait=5, max_names=100_000, clock=Clock())
    fail(throttle, "alice")
    attempt = throttle.begin("alice", "a")
    assert refused(throttle, "alice") is Refusal.ADDRESS  # 1 failure + 1 in flight
    throttle.succeeded(attempt)
    fail(throttle, "alice")
    fail(throttle, "alice")  # the earlier failure was cleared: two more allowed
    assert refused(throttle, "alice") is Refusal.ADDRESS


def test_directory_error_releases_without_counting() -> None:
    throttle = LoginThrottle(2, 60, name_limit=8, max_wait=5, max_names=100_000, clock=Clock())
    for _ in range(10):
        throttle.release(throttle.begin("alice", "a"))
    fail(throttle, "alice")
    fail(throttle, "alice")
    assert refused(throttle, "alice") is Refusal.ADDRESS


def test_ending_an_attempt_twice_counts_once() -> None:
    throttle = LoginThrottle(2, 60, name_limit=8, max_wait=5, max_names=100_000, clock=Clock())
    attempt = throttle.begin("alice", "a")
    throttle.failed(attempt)
    throttle.failed(attempt)
    throttle.release(attempt)
    fail(throttle, "alice")
    assert refused(throttle, "alice") is Refusal.ADDRESS


def test_throttle_ends_when_failures_leave_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(2, 60, name_limit=8, max_wait=5, max_names=100_000, clock=clock)
    fail(throttle, "alice")
    clock.now += 30
    fail(throttle, "alice")
    with pytest.raises(LoginThrottledError) as info:
        throttle.begin("alice", "a")
    assert info.value.retry_after == 30  # the first failure leaves in 30 s...
    clock.now += 30
    fail(throttle, "alice")  # ...and now it has
    assert refused(throttle, "alice") is Refusal.ADDRESS


def test_other_addresses_and_names_are_not_locked_out() -> None:
    throttle = LoginThrottle(2, 60, name_limit=8, max_wait=5, max_names=100_000, clock=Clock())
    fail(throttle, "alice", "attacker")
    fail(throttle, "alice", "attacker")
    assert refused(throttle, "alice", "attacker") is Refusal.ADDRESS
    owner = throttle.begin("alice", "owner")
    assert owner.delay == 0
    throttle.succeeded(owner)
    throttle.succeeded(throttle.begin("bob", "attacker"))
    # The owner's success does not free the attacker's address.
    assert refused(throttle, "alice", "attacker") is Refusal.ADDRESS


def test_limit_zero_disables() -> None:
    throttle = LoginThrottle(0, 60, name_limit=1, max_wait=5, max_names=100_000, clock=Clock())
    for _ in range(100):
        fail(throttle, "alice")
    assert throttle.begin("alice", "a").delay == 0
    assert len(throttle) == 0


# -- ceiling per name, across addresses ---------------------------------------


def test_ceiling_caps_a_distributed_guesser() -> None:
    clock = Clock()
    # 10 per 100 s per name: one slot every 10 s once the burst is used.
    throttle = LoginThrottle(3, 100, name_limit=10, max_wait=0, max_names=100_000, clock=clock)
    admitted = []
    for i in range(1000):
        try:
            admitted.append(throttle.begin("alice", f"10.0.{i // 250}.{i % 250}"))
        except LoginThrottledError as exc:
            assert exc.reason is Refusal.NAME
    assert len(admitted) == 10
    for attempt in admitted:
        throttle.failed(attempt)
    # Over 10 windows, one new address per second: 10 burst + 1 per 10 s.
    reached = len(admitted)
    for second in range(1000):
        clock.now += 1
        try:
            fail(throttle, "alice", f"192.0.2.{second % 250}-{second}")
            reached += 1
        except LoginThrottledError as exc:
            assert exc.reason is Refusal.NAME
    assert reached <= 10 + 1000 // 10
    assert reached >= 100  # the guesser was slowed, not shut out for good


def test_ceiling_slows_the_owner_within_max_wait_instead_of_refusing() -> None:
    clock = Clock()
    throttle = LoginThrottle(2, 100, name_limit=4, max_wait=30, max_names=100_000, clock=clock)
    for address in ("a", "a", "b", "b"):
        fail(throttle, "alice", address)
    # The ceiling is used up: the next slot is 25 s away (100 s / 4), within max_wait.
    owner = throttle.begin("alice", "owner")
    assert owner.delay == pytest.approx(25)
    # The following slot is 50 s away: beyond max_wait, refused, and not counted.
    with pytest.raises(LoginThrottledError) as info:
        throttle.begin("alice", "c")
    assert info.value.reason is Refusal.NAME
    assert info.value.retry_after == pytest.approx(50)
    clock.now += 25
    throttle.succeeded(owner)  # a success gives its slot back...
    clock.now += 5
    assert throttle.begin("alice", "c").delay == 0  # ...taken at once
    assert throttle.begin("alice", "d").delay == pytest.approx(20)  # 1.2 slots were free


def test_refused_attempts_take_no_slot() -> None:
    clock = Clock()
    throttle = LoginThrottle(1, 100, name_limit=2, max_wait=0, max_names=100_000, clock=clock)
    fail(throttle, "alice", "attacker")
    for _ in range(50):  # hammering from a throttled address costs the name nothing
        assert refused(throttle, "alice", "attacker") is Refusal.ADDRESS
    throttle.succeeded(throttle.begin("alice", "owner"))


def test_default_ceiling_is_four_times_the_limit() -> None:
    # The default is the trait's (failed_login_name_limit), the throttle's only source.
    from lsst_hub.auth import LDAPAuthenticator

    throttle = LDAPAuthenticator(failed_login_limit=5, failed_login_window=300).throttle
    assert throttle.name_limit == 20
    assert throttle.interval == 15


# -- memory bound ---------------------------------------------------------------


def test_memory_is_bounded_by_forgetting_names_that_restrict_nothing() -> None:
    clock = Clock()
    throttle = LoginThrottle(2, 60, name_limit=10, max_wait=5, max_names=10, clock=clock)
    for i in range(100):
        fail(throttle, f"user{i}")
        clock.now += 6  # one slot refills: the bucket of user{i} is full again
    assert len(throttle) == 10


def test_eviction_never_frees_a_throttled_name() -> None:
    clock = Clock()
    # One slot refills every 1 ms: a made-up name restricts nothing 1 ms after its try.
    throttle = LoginThrottle(2, 600, name_limit=600_000, max_wait=5, max_names=10, clock=clock)
    fail(throttle, "victim")
    fail(throttle, "victim")
    for i in range(100_000):  # 100 s in all, well within the victim's window
        clock.now += 0.001
        fail(throttle, f"made-up{i}")
    assert len(throttle) <= 10
    assert refused(throttle, "victim") is Refusal.ADDRESS


def test_eviction_never_frees_a_name_in_flight_or_slowed() -> None:
    clock = Clock()
    throttle = LoginThrottle(5, 600, name_limit=2, max_wait=0, max_names=3, clock=clock)
    in_flight = throttle.begin("pending", "a")
    fail(throttle, "slowed", "a")
    fail(throttle, "slowed", "b")
    clock.now += 1
    throttle.release(throttle.begin("idle", "a"))  # fresh again: not even remembered
    fail(throttle, "idle", "a")
    clock.now += 600  # idle's bucket and failure are gone; slowed's bucket too
    fail(throttle, "slowed", "a")
    fail(throttle, "slowed", "b")
    for i in range(50):
        clock.now += 0.1
        try:
            fail(throttle, f"made-up{i}")
        except LoginThrottledError as exc:
            assert exc.reason is Refusal.MEMORY
    assert refused(throttle, "slowed", "c") is Refusal.NAME
    throttle.failed(in_flight)
    assert "pending" in throttle._names


def test_full_of_throttled_names_refuses_new_names() -> None:
    clock = Clock()
    throttle = LoginThrottle(1, 600, name_limit=4, max_wait=5, max_names=3, clock=clock)
    for name in ("alice", "bob", "carol"):
        fail(throttle, name)
    assert refused(throttle, "dave") is Refusal.MEMORY
    for name in ("alice", "bob", "carol"):
        assert refused(throttle, name) is Refusal.ADDRESS
    clock.now += 601  # the failures left the window: room again
    throttle.succeeded(throttle.begin("dave", "a"))
