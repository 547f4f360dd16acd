"""The wrapper's settings: the Lease, the timings and what follows from them."""

from __future__ import annotations

import math
import os
import socket
import uuid
from dataclasses import dataclass

__all__ = ["HASettings", "SettingsError", "default_identity", "default_namespace"]

#: The lease defaults: shorter than Kubernetes' own controllers' (15/10/2 s),
#: since a hub outage is felt by people.
DEFAULT_LEASE_NAME = "jupyterhub-hub"
DEFAULT_LEASE_DURATION = 10
DEFAULT_RENEW_DEADLINE = 7.0
DEFAULT_RETRY_PERIOD = 2.0
#: How long a hub asked to stop (SIGTERM to the wrapper, a rolling upgrade) may
#: take before SIGKILL; the lease is still renewed meanwhile.
DEFAULT_STOP_TIMEOUT = 20.0
#: The jitter factor client-go and kubernetes_asyncio require between the renew
#: deadline and the retry period.
JITTER_FACTOR = 1.2


class SettingsError(ValueError):
    """Settings that cannot give a safe election; the message says which and why."""


def default_namespace() -> str:
    """``POD_NAMESPACE``, else the service account's namespace file, else ``default``."""
    value = os.environ.get("POD_NAMESPACE", "").strip()
    if value:
        return value
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace", encoding="utf-8") as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


def default_identity() -> str:
    """``POD_NAME``, else the host name with a random suffix.

    The suffix (as kube-controller-manager adds one) keeps two wrappers on one
    host from sharing an identity: the same identity would make both leaders.
    """
    value = os.environ.get("POD_NAME", "").strip()
    if value:
        return value
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class HASettings:
    """What one wrapper campaigns for, and how fast.

    Parameters
    ----------
    lease_name, lease_namespace
        The ``coordination.k8s.io/v1`` Lease all candidates share.
    identity
        This candidate's name in the Lease (``spec.holderIdentity``): unique.
    lease_duration
        Whole seconds a standby waits, after it last saw the Lease change, before
        it takes an unrenewed Lease over.
    renew_deadline
        Seconds the leader may go without a successful renewal before it stops
        its hub: must leave time before the lease expires for the stop.
    retry_period
        Seconds between attempts, as leader (renewals) and as standby.
    stop_timeout
        Seconds a hub asked to stop gracefully may take before SIGKILL.
    warm
        Whether a standby imports JupyterHub ahead, in a parked process that starts
        the hub when the Lease is won (only for a command that runs JupyterHub in
        the wrapper's own Python environment; see :mod:`lsst_hub.ha.warm`).
    """

    lease_name: str = DEFAULT_LEASE_NAME
    lease_namespace: str = "default"
    identity: str = ""
    lease_duration: int = DEFAULT_LEASE_DURATION
    renew_deadline: float = DEFAULT_RENEW_DEADLINE
    retry_period: float = DEFAULT_RETRY_PERIOD
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    warm: bool = True

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise SettingsError("; ".join(problems))

    def problems(self) -> list[str]:
        """Why these settings are unsafe (empty: they are fine)."""
        out = []
        if not self.lease_name or not self.lease_namespace:
            out.append("the lease needs a name and a namespace")
        if not self.identity:
            out.append("the identity must not be empty")
        if not isinstance(self.lease_duration, int) or isinstance(self.lease_duration, bool):
            # Lease.spec.leaseDurationSeconds is an integer; a fraction would be
            # truncated by one side and not the other.
            out.append(f"--lease-duration must be whole seconds, not {self.lease_duration!r}")
        for name, value in (
            ("--lease-duration", self.lease_duration),
            ("--renew-deadline", self.renew_deadline),
            ("--retry-period", self.retry_period),
            ("--stop-timeout", self.stop_timeout),
        ):
            if not math.isfinite(value) or value <= 0:
                out.append(f"{name} must be a positive number of seconds, not {value!r}")
        if out:
            return out
        if self.retry_period < 1:
            out.append(f"--retry-period must be at least 1 s, not {self.retry_period}")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            out.append(
                f"--renew-deadline ({self.renew_deadline} s) must exceed "
                f"{JITTER_FACTOR} x --retry-period ({self.retry_period} s)"
            )
        if self.lease_duration - self.renew_deadline < 1:
            out.append(
                f"--lease-duration ({self.lease_duration} s) must exceed --renew-deadline "
                f"({self.renew_deadline} s) by at least 1 s: the leader stops its hub in "
                "between, before a standby may take over"
            )
        return out

    @property
    def fence_kill_after(self) -> float:
        """Seconds between SIGTERM and SIGKILL when the lease is being lost.

        Half the gap between the renew deadline and the lease's expiry, at most
        2 s: the hub is dead well before a standby may take over.
        """
        return min(2.0, (self.lease_duration - self.renew_deadline) / 2)

    @property
    def call_timeout(self) -> float:
        """Seconds one attempt (a GET and perhaps a write) may take."""
        return self.retry_period
