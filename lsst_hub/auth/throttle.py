"""Failed-login throttling, per username.

After ``limit`` failures within ``window`` seconds, further attempts for that
username are refused without asking the directory, until the oldest failure
leaves the window. Other usernames are not affected. State lives in memory
(one hub process), bounded in size so a flood of made-up names cannot grow it
without limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

__all__ = ["LoginThrottle"]


class LoginThrottle:
    """Count failed logins per key in a sliding time window.

    Parameters
    ----------
    limit
        Failures allowed within ``window``; 0 turns throttling off.
    window
        Length of the window in seconds.
    max_keys
        How many usernames are remembered; the least recently failed are
        forgotten first.
    clock
        Monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        cutoff = self._clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it is not throttled."""
        if self.limit <= 0:
            return 0.0
        times = self._recent(key)
        if times is None or len(times) < self.limit:
            return 0.0
        # The attempt is allowed again once enough old failures leave the window.
        return max(0.0, times[-self.limit] + self.window - self._clock())

    def failed(self, key: str) -> None:
        """Record one failed attempt for ``key``."""
        if self.limit <= 0:
            return
        times = self._recent(key)
        if times is None:
            times = self._failures[key] = deque(maxlen=self.limit)
        times.append(self._clock())
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key`` after a successful login."""
        self._failures.pop(key, None)
