"""The fence: stop the hub when the last renewal is older than the renew deadline.

A thread of its own, so it acts whatever the renewal call or the event loop is
doing (a call hung on a black-holed API server, a stalled loop). Past the
deadline it sends the hub SIGTERM, and SIGKILL ``kill_after`` seconds later; both
happen before the Lease can expire, when a standby may take over.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

__all__ = ["Watchdog"]

log = logging.getLogger("lsst_hub.ha")


class Watchdog(threading.Thread):
    """Watches the time of the last successful renewal.

    Parameters
    ----------
    renew_deadline
        Seconds after the start of the last successful renewal at which the hub
        must stop.
    kill_after
        Seconds between SIGTERM and SIGKILL.
    send
        Signals the hub (safe from a thread; a no-op once it has exited).
    tick
        Seconds between checks.
    """

    def __init__(
        self,
        renew_deadline: float,
        kill_after: float,
        send: Callable[[int], None],
        tick: float = 0.05,
    ) -> None:
        super().__init__(name="lsst-hub-ha-watchdog", daemon=True)
        self.renew_deadline = renew_deadline
        self.kill_after = kill_after
        self._send = send
        self._tick = tick
        self._renewed = time.monotonic()
        self._lock = threading.Lock()
        self._done = threading.Event()
        #: When the fence fired (monotonic), or None.
        self.fired_at: float | None = None

    def renewed(self, at: float) -> None:
        """Record a successful renewal that started at ``at`` (``time.monotonic``)."""
        with self._lock:
            self._renewed = max(self._renewed, at)

    @property
    def last_renewed(self) -> float:
        """The monotonic start of the last successful renewal."""
        with self._lock:
            return self._renewed

    @property
    def expired(self) -> bool:
        """Whether the renew deadline has passed."""
        with self._lock:
            return time.monotonic() - self._renewed > self.renew_deadline

    def stop(self) -> None:
        """Stop watching (the hub has exited, or is being stopped on purpose)."""
        self._done.set()

    def run(self) -> None:
        """Check until stopped; fire once."""
        while not self._done.wait(self._tick):
            if self.fired_at is None and self.expired:
                self.fired_at = time.monotonic()
                log.error(
                    "event=fence t=%.6f: no renewal for %.1f s (renew deadline): "
                    "stopping the hub before the lease can expire",
                    time.time(),
                    self.renew_deadline,
                )
                self._send(signal.SIGTERM)
            if self.fired_at is not None and time.monotonic() - self.fired_at > self.kill_after:
                self._send(signal.SIGKILL)
                return
