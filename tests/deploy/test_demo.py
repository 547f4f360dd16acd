"""The local demo (README command 1) starts, logs alice in, runs her server, and stops.

These run the real thing: slapd with TLS, the devcluster with the process runtime
(servers run as the people's uids, hence root), JupyterHub with the repository's
``jupyterhub_config.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.deploy.demo_support import (
    ROOT,
    RunningDemo,
    demo_env,
    demo_state_dir,
    login,
    server_xsrf,
    start_server,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the demo runs servers as other uids: root"),
]


@pytest.fixture
def state_dir() -> Iterator[Path]:
    with demo_state_dir() as state:
        yield state


def test_demo_command_logs_alice_in_and_exits(state_dir: Path) -> None:
    # The README command itself (with its setup step, which only checks when done).
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")],
        env=demo_env(state_dir, DEMO_EXIT_AFTER_READY="1"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "ready: logged in as alice over HTTP" in output
    assert "demo: stopped" in output


@pytest.fixture
def running_demo(state_dir: Path) -> Iterator[RunningDemo]:
    demo = RunningDemo(state_dir)
    try:
        yield demo
    finally:
        if demo.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                demo.interrupt()
        demo.kill()


def test_demo_runs_a_server_as_its_owner_and_stops_cleanly(running_demo: RunningDemo) -> None:
    demo = running_demo
    _, refused = login(demo.url, "carol", demo.info["people"]["carol"])
    assert refused == 403  # carol is not in jupyterhub-users

    session, status = login(demo.url, "alice", demo.info["people"]["alice"])
    assert status == 302
    start_server(demo.url, session, "alice")
    assert demo.pods() == ["jupyter-alice"]
    pod = demo.kube(f"/api/v1/namespaces/{demo.info['namespace']}/pods/jupyter-alice")
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001
    assert pod["spec"]["nodeName"].startswith("node-")

    # Write into the home through the running Jupyter server's contents API.
    put = session.put(
        f"{demo.url}/user/alice/api/contents/from-the-demo-test.txt",
        json={"type": "file", "format": "text", "content": "kept\n"},
        headers=server_xsrf(demo.url, session, "alice"),
        timeout=30,
    )
    assert put.status_code in (200, 201), put.text
    written = Path(demo.info["host_root"]) / "gpfs/home/alice/from-the-demo-test.txt"
    assert written.read_text() == "kept\n"
    assert written.stat().st_uid == 10001

    # Ctrl-C: everything stops, in order, and the home stays.
    assert demo.interrupt() == 0, demo.output()
    assert "demo: stopped" in demo.output()
    for pid in demo.info_pids():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert written.read_text() == "kept\n"
    # The demo's hub stops the servers itself on the way out (LSST_HUB_CLEANUP_SERVERS;
    # a site's hub leaves them running), deleting the pod through the API.
    hub_log = (Path(demo.info["logs"]) / "jupyterhub.log").read_text(errors="replace")
    assert "Cleaning up single-user servers" in hub_log
    assert re.search(r"Deleting pod \S*jupyter-alice", hub_log), demo.output()


# The standby hub's behaviour is tested on both JupyterHub lines in
# tests/ha/test_failover_hub.py, on this same demo code; this checks the demo's own
# interface to it (DEMO_HA=1, the banner, demo.json, restarting a stopped hub), once.
@pytest.mark.line_independent
def test_demo_ha_runs_two_hubs_and_the_banner_says_how_to_kill_the_leader(
    state_dir: Path,
) -> None:
    demo = RunningDemo(state_dir, DEMO_HA="1")
    try:
        ha = demo.info["ha"]
        assert set(ha["wrappers"]) == {"hub-a", "hub-b"}
        leader, pid = ha["leader"], ha["wrappers"][ha["leader"]]
        standby = next(n for n in ha["wrappers"] if n != leader)
        banner = demo.output()
        assert f"{leader} leads" in banner and f"{standby} waits" in banner
        assert f"kill -9 -{pid}" in banner
        assert f"{standby}.log" in banner

        os.killpg(pid, 9)  # as the banner says
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(requests.RequestException):  # 503 until it has
                if login(demo.url, "bob", demo.info["people"]["bob"])[1] == 302:
                    break
            assert time.monotonic() < deadline, demo.output()
            time.sleep(0.5)
        # The demo starts the killed hub again, as the standby.
        while f"{leader} exited with -9; starting it again as a standby" not in demo.output():
            assert time.monotonic() < deadline, demo.output()
            time.sleep(0.5)
        assert demo.interrupt() == 0, demo.output()
    finally:
        demo.kill()
        for pid in demo.info.get("ha", {}).get("wrappers", {}).values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, 9)
