"""Stopping the hub: its services exit on the hub's first signal, also with SIGINT ignored.

JupyterHub stops each managed service with SIGINT and escalates to SIGTERM only after
30 s (10 s in 5.x; then SIGKILL after 30 s more); a service that ignores SIGINT (inherited from a
hub started with it ignored) holds the hub that long. The configuration gives the hub
default dispositions before it starts its services
(:func:`lsst_hub.services.reset_ignored_signals`), and the orphan-pod service stops at
once on SIGINT or SIGTERM, even in the middle of a pass. How long a stop takes is
measured by ``benchmarks/bench_hub_stop.py``; the timeouts here are only guards
against a hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.deploy.hub_stop_support import site_hub, stop_hub
from tests.support.ldap_fixtures import BlackHole
from tests.support.slapd import Slapd

ROOT = Path(__file__).resolve().parents[2]
#: Run in a process started with SIGINT and SIGTERM ignored and SIGINT blocked (what a
#: wrapper may leave a hub with): optionally reset, then start a service that reports.
HUB = """
import subprocess, sys
{reset}
report = (
    "import signal; "
    "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, "
    "signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "
    "sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))"
)
print(subprocess.run([sys.executable, "-c", report], capture_output=True, text=True).stdout)
"""


def ignore_and_block() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])


def service_started_by_hub(reset: str) -> str:
    """What a service started by such a hub reports about its signals."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(HUB.format(reset=reset))],
        preexec_fn=ignore_and_block, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_services_inherit_ignored_signals_unless_reset() -> None:
    assert service_started_by_hub("") == f"False False [<Signals.SIGINT: {int(signal.SIGINT)}>]"
    reset = "from lsst_hub.services import reset_ignored_signals; reset_ignored_signals()"
    assert service_started_by_hub(reset) == "True True []"


def test_the_repository_config_resets_them() -> None:
    # jupyterhub_config.py as the hub loads it (LDAP URLs are all it requires).
    load = (
        "import os; os.environ['LSST_HUB_LDAP_URLS'] = 'ldaps://ldap.example.org'\n"
        "from traitlets.config.loader import PyFileConfigLoader\n"
        "PyFileConfigLoader('jupyterhub_config.py', path='.').load_config()"
    )
    assert service_started_by_hub(load) == "True True []"


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
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
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
