"""Stopping the hub: its services exit on the hub's first signal, also with SIGINT ignored.

JupyterHub stops each managed service with SIGINT and escalates to SIGTERM only after
30 s (then SIGKILL after 30 s more); a service that ignores SIGINT (inherited from a
hub started with it ignored) holds the hub that long. The launcher
(:mod:`lsst_hub.services`) gives the services default dispositions, and the orphan-pod
service stops at once on SIGINT or SIGTERM, even in the middle of a pass. How long a
stop takes is measured by ``benchmarks/bench_hub_stop.py``; the timeouts here are only
guards against a hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsst_hub.services import MODULE, use_default_signals, with_default_signals
from tests.deploy.hub_stop_support import site_hub, stop_hub
from tests.support.ldap_fixtures import BlackHole
from tests.support.slapd import Slapd

ROOT = Path(__file__).resolve().parents[2]
REPORT = (
    "import signal; "
    "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, "
    "signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "
    "sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))"
)


def ignore_and_block() -> None:
    """What a wrapper may leave a hub with: SIGINT and SIGTERM ignored, SIGINT blocked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])


def run_child(command: list[str]) -> str:
    result = subprocess.run(
        command, preexec_fn=ignore_and_block, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_launcher_gives_the_service_default_signals() -> None:
    command = [sys.executable, "-c", REPORT]
    # Without it, the service inherits the ignored and blocked signals ...
    assert run_child(command) == f"False False [<Signals.SIGINT: {int(signal.SIGINT)}>]"
    # ... with it, Python's own SIGINT handler and the default SIGTERM, nothing blocked.
    assert run_child(with_default_signals(command)) == "True True []"


def test_launcher_reports_a_missing_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", MODULE, "/nonexistent/service"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 127
    assert "cannot run /nonexistent/service" in result.stderr


def test_use_default_signals_wraps_managed_services_once() -> None:
    services = [
        {"name": "culler", "command": ["python3", "-m", "jupyterhub_idle_culler"]},
        {"name": "external", "url": "http://10.0.0.1:8000", "api_token": "x"},
    ]
    use_default_signals(services, python="python3")
    use_default_signals(services, python="python3")
    assert services[0]["command"] == [
        "python3", "-m", MODULE, "python3", "-m", "jupyterhub_idle_culler",
    ]  # fmt: skip
    assert "command" not in services[1]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_orphan_service_stops_during_a_pass(
    signum: signal.Signals, black_hole: BlackHole, tmp_path: Path
) -> None:
    """A pass stuck on an API server that never answers does not hold the service."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{black_hole.port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
current-context: c
"""
    )
    env = dict(
        os.environ,
        KUBECONFIG=str(kubeconfig),
        JUPYTERHUB_API_URL=f"http://127.0.0.1:{black_hole.port}/hub/api",
        JUPYTERHUB_API_TOKEN="token",
        PYTHONPATH=str(ROOT),
    )
    command = [sys.executable, "-m", "lsst_hub.spawner.reconcile_service",
               "--request-timeout=3600", "--retry-timeout=3600"]  # fmt: skip
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        # As the hub starts it: through the launcher, from a hub ignoring SIGINT.
        process = subprocess.Popen(
            with_default_signals(command), env=env, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        # The pass has begun when the API server has a connection that is never answered.
        while black_hole.accepted == 0:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        process.send_signal(signum)
        assert process.wait(60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    text = log.read_text()
    assert "orphan pod service stopping" in text
    assert "Traceback" not in text, text


@pytest.mark.slow
@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/usr/bin/python3").exists(),
    reason="the devcluster runs the server as the person's uid (needs root)",
)
def test_hub_started_ignoring_sigint_stops_with_its_services(slapd: Slapd, tmp_path: Path) -> None:
    """The repository's config, a server running (left running), SIGTERM to the hub."""
    with site_hub(tmp_path, slapd, sigint_ignored=True) as (hub, cluster):
        stopped = stop_hub(hub)
        tail = stopped.log[-6000:]
        assert stopped.returncode == 0, tail
        # The hub ignores SIGINT until it installs its handler, after starting the
        # services; they do not inherit that ...
        assert stopped.ignoring_sigint == [], tail
        # ... and each exited on the hub's SIGINT: none needed a SIGTERM or SIGKILL.
        assert stopped.escalated == [], tail
        assert stopped.services_left == [], tail
        assert "Leaving single-user servers running" in stopped.log
        assert cluster.pods() == ["jupyter-alice"]
