"""Login throttling per username and client address, with a per-name ceiling.

Two limits apply to every login attempt, both counted when the attempt
*starts* (in flight), so that any number of simultaneous attempts cannot get
past them:

* **Hard limit per (username, address).** At most ``limit`` wrong passwords
  within ``window`` seconds from one client address for one name; attempts in
  flight count as failures until they end. Further attempts from that address
  are refused without asking the directory. Someone hammering a name from their
  address locks out only that address, never the name.
* **Ceiling per username, across all addresses.** A token bucket of
  ``name_limit`` tokens that refills one token every ``window / name_limit``
  seconds: a burst of ``name_limit`` attempts, then one every
  ``window / name_limit`` seconds however many addresses take part. An attempt
  with no token waits for the next one when that is at most ``max_wait``
  seconds away (the caller sleeps), else it is refused. A distributed guesser
  therefore gets at most ``name_limit`` wrong passwords per ``window`` to the
  directory over time (at most ``2 * name_limit`` in the first window, burst
  included), while the owner is merely slowed, not locked out.

A wrong password keeps its place in both counts; an attempt that succeeds
gives its name token back and clears the failures of its address; an attempt
that ends in a directory error gives its token back without counting a
failure.

State lives in memory (one hub process) and is bounded by ``max_names``
usernames. When full, the least recently used name that restricts nothing is
forgotten: one with no attempt in flight, a full bucket and no address at its
limit, so forgetting it changes no decision. Names that are throttled or in
flight are never forgotten in favor of new ones; when no name can be
forgotten, an attempt for a new name is refused (:attr:`Refusal.MEMORY`).
Addresses are remembered per name only while they have a failure in the
window or an attempt in flight, which the ceiling bounds: about
``3 * name_limit + max_wait * name_limit / window`` of them per name at most.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Attempt", "LoginThrottle", "LoginThrottledError", "Refusal"]

#: How many remembered names one new name may look at to find one to forget,
#: so a table full of throttled names costs a bounded amount of work per attempt.
_EVICTION_SCAN = 64


class Refusal(enum.Enum):
    """Why an attempt was refused."""

    #: The address reached the hard limit for this name.
    ADDRESS = "address"
    #: The name's ceiling is reached and the next slot is more than ``max_wait`` away.
    NAME = "name"
    #: The memory bound is full of names that are throttled or in flight.
    MEMORY = "memory"


class LoginThrottledError(Exception):
    """An attempt refused by the throttle; it must not reach the directory.

    Attributes
    ----------
    reason
        Which limit refused it.
    retry_after
        Seconds after which a new attempt could pass that limit (an estimate
        when attempts are in flight).
    """

    def __init__(self, reason: Refusal, retry_after: float) -> None:
        super().__init__(f"{reason.value}: retry after {retry_after:.1f} s")
        self.reason = reason
        self.retry_after = retry_after


@dataclass(eq=False)
class Attempt:
    """One admitted login attempt; end it with exactly one of the throttle's
    :meth:`~LoginThrottle.failed`, :meth:`~LoginThrottle.succeeded` or
    :meth:`~LoginThrottle.release` (further calls are ignored).

    Attributes
    ----------
    name, address
        What it was admitted for.
    delay
        Seconds the caller must wait before asking the directory (its slot
        under the name's ceiling); 0 for most attempts.
    """

    name: str
    address: str
    delay: float
    open: bool = field(default=True, repr=False)


@dataclass
class _Address:
    failures: deque[float]
    in_flight: int = 0


@dataclass
class _Name:
    tokens: float
    updated: float
    in_flight: int = 0
    addresses: dict[str, _Address] = field(default_factory=dict)


class LoginThrottle:
    """Admit login attempts within the limits described in the module docstring.

    Parameters
    ----------
    limit
        Wrong passwords allowed per (username, address) within ``window``,
        attempts in flight included; 0 turns all throttling off.
    window
        Length of the window in seconds.
    name_limit
        Ceiling per username across all addresses: burst size and the number
        of attempts per ``window`` once it is used up.
    max_wait
        Longest wait in seconds for a slot under the ceiling; an attempt whose
        slot is further away is refused.
    max_names
        How many usernames are remembered at most.
    clock
        Monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        name_limit: int,
        max_wait: float,
        max_names: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        self.limit = limit
        self.window = float(window)
        self.name_limit = max(1, name_limit)
        self.max_wait = max(0.0, float(max_wait))
        self.max_names = max(1, max_names)
        self._clock = clock
        self._names: OrderedDict[str, _Name] = OrderedDict()

    @property
    def interval(self) -> float:
        """Seconds between two slots once a name's ceiling is used up."""
        return self.window / self.name_limit

    def __len__(self) -> int:
        """How many usernames are remembered now."""
        return len(self._names)

    # -- state helpers -------------------------------------------------------
    def _refill(self, state: _Name, now: float) -> None:
        elapsed = max(0.0, now - state.updated)
        state.tokens = min(float(self.name_limit), state.tokens + elapsed / self.interval)
        state.updated = now

    def _prune(self, entry: _Address, now: float) -> None:
        cutoff = now - self.window
        while entry.failures and entry.failures[0] <= cutoff:
            entry.failures.popleft()

    def _address_full(self, entry: _Address) -> bool:
        return len(entry.failures) + entry.in_flight >= self.limit

    def _restricts(self, state: _Name, now: float) -> bool:
        """Whether forgetting ``state`` could change any decision."""
        if state.in_flight:
            return True
        self._refill(state, now)
        if state.tokens < self.name_limit:
            return True
        for address, entry in list(state.addresses.items()):
            self._prune(entry, now)
            if self._address_full(entry):
                return True
            if not entry.failures:
                del state.addresses[address]
        return False

    def _make_room(self, now: float) -> bool:
        """Forget one name that restricts nothing, least recently used first."""
        for _ in range(min(_EVICTION_SCAN, len(self._names))):
            name, state = next(iter(self._names.items()))
            if not self._restricts(state, now):
                del self._names[name]
                return True
            # Looked at, still needed: to the back, so the next look starts elsewhere.
            self._names.move_to_end(name)
        return False

    # -- public API ----------------------------------------------------------
    def begin(self, name: str, address: str) -> Attempt:
        """Admit an attempt for ``name`` from ``address`` (``""``: unknown address).

        Returns
        -------
        Attempt
            Counted in flight from now on; wait ``attempt.delay`` seconds before
            asking the directory.

        Raises
        ------
        LoginThrottledError
            When a limit refuses the attempt; nothing is counted then.
        """
        if self.limit <= 0:
            return Attempt(name, address, 0.0, open=False)
        now = self._clock()
        state = self._names.get(name)
        if state is None:
            if len(self._names) >= self.max_names and not self._make_room(now):
                raise LoginThrottledError(Refusal.MEMORY, self.interval)
            state = _Name(tokens=float(self.name_limit), updated=now)
            self._names[name] = state
        else:
            self._names.move_to_end(name)
        self._refill(state, now)

        entry = state.addresses.get(address)
        if entry is None:
            entry = _Address(deque(maxlen=self.limit))
        self._prune(entry, now)
        if self._address_full(entry):
            raise LoginThrottledError(Refusal.ADDRESS, self._address_retry(entry, now))

        delay = 0.0
        if state.tokens < 1:
            delay = (1 - state.tokens) * self.interval
            if delay > self.max_wait:
                raise LoginThrottledError(Refusal.NAME, delay)
        state.tokens -= 1
        state.in_flight += 1
        entry.in_flight += 1
        state.addresses[address] = entry
        return Attempt(name, address, delay)

    def _address_retry(self, entry: _Address, now: float) -> float:
        # The oldest failure whose leaving frees a place; attempts still in flight
        # may yet fail, so when they fill the budget assume they will.
        leaving = len(entry.failures) + entry.in_flight - self.limit
        if leaving < len(entry.failures):
            return max(0.0, entry.failures[leaving] + self.window - now)
        return self.window

    def _end(self, attempt: Attempt, *, failed: bool, succeeded: bool) -> None:
        if not attempt.open:
            return
        attempt.open = False
        # Names in flight are never forgotten: the state is missing only when the
        # attempt came from another throttle, and then there is nothing to end.
        state = self._names.get(attempt.name)
        entry = state.addresses.get(attempt.address) if state else None
        if state is None or entry is None:
            return
        now = self._clock()
        self._refill(state, now)
        state.in_flight -= 1
        entry.in_flight -= 1
        if failed:
            entry.failures.append(now)
        else:
            # Not a wrong password: its slot under the ceiling is given back.
            state.tokens = min(float(self.name_limit), state.tokens + 1)
        if succeeded:
            entry.failures.clear()
        if not entry.in_flight and not entry.failures:
            del state.addresses[attempt.address]
        if not state.in_flight and not state.addresses and state.tokens >= self.name_limit:
            del self._names[attempt.name]

    def failed(self, attempt: Attempt) -> None:
        """End ``attempt`` as a wrong password (or unknown user): it stays counted."""
        self._end(attempt, failed=True, succeeded=False)

    def succeeded(self, attempt: Attempt) -> None:
        """End ``attempt`` as a right password: clears its address's failures."""
        self._end(attempt, failed=False, succeeded=True)

    def release(self, attempt: Attempt) -> None:
        """End ``attempt`` without a verdict on the password (directory error,
        canceled): it counts as nothing."""
        self._end(attempt, failed=False, succeeded=False)
