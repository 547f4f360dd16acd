"""``lsst-hub-ha`` against the devcluster over HTTP, with a fake hub as the child.

Real processes throughout: two wrappers campaign for one Lease in the devcluster;
what each fake hub did (start, stop, port bound) and each wrapper's logged steps
give the order of events. The tests with real hubs are in ``test_failover_hub.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kubeconfig import kubeconfig_via
from tests.support.slapd import free_port
from tests.support.tcpproxy import TcpProxy

from .support import HubRecord, Wrapper, alive, fakehub_command, poll_until, short_lease

pytestmark = pytest.mark.line_independent


@pytest.fixture
def cluster(make_threaded_devcluster: Callable[..., Any]) -> Any:
    return make_threaded_devcluster(nodes=1)


@pytest.fixture
def wrappers(tmp_path: Path) -> Iterator[list[Wrapper]]:
    started: list[Wrapper] = []
    yield started
    for w in started:
        w.stop()


@pytest.fixture
def spawn(
    cluster: Any, tmp_path: Path, wrappers: list[Wrapper]
) -> Callable[..., tuple[Wrapper, HubRecord]]:
    port = free_port()

    def make(
        identity: str,
        *hub_args: str,
        options: list[str] | None = None,
        kubeconfig: Path | None = None,
        **kw: Any,
    ) -> tuple[Wrapper, HubRecord]:
        record = HubRecord(tmp_path / f"{identity}.record")
        w = Wrapper(
            identity,
            fakehub_command(port, record.path, "--name", identity, *hub_args),
            kubeconfig or Path(cluster.kubeconfig),
            tmp_path / f"{identity}.log",
            options=short_lease if options is None else options,
            **kw,
        ).start()
        wrappers.append(w)
        return w, record

    return make


def test_one_leads_and_sigterm_hands_over_without_waiting_for_expiry(spawn: Any) -> None:
    # Default lease (10 s): a handover that waited for expiry would be obvious.
    a, hub_a = spawn("a", options=[])
    a.wait_event("hub-started", 30)
    b, hub_b = spawn("b", options=[])
    assert b.wait_event("standby", 30).fields["holder"] == "a"
    poll_until(lambda: hub_a.time_of("start"), 30, "a's hub")
    assert hub_b.lines() == []

    a.signal(signal.SIGTERM)
    assert a.wait(30) == 0
    released = a.wait_event("released", 1)
    leading = b.wait_event("leading", 10)
    poll_until(lambda: hub_b.time_of("start"), 30, "b's hub")
    assert hub_a.time_of("stop") < leading.t < hub_b.time_of("start")  # type: ignore[operator]
    assert leading.t - released.t < 10 / 2, "the standby waited for the lease to expire"
    assert hub_b.first("bind-failed") is None


def test_sigkill_of_the_wrapper_alone_takes_its_hub_with_it(spawn: Any) -> None:
    a, hub_a = spawn("a")
    a.wait_event("hub-started", 30)
    pid = poll_until(lambda: hub_a.pid, 30, "a's hub")
    a.signal(signal.SIGKILL)  # not the group: the parent-death signal must do it
    a.wait(10)
    poll_until(lambda: not alive(pid), 5, "the hub to die with its wrapper")  # type: ignore[arg-type]


def test_kill_9_of_the_leader_group_lets_the_standby_take_over(spawn: Any) -> None:
    a, hub_a = spawn("a")
    a.wait_event("hub-started", 30)
    b, hub_b = spawn("b")
    b.wait_event("standby", 30)
    poll_until(lambda: hub_a.pid, 30, "a's hub")
    a.kill_group()
    b.wait_event("leading", 15)
    poll_until(lambda: hub_b.time_of("start"), 30, "b's hub")
    assert hub_b.first("bind-failed") is None
    assert not alive(hub_a.pid)  # type: ignore[arg-type]


def test_a_hub_that_exits_by_itself_releases_and_passes_its_code(spawn: Any) -> None:
    a, hub_a = spawn("a", "--exit-after", "2", "--code", "7")
    b, hub_b = spawn("b", "--exit-after", "600")
    assert a.wait(60) == 7
    assert a.events("released")
    b.wait_event("leading", 10)
    poll_until(lambda: hub_b.time_of("start"), 30, "b's hub")
    assert hub_a.time_of("exit") < hub_b.time_of("start")  # type: ignore[operator]


def test_a_hub_ignoring_sigterm_is_killed_after_the_stop_timeout(spawn: Any) -> None:
    a, hub_a = spawn("a", "--ignore-term", options=[*short_lease, "--stop-timeout", "1"])
    a.wait_event("hub-started", 30)
    pid = poll_until(lambda: hub_a.pid, 30, "a's hub")
    a.signal(signal.SIGTERM)
    assert a.wait(30) == 0
    assert not alive(pid)  # type: ignore[arg-type]
    assert hub_a.first("stop") is None  # it never handled SIGTERM: SIGKILL ended it
    assert a.events("hub-exited")[0].fields["code"] == str(-signal.SIGKILL)
    assert a.events("released")


def test_the_hub_starts_with_sigint_at_its_default(spawn: Any) -> None:
    _a, hub_a = spawn("a", ignore_sigint=True)
    line = poll_until(lambda: hub_a.first("sigign"), 30, "a's hub")
    ignored = int(line[1], 16)  # type: ignore[index]
    assert not ignored & (1 << (signal.SIGINT - 1))
    assert not ignored & (1 << (signal.SIGTERM - 1))


def test_processes_the_hub_leaves_behind_are_stopped(spawn: Any) -> None:
    a, hub_a = spawn("a", "--leftover")
    line = poll_until(lambda: hub_a.first("leftover"), 30, "a's hub")
    leftover = int(line[1])  # type: ignore[index]
    assert alive(leftover)
    a.signal(signal.SIGTERM)
    assert a.wait(30) == 0
    assert not alive(leftover)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--lease-duration", "2.5"], "whole number"),
        (["--lease-duration", "7", "--renew-deadline", "7"], "must exceed --renew-deadline"),
        (["--renew-deadline", "2", "--retry-period", "2"], "1.2 x --retry-period"),
        (["--retry-period", "0.5"], "at least 1 s"),
        (["--retry-period", "nan"], "positive number"),
        ([], "no command"),
    ],
)
def test_unsafe_settings_are_refused(options: list[str], message: str) -> None:
    command = [] if not options else ["--", "true"]
    result = subprocess.run(
        [sys.executable, "-m", "lsst_hub.ha.cli", *options, *command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_partition_stops_the_hub_before_the_standby_starts(
    spawn: Any, cluster: Any, tmp_path: Path
) -> None:
    with TcpProxy.for_url(cluster.url) as proxy:
        a, hub_a = spawn(
            "a",
            kubeconfig=kubeconfig_via(
                Path(cluster.kubeconfig), proxy.url_for(cluster.url), tmp_path / "a.kubeconfig"
            ),
        )
        a.wait_event("hub-started", 30)
        b, hub_b = spawn("b")
        b.wait_event("standby", 30)
        poll_until(lambda: hub_a.pid, 30, "a's hub")
        proxy.cut()
        assert a.wait(30) == 3
        b.wait_event("leading", 15)
        poll_until(lambda: hub_b.time_of("start"), 30, "b's hub")
    # The renewal loop or the watchdog thread, whichever saw the deadline first,
    # stopped the hub (SIGTERM: it recorded its stop) before b took the lease.
    fenced = min(e.t for e in a.events() if e.name in ("fence", "lease-lost"))
    stopped = hub_a.time_of("stop")
    assert stopped is not None, "a's hub was not asked to stop (SIGTERM) by the fence"
    leading = b.events("leading")[0].t
    assert fenced < stopped < leading < hub_b.time_of("start")  # type: ignore[operator]
    assert hub_b.first("bind-failed") is None


def test_a_second_wrapper_with_the_same_identity_waits_for_expiry(
    spawn: Any, tmp_path: Path
) -> None:
    # A restarted container keeps its POD_NAME; a careless admin may give two
    # wrappers one --identity. A record naming this identity but written by another
    # process must not be renewed as if it were this process's own.
    a, hub_a = spawn("a")
    a.wait_event("hub-started", 30)
    pid = poll_until(lambda: hub_a.pid, 30, "a's hub")
    hub_twin = HubRecord(tmp_path / "twin.record")
    twin = Wrapper(
        "a",
        fakehub_command(0, hub_twin.path),
        a.kubeconfig,
        tmp_path / "twin-as-a.log",
        options=short_lease,
    ).start()
    try:
        twin.wait_event("standby", 30)
        assert "holder=a (an earlier run)" in twin.log.read_text()
        a_leading = a.events("leading")
        assert len(a_leading) == 1 and alive(pid)  # type: ignore[arg-type]
        assert not twin.events("leading") and hub_twin.lines() == []
        a.kill_group()
        twin.wait_event("leading", 30)
        poll_until(lambda: hub_twin.time_of("start"), 30, "the twin's hub")
    finally:
        twin.stop()


def test_a_standby_asked_to_stop_exits_0_without_touching_the_lease(spawn: Any) -> None:
    a, _ = spawn("a")
    a.wait_event("hub-started", 30)
    b, hub_b = spawn("b")
    b.wait_event("standby", 30)
    b.signal(signal.SIGTERM)
    assert b.wait(30) == 0
    assert not b.events("leading") and not b.events("released") and hub_b.lines() == []
    assert a.process is not None and a.process.poll() is None  # the leader leads on
    assert not a.events("lease-lost")


def test_no_cluster_configuration_is_a_clear_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env["KUBECONFIG"] = str(tmp_path / "missing")
    result = subprocess.run(
        [sys.executable, "-m", "lsst_hub.ha.cli", "--identity", "a", "--", "true"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no cluster configuration" in result.stderr


def test_a_hub_command_that_cannot_run_releases_and_exits_127(spawn: Any, cluster: Any) -> None:
    # The same wrapper with a command that does not exist, then a standby.
    bad = Wrapper(
        "bad", ["/nonexistent/jupyterhub"], Path(cluster.kubeconfig),
        Path(cluster.kubeconfig).with_name("bad.log"), options=short_lease,
    ).start()  # fmt: skip
    try:
        assert bad.wait(60) == 127
        assert bad.events("released")
        assert "cannot run '/nonexistent/jupyterhub'" in bad.log.read_text()
    finally:
        bad.stop()
    b, _ = spawn("b")
    b.wait_event("leading", 30)
    assert not b.events("standby")  # its first attempt won: the Lease was released
