"""The orphan-pod service: a JupyterHub managed service that cleans up at hub start.

The hub starts managed services with itself, whether or not any server is
running, and stops them with itself; so a service is the seam that runs "on
hub start". This one makes a pass at once and then every
:attr:`~ReconcileService.interval` seconds: it lists the pods labeled with
this hub's instance name, then asks the hub's REST API which servers are
running or pending, and deletes the labeled pods whose server the hub does not
know (:func:`.reconcile.reconcile`; the order is what keeps a spawn in progress
safe). A pass that fails (hub API or Kubernetes unreachable, refused) is logged
and the next pass tries again; a failure never makes a pod look like an orphan
(each is confirmed with the hub just before it is deleted).

Add it to ``jupyterhub_config.py`` with one line (the namespace and instance
name must be the spawner's; by default they are read from ``c.LSSTSpawner``, and
an instance name left at its default is derived from the hub's API URL on both
sides, :func:`.reconcile.default_instance`)::

    from lsst_hub.spawner.reconcile_service import configure_service
    configure_service(c)  # after the c.LSSTSpawner.namespace / hub_instance lines

or run it by hand, e.g. one pass: ``JUPYTERHUB_API_URL=... JUPYTERHUB_API_TOKEN=...
python -m lsst_hub.spawner.reconcile_service --namespace=jhub --once``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from traitlets import Bool, Float, Integer, Unicode, default, validate
from traitlets.config import Application

from ..names import DEFAULT_HUB_INSTANCE
from .hub_api import REQUIRED_SCOPES, HubAPI, HubAPIError
from .kube import Kube, KubeError
from .reconcile import default_instance, reconcile

__all__ = [
    "INSTANCE_ENV",
    "SERVICE_NAME",
    "ReconcileService",
    "configure_service",
    "main",
    "service_config",
]

#: The service's default name in ``c.JupyterHub.services``.
SERVICE_NAME = "lsst-orphan-pods"
#: What the service process needs from the hub's environment to reach Kubernetes
#: (JupyterHub passes only a few variables on to managed services).
KUBE_ENV = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")
#: The spawner's default instance name, as the hub computes it for the service (see
#: :func:`service_config`); it wins over one derived from ``JUPYTERHUB_API_URL``.
INSTANCE_ENV = "LSST_HUB_INSTANCE_LABEL"
_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

log = logging.getLogger(__name__)


class ReconcileService(Application):
    """Delete this hub's orphan notebook pods at hub start and every ``interval`` seconds."""

    name = "lsst-hub-orphan-pods"
    description = __doc__

    namespace = Unicode(
        config=True,
        help="""Namespace of the notebook pods (the spawner's ``namespace``). Default:
        the namespace this process runs in (in a cluster), else ``default``.""",
    )
    hub_instance = Unicode(
        DEFAULT_HUB_INSTANCE,
        config=True,
        help="""The spawner's ``hub_instance``: only pods labeled
        ``lsst-hub/instance=<hub_instance>`` are ever considered.

        Default: the spawner's default, which ``configure_service`` has the hub
        compute from its own API URL (``jupyterhub-`` and a hash) and pass as
        ``$LSST_HUB_INSTANCE_LABEL``; without it, derived the same way from
        :attr:`hub_api_url`. Run by hand against another URL (a port forward),
        give the spawner's value (the pods' ``lsst-hub/instance`` label).""",
    )
    interval = Float(
        300.0,
        config=True,
        help="""Seconds between passes; the first pass runs at start. A failed pass
        is retried at the next one.""",
    )
    once = Bool(
        False,
        config=True,
        help="Make one pass and exit (status 1 if it failed) instead of running forever.",
    )
    grace_seconds = Integer(
        -1,
        config=True,
        help="""Grace period in seconds for deleting an orphan; negative (default): the
        pod's own ``terminationGracePeriodSeconds``.""",
    )
    hub_api_url = Unicode(
        config=True,
        help="The hub's REST API URL. Default: ``$JUPYTERHUB_API_URL`` (set by the hub).",
    )
    hub_api_token = Unicode(
        config=True,
        help="""The service's API token. Default: ``$JUPYTERHUB_API_TOKEN`` (set by the
        hub). Its role needs the unfiltered scopes ``list:users`` and ``read:servers``.""",
    )
    k8s_api_host = Unicode(
        "",
        config=True,
        help="""Kubernetes API URL overriding the one from the in-cluster or kubeconfig
        configuration (like the spawner's ``k8s_api_host``).""",
    )
    request_timeout = Float(
        30.0,
        config=True,
        help="Seconds one Kubernetes or hub API request may take.",
    )
    retry_timeout = Float(
        60.0,
        config=True,
        help="Seconds one Kubernetes call may spend retrying transient failures.",
    )

    aliases = {
        "namespace": "ReconcileService.namespace",
        "hub-instance": "ReconcileService.hub_instance",
        "interval": "ReconcileService.interval",
        "grace-seconds": "ReconcileService.grace_seconds",
        "hub-api-url": "ReconcileService.hub_api_url",
        "k8s-api-host": "ReconcileService.k8s_api_host",
        "request-timeout": "ReconcileService.request_timeout",
        "retry-timeout": "ReconcileService.retry_timeout",
        "log-level": "Application.log_level",
    }
    flags = {
        "once": ({"ReconcileService": {"once": True}}, "Make one pass and exit."),
    }

    @default("namespace")
    def _default_namespace(self) -> str:
        # The same rule as KubeSpawner: the pod's own namespace in a cluster.
        try:
            return _SA_NAMESPACE.read_text().strip() or "default"
        except OSError:
            return "default"

    @default("log_level")
    def _default_log_level(self) -> int:
        # Each pass says what it did: a service's log is its only output.
        return logging.INFO

    @default("hub_api_url")
    def _default_hub_api_url(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "")

    @default("hub_instance")
    def _default_hub_instance(self) -> str:
        if os.environ.get(INSTANCE_ENV):
            return os.environ[INSTANCE_ENV]
        return default_instance(self.hub_api_url) if self.hub_api_url else DEFAULT_HUB_INSTANCE

    @default("hub_api_token")
    def _default_hub_api_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @validate("interval")
    def _validate_interval(self, proposal: Any) -> float:
        value = float(proposal.value)
        if value <= 0:
            raise ValueError(f"interval must be positive, not {value}")
        return value

    # -- one pass ------------------------------------------------------------------
    async def kube_configuration(self) -> client.Configuration:
        """In-cluster configuration, else the kubeconfig (as KubeSpawner loads it).

        Loaded for every pass, so a rotated service-account token is picked up.
        """
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            await config.load_kube_config(client_configuration=configuration)
        if self.k8s_api_host:
            configuration.host = self.k8s_api_host
        return configuration

    async def reconcile_once(self) -> list[str]:
        """One pass; the names of the pods deleted.

        Raises
        ------
        HubAPIError, KubeError, config.ConfigException
            The pass stopped; only pods confirmed as orphans before that were deleted.
        """
        if not self.hub_api_url or not self.hub_api_token:
            raise HubAPIError(
                "JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN are not set: run this as a "
                "JupyterHub managed service (see configure_service)"
            )
        configuration = await self.kube_configuration()
        async with client.ApiClient(configuration) as api, aiohttp.ClientSession() as session:
            kube = Kube(
                client.CoreV1Api(api),
                self.namespace,
                request_timeout=self.request_timeout,
                retry_timeout=self.retry_timeout,
            )
            hub = HubAPI(
                session, self.hub_api_url, self.hub_api_token, request_timeout=self.request_timeout
            )

            async def still_unknown(server: tuple[str, str]) -> bool:
                return not await hub.server_known(server)

            grace = self.grace_seconds if self.grace_seconds >= 0 else None
            return await reconcile(
                kube,
                self.hub_instance,
                hub.known_servers,
                grace_seconds=grace,
                confirm=still_unknown,
            )

    async def run_pass(self) -> bool:
        """One pass, logged; False if it failed."""
        try:
            deleted = await self.reconcile_once()
        except (HubAPIError, KubeError, config.ConfigException, OSError) as exc:
            log.error("orphan pod pass failed%s: %s", self._retry_note(), exc)
            return False
        except Exception:
            log.exception("orphan pod pass failed%s", self._retry_note())
            return False
        log.info(
            "orphan pod pass done in %s for instance %s: %d deleted%s",
            self.namespace,
            self.hub_instance,
            len(deleted),
            f" ({', '.join(deleted)})" if deleted else "",
        )
        return True

    def _retry_note(self) -> str:
        return "" if self.once else f", trying again in {self.interval:g}s"

    async def run(self) -> int:
        """Pass at once, then every :attr:`interval` seconds until SIGTERM/SIGINT.

        A signal also ends a pass in progress (a pod is deleted only after its own
        check, so a canceled pass leaves nothing half done): the hub waits for its
        services one after another, and a pass stuck on an unreachable API must not
        hold the hub's shutdown.
        """
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        log.info(
            "orphan pod service: namespace %s, instance %s, every %gs, hub API %s",
            self.namespace, self.hub_instance, self.interval, self.hub_api_url,
        )  # fmt: skip
        while True:
            passing = asyncio.ensure_future(self.run_pass())
            stop = asyncio.ensure_future(stopping.wait())
            await asyncio.wait((passing, stop), return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not passing.done():
                passing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await passing
                log.info("orphan pod service stopping (a pass was canceled)")
                return 1 if self.once else 0  # --once: that pass did not finish
            ok = passing.result()
            if self.once:
                return 0 if ok else 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval)
            if stopping.is_set():
                log.info("orphan pod service stopping")
                return 0

    def start(self) -> None:
        """Set up logging and run until stopped (the exit status is the result)."""
        logging.basicConfig(
            level=_level(self.log_level),
            format=f"[%(levelname).1s %(asctime)s {SERVICE_NAME}] %(message)s",
            stream=sys.stderr,
        )
        sys.exit(asyncio.run(self.run()))


def _level(value: Any) -> int:
    """A log level as a number (the trait accepts names too)."""
    if isinstance(value, str):
        number = logging.getLevelName(value.upper())
        return number if isinstance(number, int) else logging.INFO
    return int(value)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m lsst_hub.spawner.reconcile_service [options]``."""
    app = ReconcileService()
    app.initialize(list(argv) if argv is not None else None)
    code = 0
    try:
        app.start()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    # Everything is done and logged: skip the interpreter's teardown, which takes
    # seconds with kubernetes_asyncio loaded, and which a stopping hub waits for (it
    # stops its services one after another).
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def service_config(
    *,
    namespace: str | None = None,
    hub_instance: str | None = None,
    interval: float = 300.0,
    grace_seconds: int | None = None,
    name: str = SERVICE_NAME,
    python: str = sys.executable,
    environ: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The ``c.JupyterHub.services`` entry and ``c.JupyterHub.load_roles`` role.

    Parameters
    ----------
    namespace, hub_instance
        The spawner's ``namespace`` and ``hub_instance`` (None: the service's
        own defaults, which match the spawner's: the namespace it runs in, as
        KubeSpawner's, and the spawner's default instance, which the hub
        computes for the service through its environment).
    interval
        Seconds between passes after the one at start.
    grace_seconds
        Grace period for deletions (None: the pod's own).
    name
        The service's name (and its role's).
    python
        The interpreter to run the service with (default: the hub's).
    environ
        Where to take ``KUBECONFIG`` / ``KUBERNETES_SERVICE_*`` from (default:
        the hub's environment); JupyterHub does not pass them on by itself.

    Returns
    -------
    dict
        ``{"service": {...}, "role": {...}}``.
    """
    environ = os.environ if environ is None else environ
    environment: dict[str, Any] = {key: environ[key] for key in KUBE_ENV if environ.get(key)}
    command = [python, "-m", "lsst_hub.spawner.reconcile_service"]
    if namespace:
        command.append(f"--namespace={namespace}")
    if hub_instance:
        command.append(f"--hub-instance={hub_instance}")
    else:
        # The hub calls this with the service's spawner, whose hub is the spawners' hub:
        # the very URL the spawner's default comes from, whatever URL the service uses.
        environment[INSTANCE_ENV] = _hub_default_instance
    command.append(f"--interval={interval:g}")
    if grace_seconds is not None:
        command.append(f"--grace-seconds={int(grace_seconds)}")
    service = {
        "name": name,
        "command": command,
        "environment": environment,
    }
    role = {
        "name": name,
        "description": "List users and their servers to find orphan notebook pods",
        "scopes": list(REQUIRED_SCOPES),
        "services": [name],
    }
    return {"service": service, "role": role}


def _hub_default_instance(service_spawner: Any) -> str:
    """``LSSTSpawner``'s default ``hub_instance`` on the hub starting the service."""
    return default_instance(str(service_spawner.hub.api_url))


def configure_service(c: Any, **options: Any) -> None:
    """Add the service and its role to a JupyterHub config ``c``.

    ``options`` are :func:`service_config`'s; ``namespace`` and ``hub_instance``
    default to the values already set as ``c.LSSTSpawner.namespace`` /
    ``c.LSSTSpawner.hub_instance``, so the service looks where the spawner puts
    its pods (unset, both sides use the same defaults).

    It also turns the spawner's fallback pass (``c.LSSTSpawner.reconcile_orphans``)
    off unless that is set: the service does the same clean-up from outside the hub,
    and the fallback, run inside the hub while it is busiest starting, lists every
    pod of the hub (with 5,000 running servers the hub's event loop froze 11 to 14 s
    decoding the list, benchmarks/bench_hub_startup.py).
    """
    spawner = c.LSSTSpawner
    for key in ("namespace", "hub_instance"):
        # dict.get: reading an unset key of a traitlets Config would create it.
        if key not in options and isinstance(spawner.get(key), str):
            options[key] = spawner.get(key)
    if "reconcile_orphans" not in spawner:
        spawner.reconcile_orphans = False
    entries = service_config(**options)
    c.JupyterHub.services.append(entries["service"])
    c.JupyterHub.load_roles.append(entries["role"])


if __name__ == "__main__":
    main()
