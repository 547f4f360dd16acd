"""Every Kubernetes API call the spawner makes itself (KubeSpawner makes the rest).

Each call has a per-request timeout, is retried with backoff while the answer
may change (timeouts, connection errors, 429 and 5xx), and ends either with a
result or with one of this module's exceptions whose message a person can act
on. Objects go in and come out as plain camelCase dicts, the form the pure
builders produce.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio.client.rest import ApiException

from ..names import Obj
from . import builders

__all__ = [
    "HomeVolumeError",
    "Kube",
    "KubeConflictError",
    "KubeError",
    "KubeNotFoundError",
    "KubeRefusedError",
    "KubeUnavailableError",
]

log = logging.getLogger(__name__)


class KubeError(RuntimeError):
    """A Kubernetes request that did not succeed.

    Attributes
    ----------
    status
        The HTTP status, or None when no answer came (timeout, connection).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KubeNotFoundError(KubeError):
    """404: the object does not exist."""


class KubeConflictError(KubeError):
    """409: the object exists already or changed under us."""


class KubeRefusedError(KubeError):
    """A 4xx answer that retrying will not change (invalid, forbidden, ...)."""


class KubeUnavailableError(KubeError):
    """No usable answer within the retry budget (timeouts, 5xx, 429)."""


class HomeVolumeError(KubeError):
    """The home volume cannot be used safely (wrong data, not bound)."""


def _api_message(exc: ApiException) -> str:
    """The ``message`` of a Kubernetes Status body, else the reason phrase."""
    try:
        body = json.loads(exc.body or "")
        if isinstance(body, Mapping) and body.get("message"):
            return str(body["message"])
    except (TypeError, ValueError):
        pass
    return str(exc.reason or "error")


def map_api_exception(exc: ApiException, what: str) -> KubeError:
    """Turn an :class:`ApiException` into our exception for ``what`` we tried."""
    status = int(exc.status or 0)
    text = f"{what}: Kubernetes answered {status} {_api_message(exc)}"
    if status == 404:
        return KubeNotFoundError(text, status)
    if status == 409:
        return KubeConflictError(text, status)
    if status == 429 or status >= 500:
        return KubeUnavailableError(text, status)
    return KubeRefusedError(text, status)


def _describe_failure(exc: BaseException) -> str:
    """One line saying why a call failed, for the log.

    An :class:`ApiException` prints its headers and body over several lines; the
    status, reason and the Status ``message`` are what an admin needs.
    """
    if isinstance(exc, ApiException):
        text = f"{int(exc.status or 0)} {exc.reason or ''}".rstrip()
        message = _api_message(exc)
        if message != str(exc.reason or "error"):
            text = f"{text}: {message}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ClientError | ConnectionError):
        return True
    return isinstance(exc, ApiException) and (exc.status == 429 or (exc.status or 0) >= 500)


class Kube:
    """The spawner's own API calls, for one namespace.

    Parameters
    ----------
    api
        A ``kubernetes_asyncio`` ``CoreV1Api`` (KubeSpawner's shared client).
    namespace
        Where claims, config maps and pods live.
    request_timeout
        Seconds one request may take.
    retry_timeout
        Seconds all attempts of one call may take together.
    """

    def __init__(
        self, api: Any, namespace: str, *, request_timeout: float, retry_timeout: float
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.request_timeout = request_timeout
        self.retry_timeout = retry_timeout

    # -- plumbing ------------------------------------------------------------
    def to_dict(self, obj: Any) -> Obj:
        """A model answer as a camelCase dict."""
        result: Obj = self.api.api_client.sanitize_for_serialization(obj)
        return result

    async def call(
        self, what: str, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any
    ) -> Any:
        """Call ``fn``, retrying while the failure may be temporary.

        Raises
        ------
        KubeError
            A subclass naming ``what`` failed and why.
        """
        deadline = time.monotonic() + self.retry_timeout
        delay = 0.1
        while True:
            try:
                return await asyncio.wait_for(fn(*args, **kw), self.request_timeout)
            except Exception as exc:
                # The final failure keeps the API's exception as its cause (the
                # traceback shows the full answer); retries log one line each.
                if not _retryable(exc):
                    if isinstance(exc, ApiException):
                        raise map_api_exception(exc, what) from exc
                    raise
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if isinstance(exc, ApiException):
                        raise map_api_exception(exc, what) from exc
                    raise KubeUnavailableError(
                        f"{what}: no answer from Kubernetes within {self.retry_timeout:g}s "
                        f"({_describe_failure(exc)})"
                    ) from exc
                log.info("%s failed (%s), retrying", what, _describe_failure(exc))
                # Full jitter keeps a burst of spawns from retrying in lock step.
                await asyncio.sleep(min(remaining, random.uniform(0, delay)))  # noqa: S311
                delay = min(delay * 2, 5.0)

    # -- home volume -----------------------------------------------------------
    async def ensure_home_pv(self, wanted: Obj) -> Obj:
        """Create the home PersistentVolume, or check that the existing one matches.

        Raises
        ------
        HomeVolumeError
            When a PersistentVolume of that name holds something else.
        """
        name = wanted["metadata"]["name"]
        try:
            created = await self.call(
                f"create PersistentVolume {name}", self.api.create_persistent_volume, wanted
            )
            log.info("created home PersistentVolume %s", name)
            return self.to_dict(created)
        except KubeConflictError:
            pass
        existing = self.to_dict(
            await self.call(f"read PersistentVolume {name}", self.api.read_persistent_volume, name)
        )
        reason = builders.pv_mismatch(existing, wanted)
        if reason:
            raise HomeVolumeError(reason + "; refusing to mount it.")
        return existing

    async def ensure_home_pvc(self, wanted: Obj) -> Obj:
        """Create the home claim, or check that the existing one names our volume."""
        name = wanted["metadata"]["name"]
        pv_name = wanted["spec"]["volumeName"]
        try:
            created = await self.call(
                f"create PersistentVolumeClaim {self.namespace}/{name}",
                self.api.create_namespaced_persistent_volume_claim,
                self.namespace,
                wanted,
            )
            log.info("created home PersistentVolumeClaim %s/%s", self.namespace, name)
            return self.to_dict(created)
        except KubeConflictError:
            pass
        existing = await self.read_pvc(name)
        reason = builders.pvc_mismatch(existing, pv_name)
        if reason:
            raise HomeVolumeError(reason + "; refusing to mount it.")
        return existing

    async def rebind_released_pv(self, pv_name: str, pvc: Obj) -> bool:
        """Let a Released home volume bind its re-created claim; True if changed."""
        pv = self.to_dict(
            await self.call(
                f"read PersistentVolume {pv_name}", self.api.read_persistent_volume, pv_name
            )
        )
        new = builders.rebind_released(pv, pvc)
        if new is None:
            return False
        log.info("PersistentVolume %s was Released: pointing it at the new claim", pv_name)
        await self.call(
            f"update PersistentVolume {pv_name}", self.api.replace_persistent_volume, pv_name, new
        )
        return True

    async def read_pvc(self, name: str) -> Obj:
        """Read one claim in our namespace."""
        return self.to_dict(
            await self.call(
                f"read PersistentVolumeClaim {self.namespace}/{name}",
                self.api.read_namespaced_persistent_volume_claim,
                name,
                self.namespace,
            )
        )

    async def wait_pvc_bound(
        self,
        name: str,
        limit: float,
        on_pending: Callable[[Obj], Awaitable[None]] | None = None,
    ) -> Obj:
        """Wait until the claim is ``Bound``; a clear error after ``limit`` seconds.

        ``on_pending(claim)`` is awaited while the claim is not bound, at most
        about once a second (the first time at once).
        """
        deadline = time.monotonic() + limit
        delay = 0.05
        next_hook = time.monotonic()
        while True:
            pvc = await self.read_pvc(name)
            phase = (pvc.get("status") or {}).get("phase")
            if phase == "Bound":
                return pvc
            if on_pending is not None and time.monotonic() >= next_hook:
                await on_pending(pvc)
                next_hook = time.monotonic() + 1.0
            if time.monotonic() >= deadline:
                volume = (pvc.get("spec") or {}).get("volumeName")
                raise HomeVolumeError(
                    f"home volume claim {self.namespace}/{name} is not bound after {limit:g}s "
                    f"(phase {phase or 'unknown'}); check PersistentVolume {volume} "
                    f"with: kubectl describe pv {volume}"
                )
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)

    # -- other objects -----------------------------------------------------------
    async def apply_configmap(self, wanted: Obj) -> None:
        """Create the ConfigMap, or replace its data when it exists."""
        name = wanted["metadata"]["name"]
        what = f"write ConfigMap {self.namespace}/{name}"
        try:
            await self.call(what, self.api.create_namespaced_config_map, self.namespace, wanted)
        except KubeConflictError:
            await self.call(
                what, self.api.replace_namespaced_config_map, name, self.namespace, wanted
            )

    async def list_pods(self, label_selector: str) -> list[Obj]:
        """Pods in our namespace matching ``label_selector``."""
        answer = await self.call(
            f"list pods ({label_selector})",
            self.api.list_namespaced_pod,
            self.namespace,
            label_selector=label_selector,
        )
        return [self.to_dict(p) for p in answer.items]

    async def read_pod(self, name: str) -> Obj | None:
        """The pod of that name in our namespace, or None if there is none."""
        try:
            return self.to_dict(
                await self.call(
                    f"read pod {self.namespace}/{name}",
                    self.api.read_namespaced_pod,
                    name,
                    self.namespace,
                )
            )
        except KubeNotFoundError:
            return None

    async def delete_pod(self, name: str, grace_seconds: int | None = None) -> bool:
        """Delete a pod; True if it was there. Never touches volumes or claims."""
        kw: dict[str, Any] = {}
        if grace_seconds is not None:
            kw["grace_period_seconds"] = grace_seconds
        try:
            await self.call(
                f"delete pod {self.namespace}/{name}",
                self.api.delete_namespaced_pod,
                name,
                self.namespace,
                **kw,
            )
        except KubeNotFoundError:
            return False
        return True
