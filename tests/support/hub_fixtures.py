"""Pytest fixtures that run a real JupyterHub (with configurable-http-proxy) as a subprocess.

Fixture ``jupyterhub_factory``
------------------------------
``jupyterhub_factory(config_text, env=None, timeout=90, sigint_ignored=False)`` starts
``python -m jupyterhub`` (the Python running the tests, so the JupyterHub line
of the current venv) and returns a :class:`RunningHub` once ``/hub/health``
answers through the proxy. Every hub started is stopped (SIGTERM, then
SIGKILL of its process group) at the end of the test.

The base configuration, written before ``config_text`` (which may override
any of it), sets: free loopback ports for the proxy (public), the hub and the
proxy API; sqlite database, cookie secret and pid files in a private temporary
directory; ``JUPYTERHUB_CRYPT_KEY`` (so ``enable_auth_state`` works) and
``CONFIGPROXY_AUTH_TOKEN`` in the environment; configurable-http-proxy from
``.tools/node/node_modules/.bin``; and an admin service ``test-admin``
whose token is :attr:`RunningHub.api_token` (add services with
``c.JupyterHub.services.append(...)`` to keep it). ``env`` adds or replaces
environment variables of the hub process. The hub starts with SIGINT at its default,
whatever pytest's is; ``sigint_ignored=True`` starts it with SIGINT ignored, as a
background job of a non-interactive shell (or a wrapper that ignores it) would: what
the hub starts inherits that.

A :class:`RunningHub` offers ``url``, ``api_url``, ``api_token``,
``api(method, path, ...)`` (a REST API call with the admin token),
``request(method, path, ...)`` (any hub path, e.g. ``/hub/metrics``, with that token),
``log_text()`` (everything the hub and proxy printed so far), ``stop()`` and
``process``.

Helpers: :func:`login` (form login with ``_xsrf`` handling) and
:func:`new_session`.

Example::

    def test_something(jupyterhub_factory):
        hub = jupyterhub_factory("c.JupyterHub.authenticator_class = 'dummy'\\n")
        response = login(hub, "alice", "any")
        assert response.status_code == 302
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from .slapd import free_port

REPO = Path(__file__).resolve().parents[2]
NODE_BIN = REPO / ".tools" / "node" / "node_modules" / ".bin"
TOOLS_BIN = REPO / ".tools" / "bin"


@dataclass
class RunningHub:
    """A JupyterHub subprocess started by ``jupyterhub_factory``."""

    url: str  # public URL (through the proxy), no trailing slash
    hub_url: str  # the hub's own HTTP server, bypassing the proxy
    api_token: str
    directory: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def api_url(self) -> str:
        """``URL/hub/api``."""
        return f"{self.url}/hub/api"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Request ``URL/path`` (e.g. ``/hub/metrics``) with the admin service's token."""
        headers = {"Authorization": f"token {self.api_token}", **kwargs.pop("headers", {})}
        timeout = kwargs.pop("timeout", 60)
        url = f"{self.url}/{path.lstrip('/')}"
        return requests.request(method, url, headers=headers, timeout=timeout, **kwargs)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the REST API (``path`` after ``/hub/api/``) with the admin service's token."""
        return self.request(method, f"/hub/api/{path.lstrip('/')}", **kwargs)

    def log_text(self) -> str:
        """Everything the hub (and the proxy it started) printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM (the hub stops the proxy), then SIGKILL the process group if needed.

        Managed services run in sessions of their own, outside the hub's group: any
        still running once the hub is gone are killed too.
        """
        services: list[psutil.Process] = []
        if self.process.poll() is None:
            with contextlib.suppress(psutil.Error):
                services = psutil.Process(self.process.pid).children()
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(20)
        # The hub ran in its own session: its group holds only what it started.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(10)
        for service in services:
            with contextlib.suppress(psutil.Error):
                service.kill()  # psutil checks the pid still names the same process


def _base_config(directory: Path, port: int, hub_port: int, api_port: int, token: str) -> str:
    chp = NODE_BIN / "configurable-http-proxy"
    return f"""\
# Written by tests/support/hub_fixtures.py
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{str(chp)!r}]
c.ConfigurableHTTPProxy.pid_file = {str(directory / "proxy.pid")!r}
c.JupyterHub.db_url = "sqlite:///{directory / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(directory / "cookie_secret")!r}
c.JupyterHub.pid_file = {str(directory / "jupyterhub.pid")!r}
c.JupyterHub.log_level = "DEBUG"
c.JupyterHub.services = [{{"name": "test-admin", "api_token": {token!r}, "admin": True}}]
"""


def _ignore_sigint() -> None:
    # In the child before exec: an ignored signal stays ignored across exec.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _default_sigint() -> None:
    # pytest run in the background by a script (scripts/test.sh) ignores SIGINT; the
    # hub would pass that on to its services, which then take JupyterHub's full wait
    # to stop (and outlive a hub killed meanwhile).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_hub(
    directory: Path,
    config_text: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 90.0,
    sigint_ignored: bool = False,
) -> RunningHub:
    """Start a hub in ``directory`` (see the module docstring); wait for /hub/health."""
    directory.mkdir(parents=True, exist_ok=True)
    port, hub_port, api_port = free_port(), free_port(), free_port()
    token = secrets.token_hex(16)
    config = directory / "jupyterhub_config.py"
    config.write_text(
        _base_config(directory, port, hub_port, api_port, token) + "\n" + config_text + "\n"
    )
    full_env = dict(os.environ)
    full_env.update(
        JUPYTERHUB_CRYPT_KEY=secrets.token_hex(32),
        CONFIGPROXY_AUTH_TOKEN=secrets.token_hex(16),
        PATH=os.pathsep.join([str(NODE_BIN), str(TOOLS_BIN), full_env.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")])),
    )
    full_env.update(env or {})
    log_path = directory / "jupyterhub.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=directory,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_ignore_sigint if sigint_ignored else _default_sigint,
        )
    hub = RunningHub(
        url=f"http://127.0.0.1:{port}",
        hub_url=f"http://127.0.0.1:{hub_port}",
        api_token=token,
        directory=directory,
        process=process,
        log_path=log_path,
        env=full_env,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            hub.stop()
            raise RuntimeError(f"jupyterhub exited with {process.returncode}:\n{hub.log_text()}")
        try:
            if requests.get(f"{hub.url}/hub/health", timeout=5).status_code == 200:
                return hub
        except requests.RequestException:
            pass
        time.sleep(0.2)
    hub.stop()
    raise RuntimeError(f"jupyterhub not healthy after {timeout} s:\n{hub.log_text()}")


@pytest.fixture
def jupyterhub_factory(tmp_path: Path) -> Iterator[Callable[..., RunningHub]]:
    """Start real JupyterHub processes: ``jupyterhub_factory(config_text, env=None)``."""
    hubs: list[RunningHub] = []

    def make(
        config_text: str = "",
        env: Mapping[str, str] | None = None,
        timeout: float = 90.0,
        sigint_ignored: bool = False,
    ) -> RunningHub:
        directory = tmp_path / f"hub{len(hubs)}"
        hub = start_hub(directory, config_text, env, timeout, sigint_ignored=sigint_ignored)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.stop()


def new_session() -> requests.Session:
    """A ``requests`` session (cookies kept between calls)."""
    return requests.Session()


def login(
    hub: RunningHub,
    username: str,
    password: str,
    session: requests.Session | None = None,
    timeout: float = 60.0,
) -> requests.Response:
    """Log in through the login form; return the POST's response (not redirected).

    Gets ``/hub/login`` first for the ``_xsrf`` cookie, then posts the form
    with it. Success is a 302 to the next page; a refused login is a 403.
    Pass ``session`` to keep the login cookie for later requests.
    """
    session = session or new_session()
    page = session.get(f"{hub.url}/hub/login", timeout=timeout)
    page.raise_for_status()
    xsrf = session.cookies.get("_xsrf", "")
    return session.post(
        f"{hub.url}/hub/login",
        data={"username": username, "password": password, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=timeout,
    )
