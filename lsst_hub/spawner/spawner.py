"""LSSTSpawner: KubeSpawner running each server as its owner, on the least-loaded node,
with the owner's GPFS home mounted, and leaving no pod behind when a session ends.

This module is glue: traits, and the order in which :mod:`.builders` (pure),
:mod:`.kube` (API calls), :mod:`lsst_hub.placement` and KubeSpawner's own pod
life cycle are called. KubeSpawner still creates the pod, waits for it,
streams its events, polls and deletes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from typing import Any, ClassVar

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner.slugs import is_valid_label
from tornado import web
from traitlets import (
    Bool,
    Dict,
    Enum,
    Float,
    Integer,
    List,
    Set,
    TraitError,
    Unicode,
    default,
    validate,
)

from ..identity import (
    DEFAULT_MIN_GID,
    DEFAULT_MIN_UID,
    DEFAULT_REFUSED_GIDS,
    Identity,
    IdentityError,
    id_problems,
)
from . import builders
from .kube import HomeVolumeError, Kube, KubeError, map_api_exception
from .paths import (
    HomePathError,
    check_home_owner,
    check_home_pattern,
    default_home_pattern,
    expand_placeholders,
    home_relative_to,
    safe_name,
    validate_home,
    validate_mount_path,
)
from .reconcile import (
    INSTANCE_LABEL,
    KnownServers,
    default_instance,
    known_servers_from_db,
    reconcile,
)
from .status import pod_finished, unschedulable_reason

__all__ = ["LSSTSpawner", "SpawnError"]

MANAGED_BY = {"app.kubernetes.io/managed-by": "lsst-hub"}
#: Zero to JupyterHub's name for the init container of
#: ``singleuser.cloudMetadata.blockWithIptables``.
Z2JH_METADATA_BLOCKER = "block-cloud-metadata"


class SpawnError(web.HTTPError):
    """A spawn that cannot succeed; the message is shown on the spawn page.

    An HTTP error so that JupyterHub passes it on as it is: a spawn that fails
    within its first second is answered directly, and JupyterHub would replace
    any other exception by "Unhandled error starting server". ``status_code``
    503 marks a cluster without room (try later), 500 the rest.
    """

    def __init__(self, message: str, status_code: int = 500) -> None:
        super().__init__(status_code, "%s", message)
        # JupyterHub shows this attribute to the person instead of a generic error.
        self.jupyterhub_message = message

    def __str__(self) -> str:
        return self.jupyterhub_message


class _JSON:
    """The shape ``ApiClient.deserialize`` reads a body from."""

    def __init__(self, obj: Any) -> None:
        self.data = json.dumps(obj)


def _plain(entry: Any) -> dict[str, Any]:
    """A configured container as a dict (client models give snake_case keys)."""
    if isinstance(entry, dict):
        return entry
    to_dict = getattr(entry, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else {}


class LSSTSpawner(KubeSpawner):
    """KubeSpawner for LDAP + GPFS sites.

    A start reads the person's POSIX identity from ``auth_state`` (refusing
    without one, and root or system ids: :attr:`min_uid`, :attr:`min_gid`,
    :attr:`refused_gids`), checks that the home directory is the person's
    (:attr:`allowed_home_roots`, :attr:`home_directory_pattern`), refuses
    configured containers that need privileges (``init_containers``,
    ``extra_containers``), makes sure the home volume exists, is theirs and is
    bound, chooses the least-loaded node (:attr:`placement_strategy`) and then
    lets KubeSpawner create a pod that runs as the person (Pod Security
    "restricted"), pinned to that node, with the home mounted and as working
    directory. A pod the
    scheduler refuses is placed once more elsewhere; nothing that fits, or a
    second refusal, fails the spawn at once with the reason (:class:`SpawnError`).
    The node choice honours KubeSpawner's ``node_selector``, ``tolerations`` and
    ``node_affinity_required``. An admin's ``modify_pod_hook`` may change the pod,
    but not its identity: a pod that would no longer run as the person, confined,
    with only the person's home, on the chosen node is refused
    (:func:`.builders.pod_violations`).

    Every way a session ends (stop, logout, culling, the server exiting) deletes
    the pod; no code path deletes a home volume or claim (:attr:`delete_pvc` is
    always False, :meth:`delete_forever` keeps them). Pods labelled with
    :attr:`hub_instance` whose server the hub no longer knows are deleted at hub
    start by the orphan service (:mod:`lsst_hub.spawner.reconcile_service`) and,
    as a fallback, once per hub process at the first poll or spawn
    (:mod:`lsst_hub.spawner.reconcile`).
    """

    # One placement cache per hub process and event loop, shared by all spawners.
    _caches: ClassVar[weakref.WeakKeyDictionary[Any, Any]] = weakref.WeakKeyDictionary()
    _cache_locks: ClassVar[weakref.WeakKeyDictionary[Any, asyncio.Lock]] = (
        weakref.WeakKeyDictionary()
    )
    # The event loops for which orphan reconciliation has been started.
    _reconciled: ClassVar[weakref.WeakSet[Any]] = weakref.WeakSet()

    # -- traits --------------------------------------------------------------------
    placement_strategy = Enum(
        ["least-loaded", "scheduler"],
        default_value="least-loaded",
        config=True,
        help="""How the node of a server is chosen.

        ``least-loaded``: this hub picks the node with the lowest requested
        CPU/memory fraction and pins the pod to it with a required node affinity
        on ``kubernetes.io/hostname``; when nothing fits, the spawn fails at once
        with the reason. ``scheduler``: leave the choice to kube-scheduler.
        """,
    )
    load_metric = Enum(
        ["requests", "usage"],
        default_value="requests",
        config=True,
        help="""What "load" means for ``least-loaded``: the sum of pod ``requests``,
        or measured ``usage`` (metrics API) where a sample exists.""",
    )
    hub_instance = Unicode(
        "jupyterhub",
        config=True,
        help="""Name of this hub, put on its pods as the label ``lsst-hub/instance``.

        The orphan-pod service (``python -m lsst_hub.spawner.reconcile_service``,
        added by ``configure_service(c)``) deletes pods carrying this name whose
        server the hub no longer knows, at hub start and then periodically.

        Default: ``jupyterhub-`` and a hash of the hub's API URL
        (:func:`lsst_hub.spawner.reconcile.default_instance`), which differs
        between hubs sharing a namespace, so hubs that keep the default never
        delete each other's pods. ``configure_service`` has the hub hand the same
        value to the service. Setting it explicitly (``configure_service`` passes
        it on) keeps the label stable when the hub's URL changes; each hub in a
        namespace needs its own. Changing it, or the URL while it is unset,
        leaves pods labelled with the old value to the admin.""",
    )
    reconcile_orphans = Bool(
        True,
        config=True,
        help="""Delete this hub's orphan pods (labelled with :attr:`hub_instance`,
        server unknown to the hub) once per hub process, at the first poll or spawn.

        A fallback: on a hub with no running servers nothing is polled at start,
        so the clean-up at hub start is the orphan service's
        (``lsst_hub.spawner.reconcile_service.configure_service``). Both may run.""",
    )
    allowed_home_roots = List(
        Unicode(),
        default_value=["/gpfs/home"],
        config=True,
        help="""Directories home directories must lie strictly below.

        A home outside them, the root itself, a relative path or one with ``..``
        is refused: the spawn fails rather than mount the wrong directory.""",
    )
    home_directory_pattern = Unicode(
        config=True,
        help=r"""A regular expression a home directory must match, as a whole, to be
        its person's: ``{username}`` in it stands for the username (escaped, so it
        matches literally) and ``{uid}`` for the uidNumber; one of them must appear.
        It is matched against the normalised home (no ``.``, ``..``, repeated or
        trailing ``/``), after the :attr:`allowed_home_roots` check.

        Default: ``(?:<root>|...)/{username}`` over :attr:`allowed_home_roots`,
        i.e. the home is directly below a root and named exactly like the person,
        so another person's home, or a directory inside it, is refused. A site
        with homes by initial sets e.g. ``/gpfs/home/[a-z]/{username}``; the
        pattern must not let a home lie inside another person's home.

        A hostPath home (the default :attr:`home_pv_source`) is mounted by the
        kubelet, as root, following symbolic links: a home that is a symlink,
        or below a directory its person can rename or replace, can be pointed
        at another directory of the node or of another person. Keep
        :attr:`allowed_home_roots` owned by root and not writable by people,
        and homes real directories. With ``home_volume_mode = "shared-claim"``
        the home is a ``subPath`` of one claim; the kubelet resolves a subPath
        symlink only if it stays inside that claim's volume (so not on the node),
        but a link to another home inside the claim is still followed: the same
        advice holds.""",
    )
    min_uid = Integer(
        DEFAULT_MIN_UID,
        config=True,
        help="""Lowest uidNumber a server runs as; a person below it (root, system
        accounts) gets no server, and the final pod check refuses any container
        running below it. At least 1: root is never allowed.""",
    )
    min_gid = Integer(
        DEFAULT_MIN_GID,
        config=True,
        help="""Lowest primary gidNumber a server runs with (like :attr:`min_uid`).
        At least 1.""",
    )
    refused_gids = Set(
        Integer(),
        default_value=set(DEFAULT_REFUSED_GIDS),
        config=True,
        help="""Group ids never given to a server, as primary or supplementary group
        or fsGroup (default: root's group 0); a person in one gets no server. A
        negative group id is always refused.""",
    )
    home_volume_mode = Enum(
        ["per-user-pv", "shared-claim"],
        default_value="per-user-pv",
        config=True,
        help="""How the home is mounted.

        ``per-user-pv``: a PersistentVolume ``gpfs-home-<user>`` (from
        :attr:`home_pv_source`) bound to a claim ``home-<user>``, both created
        on first use and kept forever. ``shared-claim``: the existing claim
        :attr:`shared_home_claim` holding :attr:`shared_home_root`, mounted with
        ``subPath`` set to the home relative to that root.""",
    )
    home_pv_source = Dict(
        default_value={"hostPath": {"path": "{home_directory}", "type": "Directory"}},
        config=True,
        help="""The volume source of per-user home PersistentVolumes.

        The default is a hostPath (GPFS being mounted on every node). A CSI source
        such as IBM Spectrum Scale's can be given instead. ``{home_directory}``,
        ``{username}`` and ``{uid}`` are replaced in every string.""",
    )
    home_volume_capacity = Unicode(
        "1Gi",
        config=True,
        help="""Capacity written on home PersistentVolumes and claims. Nominal for
        hostPath (GPFS quotas apply); some CSI drivers read it.""",
    )
    usage_poll_interval = Float(
        30.0,
        config=True,
        help="""Seconds between node usage polls of the metrics API when
        :attr:`load_metric` is ``usage``.""",
    )
    home_bind_timeout = Float(
        30.0,
        config=True,
        help="Seconds to wait for the home claim to be ``Bound`` before failing the spawn.",
    )
    shared_home_claim = Unicode(
        "",
        config=True,
        help="""With ``home_volume_mode = "shared-claim"``: the name of an existing
        ReadWriteMany claim in the spawner's namespace holding :attr:`shared_home_root`.""",
    )
    shared_home_root = Unicode(
        config=True,
        help="""The directory :attr:`shared_home_claim` holds (default: the first of
        :attr:`allowed_home_roots`).""",
    )
    home_mount_path = Unicode(
        "",
        config=True,
        help="""Where the home is mounted in the pod. Empty (default): the same path
        as on GPFS, so notebook paths match batch jobs. ``{home_directory}`` and
        ``{username}`` are expanded.""",
    )
    synthesize_passwd = Bool(
        False,
        config=True,
        help="""Mount ``/etc/passwd`` and ``/etc/group`` files naming the person and
        their groups (a ConfigMap per person), so ``whoami`` and ``ls -l`` show names.
        They replace the image's files.""",
    )

    # Redefined rather than given a @default: traitlets compares a configured value
    # with the *static* default, and KubeSpawner's True would make True look unchanged
    # and skip the validator below.
    delete_pvc = Bool(
        False,
        config=True,
        help="""Always False: LSSTSpawner never deletes a home claim, not even when the
        user is deleted (setting True logs a warning and is ignored).""",
    )

    @default("shared_home_root")
    def _default_shared_home_root(self) -> str:
        roots: list[str] = self.allowed_home_roots
        return roots[0] if roots else ""

    @validate("delete_pvc")
    def _validate_delete_pvc(self, proposal: Any) -> bool:
        # Homes are people's data on a shared file system: never delete them.
        if proposal.value:
            self.log.warning("LSSTSpawner never deletes home claims; ignoring delete_pvc=True")
        return False

    @default("storage_pvc_ensure")
    def _default_storage_pvc_ensure(self) -> bool:
        return False

    @validate("storage_pvc_ensure")
    def _validate_storage_pvc_ensure(self, proposal: Any) -> bool:
        if proposal.value:
            self.log.warning("LSSTSpawner makes its own home claim; ignoring storage_pvc_ensure")
        return False

    @validate("hub_instance")
    def _validate_hub_instance(self, proposal: Any) -> str:
        value = str(proposal.value)
        if not value or not is_valid_label(value):
            raise ValueError(f"hub_instance {value!r} is not a valid Kubernetes label value")
        return value

    @default("hub_instance")
    def _default_hub_instance(self) -> str:
        api_url = getattr(self.hub, "api_url", None)
        return default_instance(str(api_url)) if api_url else "jupyterhub"

    @default("home_directory_pattern")
    def _default_home_directory_pattern(self) -> str:
        return default_home_pattern(self.allowed_home_roots)

    @validate("home_directory_pattern")
    def _validate_home_directory_pattern(self, proposal: Any) -> str:
        try:
            return check_home_pattern(str(proposal.value))
        except ValueError as exc:
            raise TraitError(str(exc)) from None

    @validate("min_uid", "min_gid")
    def _validate_min_id(self, proposal: Any) -> int:
        value = int(proposal.value)
        if value < 1:
            raise TraitError(f"{proposal.trait.name} must be at least 1 (root is never allowed)")
        return value

    # -- state of one spawn -----------------------------------------------------------
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._identity: Identity | None = None
        self._plan: builders.PodPlan | None = None
        self._messages: list[dict[str, Any]] = []
        self._placed = asyncio.Event()
        self._reservation: str | None = None

    @property
    def kube(self) -> Kube:
        """This spawner's API calls (KubeSpawner's shared client and timeouts)."""
        return Kube(
            self.api,
            self.namespace,
            request_timeout=self.k8s_api_request_timeout,
            retry_timeout=self.k8s_api_request_retry_timeout,
        )

    def _say(self, message: str) -> None:
        self._messages.append({"message": message})
        self.log.info("%s: %s", self._log_name, message)

    # -- identity ---------------------------------------------------------------------
    async def load_identity(self) -> Identity:
        """The person's identity from ``auth_state``.

        Raises
        ------
        SpawnError
            Without a usable auth_state, saying what the admin must configure
            (there is no fallback to root or the image's user), or for an
            identity with a uid/gid below :attr:`min_uid`/:attr:`min_gid` or a
            refused or negative group id.
        """
        try:
            state = await self.user.get_auth_state()
        except Exception as exc:
            # A missing JUPYTERHUB_CRYPT_KEY makes decryption itself fail.
            raise SpawnError(
                f"cannot read the login state of {self.user.name!r} ({exc}); "
                "the hub admin must set JUPYTERHUB_CRYPT_KEY and "
                "c.Authenticator.enable_auth_state = True"
            ) from exc
        try:
            identity = Identity.from_auth_state(self.user.name, state)
        except IdentityError as exc:
            raise SpawnError(f"cannot start a server for {self.user.name!r}: {exc}") from exc
        problems = id_problems(
            identity,
            min_uid=self.min_uid,
            min_gid=self.min_gid,
            refused_gids=frozenset(self.refused_gids),
        )
        if problems:
            # The authenticator refuses such a login; this is the second line.
            self.log.error("refusing a server for %s: %s", self._log_name, "; ".join(problems))
            raise SpawnError(
                f"cannot start a server for {self.user.name!r}: {'; '.join(problems)}. "
                "Servers never run as root or a system account; ask the directory's "
                "administrators."
            )
        return identity

    def _plan_limits(self) -> dict[str, Any]:
        return {
            "min_uid": self.min_uid,
            "min_gid": self.min_gid,
            "refused_gids": frozenset(self.refused_gids),
        }

    # -- configured containers --------------------------------------------------------
    def configured_container_problems(self) -> list[str]:
        """Containers the configuration adds that ask for root or privileges.

        ``init_containers`` and ``extra_containers`` (after any profile's
        overrides) run in the person's pod, so as the person without
        privileges; one that asks for more is refused rather than rewritten
        into something that cannot run. Entries may be dicts (camelCase or
        snake_case) or Kubernetes client models.
        """
        problems: list[str] = []
        for trait in ("init_containers", "extra_containers"):
            for entry in getattr(self, trait) or []:
                container = _plain(entry)
                asks = builders.privilege_requests(container)
                if not asks:
                    continue
                name = container.get("name")
                setting = f"c.KubeSpawner.{trait}"
                if trait == "init_containers" and name == Z2JH_METADATA_BLOCKER:
                    setting += " / singleuser.cloudMetadata.blockWithIptables"
                    fix = (
                        "set singleuser.cloudMetadata.blockWithIptables to false and block "
                        "the cloud metadata address with a NetworkPolicy instead "
                        "(singleuser.networkPolicy)"
                    )
                else:
                    fix = "remove it, or let it run as the person without privileges"
                problems.append(f"{setting}: container {name!r} asks for {', '.join(asks)}; {fix}")
        return problems

    def _refuse_privileged_containers(self) -> None:
        problems = self.configured_container_problems()
        if problems:
            self.log.error("refusing to start %s: %s", self._log_name, "; ".join(problems))
            raise SpawnError(
                "The hub's configuration adds containers that need privileges, but a "
                "server runs only as its person: " + "; ".join(problems) + "."
            )

    def get_env(self) -> dict[str, str]:
        """KubeSpawner's environment plus NB_USER, NB_UID, NB_GID and HOME."""
        env: dict[str, str] = super().get_env()
        if self._plan is not None:
            env.update(builders.identity_env(self._plan.identity, self._plan.home))
        return env

    # -- home -------------------------------------------------------------------------
    def _labels(self) -> dict[str, str]:
        labels = dict(MANAGED_BY)
        labels["hub.jupyter.org/username"] = self._build_common_labels({})[
            "hub.jupyter.org/username"
        ]
        return labels

    def _mount_path(self, identity: Identity, home: str) -> str:
        if not self.home_mount_path:
            return home
        values = {"home_directory": home, "username": identity.username}
        return validate_mount_path(expand_placeholders(str(self.home_mount_path), values))

    def checked_home(self, identity: Identity, path: str) -> str:
        """``path`` normalised if it is ``identity``'s home, else :class:`HomePathError`.

        Below an allowed root (:func:`.paths.validate_home`) and the person's
        by :attr:`home_directory_pattern`.
        """
        home = validate_home(path, self.allowed_home_roots)
        check_home_owner(home, identity.username, identity.uid_number, self.home_directory_pattern)
        return home

    async def prepare_home(
        self, identity: Identity, home: str, mount: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Make sure the home volume exists, is this person's and is bound.

        Returns the pod volumes and notebook mounts to add.
        """
        kube = self.kube
        if self.home_volume_mode == "shared-claim":
            if not self.shared_home_claim:
                raise SpawnError(
                    "home_volume_mode is 'shared-claim' but c.LSSTSpawner.shared_home_claim "
                    "is not set"
                )
            sub_path = home_relative_to(home, self.shared_home_root)
            await kube.wait_pvc_bound(self.shared_home_claim, self.home_bind_timeout)
            volume, mount_spec = builders.shared_home_volume(
                self.shared_home_claim, sub_path, mount
            )
            return [volume], [mount_spec]
        pv_name = safe_name(identity.username, "gpfs-home-")
        pvc_name = safe_name(identity.username, "home-")
        source = builders.expand_source(self.home_pv_source, identity, home)
        # What is mounted is checked, after expansion: a hostPath template without
        # {home_directory} could name the root or someone else's home.
        for path in builders.source_paths(source):
            self.checked_home(identity, path)
        labels = self._labels()
        pv = builders.home_pv(
            name=pv_name,
            source=source,
            claim_namespace=self.namespace,
            claim_name=pvc_name,
            capacity=self.home_volume_capacity,
            labels=labels,
        )
        await kube.ensure_home_pv(pv)
        pvc = builders.home_pvc(
            name=pvc_name,
            namespace=self.namespace,
            pv_name=pv_name,
            capacity=self.home_volume_capacity,
            labels=labels,
        )
        await kube.ensure_home_pvc(pvc)

        async def rebind(claim: dict[str, Any]) -> None:
            await kube.rebind_released_pv(pv_name, claim)

        await kube.wait_pvc_bound(pvc_name, self.home_bind_timeout, on_pending=rebind)
        volume, mount_spec = builders.user_home_volume(pvc_name, mount)
        return [volume], [mount_spec]

    async def _passwd(self, identity: Identity, home: str) -> tuple[dict[str, Any], list[Any]]:
        name = safe_name(identity.username, "passwd-")
        configmap = builders.passwd_configmap(
            identity, name=name, namespace=self.namespace, home=home, labels=self._labels()
        )
        await self.kube.apply_configmap(configmap)
        return builders.passwd_volume(name)

    # -- placement --------------------------------------------------------------------
    @classmethod
    async def placement_cache(cls, spawner: LSSTSpawner) -> Any:
        """The hub-wide :class:`~lsst_hub.placement.ClusterCache`, started on first use."""
        from ..placement import ClusterCache

        loop = asyncio.get_running_loop()
        cache = cls._caches.get(loop)
        if cache is not None:
            return cache
        lock = cls._cache_locks.setdefault(loop, asyncio.Lock())
        async with lock:
            cache = cls._caches.get(loop)
            if cache is None:
                cache = ClusterCache(
                    spawner.api.api_client,
                    metrics_interval=(
                        spawner.usage_poll_interval if spawner.load_metric == "usage" else None
                    ),
                    request_timeout=spawner.k8s_api_request_timeout,
                    log=spawner.log,
                )
                try:
                    async with asyncio.timeout(spawner.k8s_api_request_retry_timeout):
                        await cache.start()
                except TimeoutError:
                    raise SpawnError(
                        "cannot read the cluster's nodes and pods to choose a node "
                        f"(no answer within {spawner.k8s_api_request_retry_timeout}s); "
                        "check the hub's access to the Kubernetes API"
                    ) from None
                cls._caches[loop] = cache
        return cache

    @classmethod
    async def stop_placement_cache(cls) -> None:
        """Stop the cache of the running loop (tests, shutdown)."""
        cache = cls._caches.pop(asyncio.get_running_loop(), None)
        if cache is not None:
            await cache.stop()

    def _request(self) -> tuple[float, int]:
        cpu = self.cpu_guarantee or self.cpu_limit or 0.0
        memory = self.mem_guarantee or self.mem_limit or 0
        return float(cpu), int(memory)

    async def _choose(self, exclude: list[str]) -> str | None:
        if self.placement_strategy == "scheduler":
            return None
        cache = await self.placement_cache(self)
        cpu, memory = self._request()
        tolerations = self._sorted_dict_values(self.tolerations) or []
        placement = cache.choose(
            cpu,
            memory,
            node_selector=dict(self.node_selector or {}),
            tolerations=list(tolerations),
            load_metric=self.load_metric,
            exclude=list(exclude),
            node_affinity=list(self.node_affinity_required or []),
        )
        if placement.node is None:
            raise SpawnError(placement.reason, 503)
        self._reservation = f"{self.namespace}/{self.pod_name}"
        cache.reserve(self._reservation, placement.node, cpu, memory)
        self._say(placement.reason)
        return str(placement.node)

    def _release(self) -> None:
        if self._reservation is None:
            return
        cache = self._caches.get(asyncio.get_running_loop())
        if cache is not None:
            cache.release(self._reservation)
        self._reservation = None

    # -- life cycle -------------------------------------------------------------------
    @property
    def _log_name(self) -> str:
        return f"{self.user.name}/{self.name}" if self.name else str(self.user.name)

    def start(self) -> Any:
        """Start the server (see :meth:`_start`); resets the progress messages."""
        self._messages = []
        self._placed = asyncio.Event()
        return super().start()

    async def _start(self) -> Any:
        self._maybe_reconcile()
        try:
            return await self._start_personal()
        except BaseException:
            # On success the reservation ends by itself when the cache sees the pod.
            self._release()
            raise
        finally:
            self._placed.set()

    async def _start_personal(self) -> Any:
        self._plan = None
        self._refuse_privileged_containers()
        identity = await self.load_identity()
        try:
            home = self.checked_home(identity, identity.home_directory)
        except HomePathError as exc:
            self.log.error("refusing the home of %s: %s", self._log_name, exc)
            raise SpawnError(f"cannot mount the home of {identity.username!r}: {exc}") from exc
        try:
            mount = self._mount_path(identity, home)
            volumes, mounts = await self.prepare_home(identity, home, mount)
            if self.synthesize_passwd:
                volume, passwd_mounts = await self._passwd(identity, mount)
                volumes.append(volume)
                mounts.extend(passwd_mounts)
        except (HomeVolumeError, HomePathError) as exc:
            raise SpawnError(f"cannot mount the home of {identity.username!r}: {exc}") from exc
        except KubeError as exc:
            raise SpawnError(f"cannot prepare the home volume: {exc}") from exc
        self._say(f"Home {home} ready")

        exclude: list[str] = []
        while True:
            node = await self._choose(exclude)
            self._plan = builders.PodPlan(
                identity=identity,
                home=mount,
                volumes=tuple(volumes),
                mounts=tuple(mounts),
                node=node,
                labels={INSTANCE_LABEL: self.hub_instance},
                **self._plan_limits(),
            )
            self._placed.set()
            reason = await self._run_pod()
            if isinstance(reason, str):
                # The scheduler refused the pod: try once more elsewhere, then give up.
                self._release()
                # Delete and wait until the pod is gone, so the next attempt does not
                # read the refused pod's status.
                await self.stop(now=True)
                if node is None or exclude:
                    raise SpawnError(f"Kubernetes cannot schedule the server: {reason}", 503)
                self._say(f"{node} refused the server ({reason}); choosing another node")
                exclude.append(node)
                continue
            return reason[0]

    async def _run_pod(self) -> tuple[Any] | str:
        """Run KubeSpawner's start; return (url,) or the scheduler's refusal."""
        start = asyncio.ensure_future(super()._start())
        watch = asyncio.ensure_future(self._watch_unschedulable())
        try:
            await asyncio.wait({start, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            start.cancel()
            watch.cancel()
            await self._delete_pod_now()
            raise
        if start.done():
            watch.cancel()
            try:
                return (start.result(),)
            except ApiException as exc:
                await self._delete_pod_now()
                mapped = map_api_exception(exc, f"create pod {self.namespace}/{self.pod_name}")
                raise SpawnError(f"cannot start the server: {mapped}") from exc
            except Exception:
                # Leave no pod behind a failed start.
                await self._delete_pod_now()
                raise
        start.cancel()
        with contextlib.suppress(BaseException):
            await start  # cancelled on purpose
        return str(watch.result())

    async def _watch_unschedulable(self) -> str:
        """Return the scheduler's reason once the pod is found unschedulable."""
        key = f"{self.namespace}/{self.pod_name}"
        delay = 0.1
        while True:
            reflector = self.pod_reflector
            pod = reflector.pods.get(key) if reflector is not None else None
            if pod is not None and not pod["metadata"].get("deletionTimestamp"):
                reason = unschedulable_reason(pod, self.events)
                if reason:
                    return reason
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    async def _delete_pod_now(self) -> None:
        try:
            await self.kube.delete_pod(self.pod_name, 0)
        except KubeError:
            self.log.exception("could not delete pod %s after a failed start", self.pod_name)

    async def progress(self) -> Any:
        """Our messages (home ready, node chosen), then KubeSpawner's pod events."""
        sent = 0
        while not self._placed.is_set():
            while sent < len(self._messages):
                yield self._messages[sent]
                sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._placed.wait(), 0.5)
        async for event in super().progress():
            while sent < len(self._messages):
                yield self._messages[sent]
                sent += 1
            yield event
        while sent < len(self._messages):
            yield self._messages[sent]
            sent += 1

    async def stop(self, now: bool = False) -> None:
        """Delete the pod (grace period unless ``now``); the home is never touched."""
        self._release()
        await super().stop(now=now)

    async def poll(self) -> int | None:
        """KubeSpawner's poll, and delete the pod of a server that has exited.

        KubeSpawner deletes the pod when the notebook container has terminated,
        but not when the pod ended without container statuses (evicted,
        Failed/Succeeded phase); a finished pod must not linger either way.
        """
        self._maybe_reconcile()
        status: int | None = await super().poll()
        if status is not None:
            pod = self.pod_reflector.pods.get(f"{self.namespace}/{self.pod_name}")
            if pod_finished(pod):
                self.log.info("server of %s has exited; deleting its pod", self._log_name)
                await self.kube.delete_pod(self.pod_name, 0)
        return status

    async def delete_forever(self) -> None:
        """Called when the user is deleted: keep the home volume and say so."""
        if self.home_volume_mode == "per-user-pv":
            pv = safe_name(self.user.name, "gpfs-home-")
            pvc = safe_name(self.user.name, "home-")
            self.log.info(
                "user %s deleted; keeping home claim %s/%s and volume %s. To remove them by "
                "hand: kubectl -n %s delete pvc %s && kubectl delete pv %s",
                self._log_name, self.namespace, pvc, pv, self.namespace, pvc, pv,
            )  # fmt: skip
        else:
            self.log.info("user %s deleted; home left in place", self._log_name)

    # -- pod -------------------------------------------------------------------------
    async def get_pod_manifest(self) -> Any:
        """KubeSpawner's pod, personalised by :func:`.builders.personalise_pod`."""
        pod = await super().get_pod_manifest()
        if self._plan is None:
            return pod
        # Profiles (kubespawner_override) are applied by now: check their containers too.
        self._refuse_privileged_containers()
        client = self.api.api_client
        data = builders.personalise_pod(client.sanitize_for_serialization(pod), self._plan)
        return client.deserialize(_JSON(data), "V1Pod")

    async def _make_create_pod_request(self, pod: Any, request_timeout: float) -> Any:
        """Check the final pod (after any ``modify_pod_hook``), then create it."""
        if self._plan is not None:
            data = self.api.api_client.sanitize_for_serialization(pod)
            problems = builders.pod_violations(data, self._plan)
            if problems:
                # A configuration error, not a person's: say so in the hub's log and
                # keep the details (uids, groups) out of the person's message.
                self.log.error(
                    "refusing to create pod %s: after modify_pod_hook %s",
                    self.pod_name,
                    "; ".join(problems),
                )
                raise SpawnError(
                    "The server's pod was changed by the hub's configuration so that it "
                    "would not run as you with your home; please tell the administrators."
                )
        return await super()._make_create_pod_request(pod, request_timeout)

    # -- orphans ----------------------------------------------------------------------
    def _maybe_reconcile(self) -> None:
        if not self.reconcile_orphans:
            return
        loop = asyncio.get_running_loop()
        if loop in self._reconciled:
            return
        self._reconciled.add(loop)
        task = loop.create_task(self._reconcile_once())
        # Keep a reference so the task is not garbage collected mid-way.
        type(self)._reconcile_task = task

    _reconcile_task: ClassVar[asyncio.Task[Any] | None] = None

    async def _reconcile_once(self) -> list[str]:
        async def known() -> KnownServers:
            return known_servers_from_db(self.db)

        try:
            return await reconcile(self.kube, self.hub_instance, known)
        except Exception:
            self.log.exception(
                "orphan pod reconciliation failed; the orphan service (if configured) "
                "retries it, this process will not"
            )
            return []
