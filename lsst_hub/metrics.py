"""Prometheus metrics of lsst-hub, on JupyterHub's registry.

JupyterHub serves ``prometheus_client.REGISTRY`` at ``/hub/metrics``, so every
metric here is registered there. :func:`counter` and :func:`histogram` return
the already registered collector when a name is registered twice (the module
imported again, e.g. by test tools or ``importlib.reload``), instead of
raising ``Duplicated timeseries``.

To add a metric, define it at module level with these helpers and a
``lsst_hub_`` name prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram

__all__ = ["LDAP_LOGINS", "LDAP_LOGIN_DURATION", "LDAP_REFRESHES", "counter", "histogram"]


def _registered(name: str) -> Any:
    # prometheus_client has no public lookup by name; its registry keeps this map.
    names: dict[str, Any] = getattr(REGISTRY, "_names_to_collectors", {})
    for key in (name, f"{name}_total"):
        if key in names:
            return names[key]
    return None


def counter(name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
    """A :class:`~prometheus_client.Counter` on the default registry, created once."""
    existing = _registered(name)
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    return Counter(name, documentation, labelnames)


def histogram(
    name: str, documentation: str, labelnames: Sequence[str] = (), **kwargs: Any
) -> Histogram:
    """A :class:`~prometheus_client.Histogram` on the default registry, created once."""
    existing = _registered(name)
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    return Histogram(name, documentation, labelnames, **kwargs)


LDAP_LOGINS = counter(
    "lsst_hub_ldap_logins",
    "LDAP login attempts by outcome: success, bad_credentials, unknown_user, not_allowed, "
    "incomplete_identity, system_id (uid/gid below min_uid/min_gid or a refused gid), "
    "entry_changed (the name now belongs to another directory entry), invalid_auth_state "
    "(modify_auth_state_hook failed or broke the identity), throttled, invalid_input, "
    "directory_error, error (unexpected)",
    ["outcome"],
)

LDAP_LOGIN_DURATION = histogram(
    "lsst_hub_ldap_login_duration_seconds",
    "Time from login form to the LDAP authenticator's answer, by outcome",
    ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

LDAP_REFRESHES = counter(
    "lsst_hub_ldap_refreshes",
    "Periodic re-reads of a logged-in user's identity by outcome: current, removed, "
    "not_allowed, incomplete_identity, system_id (uid/gid now below min_uid/min_gid or a "
    "refused gid), entry_changed (another entry under the name), invalid_auth_state "
    "(modify_auth_state_hook failed or broke the identity), expired (direct bind: "
    "password older than auth_refresh_age), directory_error, error (unexpected), skipped",
    ["outcome"],
)
