"""One dev cluster: store, API server, scheduler, PV binder and kubelet, started together.

Two ways to run it from Python:

* :class:`DevCluster` is an async context manager that serves in the running
  event loop (tests whose code under test is async, e.g. KubeSpawner)::

      async with DevCluster(nodes=3) as cluster:
          async with cluster.api_client() as api: ...

* :class:`ThreadedDevCluster` runs a DevCluster in a background thread with its
  own loop, for synchronous callers (subprocess clients such as kubectl, or code
  that blocks): ``with ThreadedDevCluster(nodes=3) as cluster: ...``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import tempfile
import threading
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, Self

import yaml
from aiohttp import web

from .api import ApiContext, ApiHandler, make_app
from .errors import ApiError
from .faults import Faults
from .gc import GarbageCollector
from .kubelet import Kubelet
from .namespaces import NamespaceController
from .rbac import Authorizer
from .registry import NAMESPACES, NODES, Registry
from .resources import RESOURCES
from .scheduler import Scheduler
from .store import Obj, Store
from .tls import ServerTLS, make_server_tls
from .validation import DEFAULT_KUBE_VERSION, Validator
from .volumes import VolumeBinder

__all__ = ["DevCluster", "ThreadedDevCluster", "node_object"]


def node_object(
    name: str,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: int = 110,
    *,
    index: int = 1,
    role: str = "worker",
    labels: dict[str, str] | None = None,
    ready: bool = True,
    kube_version: str = DEFAULT_KUBE_VERSION,
) -> Obj:
    """A Node object as a kubelet registers it (labels, capacity, Ready condition)."""
    stamp = "2024-01-01T00:00:00Z"
    resources = {"cpu": cpu, "memory": memory, "pods": str(pods), "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                f"node-role.kubernetes.io/{role}": "",
                "hub.jupyter.org/node-purpose": "user",
                **(labels or {}),
            },
        },
        "spec": {},
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                    "message": "kubelet is posting ready status"
                    if ready
                    else "container runtime network not ready",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.{(index >> 8) & 255}.{index & 255}"},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "kubeletVersion": f"v{kube_version}.0-devcluster",
                "kubeProxyVersion": f"v{kube_version}.0-devcluster",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "devcluster://1.0",
                "osImage": "devcluster",
                "kernelVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
        },
    }


class DevCluster:
    """A Kubernetes API stand-in serving on 127.0.0.1 in the running event loop.

    Parameters
    ----------
    nodes
        How many nodes ``node-1`` .. ``node-N`` to register at start.
    runtime
        ``"noop"`` or ``"process"`` (see :mod:`devcluster.kubelet`).
    node_cpu, node_memory, node_pods
        Capacity (= allocatable) of each node.
    kube_version
        The Kubernetes version reported and validated against.
    scoring
        ``"least"`` (LeastAllocated) or ``"most"`` (MostAllocated).
    rbac
        Enforce RBAC for non-admin tokens (see :mod:`devcluster.rbac`).
    start_delay
        Seconds between a pod's binding and its Running state.
    host_root
        Directory under which hostPath volumes live (process runtime).
    state_dir
        Where the kubeconfig, logs and emptyDirs go (a temporary directory if None).
    kubelet_events
        Whether the kubelet writes events.
    history
        Watch history window per resource type.
    port
        TCP port (0 picks a free one).
    """

    def __init__(
        self,
        nodes: int = 3,
        runtime: str = "noop",
        node_cpu: str = "4",
        node_memory: str = "16Gi",
        node_pods: int = 110,
        *,
        kube_version: str = DEFAULT_KUBE_VERSION,
        scoring: str = "least",
        rbac: bool = False,
        start_delay: float = 0.0,
        host_root: str | Path | None = None,
        state_dir: str | Path | None = None,
        kubelet_events: bool = True,
        history: int = 10_000,
        port: int = 0,
        tls: bool = False,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="devcluster-")
            state_dir = self._tmp.name
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.node_count = nodes
        self.node_cpu, self.node_memory, self.node_pods = node_cpu, node_memory, node_pods
        self.kube_version = kube_version
        self.port = port
        self.tls: ServerTLS | None = make_server_tls(self.state_dir / "tls") if tls else None
        self.admin_token = secrets.token_urlsafe(24)
        self.store = Store(history=history)
        self.registry = Registry(self.store, Validator(kube_version))
        self.scheduler = Scheduler(self.registry, scoring)
        self.volumes = VolumeBinder(self.registry)
        self.garbage_collector = GarbageCollector(self.registry)
        self.namespaces = NamespaceController(self.registry)
        self.kubelet = Kubelet(
            self.registry,
            runtime,
            start_delay,
            kubelet_events,
            Path(host_root) if host_root else None,
            self.state_dir,
        )
        self.authorizer = Authorizer(self.registry, self.admin_token)
        self.faults = Faults()
        self.ctx = ApiContext(
            self.registry,
            self.scheduler,
            self.kubelet,
            self.authorizer,
            self.faults,
            kube_version,
            rbac,
        )
        self.kubeconfig = self.state_dir / "kubeconfig"
        self._runner: web.AppRunner | None = None
        self._handler: ApiHandler | None = None

    # -- life cycle ----------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with ``tls=True``)."""
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Register namespaces and nodes, start controllers, serve, write the kubeconfig."""
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.registry.create(NAMESPACES, "", {"metadata": {"name": ns}})
        self.scheduler.start()
        self.volumes.start()
        self.garbage_collector.start()
        self.namespaces.start()
        self.kubelet.start()
        for i in range(1, self.node_count + 1):
            self.add_node(f"node-{i}", index=i)
        app, self._handler = make_app(self.ctx)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            "127.0.0.1",
            self.port,
            ssl_context=self.tls.server_context() if self.tls else None,
        )
        await site.start()
        self.port = int(self._runner.addresses[0][1])  # the port bound for port 0
        self.ctx.address = f"127.0.0.1:{self.port}"
        self.write_kubeconfig(self.kubeconfig)

    async def stop(self) -> None:
        """Stop serving, stop every process of the process runtime, remove temp files."""
        if self._handler is not None:
            self._handler.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.kubelet.stop()
        await self.scheduler.stop()
        await self.volumes.stop()
        await self.garbage_collector.stop()
        await self.namespaces.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- helpers for tests -----------------------------------------------------------
    def add_node(self, name: str, **kwargs: Any) -> Obj:
        """Register a node (``node_object`` arguments; cluster defaults for capacity)."""
        kwargs.setdefault("cpu", self.node_cpu)
        kwargs.setdefault("memory", self.node_memory)
        kwargs.setdefault("pods", self.node_pods)
        kwargs.setdefault("kube_version", self.kube_version)
        kwargs.setdefault("index", len(self.scheduler.nodes) + 1)
        return self.registry.create(NODES, "", node_object(name, **kwargs))

    def create_objects(
        self, documents: str | Path | list[Obj], namespace: str = "default"
    ) -> list[Obj]:
        """Create objects from a YAML file, YAML text or a list of dicts, as admin.

        Each object goes through the same registry as an API request (validation,
        defaults, 409 on duplicates); namespaced kinds without a namespace go to
        ``namespace``. Useful to load shipped manifests (e.g. RBAC) into a test cluster.

        Raises
        ------
        ApiError
            For an unknown kind or a rejected object.
        """
        if isinstance(documents, Path) or (
            isinstance(documents, str) and "\n" not in documents and Path(documents).exists()
        ):
            documents = Path(documents).read_text()
        docs = list(yaml.safe_load_all(documents)) if isinstance(documents, str) else documents
        created = []
        for doc in docs:
            if not doc:
                continue
            group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
            resource = next(
                (
                    r
                    for r in RESOURCES
                    if r.group == group and r.version == version and r.kind == doc.get("kind")
                ),
                None,
            )
            if resource is None:
                raise ApiError(
                    404, "NotFound", f"no resource for {doc.get('apiVersion')} {doc.get('kind')}"
                )
            if not resource.stored:
                raise ApiError(
                    405, "MethodNotAllowed", f"a {resource.kind} is answered, not stored"
                )
            ns = (doc.get("metadata") or {}).get("namespace") or namespace
            created.append(self.registry.create(resource, ns if resource.namespaced else "", doc))
        return created

    def write_kubeconfig(self, path: str | Path, token: str | None = None) -> Path:
        """Write a kubeconfig for this cluster (admin token unless ``token`` given)."""
        cluster: dict[str, str] = {"server": self.url}
        if self.tls:
            cluster["certificate-authority-data"] = base64.b64encode(self.tls.ca_pem()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "devcluster", "cluster": cluster}],
            "users": [{"name": "devcluster-user", "user": {"token": token or self.admin_token}}],
            "contexts": [
                {
                    "name": "devcluster",
                    "context": {
                        "cluster": "devcluster",
                        "user": "devcluster-user",
                        "namespace": "default",
                    },
                }
            ],
            "current-context": "devcluster",
        }
        target = Path(path)
        target.write_text(yaml.safe_dump(config))
        os.chmod(target, 0o600)
        return target

    @contextlib.asynccontextmanager
    async def api_client(self, token: str | None = None) -> AsyncIterator[Any]:
        """A configured ``kubernetes_asyncio`` ApiClient (admin token unless ``token``)."""
        from kubernetes_asyncio import client

        configuration = client.Configuration(host=self.url)
        configuration.api_key = {"BearerToken": token or self.admin_token}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        if self.tls:
            configuration.ssl_ca_cert = str(self.tls.ca_file)
        api = client.ApiClient(configuration)
        try:
            yield api
        finally:
            await api.close()


class ThreadedDevCluster:
    """A :class:`DevCluster` serving from a background thread with its own event loop.

    Parameters
    ----------
    **kwargs
        Passed to :class:`DevCluster`.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="devcluster"
        )
        self.cluster: DevCluster | None = None

    def start(self) -> DevCluster:
        """Start the thread and the cluster; return the cluster."""
        self._thread.start()

        async def make() -> DevCluster:
            cluster = DevCluster(**self._kwargs)
            await cluster.start()
            return cluster

        self.cluster = self.call(make())
        return self.cluster

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        """Run a coroutine on the cluster's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        """Stop the cluster and the thread."""
        if self.cluster is not None:
            self.call(self.cluster.stop())
            self.cluster = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> DevCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
