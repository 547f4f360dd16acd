"""Running ``scripts/demo.py`` from tests (the demo test and the browser test)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.kubeconfig import kube_request
from tests.support.slapd import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def demo_state_dir() -> Iterator[Path]:
    """A demo state directory the demo people's servers can walk through.

    pytest's own temporary directories are private to root, so the servers (running
    as the people's uids) could not reach their homes there.
    """
    parent = Path(tempfile.mkdtemp(prefix="lsst-hub-demo-test-"))
    parent.chmod(0o755)
    try:
        yield parent / "demo"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def demo_env(state: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DEMO_PORT=str(free_port()), DEMO_STATE_DIR=str(state), **extra)
    return env


class RunningDemo:
    """``scripts/demo.py`` running in the background, described by its demo.json."""

    def __init__(self, state: Path, **env: str) -> None:
        self.state = state
        self.log = state.parent / "demo-output.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, str(ROOT / "scripts" / "demo.py")],
                env=demo_env(state, **env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 240
        while "Ctrl-C stops everything" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"the demo did not start:\n{self.output()}")
            time.sleep(0.5)
        self.info: dict[str, Any] = json.loads((state / "demo.json").read_text())
        self.url: str = self.info["url"]

    def diagnostics(self, lines: int = 40) -> str:
        """The last lines of the hub's, the devcluster's and the pods' logs."""
        logs = [
            Path(self.info["logs"]) / "jupyterhub.log",
            Path(self.info["logs"]) / "devcluster.log",
        ]
        logs += sorted((self.state / "cluster" / "logs").glob("*.log"))
        parts = []
        for path in logs:
            with contextlib.suppress(OSError):
                text = [
                    ln for ln in path.read_text(errors="replace").splitlines() if "[D " not in ln
                ]
                parts.append(f"--- {path.name}:\n" + "\n".join(text[-lines:]))
        try:
            pods = self.kube(f"/api/v1/namespaces/{self.info['namespace']}/pods")["items"]
            events = self.kube(f"/api/v1/namespaces/{self.info['namespace']}/events")["items"]
            parts.append(f"--- pods: {[(p['metadata']['name'], p.get('status')) for p in pods]}")
            parts.append(f"--- events: {[(e.get('reason'), e.get('message')) for e in events]}")
        except Exception as exc:  # diagnostics must not hide the failure
            parts.append(f"--- cluster unreachable: {exc}")
        return "\n".join(parts)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kube(self, path: str) -> Any:
        answer = kube_request(Path(self.info["kubeconfig"]), "GET", path)
        answer.raise_for_status()
        return answer.json()

    def pods(self) -> list[str]:
        items = self.kube(f"/api/v1/namespaces/{self.info['namespace']}/pods")["items"]
        return [p["metadata"]["name"] for p in items]

    def interrupt(self, timeout: float = 120) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in self.info_pids():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def info_pids(self) -> list[int]:
        info = getattr(self, "info", None) or {}
        return [p for p in (info.get("pids") or {}).values() if p]


def hub_xsrf(session: requests.Session) -> str:
    """The hub's own _xsrf cookie (path /hub/), as its forms and API expect."""
    for cookie in session.cookies:
        if cookie.name == "_xsrf" and cookie.path == "/hub/":
            return str(cookie.value)
    raise AssertionError("the hub set no _xsrf cookie")


def login(url: str, user: str, password: str) -> tuple[requests.Session, int]:
    session = requests.Session()
    session.get(f"{url}/hub/login", timeout=30).raise_for_status()
    answer = session.post(
        f"{url}/hub/login",
        data={"username": user, "password": password, "_xsrf": hub_xsrf(session)},
        allow_redirects=False,
        timeout=60,
    )
    return session, answer.status_code


def start_server(url: str, session: requests.Session, user: str) -> dict[str, Any]:
    xsrf = {"X-XSRFToken": hub_xsrf(session)}
    answer = session.post(f"{url}/hub/api/users/{user}/server", headers=xsrf, timeout=60)
    assert answer.status_code in (201, 202), answer.text
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        model = session.get(f"{url}/hub/api/users/{user}", headers=xsrf, timeout=30).json()
        server = model.get("servers", {}).get("")
        if server and server.get("ready"):
            return dict(server)
        time.sleep(1)
    pytest.fail(f"{user}'s server did not become ready")


def server_xsrf(url: str, session: requests.Session, user: str) -> dict[str, str]:
    """Open the user's server as a browser does (the OAuth round trip through the hub
    sets the server's cookies); return the X-XSRFToken header its API wants."""
    answer = session.get(f"{url}/user/{user}/lab", timeout=60)
    answer.raise_for_status()
    for cookie in session.cookies:
        if cookie.name == "_xsrf" and cookie.path == f"/user/{user}/":
            return {"X-XSRFToken": cookie.value}
    names = [(c.name, c.path) for c in session.cookies]
    raise AssertionError(f"the server at /user/{user}/ set no _xsrf cookie: {names}")
