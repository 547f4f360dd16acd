"""HTTP routes of the Kubernetes REST API over the registry (aiohttp).

Paths are parsed as the API server lays them out::

    /api/v1/PLURAL[/NAME[/SUBRESOURCE]]                     cluster-scoped, or all namespaces
    /api/v1/namespaces/NS/PLURAL[/NAME[/SUBRESOURCE]]       namespaced
    /apis/GROUP/VERSION/...                                 the same for named groups

``GET`` is get, list or (``watch=true|1``) watch; ``POST`` create; ``PUT``
update (for Leases, create if the name is missing: then ``create`` is authorized
too); ``PATCH`` merge, strategic-merge or JSON patch (server-side apply is
refused with 415); ``DELETE`` delete (or
deletecollection on a collection). List and watch take ``labelSelector`` and
``fieldSelector``; list takes ``limit`` and ``continue`` (:mod:`.paging`); watch
takes ``resourceVersion`` and ``timeoutSeconds``. A list without ``limit`` is
one page in creation order (per namespace); a paged list is in key order.
Errors are ``Status`` objects. ``kubectl get`` Table answers are served.

Kinds that are not stored (the access reviews of ``authorization.k8s.io/v1``,
:mod:`.reviews`) take ``POST`` on the collection only (405 otherwise) and answer
201 with the review's ``status`` filled in. Request bodies are JSON, or protobuf
for the kinds :mod:`.protobuf` reads (what kubectl's typed clients send).

``Impersonate-User``, ``Impersonate-Group``, ``Impersonate-Uid`` and
``Impersonate-Extra-KEY`` headers (``kubectl --as``, ``--as-group``) are honoured
on every request, discovery included, as the API server's impersonation filter
does: the requester needs the verb ``impersonate`` on each (403 otherwise, with
RBAC on), and the request then runs, RBAC checks included, as the impersonated
user (:func:`.rbac.impersonation`).

Test-only endpoints (not RBAC-checked) live under ``/_devcluster/``: see
:mod:`devcluster.faults` for ``/_devcluster/faults``;
``POST /_devcluster/tokens {"namespace": NS, "serviceAccount": NAME}`` mints a
ServiceAccount token.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import web

from . import discovery, protobuf, reviews, tables
from . import resources as res
from .errors import ApiError, bad_request, forbidden, forbidden_by
from .faults import Faults
from .metrics import NODE_METRICS, POD_METRICS, metrics_entries
from .paging import Page, list_page
from .patch import check_patch_type
from .rbac import Authorizer, User, impersonation
from .registry import PODS, Registry, require
from .selectors import Matcher, parse_field_selector, parse_label_selector
from .store import Entry, Watcher, storage_key

if TYPE_CHECKING:
    from .kubelet import Kubelet
    from .scheduler import Scheduler

__all__ = ["ApiContext", "make_app"]

log = logging.getLogger(__name__)
SERVICE_ACCOUNTS = require(res.find("", "v1", "serviceaccounts"))
JSON = "application/json"
_EXTRA_PREFIX = "impersonate-extra-"


@dataclass
class ApiContext:
    """Everything the HTTP layer talks to."""

    registry: Registry
    scheduler: Scheduler
    kubelet: Kubelet
    authorizer: Authorizer
    faults: Faults
    kube_version: str
    rbac: bool = False
    address: str = "127.0.0.1"


@dataclass
class Route:
    """A parsed resource path."""

    resource: res.ResourceType
    namespace: str | None
    name: str | None
    subresource: str


def _json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(obj, separators=(",", ":")).encode(), status=status, content_type=JSON
    )


def _error_response(err: ApiError) -> web.Response:
    return _json_response(err.status(), err.code)


def _not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def _parse(group: str, version: str, rest: list[str]) -> Route:
    if not rest:
        raise _not_found_path()
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        candidate = res.find(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    resource = res.find(group, version, rest[0])
    if resource is None or len(rest) > 3:
        raise _not_found_path()
    if namespace is not None and not resource.namespaced:
        raise _not_found_path()
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else ""
    if (
        sub
        and sub not in resource.subresources
        and not (resource is SERVICE_ACCOUNTS and sub == "token")
    ):
        raise _not_found_path()
    if resource.namespaced and name is not None and namespace is None:
        raise _not_found_path()
    return Route(resource, namespace, name, sub)


def _verb(method: str, route: Route, watch: bool) -> str:
    if method == "GET":
        if route.name is not None:
            return "get"
        return "watch" if watch else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if route.name is not None else "deletecollection"
    raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method: {method}")


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


class ApiHandler:
    """The request handler; one per cluster."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self._closing = asyncio.Event()

    def close(self) -> None:
        """End open watches (server shutdown)."""
        self._closing.set()
        self.ctx.registry.store.close_watches()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Entry point for every request."""
        try:
            return await self._dispatch(request)
        except ApiError as err:
            return _error_response(err)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug here must still answer as an API server would
            log.exception("internal error serving %s %s", request.method, request.path)
            return _error_response(ApiError(500, "InternalError", f"Internal error: {exc!r}"))

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] == ["_devcluster"]:
            return await self._devcluster(request, parts[1:])
        user = self._impersonate(request, self._authenticate(request))
        if not parts or parts[0] not in ("api", "apis") or self._is_discovery(parts):
            return self._discovery(parts)
        if parts[0] == "api":
            route = _parse("", parts[1], parts[2:])
        else:
            route = _parse(parts[1], parts[2], parts[3:])
        watch = _truthy(request.query.get("watch"))
        verb = _verb(request.method, route, watch)
        resource_name = self._authorize(
            user,
            verb,
            route.resource.group,
            route.resource.plural,
            route.subresource,
            route.namespace,
            route.name,
        )
        fault = self.ctx.faults.take(verb, resource_name, route.namespace, route.name)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            err = fault.error()
            if err is not None:
                raise err
        if not route.resource.stored:
            return await self._review(request, route, verb, user)
        return await self._serve(request, route, verb, user)

    def _authenticate(self, request: web.Request) -> User:
        user = self.ctx.authorizer.authenticate(request.headers.get("Authorization"))
        if user is None:
            if self.ctx.rbac:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return User("system:anonymous")
        return user

    def _impersonate(self, request: web.Request, user: User) -> User:
        """The user the request acts as: ``user``, or whom it may impersonate."""
        headers = request.headers
        extras = [
            (unquote(key[len(_EXTRA_PREFIX) :].lower()), value)
            for key, value in headers.items()
            if key.lower().startswith(_EXTRA_PREFIX)
        ]
        wanted = impersonation(
            headers.get("Impersonate-User"),
            headers.getall("Impersonate-Group", []),
            headers.get("Impersonate-Uid"),
            extras,
        )
        if wanted is None:
            return user
        for t in wanted.targets:
            self._authorize(
                user, "impersonate", t.group, t.resource, t.subresource, t.namespace, t.name
            )
        return wanted.user

    def _authorize(
        self,
        user: User,
        verb: str,
        group: str,
        plural: str,
        subresource: str | None,
        namespace: str | None,
        name: str | None,
    ) -> str:
        """Raise 403 unless RBAC (when on) lets ``user`` do it; return ``plural[/sub]``."""
        resource = f"{plural}/{subresource}" if subresource else plural
        if self.ctx.rbac and not self.ctx.authorizer.allowed(
            user, verb, group, resource, namespace, name
        ):
            raise forbidden(user.name, verb, plural, group, namespace, name, subresource or "")
        return resource

    @staticmethod
    def _is_discovery(parts: list[str]) -> bool:
        if parts[0] == "api":
            return len(parts) <= 2
        return len(parts) <= 3

    def _discovery(self, parts: list[str]) -> web.Response:
        doc: Any = None
        if parts == ["version"]:
            doc = discovery.version_info(self.ctx.kube_version)
        elif parts in (["healthz"], ["livez"], ["readyz"]):
            return web.Response(text="ok")
        elif parts == ["openapi", "v3"]:
            doc = discovery.openapi_v3_root()
        elif parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            rest = parts[2:]
            if rest[0] == "api":
                doc = discovery.openapi_v3_group_version("", rest[1])
            elif len(rest) == 3:
                doc = discovery.openapi_v3_group_version(rest[1], rest[2])
        elif parts == ["api"]:
            doc = discovery.api_versions(self.ctx.address)
        elif parts == ["apis"]:
            doc = discovery.api_group_list()
        elif len(parts) == 2 and parts[0] == "api":
            doc = discovery.api_resource_list("", parts[1])
        elif len(parts) == 2:
            doc = discovery.api_group(parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            doc = discovery.api_resource_list(parts[1], parts[2])
        if doc is None:
            raise _not_found_path()
        return _json_response(doc)

    # -- resources -----------------------------------------------------------------
    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            return None
        if request.content_type == protobuf.MEDIA_TYPE:
            return protobuf.decode(raw)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise bad_request(f"the body of the request could not be decoded: {exc}") from exc

    async def _serve(
        self, request: web.Request, route: Route, verb: str, user: User
    ) -> web.StreamResponse:
        registry = self.ctx.registry
        r, ns, name = route.resource, route.namespace or "", route.name
        dry_run = "All" in request.query.getall("dryRun", [])
        if verb == "get":
            assert name is not None
            if route.subresource == "log":
                return self._log(route)
            if r in (NODE_METRICS, POD_METRICS):
                for entry in metrics_entries(registry, self.ctx.scheduler, r, route.namespace):
                    if entry.obj["metadata"]["name"] == name:
                        return web.Response(body=entry.raw, content_type=JSON)
            return self._object(request, r, registry.get(r, ns, name))
        if verb == "list":
            return self._list(request, route)
        if verb == "watch":
            return await self._watch(request, route)
        if verb == "create":
            body = await self._body(request)
            if route.subresource == "token":
                assert name is not None
                return self._token(ns, name, body)
            if route.subresource == "binding":
                assert name is not None
                return _json_response(registry.bind(ns, name, body), 201)
            if r.namespaced and route.namespace is None:
                raise _not_found_path()
            if dry_run:
                return _json_response(body, 201)
            return _json_response(registry.create(r, ns, body), 201)
        if route.subresource in ("log", "binding", "token"):
            raise ApiError(
                405,
                "MethodNotAllowed",
                f"the server does not allow this method on {route.subresource}",
            )
        if verb == "update":
            assert name is not None
            body = await self._body(request)

            def admit_create() -> None:
                # a PUT that creates (Leases) also needs create, asked after validation
                if self.ctx.rbac and not self.ctx.authorizer.allowed(
                    user, "create", r.group, r.plural, route.namespace, name
                ):
                    raise forbidden_by(r.plural, name, r.group)

            obj, created = registry.put(r, ns, name, body, route.subresource, admit_create)
            return _json_response(obj, 201 if created else 200)
        if verb == "patch":
            assert name is not None
            content_type = request.headers.get("Content-Type", "")
            check_patch_type(content_type)  # 415 before the body is read or the object looked up
            body = await self._body(request)
            return _json_response(
                registry.patch(r, ns, name, content_type, body, route.subresource)
            )
        if verb == "delete":
            assert name is not None
            grace, preconditions = await self._delete_options(request)
            return _json_response(registry.delete(r, ns, name, grace, preconditions))
        # deletecollection
        grace, _ = await self._delete_options(request)
        entries = list(self._selected(request, route))
        deleted = []
        for entry in entries:
            meta = entry.obj["metadata"]
            with contextlib.suppress(ApiError):
                deleted.append(registry.delete(r, meta.get("namespace", ""), meta["name"], grace))
        return _json_response(
            {
                "kind": f"{r.kind}List",
                "apiVersion": r.api_version,
                "metadata": {"resourceVersion": str(registry.store.rv)},
                "items": deleted,
            }
        )

    async def _delete_options(self, request: web.Request) -> tuple[int | None, dict[str, Any]]:
        body = await self._body(request) or {}
        if not isinstance(body, dict):
            raise bad_request("DeleteOptions must be an object")
        grace = body.get("gracePeriodSeconds")
        if request.query.get("gracePeriodSeconds") is not None:
            try:
                grace = int(request.query["gracePeriodSeconds"])
            except ValueError as exc:
                raise bad_request("gracePeriodSeconds must be an integer") from exc
        return (int(grace) if grace is not None else None), dict(body.get("preconditions") or {})

    def _object(self, request: web.Request, resource: res.ResourceType, obj: Any) -> web.Response:
        if tables.wants_table(request.headers.get("Accept", "")):
            entry = self.ctx.registry.store.get_entry(
                resource, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
            )
            body = tables.table(resource, [entry], self.ctx.registry.store.rv)
            return web.Response(body=body, content_type=JSON)
        return _json_response(obj)

    @staticmethod
    def _selectors(request: web.Request, route: Route) -> tuple[Matcher | None, str | None]:
        """The list's label and field selectors as one matcher, and a spec.nodeName=X."""
        label = parse_label_selector(request.query.get("labelSelector"))
        field_text = request.query.get("fieldSelector")
        field = parse_field_selector(field_text)
        node_name = None
        if route.resource is PODS and field_text:
            for term in field_text.split(","):
                key, _, value = term.partition("=")
                if key.strip() == "spec.nodeName" and value and not value.startswith("="):
                    node_name = value.strip()
        if label is None or field is None:
            return label or field, node_name
        label_match, field_match = label, field
        return (lambda obj: label_match(obj) and field_match(obj)), node_name

    def _selected(self, request: web.Request, route: Route) -> Iterator[Entry]:
        match, node_name = self._selectors(request, route)
        if route.resource in (NODE_METRICS, POD_METRICS):
            return (
                e
                for e in metrics_entries(
                    self.ctx.registry, self.ctx.scheduler, route.resource, route.namespace
                )
                if match is None or match(e.obj)
            )
        return self.ctx.registry.list(route.resource, route.namespace, match, None, node_name)

    def _page(self, request: web.Request, route: Route) -> Page | None:
        """The page a ``limit``/``continue`` list asks for (None: not a paged list)."""
        query = request.query
        token = query.get("continue") or None
        try:
            limit = int(query.get("limit") or 0)
        except ValueError as exc:
            raise bad_request("limit must be an integer") from exc
        if (limit <= 0 and token is None) or route.resource in (NODE_METRICS, POD_METRICS):
            return None  # synthesised metrics are small and have no history: never paged
        if token is not None and query.get("resourceVersion") not in (None, "", "0"):
            raise bad_request("specifying resource version is not allowed when using continue")
        match, node_name = self._selectors(request, route)
        store = self.ctx.registry.store
        candidates = None
        if node_name is not None:
            candidates = sorted(
                storage_key(meta.get("namespace", ""), meta["name"])
                for meta in (e.obj["metadata"] for e in store.pods_on_node(node_name))
            )
        namespace = route.namespace if route.resource.namespaced else None
        return list_page(store, route.resource, namespace, limit, token, match, candidates)

    def _list(self, request: web.Request, route: Route) -> web.Response:
        r = route.resource
        page = self._page(request, route)
        if page is None:
            page = Page(list(self._selected(request, route)), self.ctx.registry.store.rv)
        meta = page.list_meta()
        if tables.wants_table(request.headers.get("Accept", "")):
            return web.Response(
                body=tables.table(r, page.entries, page.rv, meta=meta), content_type=JSON
            )
        head = b'{"kind":"%sList","apiVersion":"%s","metadata":%s,"items":[' % (
            r.kind.encode(),
            r.api_version.encode(),
            json.dumps(meta, separators=(",", ":")).encode(),
        )
        body = head + b",".join(e.raw for e in page.entries) + b"]}"
        return web.Response(body=body, content_type=JSON)

    async def _watch(self, request: web.Request, route: Route) -> web.StreamResponse:
        store = self.ctx.registry.store
        watcher = Watcher(
            route.resource,
            route.namespace,
            parse_label_selector(request.query.get("labelSelector")),
            parse_field_selector(request.query.get("fieldSelector")),
        )
        try:
            since = int(request.query.get("resourceVersion") or 0)
        except ValueError as exc:
            raise bad_request("resourceVersion must be an integer") from exc
        timeout = request.query.get("timeoutSeconds")
        deadline = time.monotonic() + (float(timeout) if timeout else 1800.0)
        as_table = tables.wants_table(request.headers.get("Accept", ""))
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            first = store.watch(watcher, since)
        except ApiError as err:
            line = b'{"type":"ERROR","object":%s}\n' % json.dumps(err.status()).encode()
            await response.write(line)
            return response
        columns = True
        try:
            for line in first:
                await response.write(self._table_line(route, line, columns) if as_table else line)
                columns = False
            while not self._closing.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or request.transport is None or request.transport.is_closing():
                    break
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), min(remaining, 1.0))
                except TimeoutError:
                    continue
                if item is None:
                    break
                await response.write(self._table_line(route, item, columns) if as_table else item)
                columns = False
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            store.unwatch(watcher)
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    def _table_line(self, route: Route, line: bytes, columns: bool) -> bytes:
        event = json.loads(line)
        rows = [Entry(event["object"])]
        body = tables.table(route.resource, rows, self.ctx.registry.store.rv, columns)
        return b'{"type":"%s","object":%s}\n' % (event["type"].encode(), body)

    def _log(self, route: Route) -> web.Response:
        pod = self.ctx.registry.get(PODS, route.namespace or "", route.name or "")
        containers = pod["spec"].get("containers", [])
        text = b""
        for c in containers[:1]:
            path = self.ctx.kubelet.log_path(
                route.namespace or "", pod["metadata"]["name"], c["name"]
            )
            if path.exists():
                text = path.read_bytes()
        return web.Response(body=text, content_type="text/plain")

    async def _review(
        self, request: web.Request, route: Route, verb: str, user: User
    ) -> web.Response:
        """Answer a review (a kind that is created, never stored)."""
        if verb != "create" or route.name is not None:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        body = await self._body(request)
        if isinstance(body, dict):
            # The server fills status in: what a client sends (kubectl an empty one) is replaced.
            body.pop("status", None)
        review = self.ctx.registry.admit(route.resource, body)
        answer = reviews.answer(
            route.resource, review, user, self.ctx.authorizer, enforced=self.ctx.rbac
        )
        return _json_response(answer, 201)

    def _token(self, namespace: str, name: str, body: Any) -> web.Response:
        self.ctx.registry.get(SERVICE_ACCOUNTS, namespace, name)
        token = self.ctx.authorizer.issue(namespace, name)
        seconds = int(((body or {}).get("spec") or {}).get("expirationSeconds") or 3600)
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
        return _json_response(
            {
                "kind": "TokenRequest",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"audiences": [], "expirationSeconds": seconds},
                "status": {
                    "token": token,
                    "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            },
            201,
        )

    # -- test-only endpoints -------------------------------------------------------
    async def _devcluster(self, request: web.Request, parts: list[str]) -> web.Response:
        faults = self.ctx.faults
        if parts == ["faults"]:
            if request.method == "GET":
                return _json_response(faults.describe())
            if request.method == "DELETE":
                faults.clear()
                return _json_response(faults.describe())
            if request.method == "POST":
                body = await self._body(request) or {}
                try:
                    fault = faults.add(**body)
                except TypeError as exc:
                    raise bad_request(str(exc)) from exc
                return _json_response(faults.describe()[-1] if fault else {}, 201)
        if parts == ["tokens"] and request.method == "POST":
            body = await self._body(request) or {}
            token = self.ctx.authorizer.issue(body["namespace"], body["serviceAccount"])
            return _json_response({"token": token}, 201)
        raise _not_found_path()


def make_app(ctx: ApiContext) -> tuple[web.Application, ApiHandler]:
    """The aiohttp application serving the API."""
    handler = ApiHandler(ctx)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler.handle)
    return app, handler
