"""LSSTSpawner: KubeSpawner running each server as its owner, on the least-loaded node,
with the owner's GPFS home mounted, and leaving no pod behind when a session ends.

This module holds the traits and the order of a spawn; each step is a small
module of its own, called with plain values:

1. :mod:`.person`: the identity from ``auth_state``, configured containers;
2. :mod:`.home`: the home checked, its volume made and bound;
3. :mod:`.placing`: the node chosen, room reserved there;
4. :mod:`.podcheck`: KubeSpawner builds the pod, made personal by
   :func:`.builders.personalize_pod` from a :class:`~.builders.PodPlan`, and
   creates it after the final check; the pod name must be this user's
   (checked when KubeSpawner finds it taken, 409, and calls ``stop`` to delete
   the pod holding it);
5. stop: KubeSpawner deletes the pod, unless it is recorded as another hub
   user's (KubeSpawner also stops before creating a pod whose name is taken);
   nothing deletes a home.

:mod:`.builders` (pure) builds every object, :mod:`.kube` makes the API calls,
:mod:`.orphans` starts the fallback orphan pass. KubeSpawner still creates the
pod, waits for it, streams its events, polls and deletes it.

KubeSpawner's private parts used (checked against KubeSpawner
:data:`KUBESPAWNER_CHECKED`; ``tests/spawner/test_kubespawner_version.py`` fails
on any other version, to have them checked again):

- ``_start``, overridden and called. KubeSpawner's public ``start()`` wraps it
  in the future ``progress()`` follows, so overriding it keeps the progress page
  open until our whole spawn (identity, home, node) has ended; calling it runs
  KubeSpawner's pod creation and wait, which has no public entry point. Inside
  it KubeSpawner calls back the public ``get_env``, ``get_pod_manifest`` and
  ``modify_pod_hook`` (in that order, after ``load_user_options``): the only
  time the plan is kept on the spawner (``_pod_plan``).

Public KubeSpawner attributes used: ``api`` (its shared client),
``pod_reflector`` and ``events`` (the pod's state and events while it starts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from kubespawner.slugs import is_valid_label, safe_slug
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

from ..identity import DEFAULT_MIN_GID, DEFAULT_MIN_UID, DEFAULT_REFUSED_GIDS, Identity
from ..names import (
    DEFAULT_HUB_INSTANCE,
    INSTANCE_LABEL,
    MANAGED_BY,
    USER_ID_ANNOTATION,
    USERNAME_KEY,
)
from . import builders, orphans, person, placing
from .errors import PodNameTakenError, SpawnError
from .home import Home, HomeSettings, home_volume_names, prepare_home
from .kube import Kube, KubeError, map_api_exception
from .paths import check_home_pattern, default_home_pattern
from .podcheck import FinalPodCheck, pod_owner_conflict
from .reconcile import default_instance
from .status import pod_finished, unschedulable_reason

if TYPE_CHECKING:
    from ..placement import ClusterCache, LoadMetric

__all__ = ["KUBESPAWNER_CHECKED", "KUBESPAWNER_PRIVATE", "LSSTSpawner", "SpawnError"]

#: The KubeSpawner versions (from, up to but excluding) whose private parts this
#: module was checked against (see the module text).
KUBESPAWNER_CHECKED = ("7.1", "7.2")
#: The private KubeSpawner (and JupyterHub ``Spawner``) methods LSSTSpawner
#: overrides or calls, each explained in the module text.
KUBESPAWNER_PRIVATE = ("_start",)


class _JSON:
    """The shape ``ApiClient.deserialize`` reads a body from."""

    def __init__(self, obj: Any) -> None:
        self.data = json.dumps(obj)


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
    directory. A pod the scheduler refuses is placed once more elsewhere;
    nothing that fits, or a second refusal, fails the spawn at once with the
    reason (:class:`SpawnError`). The node choice honors KubeSpawner's
    ``node_selector``, ``tolerations`` and ``node_affinity_required``. An admin's
    ``modify_pod_hook`` may change the pod, but not its identity: a pod that
    would no longer run as the person, confined, with only the person's home,
    on the chosen node is refused (:func:`.builders.pod_violations`). A pod
    name held by another hub user's pod (a user renamed while their server runs
    keeps their pod's name) fails the spawn, and that pod is never deleted.

    Every way a session ends (stop, logout, culling, the server exiting) deletes
    the pod; no code path deletes a home volume or claim (:attr:`delete_pvc` is
    always False, :meth:`delete_forever` keeps them). Pods labeled with
    :attr:`hub_instance` whose server the hub no longer knows are deleted at hub
    start by the orphan service (:mod:`lsst_hub.spawner.reconcile_service`) and,
    as a fallback, once per hub process at the first poll or spawn
    (:mod:`lsst_hub.spawner.orphans`).
    """

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
        DEFAULT_HUB_INSTANCE,
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
        leaves pods labeled with the old value to the admin.""",
    )
    reconcile_orphans = Bool(
        True,
        config=True,
        help="""Delete this hub's orphan pods (labeled with :attr:`hub_instance`,
        server unknown to the hub) once per hub process, at the first poll or spawn.

        A fallback for hubs without the orphan service: on a hub with no running
        servers nothing is polled at start, so the clean-up at hub start is the
        service's (``lsst_hub.spawner.reconcile_service.configure_service``, which
        turns this off unless it is set: the pass lists every pod of the hub from
        inside the hub while it starts).""",
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
        It is matched against the normalized home (no ``.``, ``..``, repeated or
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
        return default_instance(str(api_url)) if api_url else DEFAULT_HUB_INSTANCE

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
        # The plan of the pod being created: set by _run_pod only while KubeSpawner's
        # _start runs, for the callbacks it makes (get_env, get_pod_manifest).
        self._pod_plan: builders.PodPlan | None = None
        # The room held on the chosen node (see placing.Reservation for its life).
        self._reservation: placing.Reservation | None = None
        self._messages: list[dict[str, Any]] = []
        self._placed = asyncio.Event()

    @property
    def kube(self) -> Kube:
        """This spawner's API calls (KubeSpawner's shared client and timeouts)."""
        return Kube(
            self.api,
            self.namespace,
            request_timeout=self.k8s_api_request_timeout,
            retry_timeout=self.k8s_api_request_retry_timeout,
        )

    @property
    def _who(self) -> str:
        # Not JupyterHub's private _log_name (user:server), which its own logs use.
        return f"{self.user.name}/{self.name}" if self.name else str(self.user.name)

    def _say(self, message: str) -> None:
        self._messages.append({"message": message})
        self.log.info("%s: %s", self._who, message)

    # -- 1. identity ------------------------------------------------------------------
    async def load_identity(self) -> Identity:
        """The person's identity from ``auth_state`` (:func:`.person.load_identity`)."""
        return await person.load_identity(
            self.user,
            min_uid=self.min_uid,
            min_gid=self.min_gid,
            refused_gids=frozenset(self.refused_gids),
            log=self.log,
            log_name=self._who,
        )

    def configured_container_problems(self) -> list[str]:
        """Containers the configuration adds (``init_containers``,
        ``extra_containers``, after any profile's overrides) that ask for root or
        privileges (:func:`.person.configured_container_problems`)."""
        return person.configured_container_problems(self.init_containers, self.extra_containers)

    def _refuse_privileged_containers(self) -> None:
        person.refuse_privileged_containers(
            self.configured_container_problems(), self.log, self._who
        )

    # -- 2. home ----------------------------------------------------------------------
    @property
    def home_settings(self) -> HomeSettings:
        """The home traits as one value, for :mod:`.home`."""
        labels = dict(MANAGED_BY)
        # The same value as KubeSpawner's username label on the pod.
        labels[USERNAME_KEY] = safe_slug(self.user.name, is_valid=is_valid_label)
        return HomeSettings(
            namespace=self.namespace,
            allowed_roots=tuple(self.allowed_home_roots),
            pattern=self.home_directory_pattern,
            volume_mode=self.home_volume_mode,
            pv_source=self.home_pv_source,
            capacity=self.home_volume_capacity,
            bind_timeout=self.home_bind_timeout,
            shared_claim=self.shared_home_claim,
            shared_root=self.shared_home_root,
            mount_path=str(self.home_mount_path),
            synthesize_passwd=self.synthesize_passwd,
            labels=labels,
        )

    # -- 3. placement -----------------------------------------------------------------
    @classmethod
    async def placement_cache(cls, spawner: LSSTSpawner) -> ClusterCache:
        """The hub-wide :class:`~lsst_hub.placement.ClusterCache`, started on first use."""
        return await placing.cluster_cache(
            spawner.api.api_client,
            metrics_interval=(
                spawner.usage_poll_interval if spawner.load_metric == "usage" else None
            ),
            request_timeout=spawner.k8s_api_request_timeout,
            start_timeout=spawner.k8s_api_request_retry_timeout,
            log=spawner.log,
        )

    @classmethod
    async def stop_placement_cache(cls) -> None:
        """Stop the cache of the running loop (tests, shutdown)."""
        await placing.stop_cluster_cache()

    async def _choose(self, exclude: list[str]) -> str | None:
        """The node for the pod (None: the scheduler's choice); holds a reservation."""
        if self.placement_strategy == "scheduler":
            return None
        tolerations = self.tolerations or []
        if isinstance(tolerations, dict):
            # KubeSpawner takes a dict too, and uses its values in key order.
            tolerations = [tolerations[key] for key in sorted(tolerations)]
        cpu, memory = placing.pod_request(
            self.cpu_guarantee, self.cpu_limit, self.mem_guarantee, self.mem_limit
        )
        placement, self._reservation = placing.choose_node(
            await self.placement_cache(self),
            key=f"{self.namespace}/{self.pod_name}",
            cpu=cpu,
            memory=memory,
            node_selector=self.node_selector or {},
            tolerations=tolerations,
            node_affinity=self.node_affinity_required or [],
            load_metric=cast("LoadMetric", self.load_metric),
            exclude=exclude,
        )
        self._say(placement.reason)
        return self._reservation.node

    def _release(self) -> None:
        if self._reservation is not None:
            self._reservation.release()
            self._reservation = None

    # -- the spawn, in order ----------------------------------------------------------
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
        self._refuse_privileged_containers()
        identity = await self.load_identity()
        home = await prepare_home(self.kube, self.home_settings, identity, self.log,
                                  self._who)  # fmt: skip
        self._say(f"Home {home.path} ready")
        exclude: list[str] = []
        while True:
            node = await self._choose(exclude)
            self._placed.set()
            reason = await self._run_pod(self._plan(identity, home, node))
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

    def _plan(self, identity: Identity, home: Home, node: str | None) -> builders.PodPlan:
        """Everything personal about the pod (see :class:`.builders.PodPlan`)."""
        return builders.PodPlan(
            identity=identity,
            home=home.mount,
            volumes=home.volumes,
            mounts=home.mounts,
            node=node,
            labels={INSTANCE_LABEL: self.hub_instance},
            annotations={USER_ID_ANNOTATION: str(self.user.id)},
            min_uid=self.min_uid,
            min_gid=self.min_gid,
            refused_gids=frozenset(self.refused_gids),
        )

    async def _run_pod(self, plan: builders.PodPlan) -> tuple[Any] | str:
        """Run KubeSpawner's start for ``plan``; return (url,) or the scheduler's refusal.

        The owner of a pod already holding the name is checked when KubeSpawner's
        create meets it (409, then ``stop``), not by reading the pod first: no extra
        request per spawn, and no gap between a read and the create.
        """
        self._pod_plan = plan
        try:
            return await self._run_kubespawner_start()
        finally:
            self._pod_plan = None

    async def _run_kubespawner_start(self) -> tuple[Any] | str:
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
            except PodNameTakenError:
                raise  # the pod holding the name is someone else's: left as it is
            except Exception:
                # Leave no pod behind a failed start.
                await self._delete_pod_now()
                raise
        start.cancel()
        with contextlib.suppress(BaseException):
            await start  # canceled on purpose
        return str(watch.result())

    async def _watch_unschedulable(self) -> str:
        """Return the scheduler's reason once the pod is found unschedulable."""
        key = f"{self.namespace}/{self.pod_name}"
        delay = 0.1
        while True:
            reflector = self.pod_reflector
            pod = reflector.pods.get(key) if reflector is not None else None
            if (
                pod is not None
                and not pod["metadata"].get("deletionTimestamp")
                # Another user's pod under this name is no refusal of ours (see stop).
                and not self._owner_conflict(pod)
            ):
                reason = unschedulable_reason(pod, self._failed_scheduling_events())
                if reason:
                    return reason
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def _failed_scheduling_events(self) -> Iterator[dict[str, Any]]:
        """KubeSpawner's ``events`` of this pod, once one is a FailedScheduling.

        ``events`` sorts every event of the namespace; called at each poll of
        each spawn in flight, that was the largest cost of a login storm. A plain
        pass finds the rare FailedScheduling first (lazily: only when the pod
        has neither a node nor the scheduler's condition); ``events`` then keeps
        KubeSpawner's rule of skipping events from before this start.
        """
        reflector = self.event_reflector
        if reflector is None:
            return
        name = self.pod_name
        if any(
            event.get("reason") == "FailedScheduling"
            and (event.get("involvedObject") or {}).get("name") == name
            for event in list(reflector.resources.values())
        ):
            yield from self.events

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

    # -- 4. the pod: KubeSpawner's callbacks while _run_pod runs ------------------------
    def get_env(self) -> dict[str, str]:
        """KubeSpawner's environment plus NB_USER, NB_UID, NB_GID and HOME."""
        env: dict[str, str] = super().get_env()
        if self._pod_plan is not None:
            env.update(builders.identity_env(self._pod_plan.identity, self._pod_plan.home))
        return env

    async def get_pod_manifest(self) -> Any:
        """KubeSpawner's pod, made personal by :func:`.builders.personalize_pod`.

        Also puts the final pod check in ``modify_pod_hook``'s place, around
        the hook configured now (by configuration, a profile or a
        ``pre_spawn_hook``): KubeSpawner runs it next (:class:`.FinalPodCheck`).
        """
        pod = await super().get_pod_manifest()
        plan = self._pod_plan
        if plan is None:
            return pod
        # Profiles (kubespawner_override) are applied by now: check their containers too.
        self._refuse_privileged_containers()
        configured: Any = getattr(self, "modify_pod_hook", None)
        self.modify_pod_hook = FinalPodCheck.around(configured, plan)
        client = self.api.api_client
        data = builders.personalize_pod(client.sanitize_for_serialization(pod), plan)
        return client.deserialize(_JSON(data), "V1Pod")

    def _owner_conflict(self, pod: Any, recorded_only: bool = False) -> str | None:
        return pod_owner_conflict(
            pod, user_id=str(self.user.id), username=str(self.user.name),
            recorded_only=recorded_only,
        )  # fmt: skip

    def _refuse_someone_elses_pod(self, pod: Any) -> None:
        """Fail the spawn, deleting nothing, if ``pod``, holding this server's pod
        name, is another hub user's (KubeSpawner would delete that pod)."""
        conflict = self._owner_conflict(pod)
        if conflict:
            self.log.error("refusing to start %s: %s", self._who, conflict)
            raise PodNameTakenError(
                f"cannot start a server for {self.user.name!r}: its pod name "
                f"{self.pod_name} is taken, {conflict}. That pod is left running; "
                "an administrator can stop that server (a user renamed while their "
                "server runs keeps the pod's name) and you can then try again."
            )

    # -- 5. stop ----------------------------------------------------------------------
    async def _delete_pod_now(self) -> None:
        try:
            # The strict check: a start that failed or was canceled before it met
            # the name taken (409) never read the pod holding it.
            conflict = self._owner_conflict(await self.kube.read_pod(self.pod_name))
            if conflict:
                self.log.warning("not deleting pod %s after a failed start: %s",
                                 self.pod_name, conflict)  # fmt: skip
                return
            await self.kube.delete_pod(self.pod_name, 0)
        except KubeError:
            self.log.exception("could not delete pod %s after a failed start", self.pod_name)

    async def stop(self, now: bool = False) -> None:
        """Delete the pod (grace period unless ``now``); the home is never touched.

        A pod with this server's pod name that the spawner recorded as another
        hub user's is not deleted either. Called by KubeSpawner while it creates
        this server's pod (the name is taken: 409), it fails the spawn with
        :class:`PodNameTakenError` unless the pod is this user's
        (:func:`.podcheck.pod_owner_conflict`), so KubeSpawner deletes nothing.
        """
        pod = await self.kube.read_pod(self.pod_name)
        if self._pod_plan is not None:
            self._refuse_someone_elses_pod(pod)
        self._release()
        conflict = self._owner_conflict(pod, recorded_only=True)
        if conflict:
            self.log.warning("%s: not deleting %s", self._who, conflict)
            return
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
            if pod_finished(pod) and not self._owner_conflict(pod, recorded_only=True):
                self.log.info("server of %s has exited; deleting its pod", self._who)
                await self.kube.delete_pod(self.pod_name, 0)
        return status

    async def delete_forever(self) -> None:
        """Called when the user is deleted: keep the home volume and say so."""
        if self.home_volume_mode == "per-user-pv":
            pv, pvc = home_volume_names(self.user.name)
            self.log.info(
                "user %s deleted; keeping home claim %s/%s and volume %s. To remove them by "
                "hand: kubectl -n %s delete pvc %s && kubectl delete pv %s",
                self._who, self.namespace, pvc, pv, self.namespace, pvc, pv,
            )  # fmt: skip
        else:
            self.log.info("user %s deleted; home left in place", self._who)

    # -- orphans ----------------------------------------------------------------------
    #: The fallback orphan pass started by this hub process, if any (tests await it).
    _reconcile_task: asyncio.Task[list[str]] | None = None

    def _maybe_reconcile(self) -> None:
        # Asked before reading self.db: JupyterHub warns at each spawner's first read of
        # its shared session, 5,000 warnings when a hub with 5,000 servers starts.
        if not self.reconcile_orphans or orphans.started():
            return
        task = orphans.start_once(self.kube, self.hub_instance, self.db, self.log)
        if task is not None:
            # Keep a reference so the task is not garbage collected mid-way.
            type(self)._reconcile_task = task

    async def _reconcile_once(self) -> list[str]:
        return await orphans.reconcile_from_db(self.kube, self.hub_instance, self.db, self.log)
