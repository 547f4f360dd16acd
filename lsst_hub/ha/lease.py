"""One candidate's view of the Lease: attempts bounded in time, and a checked release.

Built on ``kubernetes_asyncio.leaderelection``: its :class:`LeaseLock` reads and
writes the Lease, and :meth:`LeaderElection.try_acquire_or_renew` decides, from the
record and when this candidate last saw it change, whether it may take or renew
the Lease (the client-go algorithm). What the library leaves out for fencing is
added here: every attempt has a time limit (a renewal into an unreachable API
server would otherwise wait forever), any error is a failed attempt (the library
lets a connection error escape), and the release checks that nobody else wrote
the Lease since this candidate last read it.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.leaderelection.electionconfig import Config
from kubernetes_asyncio.leaderelection.leaderelection import LeaderElection
from kubernetes_asyncio.leaderelection.leaderelectionrecord import LeaderElectionRecord
from kubernetes_asyncio.leaderelection.resourcelock.leaselock import LeaseLock

from .settings import HASettings

__all__ = ["Attempt", "LeaseCandidate"]

log = logging.getLogger("lsst_hub.ha")


async def _never() -> None:  # the library wants callbacks; this module calls none
    return None


def _microtime_now() -> str:
    """Now in UTC as a Kubernetes MicroTime (always six fraction digits)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Lock(LeaseLock):
    """The library's LeaseLock, with two changes.

    The Lease's times are written in UTC: the library (36.1) writes the local time
    labelled ``Z``, and skips renewTime when the time falls on a whole second, so
    other readers (kubectl, monitoring) would misjudge the Lease. Candidates
    themselves never rely on these times: they count from when they saw the record
    change.

    Until this process has held the Lease, a record naming this candidate is read
    as another holder's: the library would renew it at once, but the process that
    wrote it (an earlier run of a restarted container, or a second wrapper given
    the same ``--identity`` by mistake) may still run its hub. Waiting for that
    record to expire keeps two hubs from serving.
    """

    trust_own_record = False
    #: Why the last read failed (the library logs it and reports only "not held").
    error: str | None = None

    async def get(self, name: str, namespace: str) -> Any:
        found, record = await super().get(name, namespace)
        if not found and isinstance(record, ApiException) and record.status != 404:
            self.error = f"API error {record.status} {record.reason}"
        if (
            found
            and not self.trust_own_record
            and isinstance(record, LeaderElectionRecord)
            and record.holder_identity == self.identity
        ):
            record.holder_identity = f"{self.identity} (an earlier run)"
        return found, record

    def update_lease(self, record: Any, current_spec: Any = None) -> Any:
        previous = current_spec.holder_identity if current_spec is not None else None
        spec = super().update_lease(record, current_spec)
        now = _microtime_now()
        spec.renew_time = now
        if previous != spec.holder_identity or spec.acquire_time is None:
            spec.acquire_time = now
        return spec


@dataclass(frozen=True)
class Attempt:
    """The outcome of one attempt to take or renew the Lease.

    Attributes
    ----------
    held
        This candidate holds the Lease now.
    holder
        The holder seen in the Lease (None: unknown, the attempt failed).
    error
        Why the attempt failed, if it did (timeout, API error, no connection).
    """

    held: bool
    holder: str | None = None
    error: str | None = None


class LeaseCandidate:
    """Attempts to take, renew and release one Lease.

    Parameters
    ----------
    settings
        The Lease and timings.
    api
        An API client the caller opened and closes.
    """

    def __init__(self, settings: HASettings, api: client.ApiClient) -> None:
        self.settings = settings
        self._client = api
        self._api = client.CoordinationV1Api(api)
        self._lock = _Lock(settings.lease_name, settings.lease_namespace, settings.identity, api)
        self._election = LeaderElection(
            Config(
                self._lock,
                lease_duration=settings.lease_duration,
                renew_deadline=settings.renew_deadline,
                retry_period=settings.retry_period,
                onstarted_leading=_never,
                onstopped_leading=_never,
            )
        )

    async def attempt(self, limit: float) -> Attempt:
        """Try once to take or renew the Lease, giving up after ``limit`` seconds."""
        self._lock.error = None
        try:
            held = await asyncio.wait_for(self._election.try_acquire_or_renew(), limit)
        except TimeoutError:
            return Attempt(False, error=f"no answer within {limit:.1f} s")
        except ApiException as e:
            return Attempt(False, error=f"API error {e.status} {e.reason}")
        except Exception as e:  # any failure is a failed attempt, never a crash
            return Attempt(False, error=f"{type(e).__name__}: {e}")
        if held:
            self._lock.trust_own_record = True
        if self._lock.error is not None:
            return Attempt(False, error=self._lock.error)
        record = self._election.observed_record
        return Attempt(held, record.holder_identity if record else None)

    def expires_in(self) -> float | None:
        """Seconds until another holder's Lease may be taken over, as this candidate sees it.

        Counted, as client-go does, from when this candidate last saw the record
        change (never from the holder's clock). None if the Lease has no other holder.
        """
        record = self._election.observed_record
        if record is None or record.holder_identity in (None, self.settings.identity):
            return None
        observed = self._election.observed_time_milliseconds / 1000
        return observed + self.settings.lease_duration - time.time()

    async def release(self, limit: float) -> bool:
        """Give the Lease up so that a standby takes over at its next attempt.

        Only if this candidate still holds it, and only if nobody wrote it since
        it was read: the write carries the read's resourceVersion, so a Lease
        taken over meanwhile answers 409 and is left alone.

        Returns
        -------
        bool
            Whether the Lease was released.
        """
        s = self.settings
        try:
            return await asyncio.wait_for(self._release(), limit)
        except TimeoutError:
            log.warning(
                "release of lease %s/%s: no answer within %.1f s",
                s.lease_namespace,
                s.lease_name,
                limit,
            )
        except ApiException as e:
            log.warning(
                "release of lease %s/%s refused: %s %s",
                s.lease_namespace,
                s.lease_name,
                e.status,
                e.reason,
            )
        except Exception as e:  # a failed release only delays the standby
            log.warning("release of lease %s/%s failed: %s", s.lease_namespace, s.lease_name, e)
        return False

    async def _release(self) -> bool:
        s = self.settings
        lease = await self._api.read_namespaced_lease(s.lease_name, s.lease_namespace)
        spec = lease.spec
        if spec is None or spec.holder_identity != s.identity:
            log.info(
                "lease %s/%s is held by %r, not us: not released",
                s.lease_namespace,
                s.lease_name,
                spec.holder_identity if spec else None,
            )
            return False
        now = _microtime_now()
        body = self._client.sanitize_for_serialization(lease)
        # As client-go releases: no holder, a 1 s duration, the times of the release.
        # metadata.resourceVersion stays that of the read: a Lease written since is 409.
        body["spec"].pop("holderIdentity", None)
        body["spec"].update(leaseDurationSeconds=1, acquireTime=now, renewTime=now)
        await self._api.replace_namespaced_lease(s.lease_name, s.lease_namespace, body)
        return True
