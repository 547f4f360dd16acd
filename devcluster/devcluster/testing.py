"""Pytest fixtures for the dev cluster (:mod:`devcluster`), the local Kubernetes API.

Every cluster serves real HTTP on 127.0.0.1 with a free port, validates every
write against the Kubernetes 1.32 OpenAPI schema, and is torn down after the test.

Fixtures
--------
``make_devcluster``
    Async factory: ``cluster = await make_devcluster(nodes=3, runtime="noop", ...)``
    starts a :class:`~devcluster.DevCluster` in the test's event loop
    (any DevCluster keyword: ``node_cpu="4"``, ``node_memory="16Gi"``,
    ``node_pods=110``, ``scoring="least"|"most"``, ``rbac=True``,
    ``start_delay=0.0``, ``host_root=...``, ``kube_version="1.32"``).
    The cluster has ``.url``, ``.kubeconfig`` (a file path, admin token),
    ``.admin_token``, ``.api_client()`` (async context manager yielding a
    configured ``kubernetes_asyncio`` ApiClient), ``.faults`` (fault injection,
    see :mod:`devcluster.faults`), ``.authorizer.issue(ns, sa)`` (a
    ServiceAccount token), ``.add_node(name, cpu=..., memory=..., labels=...)``
    and ``.write_kubeconfig(path, token=...)``.
``devcluster``
    A fresh 3-node noop cluster (``make_devcluster()``), per test.
``kube_api``
    A ``kubernetes_asyncio`` ApiClient (admin) for ``devcluster``.
``kube_env``
    ``devcluster`` with ``KUBECONFIG`` pointing at it and kubespawner's cached
    client configuration cleared, for code that loads the kubeconfig itself
    (KubeSpawner: also set ``k8s_api_host = cluster.url``).
``make_threaded_devcluster``
    Sync factory running the cluster in a background thread with its own loop,
    for tests that block (``subprocess.run``) while the cluster must answer.
``devcluster_process``
    Factory for ``python -m devcluster serve`` as a subprocess:
    ``proc = devcluster_process(nodes=3, runtime="noop")`` gives ``.url``,
    ``.kubeconfig`` and ``.process``; it is stopped with SIGTERM afterwards.
    :func:`start_devcluster_process` starts one outside a test's lifetime (a cluster
    shared by a module's tests); stop it with ``.stop()``.
``kubectl``
    Path of the real kubectl (``.tools/bin/kubectl`` under pytest's rootdir, else
    ``kubectl`` on ``PATH``); skips if there is none.

Helpers
-------
``await stop_kubespawner_reflectors()``
    KubeSpawner keeps its pod/event reflectors on the class: stop and forget
    them at the end of a test so the next test's cluster (another port) gets
    fresh ones.
``kubectl_env(kubeconfig)``
    Environment for running kubectl against a cluster.
``cluster.create_objects(path_or_yaml)``
    Load manifests (e.g. the shipped RBAC) into a cluster as admin.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .cluster import DevCluster, ThreadedDevCluster

__all__ = [
    "DevClusterProcess",
    "devcluster",
    "devcluster_process",
    "kube_api",
    "kube_env",
    "kubectl",
    "kubectl_env",
    "make_devcluster",
    "make_threaded_devcluster",
    "start_devcluster_process",
    "stop_kubespawner_reflectors",
]


@pytest.fixture
async def make_devcluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Callable[..., Awaitable[DevCluster]]]:
    """Async factory of clusters served in the test's loop; all stopped afterwards."""
    clusters: list[DevCluster] = []

    async def factory(**kwargs: Any) -> DevCluster:
        kwargs.setdefault("state_dir", tmp_path_factory.mktemp("devcluster"))
        cluster = DevCluster(**kwargs)
        await cluster.start()
        clusters.append(cluster)
        return cluster

    yield factory
    for cluster in reversed(clusters):
        await cluster.stop()


@pytest.fixture
async def devcluster(make_devcluster: Callable[..., Awaitable[DevCluster]]) -> DevCluster:
    """A fresh 3-node noop cluster."""
    return await make_devcluster()


@pytest.fixture
async def kube_api(devcluster: DevCluster) -> AsyncIterator[Any]:
    """An admin ``kubernetes_asyncio`` ApiClient for ``devcluster``."""
    async with devcluster.api_client() as api:
        yield api


@pytest.fixture
def kube_env(devcluster: DevCluster, monkeypatch: pytest.MonkeyPatch) -> DevCluster:
    """``devcluster`` with ``KUBECONFIG`` set and kubespawner's config cache cleared."""
    monkeypatch.setenv("KUBECONFIG", str(devcluster.kubeconfig))
    # kubernetes_asyncio reads $KUBECONFIG once, at import: point its default there too.
    from kubernetes_asyncio.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(devcluster.kubeconfig))
    try:
        from kubespawner import clients
    except ImportError:  # pragma: no cover - kubespawner is a dependency
        return devcluster
    clients.load_config.cache_clear()
    return devcluster


@pytest.fixture
def make_threaded_devcluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., DevCluster]]:
    """Sync factory of clusters served from a background thread."""
    runners: list[ThreadedDevCluster] = []

    def factory(**kwargs: Any) -> DevCluster:
        kwargs.setdefault("state_dir", tmp_path_factory.mktemp("devcluster"))
        runner = ThreadedDevCluster(**kwargs)
        runners.append(runner)
        return runner.start()

    yield factory
    for runner in reversed(runners):
        runner.stop()


@dataclass
class DevClusterProcess:
    """A ``python -m devcluster serve`` subprocess."""

    process: subprocess.Popen[str]
    url: str
    kubeconfig: Path

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, wait; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_devcluster_process(
    state: Path, cwd: Path | None = None, **options: Any
) -> DevClusterProcess:
    """Start ``python -m devcluster serve`` and wait until it serves.

    Parameters
    ----------
    state
        Directory for the cluster's state, its kubeconfig (``state/kubeconfig``) and its
        stderr (``state/stderr.log``).
    cwd
        Working directory of the process.
    **options
        CLI options (``host_root=...`` becomes ``--host-root ...``; ``True`` a bare flag,
        ``False`` or ``None`` nothing).

    Returns
    -------
    DevClusterProcess
        The running process, its URL and kubeconfig; :meth:`DevClusterProcess.stop` it.
    """
    kubeconfig = state / "kubeconfig"
    argv = [sys.executable, "-m", "devcluster", "serve", "--port", "0"]
    argv += ["--kubeconfig", str(kubeconfig), "--state-dir", str(state)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not False and value is not None:
            argv += [flag, str(value)]
    # stderr goes to a file: an undrained pipe could fill up and stall the server
    log = state / "stderr.log"
    with log.open("w") as err:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the first line names the URL
    match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
    if match is None:
        proc.kill()
        proc.wait(10)
        raise RuntimeError(f"devcluster did not start: {line!r} {log.read_text()}")
    return DevClusterProcess(proc, match[1], kubeconfig)


@pytest.fixture
def devcluster_process(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Callable[..., DevClusterProcess]]:
    """Factory of dev clusters in subprocesses; keyword arguments become CLI options."""
    started: list[DevClusterProcess] = []

    def factory(**options: Any) -> DevClusterProcess:
        state = tmp_path_factory.mktemp("devcluster-proc")
        handle = start_devcluster_process(state, pytestconfig.rootpath, **options)
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        handle.stop()


@pytest.fixture
def kubectl(pytestconfig: pytest.Config) -> Path:
    """The real kubectl binary; skip the test if it is not installed."""
    local = pytestconfig.rootpath / ".tools" / "bin" / "kubectl"
    if local.exists():
        return local
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip(f"kubectl not found at {local} nor on PATH: run scripts/setup.sh")
    return Path(found)


def kubectl_env(kubeconfig: Path) -> dict[str, str]:
    """Environment for running kubectl against a dev cluster."""
    env = dict(os.environ)
    env["KUBECONFIG"] = str(kubeconfig)
    # keep kubectl's discovery cache next to the kubeconfig, not in ~/.kube
    env["KUBECACHEDIR"] = str(Path(kubeconfig).parent / "kubectl-cache")
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return env


async def stop_kubespawner_reflectors() -> None:
    """Stop and forget KubeSpawner's class-level reflectors (see the module docstring)."""
    from kubespawner import KubeSpawner

    for reflector in list(KubeSpawner.reflectors.values()):
        await reflector.stop()
    KubeSpawner.reflectors.clear()
