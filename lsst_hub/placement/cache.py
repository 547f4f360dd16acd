"""Watch-fed cluster cache: nodes, all-namespace pods and node usage, kept current.

One :class:`ClusterCache` per hub process feeds a pure
:class:`~lsst_hub.placement.totals.ClusterTotals` from three loops:

* a list+watch of Nodes and one of Pods in all namespaces (other services share
  the nodes), resumed from the last resourceVersion after a dropped connection,
  relisted after 410 Gone, retried with capped exponential backoff on any other
  error (the cache never gives up: stale totals beat no placement);
* optionally, a poll of ``metrics.k8s.io/v1beta1`` node usage every few seconds.
  If the metrics API is absent the cache says so once in the log and scores by
  requests.

A decision (:meth:`ClusterCache.choose`) makes no API call.

Why not kubespawner's ``ResourceReflector``: it keys objects by
``namespace/name`` (Nodes have no namespace), offers no per-event hook (only a
dict replaced wholesale on each relist, so totals would need a rescan of every
pod), relists on every reconnect, deserializes nothing we could reuse, and gives
up (stopping the hub) after its backoff passes 30 seconds. The loops here are
small: the generated ``kubernetes_asyncio`` list calls with ``watch=True`` and
``_preload_content=False``, reading JSON lines ourselves so that no model
objects are built for 150,000 pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient, ApiException, CoreV1Api, CustomObjectsApi

from ..names import Obj
from .model import NodeUsage, parse_duration, parse_time
from .quantities import QuantityError, cpu_cores, memory_bytes
from .result import LoadMetric, Placement
from .totals import ClusterTotals, NodeTotals

__all__ = ["ClusterCache"]

# Events (or listed objects) handled between two yields to the event loop.
_YIELD_EVERY = 500
# Errors after which a loop backs off and retries (anything else is a bug: logged too).
_TRANSIENT = (ApiException, aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError)


def _status_message(raw: bytes) -> str:
    """The message of a Kubernetes Status body, or the body itself cut short."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", "replace")
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return raw[:200].decode("utf-8", "replace")


class _GoneError(Exception):
    """The watch's resourceVersion is too old: relist."""


class ClusterCache:
    """Nodes, pods and node usage from watches; least-loaded choices without API calls.

    Parameters
    ----------
    api_client
        A configured ``kubernetes_asyncio`` client (the caller owns and closes it).
    metrics_interval
        Seconds between metrics.k8s.io node usage polls; ``None`` or ``0``: never.
    reservation_ttl
        Seconds an in-flight reservation counts if no pod takes it over.
    watch_timeout
        ``timeoutSeconds`` asked of each watch; the server then ends it and the
        cache resumes from the last resourceVersion.
    request_timeout
        Timeout of list and metrics requests, in seconds.
    list_page_size
        ``limit`` of each list page (the API server paginates large lists).
    backoff_max
        Longest wait between retries after errors, in seconds.
    log
        Logger (default ``lsst_hub.placement``).
    clock
        Monotonic clock for reservations (tests inject their own).
    """

    def __init__(
        self,
        api_client: ApiClient,
        *,
        metrics_interval: float | None = 30.0,
        reservation_ttl: float = 120.0,
        watch_timeout: int = 300,
        request_timeout: float = 60.0,
        list_page_size: int = 500,
        backoff_max: float = 30.0,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.core = CoreV1Api(api_client)
        self.custom = CustomObjectsApi(api_client)
        self.book = ClusterTotals(clock=clock, reservation_ttl=reservation_ttl)
        self.metrics_interval = metrics_interval or 0.0
        self.watch_timeout = watch_timeout
        self.request_timeout = request_timeout
        self.list_page_size = list_page_size
        self.backoff_max = backoff_max
        self.log = log or logging.getLogger("lsst_hub.placement")
        #: ``None`` until the first poll; then whether metrics.k8s.io answered.
        self.metrics_available: bool | None = None
        #: How many times each kind was (re)listed: 1 after start, more after 410 Gone.
        self.list_counts: dict[str, int] = {"nodes": 0, "pods": 0}
        self._loaded = {"nodes": asyncio.Event(), "pods": asyncio.Event()}
        self._metrics_polled = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._metrics_absent_logged = False

    # ------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start the watches (and metrics poll); return once the first lists are in.

        Until then the loops retry with backoff, however long it takes; wrap the
        call in :func:`asyncio.timeout` to bound the wait: when canceled, the loops
        are stopped before the cancellation propagates.
        """
        if self._tasks:
            raise RuntimeError("ClusterCache already started")
        self._tasks = [
            asyncio.create_task(self._watch_loop("nodes"), name="lsst-hub-node-watch"),
            asyncio.create_task(self._watch_loop("pods"), name="lsst-hub-pod-watch"),
        ]
        waits = [self._loaded["nodes"].wait(), self._loaded["pods"].wait()]
        if self.metrics_interval > 0:
            self._tasks.append(asyncio.create_task(self._metrics_loop(), name="lsst-hub-metrics"))
            waits.append(self._metrics_polled.wait())
        try:
            await asyncio.gather(*waits)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop the loops (the totals stay readable)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---------------------------------------------------------- the decision

    def choose(
        self,
        cpu: float,
        memory: int,
        node_selector: Mapping[str, str] | None = None,
        tolerations: Iterable[Mapping[str, Any]] | None = None,
        load_metric: LoadMetric = "requests",
        exclude: Collection[str] = (),
        node_affinity: Sequence[Mapping[str, Any]] | None = None,
    ) -> Placement:
        """Choose the least-loaded node (:meth:`.ClusterTotals.choose` on the cached totals).

        Counts in-flight reservations. Makes no API call.
        """
        return self.book.choose(
            cpu, memory, node_selector, tolerations, load_metric, exclude, node_affinity
        )

    def reserve(
        self, key: str, node: str, cpu: float, memory: int, ttl: float | None = None
    ) -> None:
        """Count a server as placed on ``node`` until its pod (``namespace/name`` = ``key``)
        is seen bound, :meth:`release` is called, or ``ttl`` passes."""
        self.book.reserve(key, node, cpu, memory, ttl)

    def release(self, key: str) -> bool:
        """Drop a reservation (e.g. the pod could not be created)."""
        return self.book.release(key)

    def totals(self, node: str) -> NodeTotals:
        """The running totals for ``node`` (for tests and diagnostics)."""
        return self.book.totals(node)

    def node_names(self) -> list[str]:
        """Names of the nodes in the cache."""
        return self.book.node_names()

    async def refresh_usage(self) -> None:
        """Poll metrics.k8s.io now instead of waiting for the next interval."""
        await self._poll_metrics()

    # ------------------------------------------------------------ list+watch

    def _list_call(self, kind: str) -> Callable[..., Awaitable[Any]]:
        if kind == "nodes":
            return self.core.list_node
        return self.core.list_pod_for_all_namespaces

    def _apply(self, kind: str, type_: str, obj: Obj) -> None:
        try:
            if kind == "nodes":
                if type_ == "DELETED":
                    self.book.remove_node(str(obj["metadata"]["name"]))
                else:
                    self.book.set_node(obj)
            elif type_ == "DELETED":
                self.book.remove_pod(obj)
            else:
                self.book.set_pod(obj)
        except (QuantityError, KeyError, TypeError) as exc:
            meta = obj.get("metadata") or {}
            self.log.warning(
                "Ignoring malformed %s %s/%s: %s",
                kind,
                meta.get("namespace", ""),
                meta.get("name", ""),
                exc,
            )

    async def _list(self, kind: str) -> str:
        """List every object of ``kind`` page by page; make the cache's set exactly that.

        Each page is applied as it arrives and the loop yields between pages, so
        a relist of 150,000 pods never holds the event loop for long; objects
        gone since are dropped at the end.
        """
        call = self._list_call(kind)
        seen: set[str] = set()
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "limit": self.list_page_size,
                "_preload_content": False,
                "_request_timeout": self.request_timeout,
            }
            if token:
                kwargs["_continue"] = token
            resp = await call(**kwargs)
            try:
                body = json.loads(await resp.read())
            finally:
                resp.release()
            if body.get("kind") == "Status":
                raise ApiException(status=body.get("code"), reason=body.get("message"))
            for i, obj in enumerate(body.get("items") or ()):
                meta = obj.get("metadata") or {}
                seen.add(
                    str(meta.get("name"))
                    if kind == "nodes"
                    else f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
                )
                self._apply(kind, "ADDED", obj)
                if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                    await asyncio.sleep(0)
            meta = body.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                break
            await asyncio.sleep(0)
        if kind == "nodes":
            self.book.keep_only_nodes(seen)
        else:
            self.book.keep_only_pods(seen)
        self.list_counts[kind] += 1
        self._loaded[kind].set()
        return str(meta.get("resourceVersion") or "")

    async def _watch(self, kind: str, resource_version: str) -> str:
        """Follow one watch until the server ends it; return the last resourceVersion."""
        call = self._list_call(kind)
        resp = await call(
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.watch_timeout,
            _preload_content=False,
            # No total timeout: only connecting and silence between reads count.
            _request_timeout=(self.request_timeout, self.watch_timeout + 30),
        )
        status = int(getattr(resp, "status", 200))
        if not 200 <= status <= 299:
            # Without preloading, the client does not raise on an error answer: a
            # refused watch (403) is one Status body, not an event stream.
            try:
                raw = await resp.read()
            finally:
                resp.release()
            raise ApiException(status=status, reason=_status_message(raw))
        buffer = b""
        events = 0
        try:
            # Split lines ourselves: aiohttp's readline() refuses lines over 64 KiB,
            # and a pod with a large spec can exceed that.
            async for chunk in resp.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        resource_version = self._on_event(kind, json.loads(line), resource_version)
                        events += 1
                        if events % _YIELD_EVERY == 0:
                            # A burst (e.g. a watch replaying history) must not
                            # hold the event loop.
                            await asyncio.sleep(0)
        finally:
            resp.release()
        return resource_version

    def _on_event(self, kind: str, event: Obj, resource_version: str) -> str:
        type_ = event.get("type")
        obj = event.get("object") or {}
        if type_ == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise _GoneError(obj.get("message", ""))
            raise ApiException(status=code, reason=obj.get("message"))
        if type_ is None and event.get("kind") == "Status":
            # A server may end a stream with a bare Status instead of an ERROR event.
            raise ApiException(status=event.get("code"), reason=event.get("message"))
        if type_ in ("ADDED", "MODIFIED", "DELETED"):
            self._apply(kind, type_, obj)
        new_rv = (obj.get("metadata") or {}).get("resourceVersion")
        return str(new_rv) if new_rv else resource_version

    async def _watch_loop(self, kind: str) -> None:
        resource_version: str | None = None
        delay = 0.0
        while True:
            try:
                if resource_version is None:
                    resource_version = await self._list(kind)
                started = time.monotonic()
                resource_version = await self._watch(kind, resource_version)
                delay = 0.0
                if time.monotonic() - started < 1.0:
                    # A server that ends watches at once must not be hammered.
                    await asyncio.sleep(1.0)
                continue
            except _GoneError:
                self.log.info("%s watch expired (410 Gone): relisting", kind)
                resource_version = None
                continue
            except ApiException as exc:
                if exc.status == 410:
                    self.log.info("%s watch expired (410 Gone): relisting", kind)
                    resource_version = None
                    continue
                problem: BaseException = exc
            except _TRANSIENT as exc:
                problem = exc
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug; keep the cache alive anyway
                self.log.exception("Unexpected error in the %s watch", kind)
                problem = exc
            delay = min(self.backoff_max, max(0.5, delay * 2))
            self.log.warning(
                "%s watch failed (%s); retrying in %.1fs", kind, _describe(problem), delay
            )
            # Jitter spreads the retries of many hubs after an API server restart.
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # noqa: S311

    # --------------------------------------------------------------- metrics

    async def _metrics_loop(self) -> None:
        while True:
            await self._poll_metrics()
            await asyncio.sleep(self.metrics_interval)

    async def _poll_metrics(self) -> None:
        try:
            body = await self.custom.list_cluster_custom_object(
                "metrics.k8s.io",
                "v1beta1",
                "nodes",
                _request_timeout=self.request_timeout,
            )
            usage = _node_usage(body)
        except asyncio.CancelledError:
            raise
        except ApiException as exc:
            if exc.status in (404, 503):
                # Absent (404) or registered but without a backend (503).
                if not self._metrics_absent_logged:
                    self.log.info(
                        "metrics.k8s.io is not available (%s): placing by requests", exc.status
                    )
                    self._metrics_absent_logged = True
                self.metrics_available = False
                self.book.set_usage(None)
            else:
                self.log.warning("Polling node metrics failed: %s", _describe(exc))
        except (*_TRANSIENT, QuantityError) as exc:
            self.log.warning("Polling node metrics failed: %s", _describe(exc))
        else:
            if self.metrics_available is not True:
                self.log.info("metrics.k8s.io node usage available for %d nodes", len(usage))
            self.metrics_available = True
            self._metrics_absent_logged = False
            self.book.set_usage(usage)
        finally:
            self._metrics_polled.set()


def _node_usage(body: Mapping[str, Any]) -> dict[str, NodeUsage]:
    """NodeMetricsList → usage per node, with the start of each sample's window."""
    usage: dict[str, NodeUsage] = {}
    for item in body.get("items") or ():
        name = (item.get("metadata") or {}).get("name")
        values = item.get("usage") or {}
        if not name or "cpu" not in values or "memory" not in values:
            continue
        stamp = parse_time(item.get("timestamp"))
        window = parse_duration(item.get("window"))
        start = stamp - window if stamp is not None and window is not None else stamp
        usage[str(name)] = NodeUsage(
            cpu_cores(values["cpu"]), memory_bytes(values["memory"]), start
        )
    return usage


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
