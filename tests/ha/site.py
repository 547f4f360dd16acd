"""The standby-hub deployment on one machine, for the failover tests and benchmark.

:class:`HASite` runs ``scripts/demo.py``'s HA mode in this process (the demo's
``Demo`` class): slapd with TLS, the devcluster (process runtime: each server is a
real ``jupyterhub-singleuser`` run as its owner), a throwaway PostgreSQL,
configurable-http-proxy on its own, and two hubs (``hub-a``, ``hub-b``) each wrapped
by ``lsst-hub-ha``, the repository's ``jupyterhub_config.py`` configured through
``LSST_HUB_*`` variables. ``hub-a`` reaches the API server through a
:class:`~tests.support.tcpproxy.TcpProxy` that a test can cut (a partition).

:func:`fail_over` ends the leader (``kill -9`` of its process group, or SIGTERM) and
measures the time until a login through the proxy succeeds again, while checking
that a running server stays reachable through the proxy.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import requests
import yaml

from tests.deploy.demo_support import demo_state_dir, hub_xsrf, login, server_xsrf, start_server
from tests.support.kubeconfig import kubeconfig_via
from tests.support.slapd import free_port
from tests.support.tcpproxy import TcpProxy

from .support import Event, read_events

REPO = Path(__file__).resolve().parents[2]
HUBS = ("hub-a", "hub-b")


def load_demo() -> ModuleType:
    """``scripts/demo.py`` as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("lsst_hub_demo", REPO / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Failover:
    """One measured failover."""

    how: str  # "kill-9" or "sigterm"
    old: str
    new: str | None
    seconds: float  # from the leader's end to the first login through the proxy
    server_checks: int  # requests to the running server during the failover
    server_failures: int  # ... that did not answer 200
    old_exit: int | None


class HASite:
    """See the module docstring. Use as a context manager."""

    def __init__(self, state: Path) -> None:
        self.demo_module = load_demo()
        self.demo: Any = self.demo_module.Demo(state, free_port(), ha=True)
        self.api_proxy: TcpProxy | None = None

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> HASite:
        d = self.demo
        d.prepare()
        d.start_ldap()
        d.start_cluster()
        server = yaml.safe_load(d.hub_kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        self.api_proxy = TcpProxy.for_url(server).start()
        d.kubeconfigs["hub-a"] = kubeconfig_via(
            d.hub_kubeconfig, self.api_proxy.url_for(server), d.state / "hub-a-kubeconfig"
        )
        d.start_ha()
        d.write_description()
        return self

    def stop(self) -> None:
        try:
            self.demo.stop()
        finally:
            if self.api_proxy is not None:
                self.api_proxy.close()

    def __enter__(self) -> HASite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return str(self.demo.url)

    def leader(self) -> str | None:
        return self.demo.safe_leader()  # type: ignore[no-any-return]

    def events(self, identity: str, name: str | None = None) -> list[Event]:
        return read_events(self.demo.logs / f"{identity}.log", name)

    def log(self, identity: str) -> str:
        """Everything the wrapper and its hubs (and their services) printed so far."""
        path = self.demo.logs / f"{identity}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wrapper(self, identity: str) -> Any:
        return self.demo.wrapped[identity]

    def standby_ready(self, identity: str) -> bool:
        """Whether ``identity``'s current wrapper (not an earlier run's: the logs are
        appended to) is a standby whose parked hub has done its imports."""
        process = self.demo.wrapped[identity]
        if process.poll() is not None:
            return False
        mark = f"lsst-hub-ha[{process.pid}]"
        lines = [line for line in self.log(identity).splitlines() if mark in line]
        return any("event=standby" in ln for ln in lines) and any(
            "event=hub-warm" in ln for ln in lines
        )

    def healthy(self) -> bool:
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{self.url}/hub/health", timeout=2).status_code == 200
        return False

    def ensure_pair(self, leader: str | None = None, timeout: float = 180) -> str:
        """Both wrappers running, one leading with a healthy hub; the leader's name.

        A stopped wrapper is started again (as Kubernetes restarts a container).
        With ``leader``, hand over (SIGTERM) until that one leads.
        """
        d = self.demo
        deadline = time.monotonic() + timeout
        while True:
            d.restart_stopped_hubs()
            current = self.leader()
            if current and self.healthy():
                standby = next(n for n in HUBS if n != current)
                if self.standby_ready(standby):
                    if leader is None or current == leader:
                        return current
                    d.wrapped[current].send_signal(signal.SIGTERM)
                    d.wrapped[current].wait(60)
            if time.monotonic() > deadline:
                raise AssertionError(f"no leader with a standby after {timeout} s")
            time.sleep(0.5)

    # -- people ------------------------------------------------------------------------
    def login(self, user: str, password: str) -> tuple[requests.Session, int]:
        return login(self.url, user, password)

    def start_server(self, user: str, password: str) -> requests.Session:
        """Log in, start the user's server, open it once (its cookie); the session."""
        session, code = self.login(user, password)
        assert code == 302, f"login as {user}: {code}"
        start_server(self.url, session, user)
        server_xsrf(self.url, session, user)
        return session

    def server_answers(self, session: requests.Session, user: str, timeout: float = 2) -> bool:
        """Whether the user's server answers its API through the proxy."""
        with contextlib.suppress(requests.RequestException):
            answer = session.get(f"{self.url}/user/{user}/api/status", timeout=timeout)
            return answer.status_code == 200
        return False

    def stop_server(self, session: requests.Session, user: str) -> int:
        answer = session.delete(
            f"{self.url}/hub/api/users/{user}/server",
            headers={"X-XSRFToken": hub_xsrf(session)},
            timeout=60,
        )
        return answer.status_code

    def pods(self) -> list[str]:
        namespace = self.demo_module.NAMESPACE
        answer = self.demo.kube("GET", f"/api/v1/namespaces/{namespace}/pods")
        answer.raise_for_status()
        return [p["metadata"]["name"] for p in answer.json()["items"]]

    def home(self, user: str) -> Path:
        return Path(self.demo.host_root) / "gpfs" / "home" / user


@contextlib.contextmanager
def ha_site() -> Iterator[HASite]:
    """A started :class:`HASite` in a state directory the servers can reach."""
    with demo_state_dir() as state, HASite(state) as site:
        yield site


def fail_over(
    site: HASite,
    how: str,
    session: requests.Session | None = None,
    user: str = "alice",
    probe: tuple[str, str] = ("bob", "bobpw"),
    timeout: float = 120,
) -> Failover:
    """End the leader (``how``: ``kill-9`` or ``sigterm``); measure until a login works.

    With ``session``, the user's server is probed through the proxy between login
    attempts; every probe is counted.
    """
    old = site.leader()
    assert old is not None
    wrapper = site.wrapper(old)
    t0 = time.time()
    if how == "kill-9":
        os.killpg(wrapper.pid, signal.SIGKILL)
    elif how == "sigterm":
        wrapper.send_signal(signal.SIGTERM)
    else:
        raise ValueError(how)
    exited_before = len(site.events(old, "hub-exited"))
    checks = failures = 0
    deadline = time.monotonic() + timeout
    while True:
        if session is not None:
            checks += 1
            failures += not site.server_answers(session, user)
        # A hub asked to stop still answers for a moment: only a login after the old
        # hub is gone (killed, or its exit logged by its wrapper) was the new hub's.
        old_gone = how == "kill-9" or len(site.events(old, "hub-exited")) > exited_before
        with contextlib.suppress(requests.RequestException):
            if old_gone and site.login(*probe)[1] == 302:
                seconds = time.time() - t0
                break
        if time.monotonic() > deadline:
            raise AssertionError(f"no login through the proxy {timeout} s after {how}")
        time.sleep(0.1)
    with contextlib.suppress(Exception):
        wrapper.wait(30)
    new = site.leader()
    return Failover(how, old, new, seconds, checks, failures, wrapper.poll())
