"""Managed services started through ``die_with_hub`` end with a hub killed by SIGKILL.

JupyterHub starts each service in a session of its own; without the launcher a
hub killed with SIGKILL (its wrapper's parent-death signal, ``kill -9``) leaves
them running. A real hub, a real SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import psutil

from .support import alive, poll_until


def test_a_service_dies_with_a_hub_killed_by_sigkill(
    jupyterhub_factory: Callable[..., Any],
) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    service = f"{{'name': 'sleeper', 'command': die_with_hub({sleeper!r})}}"
    hub = jupyterhub_factory(
        "from lsst_hub.services import die_with_hub\n"
        "c.JupyterHub.authenticator_class = 'dummy'\n"
        f"c.JupyterHub.services.append({service})\n"
    )

    def service() -> int | None:
        for child in psutil.Process(hub.process.pid).children():
            if "time.sleep(600)" in " ".join(child.cmdline()):
                return int(child.pid)
        return None

    pid = poll_until(service, 60, "the service to start")
    assert isinstance(pid, int) and os.getsid(pid) != os.getsid(hub.process.pid)
    # The proxy the hub started outlives a hub killed so, by JupyterHub's design (a
    # restarted hub finds it and keeps its routes): this test ends it itself.
    others = [p for p in psutil.Process(hub.process.pid).children() if p.pid != pid]
    hub.process.send_signal(signal.SIGKILL)
    hub.process.wait(10)
    try:
        poll_until(lambda: not alive(pid), 10, "the service to die with the hub")
    finally:
        for process in others:
            with contextlib.suppress(psutil.Error):
                process.kill()
