"""The wrapper's life: campaign for the Lease, run the hub while leading, fence, hand over.

::

    standby ──attempt every retry period──► leader ──► hub started
    leader: renew every retry period; the watchdog fences past the renew deadline
      lease lost (deadline passed, or another holder) ─► hub stopped (SIGTERM,
          SIGKILL after fence_kill_after) ─► exit 3, lease not touched
      SIGTERM/SIGINT/SIGHUP ─► hub stopped (stop_timeout, renewing meanwhile)
          ─► lease released (standby takes over at its next attempt) ─► exit 0
      hub exits by itself ─► lease released ─► exit with the hub's code

Each step is logged with ``event=NAME t=UNIX_TIME`` so that the order of two
wrappers' steps can be read from their logs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Sequence

from kubernetes_asyncio import client, config

from .child import Child, become_subreaper, exit_code, jupyterhub_args, stop_leftovers
from .lease import LeaseCandidate
from .settings import HASettings
from .watchdog import Watchdog

__all__ = ["EXIT_LOST", "child_environment", "kube_configuration", "run"]

log = logging.getLogger("lsst_hub.ha")

#: The wrapper's exit code after it lost the Lease and stopped its hub.
EXIT_LOST = 3
#: Signals that ask the wrapper to hand over (stop the hub, release the Lease).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def event(what: str, **fields: object) -> None:
    """Log one step of the wrapper's life with its wall-clock time."""
    extra = "".join(f" {k}={v}" for k, v in fields.items())
    log.info("event=%s t=%.6f%s", what, time.time(), extra)


def child_environment(settings: HASettings) -> dict[str, str]:
    """The hub's environment: the wrapper's, plus what tells it that it runs in HA mode."""
    env = dict(os.environ)
    env["LSST_HUB_HA"] = "1"
    env["LSST_HUB_HA_IDENTITY"] = settings.identity
    env["LSST_HUB_HA_LEASE"] = f"{settings.lease_namespace}/{settings.lease_name}"
    return env


async def kube_configuration() -> client.Configuration:
    """In-cluster configuration, else the kubeconfig named by ``KUBECONFIG``."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        await config.load_kube_config(client_configuration=configuration)
    return configuration


class _Signals:
    """Stop requests from signals: the first asks for a handover, a second for SIGKILL."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.count = 0
        self.child: Child | None = None
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        self.count += 1
        event("signal", name=signal.Signals(signum).name)
        if self.count > 1 and self.child is not None:
            log.warning("second stop signal: SIGKILL to the hub")
            self.child.send(signal.SIGKILL)
        self.requested.set()

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _wait(event_: asyncio.Event, seconds: float) -> bool:
    """Whether ``event_`` was set within ``seconds``."""
    try:
        await asyncio.wait_for(event_.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def _campaign(candidate: LeaseCandidate, stop: asyncio.Event) -> float | None:
    """Attempt until the Lease is ours: the monotonic start of the winning attempt.

    None when a stop was requested first.
    """
    s = candidate.settings
    seen: tuple[str | None, str | None] | None = None
    while True:
        started = time.monotonic()
        attempt = await candidate.attempt(s.call_timeout)
        if attempt.held:
            return started
        if (attempt.holder, attempt.error) != seen:  # log changes, not every attempt
            seen = (attempt.holder, attempt.error)
            if attempt.error:
                log.warning(
                    "standby: lease %s/%s: %s", s.lease_namespace, s.lease_name, attempt.error
                )
            else:
                event("standby", holder=attempt.holder)
        pause = s.retry_period - (time.monotonic() - started)
        expires = candidate.expires_in()
        if expires is not None:
            # Attempt just after the holder's Lease expires rather than up to a retry
            # period later: a second saved on every failover.
            pause = min(pause, expires + 0.05)
        if await _wait(stop, max(0.0, pause)):
            return None


async def _renew(candidate: LeaseCandidate, watchdog: Watchdog, lost: asyncio.Event) -> None:
    """Renew every retry period until the Lease is lost; then set ``lost``."""
    s = candidate.settings
    while True:
        await asyncio.sleep(s.retry_period)
        started = time.monotonic()
        if watchdog.expired:
            break
        remaining = s.renew_deadline - (started - watchdog.last_renewed)
        attempt = await candidate.attempt(max(0.05, min(s.call_timeout, remaining)))
        if attempt.held:
            watchdog.renewed(started)
            continue
        if attempt.holder is not None and attempt.holder != s.identity:
            log.error("lease %s/%s taken by %r", s.lease_namespace, s.lease_name, attempt.holder)
            break
        log.warning("renewal failed: %s", attempt.error or "not held")
        if watchdog.expired:
            break
    event("lease-lost")
    lost.set()


def _park(settings: HASettings, command: Sequence[str]) -> Child | None:
    """A parked hub (:mod:`.warm`) for a standby, if the command allows one."""
    args = jupyterhub_args(command) if settings.warm else None
    if args is None:
        return None
    child = Child(command, child_environment(settings), warm=args)
    event("hub-parked", pid=child.pid)

    def warmed(ready: asyncio.Future[bool]) -> None:
        if not ready.cancelled() and ready.result():
            event("hub-warm", pid=child.pid)

    child.ready.add_done_callback(warmed)
    return child


async def _lead(
    candidate: LeaseCandidate,
    won_at: float,
    command: Sequence[str],
    signals: _Signals,
    parked: Child | None,
) -> int:
    s = candidate.settings
    event("leading", identity=s.identity)
    if parked is not None and parked.returncode is None:
        child = parked
        child.go()
    else:
        if parked is not None:
            log.warning("the parked hub exited (%s): starting the hub cold", parked.returncode)
            parked.close()
        child = Child(command, child_environment(s))
    signals.child = child
    event("hub-started", pid=child.pid, warm=str(child.warm).lower())
    watchdog = Watchdog(s.renew_deadline, s.fence_kill_after, child.send)
    watchdog.renewed(won_at)
    watchdog.start()
    lost = asyncio.Event()
    renewing = asyncio.create_task(_renew(candidate, watchdog, lost))
    exited = asyncio.create_task(child.wait())
    lost_wait = asyncio.create_task(lost.wait())
    stop_wait = asyncio.create_task(signals.requested.wait())
    stopping: asyncio.Task[int] | None = None
    try:
        await asyncio.wait({exited, lost_wait, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        handover = False
        if not exited.done() and not lost.is_set() and signals.requested.is_set():
            # Stop gracefully while still renewing; the watchdog still fences.
            stopping = asyncio.create_task(child.stop(s.stop_timeout))
            await asyncio.wait({stopping, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
            handover = not lost.is_set()
        if not exited.done():  # lost the Lease: stop now, within the fence's bound
            await child.stop(s.fence_kill_after)
        code = await child.wait()
        lost_lease = lost.is_set() or watchdog.fired_at is not None
        watchdog.stop()
        renewing.cancel()
        event("hub-exited", pid=child.pid, code=code)
        await stop_leftovers(s.fence_kill_after if lost_lease else 5.0)
        if lost_lease:
            return EXIT_LOST
        released = await candidate.release(s.call_timeout)
        event("released" if released else "not-released")
        return 0 if handover or signals.requested.is_set() else exit_code(code)
    finally:
        watchdog.stop()
        for task in (renewing, exited, lost_wait, stop_wait, stopping):
            if task is not None:
                task.cancel()
        child.close()


async def run(settings: HASettings, command: Sequence[str]) -> int:
    """Campaign, lead and hand over; the wrapper's exit code.

    Parameters
    ----------
    settings
        The Lease and timings.
    command
        The hub's command line, run while this candidate leads.
    """
    signals = _Signals()
    try:
        configuration = await kube_configuration()
        async with client.ApiClient(configuration) as api:
            candidate = LeaseCandidate(settings, api)
            event(
                "candidate",
                identity=settings.identity,
                lease=f"{settings.lease_namespace}/{settings.lease_name}",
            )
            # Children are ours to reap and to end: also what the hub leaves behind.
            become_subreaper()
            parked = _park(settings, command)
            won_at = await _campaign(candidate, signals.requested)
            if won_at is None:
                if parked is not None:
                    await parked.stop(settings.fence_kill_after)
                    parked.close()
                event("exit", code=0, reason="stopped as a standby")
                return 0
            code = await _lead(candidate, won_at, command, signals, parked)
            event("exit", code=code)
            return code
    finally:
        signals.close()
