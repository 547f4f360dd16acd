"""Failed-login throttling (pure, with a hand-driven clock)."""

from __future__ import annotations

from lsst_hub.auth.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttled_after_limit_failures_within_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(3, 60, clock=clock)
    for _ in range(2):
        throttle.failed("alice")
        assert throttle.retry_after("alice") == 0
    throttle.failed("alice")
    assert throttle.retry_after("alice") == 60


def test_other_users_are_not_affected() -> None:
    throttle = LoginThrottle(2, 60, clock=Clock())
    throttle.failed("alice")
    throttle.failed("alice")
    assert throttle.retry_after("alice") > 0
    assert throttle.retry_after("bob") == 0


def test_throttle_ends_when_failures_leave_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(2, 60, clock=clock)
    throttle.failed("alice")
    clock.now += 30
    throttle.failed("alice")
    assert throttle.retry_after("alice") == 30  # the first failure leaves in 30 s...
    clock.now += 30
    assert throttle.retry_after("alice") == 0  # ...and now it has
    clock.now += 29
    assert throttle.retry_after("alice") == 0


def test_success_forgets_failures() -> None:
    throttle = LoginThrottle(2, 60, clock=Clock())
    throttle.failed("alice")
    throttle.succeeded("alice")
    throttle.failed("alice")
    assert throttle.retry_after("alice") == 0


def test_limit_zero_disables() -> None:
    throttle = LoginThrottle(0, 60, clock=Clock())
    for _ in range(100):
        throttle.failed("alice")
    assert throttle.retry_after("alice") == 0


def test_memory_is_bounded() -> None:
    throttle = LoginThrottle(1, 60, max_keys=10, clock=Clock())
    for i in range(100):
        throttle.failed(f"user{i}")
    assert throttle.retry_after("user99") > 0
    assert throttle.retry_after("user0") == 0  # forgotten, oldest first
    assert len(throttle._failures) == 10
