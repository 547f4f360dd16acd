"""A simulated kubelet for every node: pod life cycle, container status and events.

It emits the events a real kubelet emits (``Pulling``/``Pulled``, ``Created``,
``Started``, ``Killing``; ``source.component=kubelet``, ``source.host`` the
node, ``involvedObject.fieldPath=spec.containers{NAME}``) and fills pod status
as a kubelet does (phase, podIP/hostIP, startTime, container statuses and the
``PodReadyToStartContainers``, ``Initialized``, ``ContainersReady``, ``Ready``
conditions). A pod with a deletionTimestamp gets ``Killing`` events, its
containers are stopped and the pod object is then removed (what a kubelet's
final zero-grace delete does). Pods on a deleted node are removed (the pod
garbage collector's job).

Runtimes
--------
``noop``
    Containers "run" after ``start_delay`` seconds; pod IPs come from
    10.244.0.0/16. Cheap enough for hundreds of thousands of pods.
``process``
    Each container with a ``command`` or ``args`` runs ``command + args`` as a
    local process (with no ``command``, the args alone: the image's entrypoint
    is unknown locally, and init entrypoints such as tini exec their args);
    containers with neither run as in ``noop``. The executable is looked up on
    the stand-in's ``PATH`` (the image is irrelevant here). What the runtime
    sets up:

    * podIP: a loopback address of its own (127.1.0.1, 127.1.0.2, ...; Linux
      answers on all of 127.0.0.0/8 without configuration). A pod has no
      network namespace of its own here, so every ``0.0.0.0`` in the args and
      env values is replaced by the pod IP (jupyterhub-singleuser listens on
      ``JUPYTERHUB_SERVICE_URL``, which KubeSpawner points at 0.0.0.0).
    * env: the container's ``env``/``envFrom`` (values, ConfigMap and Secret
      keys, ``fieldRef`` incl. ``status.podIP``; ``$(VAR)`` expanded), plus
      ``PATH`` from the stand-in, ``HOSTNAME`` (pod name) and ``POD_IP``.
    * volumes: hostPath volumes (directly, or through a PVC bound to a PV with
      ``hostPath``) map to ``HOST_ROOT/<path>``; ``emptyDir`` to a directory per
      pod. The process has no mount namespace, so its working directory and
      ``HOME`` are translated through the container's volumeMounts: cwd is
      ``workingDir`` or else ``HOME`` (env) mapped to its host directory.
    * ``/etc/passwd`` and ``/etc/group`` mounted from a volume (a ConfigMap with
      ``subPath``, as the spawner's ``synthesize_passwd`` does) cannot replace the
      machine's files without a mount namespace; when ``libnss_wrapper`` is
      installed (Debian ``libnss-wrapper``) the process gets them through it
      (``LD_PRELOAD`` with ``NSS_WRAPPER_PASSWD`` / ``NSS_WRAPPER_GROUP``), so
      ``whoami`` and ``ls -l`` show the names.
    * identity: when the stand-in runs as root, the process runs with the
      effective ``runAsUser``/``runAsGroup`` (container over pod level) and the
      pod's ``supplementalGroups`` (and ``fsGroup``), so file ownership is real.
    * readiness: a container with ``ports`` is ready when a TCP connect to
      podIP:port succeeds; without ports, when started.
    * stop: SIGTERM to the process group on delete, SIGKILL after the grace
      period. A process that exits ends the pod: ``Succeeded`` on exit code 0,
      else ``Failed``, with a terminated container status (no restarts).
    * output goes to ``STATE_DIR/logs/NAMESPACE_POD_CONTAINER.log``, served by
      ``GET .../pods/NAME/log``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import glob
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import resources as res
from .registry import NODES, PODS, PVCS, PVS, TERMINAL, Registry, now, require
from .store import Obj, WatchEvent, clone

__all__ = ["Kubelet"]

SECRETS = require(res.find("", "v1", "secrets"))
CONFIGMAPS = require(res.find("", "v1", "configmaps"))
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - rewritten, never bound
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def _image_id(image: str) -> str:
    digest = hashlib.sha256(image.encode()).hexdigest()
    return f"{image.split(':')[0]}@sha256:{digest}"


def _container_id(pod_uid: str, name: str) -> str:
    return "containerd://" + hashlib.sha256(f"{pod_uid}/{name}".encode()).hexdigest()


def _container_status(pod: Obj, container: Obj, *, ready: bool, state: Obj) -> Obj:
    """A container status in ``state`` (running: started; terminated: not), no restarts."""
    image = container.get("image", "")
    return {
        "name": container["name"],
        "image": image,
        "imageID": _image_id(image),
        "containerID": _container_id(pod["metadata"]["uid"], container["name"]),
        "ready": ready,
        "started": "running" in state,
        "restartCount": 0,
        "state": state,
        "lastState": {},
    }


def _condition(type_: str, status: bool, stamp: str) -> Obj:
    return {
        "type": type_,
        "status": "True" if status else "False",
        "lastProbeTime": None,
        "lastTransitionTime": stamp,
    }


def _terminated_status(
    pod: Obj, old: Obj, stamp: str, codes: dict[str, tuple[int, str, str]]
) -> Obj:
    """The status of a pod whose containers exited: ``codes`` maps name to (code, reason, msg)."""
    statuses = []
    for c in pod["spec"].get("containers", []):
        code, reason, message = codes.get(c["name"], (0, "Completed", ""))
        term: Obj = {
            "exitCode": code,
            "reason": reason,
            "startedAt": old.get("startTime") or stamp,
            "finishedAt": stamp,
            "containerID": _container_id(pod["metadata"]["uid"], c["name"]),
        }
        if message:
            term["message"] = message
        statuses.append(_container_status(pod, c, ready=False, state={"terminated": term}))
    failed = any(s["state"]["terminated"]["exitCode"] != 0 for s in statuses)
    status = dict(old)
    status.update(
        phase="Failed" if failed else "Succeeded",
        containerStatuses=statuses,
        conditions=[
            c
            if c.get("type") not in ("Ready", "ContainersReady")
            else dict(_condition(c["type"], False, stamp), reason="PodCompleted")
            for c in old.get("conditions") or []
        ],
    )
    return status


def _argv(container: Obj) -> list[str]:
    """What to run: command + args; with no command, args alone.

    Without a ``command`` the image's entrypoint would run the args; images such
    as Jupyter's use an init (tini) that execs them, so running the args is the
    local equivalent (this is how KubeSpawner passes ``jupyterhub-singleuser``).
    """
    return [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]


def _nss_wrapper_library() -> str | None:
    """Debian's ``libnss-wrapper``, if installed."""
    for pattern in (
        "/usr/lib/*/libnss_wrapper.so",
        "/usr/lib/libnss_wrapper.so",
        "/usr/lib64/libnss_wrapper.so",
    ):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def _nss_wrapper_env(
    container: Obj, mounts: dict[str, Path], map_path: Callable[[Obj, dict[str, Path], str], Path]
) -> dict[str, str]:
    """Environment that shows the process the passwd/group files mounted for it."""
    wanted = {
        target: name
        for target, name in (
            ("/etc/passwd", "NSS_WRAPPER_PASSWD"),
            ("/etc/group", "NSS_WRAPPER_GROUP"),
        )
        if any(m.get("mountPath") == target for m in container.get("volumeMounts") or [])
    }
    library = _nss_wrapper_library() if wanted else None
    if library is None:
        return {}
    env = {name: str(map_path(container, mounts, target)) for target, name in wanted.items()}
    # nss_wrapper needs both files; the machine's own stands in for one not mounted.
    env.setdefault("NSS_WRAPPER_PASSWD", "/etc/passwd")
    env.setdefault("NSS_WRAPPER_GROUP", "/etc/group")
    env["LD_PRELOAD"] = library
    return env


def _port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError:
            return False
    return True


class _Process:
    """One running container process."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, port: int | None) -> None:
        self.name = name
        self.proc = proc
        self.port = port
        self.ready = port is None
        self.started_at = now()


class _PodWorker:
    """The process runtime's handle on one pod."""

    def __init__(self) -> None:
        self.processes: list[_Process] = []
        self.task: asyncio.Task[None] | None = None
        self.stopping = False


class Kubelet:
    """Runs the pods bound to the cluster's nodes; see the module docstring.

    Parameters
    ----------
    registry
        The cluster's objects.
    runtime
        ``"noop"`` or ``"process"``.
    start_delay
        Seconds between binding and Running (noop runtime and image "pull").
    events
        Whether to write kubelet events (turned off for very large benchmarks).
    host_root
        Where hostPath volumes live on this machine (process runtime).
    state_dir
        Where logs and emptyDir volumes go (process runtime).
    """

    def __init__(
        self,
        registry: Registry,
        runtime: str = "noop",
        start_delay: float = 0.0,
        events: bool = True,
        host_root: Path | None = None,
        state_dir: Path | None = None,
    ) -> None:
        if runtime not in ("noop", "process"):
            raise ValueError(f"runtime must be 'noop' or 'process', not {runtime!r}")
        self.registry = registry
        self.runtime = runtime
        self.start_delay = start_delay
        self.events = events
        self.state_dir = Path(state_dir) if state_dir else Path(tempfile.gettempdir())
        self.host_root = Path(host_root) if host_root else self.state_dir / "host"
        self._known: set[tuple[str, str]] = set()
        self._stopping: set[tuple[str, str]] = set()
        self._handles: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._workers: dict[tuple[str, str], _PodWorker] = {}
        self._ip_counter = 0
        self._ip_base = random.randrange(1 << 16, 254 << 16)  # noqa: S311 - not security
        self._tasks: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        registry.store.listeners.append(self._on_event)

    # -- wiring ----------------------------------------------------------------
    def start(self) -> None:
        """Bind to the running loop."""
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 5 s)."""
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
        workers = list(self._workers.values())
        await asyncio.gather(*(self._kill(w, 5) for w in workers), return_exceptions=True)
        for w in workers:
            if w.task is not None:
                w.task.cancel()

    def log_path(self, namespace: str, pod: str, container: str) -> Path:
        """Where a process container's output goes."""
        return self.state_dir / "logs" / f"{namespace}_{pod}_{container}.log"

    def _soon(self, callback: Any, *args: Any) -> None:
        # Listeners run inside a store write: act after it, never inside it.
        loop = self._loop or asyncio.get_running_loop()
        loop.call_soon(callback, *args)

    def _on_event(self, event: WatchEvent) -> None:
        if event.resource is NODES:
            if event.type == "DELETED":
                self._soon(self._collect_node, event.obj["metadata"]["name"])
            elif event.type == "ADDED":
                self._soon(self._adopt_node, event.obj["metadata"]["name"])
            return
        if event.resource is not PODS:
            return
        pod = event.obj
        meta = pod["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if event.type == "DELETED":
            self._forget(key)
            return
        if not pod.get("spec", {}).get("nodeName"):
            return
        if meta.get("deletionTimestamp"):
            if key in self._known:
                if key not in self._stopping:
                    self._stopping.add(key)
                    self._soon(self._begin_stop, key)
            else:
                self._soon(self._finish, key)
            return
        node = pod["spec"]["nodeName"]
        if self.registry.store.get(NODES, "", node) is None:
            return  # no kubelet there (yet): the pod stays Pending, as on a real cluster
        if key not in self._known and pod.get("status", {}).get("phase") not in TERMINAL:
            self._known.add(key)
            loop = self._loop or asyncio.get_running_loop()
            self._handles[key] = loop.call_later(self.start_delay, self._start, key)

    def _forget(self, key: tuple[str, str]) -> None:
        self._known.discard(key)
        self._stopping.discard(key)
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()
        worker = self._workers.pop(key, None)
        if worker is not None and not worker.stopping:
            self._soon(self._spawn_kill, worker, 0)

    def _spawn_kill(self, worker: _PodWorker, grace: float) -> None:
        self._background(self._kill(worker, grace))

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _adopt_node(self, node: str) -> None:
        """A node registered: run the pods already bound to it."""
        loop = self._loop or asyncio.get_running_loop()
        for entry in self.registry.store.pods_on_node(node):
            meta = entry.obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            phase = entry.obj.get("status", {}).get("phase")
            if key in self._known or meta.get("deletionTimestamp") or phase in TERMINAL:
                continue
            self._known.add(key)
            self._handles[key] = loop.call_later(self.start_delay, self._start, key)

    def _collect_node(self, node: str) -> None:
        for entry in self.registry.store.pods_on_node(node):
            meta = entry.obj["metadata"]
            self.registry.store.remove(PODS, meta.get("namespace", ""), meta["name"])

    # -- starting ----------------------------------------------------------------
    def _event(
        self, pod: Obj, reason: str, message: str, container: str, warn: bool = False
    ) -> None:
        if self.events:
            self.registry.record_event(
                pod,
                reason,
                message,
                type_="Warning" if warn else "Normal",
                component="kubelet",
                host=pod["spec"].get("nodeName"),
                field_path=f"spec.containers{{{container}}}",
            )

    def _next_ip(self, ports: list[int] | None = None) -> str:
        if self.runtime != "process":
            self._ip_counter += 1
            n = self._ip_counter
            return f"10.244.{(n >> 8) & 255}.{n & 255}"
        # Loopback addresses are shared by every cluster on this machine (tests run in
        # parallel): start at a random point of 127.1.0.0-127.254.255.255 and skip
        # addresses where one of the pod's ports is already taken.
        for _ in range(1000):
            self._ip_counter += 1
            n = self._ip_base + self._ip_counter
            ip = f"127.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
            if (n & 255) not in (0, 255) and all(_port_free(ip, p) for p in ports or []):
                return ip
        raise OSError("no free loopback address for the pod")

    def _host_ip(self, node_name: str) -> str:
        node = self.registry.store.get(NODES, "", node_name) or {}
        for address in node.get("status", {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                return str(address["address"])
        return "127.0.0.1"

    def _start(self, key: tuple[str, str]) -> None:
        self._handles.pop(key, None)
        pod = self.registry.store.get(PODS, *key)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        for c in pod["spec"].get("containers", []):
            image = c.get("image", "")
            if c.get("imagePullPolicy") == "Always":
                self._event(pod, "Pulling", f'Pulling image "{image}"', c["name"])
                self._event(
                    pod,
                    "Pulled",
                    f'Successfully pulled image "{image}" in 0s (0s including waiting)',
                    c["name"],
                )
            else:
                self._event(
                    pod,
                    "Pulled",
                    f'Container image "{image}" already present on machine',
                    c["name"],
                )
        if self.runtime == "process" and any(_argv(c) for c in pod["spec"].get("containers", [])):
            worker = _PodWorker()
            self._workers[key] = worker
            worker.task = asyncio.ensure_future(self._run_processes(key, worker))
            return
        pod_ip = self._next_ip()
        for c in pod["spec"].get("containers", []):
            self._event(pod, "Created", f"Created container {c['name']}", c["name"])
            self._event(pod, "Started", f"Started container {c['name']}", c["name"])
        self._write_running(key, pod_ip, {c["name"]: True for c in pod["spec"]["containers"]})

    def _rewrite_status(self, key: tuple[str, str], build: Callable[[Obj, Obj, str], Obj]) -> None:
        """Write ``build(pod, old_status, now)`` as the pod's status, if the pod still exists."""
        pod = self.registry.store.get(PODS, *key)
        if pod is not None:
            self.registry.write_status(PODS, pod, build(pod, pod.get("status") or {}, now()))

    def _write_running(
        self, key: tuple[str, str], pod_ip: str, ready: dict[str, bool], started: str | None = None
    ) -> None:
        self._rewrite_status(
            key,
            lambda pod, old, stamp: self._running_status(pod, old, stamp, pod_ip, ready, started),
        )

    def _running_status(
        self,
        pod: Obj,
        old: Obj,
        stamp: str,
        pod_ip: str,
        ready: dict[str, bool],
        started: str | None,
    ) -> Obj:
        all_ready = all(ready.values())
        statuses = []
        for c in pod["spec"].get("containers", []):
            statuses.append(
                _container_status(
                    pod,
                    c,
                    ready=ready.get(c["name"], True),
                    state={"running": {"startedAt": started or stamp}},
                )
            )
        host_ip = self._host_ip(pod["spec"]["nodeName"])
        scheduled = next(
            (c for c in old.get("conditions") or [] if c.get("type") == "PodScheduled"),
            _condition("PodScheduled", True, stamp),
        )
        return {
            "phase": "Running",
            "conditions": [
                _condition("PodReadyToStartContainers", True, stamp),
                _condition("Initialized", True, stamp),
                _condition("Ready", all_ready, stamp),
                _condition("ContainersReady", all_ready, stamp),
                scheduled,
            ],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": old.get("startTime") or stamp,
            "containerStatuses": statuses,
            "qosClass": old.get("qosClass", "BestEffort"),
        }

    # -- stopping ----------------------------------------------------------------
    def _begin_stop(self, key: tuple[str, str]) -> None:
        pod = self.registry.store.get(PODS, *key)
        if pod is None:
            return
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()
        worker = self._workers.get(key)
        if worker is not None and worker.stopping:
            return
        if pod.get("status", {}).get("phase") == "Running":
            for c in pod["spec"].get("containers", []):
                self._event(pod, "Killing", f"Stopping container {c['name']}", c["name"])
        if worker is None:
            self._finish(key)
            return
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        worker.stopping = True

        async def stop_then_finish() -> None:
            await self._kill(worker, grace)
            self._finish(key)

        self._background(stop_then_finish())

    def _finish(self, key: tuple[str, str]) -> None:
        """The containers are gone: the kubelet's final zero-grace delete."""
        self._known.discard(key)
        self._stopping.discard(key)
        self._workers.pop(key, None)
        pod = self.registry.store.get(PODS, *key)
        if pod is None or not pod["metadata"].get("deletionTimestamp"):
            return
        new = clone(pod)
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        self.registry.replace(PODS, new, pod)

    async def _kill(self, worker: _PodWorker, grace: float) -> None:
        procs = [p.proc for p in worker.processes if p.proc.returncode is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        if not procs:
            return
        try:
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), max(grace, 0.01))
        except TimeoutError:
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.gather(*(p.wait() for p in procs))

    # -- the process runtime -----------------------------------------------------
    async def _run_processes(self, key: tuple[str, str], worker: _PodWorker) -> None:
        pod = self.registry.store.get(PODS, *key)
        if pod is None:
            return
        ports = [
            int(p["containerPort"])
            for c in pod["spec"].get("containers", [])
            for p in c.get("ports") or []
            if p.get("containerPort")
        ]
        try:
            pod_ip = self._next_ip(ports)
            mounts = self._volume_dirs(pod)
        except OSError as exc:
            self._event(pod, "FailedMount", f"MountVolume.SetUp failed: {exc}", "", warn=True)
            return
        for c in pod["spec"].get("containers", []):
            if not _argv(c):
                continue
            try:
                proc = await self._spawn(pod, c, pod_ip, mounts)
            except (OSError, ValueError) as exc:
                self._event(pod, "Failed", f"Error: {exc}", c["name"], warn=True)
                self._write_terminated(key, {c["name"]: (128, "StartError", str(exc))})
                await self._kill(worker, 0)
                return
            ports = [p.get("containerPort") for p in c.get("ports") or []]
            worker.processes.append(_Process(c["name"], proc, ports[0] if ports else None))
            if worker.stopping or self._workers.get(key) is not worker:
                # deleted while starting: the stop path may have missed this process
                await self._kill(worker, 0)
                return
            self._event(pod, "Created", f"Created container {c['name']}", c["name"])
            self._event(pod, "Started", f"Started container {c['name']}", c["name"])
        self._write_running(key, pod_ip, self._ready_map(pod, worker))
        waits = {asyncio.ensure_future(p.proc.wait()): p for p in worker.processes}
        while waits:
            done, _ = await asyncio.wait(waits, timeout=0.1, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                waits.pop(task)
            if done and not worker.stopping:
                break
            if not worker.stopping and await self._probe(worker, pod_ip):
                self._write_running(key, pod_ip, self._ready_map(pod, worker))
        if worker.stopping:
            return
        await self._kill(worker, 0)  # one container died: the pod is over (no restarts)
        self._write_terminated(
            key,
            {
                p.name: (
                    p.proc.returncode or 0,
                    "Completed" if p.proc.returncode == 0 else "Error",
                    "",
                )
                for p in worker.processes
            },
        )
        self._workers.pop(key, None)

    @staticmethod
    def _ready_map(pod: Obj, worker: _PodWorker) -> dict[str, bool]:
        ready = {c["name"]: True for c in pod["spec"].get("containers", [])}
        for p in worker.processes:
            ready[p.name] = p.ready
        return ready

    @staticmethod
    async def _probe(worker: _PodWorker, pod_ip: str) -> bool:
        """Try the ports of containers not yet ready; True when one became ready."""
        changed = False
        for p in worker.processes:
            if p.ready or p.port is None:
                continue
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(pod_ip, p.port), 1)
            except (OSError, TimeoutError):
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            p.ready = changed = True
        return changed

    def _write_terminated(
        self, key: tuple[str, str], codes: dict[str, tuple[int, str, str]]
    ) -> None:
        self._known.discard(key)
        self._rewrite_status(
            key, lambda pod, old, stamp: _terminated_status(pod, old, stamp, codes)
        )

    def _volume_dirs(self, pod: Obj) -> dict[str, Path]:
        """Host directory of every volume of the pod (created where the kubelet would)."""
        dirs: dict[str, Path] = {}
        ns = pod["metadata"].get("namespace", "")
        for volume in pod["spec"].get("volumes") or []:
            name = volume["name"]
            host = volume.get("hostPath")
            if volume.get("persistentVolumeClaim"):
                claim = self.registry.store.get(
                    PVCS, ns, volume["persistentVolumeClaim"]["claimName"]
                )
                pv_name = (claim or {}).get("spec", {}).get("volumeName")
                pv = self.registry.store.get(PVS, "", pv_name) if pv_name else None
                spec = (pv or {}).get("spec", {})
                host = spec.get("hostPath") or (
                    {"path": spec["local"]["path"]} if spec.get("local") else None
                )
                if host is None:
                    raise OSError(f'volume "{name}": claim has no hostPath volume bound')
            if host is not None:
                path = self.host_root / str(host["path"]).lstrip("/")
                kind = host.get("type") or ""
                if kind == "Directory" and not path.is_dir():
                    raise OSError(f"hostPath type check failed: {host['path']} is not a directory")
                if kind in ("", "DirectoryOrCreate"):
                    path.mkdir(parents=True, exist_ok=True)
                dirs[name] = path
            elif "emptyDir" in volume or "configMap" in volume or "secret" in volume:
                path = self.state_dir / "pods" / pod["metadata"]["uid"] / "volumes" / name
                path.mkdir(parents=True, exist_ok=True)
                self._fill_projected(ns, volume, path)
                dirs[name] = path
        return dirs

    def _fill_projected(self, ns: str, volume: Obj, path: Path) -> None:
        if "configMap" in volume:
            cm = self.registry.store.get(CONFIGMAPS, ns, volume["configMap"].get("name", "")) or {}
            for k, v in (cm.get("data") or {}).items():
                (path / k).write_text(v)
        if "secret" in volume:
            secret = (
                self.registry.store.get(SECRETS, ns, volume["secret"].get("secretName", "")) or {}
            )
            for k, v in (secret.get("data") or {}).items():
                (path / k).write_bytes(base64.b64decode(v))

    @staticmethod
    def _map_path(container: Obj, mounts: dict[str, Path], path: str) -> Path:
        best: tuple[str, Path] | None = None
        for m in container.get("volumeMounts") or []:
            mount = m["mountPath"].rstrip("/") or "/"
            inside = path == mount or path.startswith(mount + "/")
            if inside and m["name"] in mounts and (best is None or len(mount) > len(best[0])):
                sub = m.get("subPath") or ""
                best = (mount, mounts[m["name"]] / sub if sub else mounts[m["name"]])
        if best is None:
            return Path(path)
        rest = path[len(best[0]) :].lstrip("/")
        return best[1] / rest if rest else best[1]

    def _env(self, pod: Obj, container: Obj, pod_ip: str) -> dict[str, str]:
        ns = pod["metadata"].get("namespace", "")
        env: dict[str, str] = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOSTNAME": pod["metadata"]["name"],
            "POD_IP": pod_ip,
        }
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                cm = self.registry.store.get(CONFIGMAPS, ns, source["configMapRef"]["name"]) or {}
                env.update({prefix + k: v for k, v in (cm.get("data") or {}).items()})
            if "secretRef" in source:
                sec = self.registry.store.get(SECRETS, ns, source["secretRef"]["name"]) or {}
                env.update(
                    {
                        prefix + k: base64.b64decode(v).decode()
                        for k, v in (sec.get("data") or {}).items()
                    }
                )
        for item in container.get("env") or []:
            value = self._env_value(pod, item, pod_ip, ns)
            if value is not None:
                env[item["name"]] = _VAR_REF.sub(lambda m: env.get(m[1], m[0]), value)
        return {k: v.replace(ANY_ADDRESS, pod_ip) for k, v in env.items()}

    def _env_value(self, pod: Obj, item: Obj, pod_ip: str, ns: str) -> str | None:
        if "valueFrom" not in item:
            return str(item.get("value", ""))
        source = item["valueFrom"]
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            if path == "status.podIP":
                return pod_ip
            if path == "status.hostIP":
                return self._host_ip(pod["spec"]["nodeName"])
            m = re.match(r"metadata\.(labels|annotations)\['(.+)'\]$", path)
            if m:
                return str((pod["metadata"].get(m[1]) or {}).get(m[2], ""))
            value: Any = pod
            for part in path.split("."):
                value = value.get(part, "") if isinstance(value, dict) else ""
            return str(value)
        for ref, kind in (("configMapKeyRef", CONFIGMAPS), ("secretKeyRef", SECRETS)):
            if ref in source:
                obj = self.registry.store.get(kind, ns, source[ref].get("name", "")) or {}
                data = obj.get("data") or {}
                if source[ref]["key"] not in data:
                    return None
                raw = data[source[ref]["key"]]
                return base64.b64decode(raw).decode() if kind is SECRETS else str(raw)
        return None

    async def _spawn(
        self, pod: Obj, container: Obj, pod_ip: str, mounts: dict[str, Path]
    ) -> asyncio.subprocess.Process:
        env = self._env(pod, container, pod_ip)
        argv = [
            _VAR_REF.sub(lambda m: env.get(m[1], m[0]), a).replace(ANY_ADDRESS, pod_ip)
            for a in _argv(container)
        ]
        exe = shutil.which(argv[0], path=os.environ.get("PATH"))
        if exe is None:
            raise ValueError(f'exec: "{argv[0]}": executable file not found in $PATH')
        if "HOME" in env:
            env["HOME"] = str(self._map_path(container, mounts, env["HOME"]))
        env.update(_nss_wrapper_env(container, mounts, self._map_path))
        workdir = container.get("workingDir")
        cwd = self._map_path(container, mounts, workdir) if workdir else Path(env.get("HOME", "/"))
        kwargs: dict[str, Any] = {}
        if os.geteuid() == 0:
            pod_sc = pod["spec"].get("securityContext") or {}
            sc = {**pod_sc, **(container.get("securityContext") or {})}
            if sc.get("runAsUser") is not None:
                kwargs["user"] = int(sc["runAsUser"])
            if sc.get("runAsGroup") is not None:
                kwargs["group"] = int(sc["runAsGroup"])
            # as container runtimes do, the primary group is also a supplementary one
            groups = list(pod_sc.get("supplementalGroups") or [])
            if sc.get("runAsGroup") is not None:
                groups.append(sc["runAsGroup"])
            if pod_sc.get("fsGroup") is not None:
                groups.append(pod_sc["fsGroup"])
            if groups or "user" in kwargs:
                kwargs["extra_groups"] = sorted({int(g) for g in groups})
        log = self.log_path(
            pod["metadata"].get("namespace", ""), pod["metadata"]["name"], container["name"]
        )
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            return await asyncio.create_subprocess_exec(
                exe,
                *argv[1:],
                env=env,
                cwd=str(cwd),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                **kwargs,
            )
