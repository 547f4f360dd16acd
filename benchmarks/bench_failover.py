"""Benchmark: failover of the standby hub, side by side with a single hub restarted in place.

The figure is the time from the leader's death to the first successful login through
the proxy (configurable-http-proxy on its own, as the proxy pod of a deployment).

One site (:class:`tests.ha.site.HASite`, the demo's HA mode in this process): slapd
with TLS, the devcluster (process runtime: the server is a real
``jupyterhub-singleuser`` run as its owner), a throwaway PostgreSQL,
configurable-http-proxy, and two hubs, ``hub-a`` and ``hub-b``, each wrapped by
``lsst-hub-ha`` with the default Lease settings (10 s / 7 s / 2 s). alice's server is
started once, before the runs: the running session. Then, alternating:

* ``kill -9`` of the leader's whole process group (the wrapper and its hub, as a
  node failure or a killed pod ends both);
* SIGTERM to the leader's wrapper (a rolling upgrade: the hub stops, the Lease is
  released, the standby takes over without waiting for expiry).

:func:`tests.ha.site.fail_over` measures each and probes alice's server through the
proxy between login attempts; after each run the server must still answer through
the proxy, its pod exist and the new leader report it ready. Between runs (not
timed) the stopped wrapper is started again as the standby, as Kubernetes restarts a
container. The hubs' lifetimes, from the wrappers' event logs (``event=leading`` to
``event=hub-exited``, or to the death of the hub's process after ``kill -9``, seen
by polling it), must never overlap.

Then, in the same run on the same site (same machine state, same PostgreSQL and
proxy, the same server still running), today's path: both wrappers are stopped and
one plain hub runs, the same command line, ``jupyterhub_config.py`` and environment
as the wrapped hubs but without the wrapper (so ``LSST_HUB_HA`` unset) and with no
standby. It is killed with ``kill -9`` of its process group and started again at
once, as the kubelet restarts a container in its pod, best case; measured the same
way.

Usage (as root: the devcluster runs the server as alice's uid)::

    .venv/bin/python -m benchmarks.bench_failover [--rounds 10] [--no-write] [--keep-logs DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jupyterhub  # noqa: E402
import requests  # noqa: E402

from benchmarks._report import write_section  # noqa: E402
from tests.deploy.demo_support import hub_xsrf  # noqa: E402
from tests.ha.site import HUBS, HASite, fail_over, ha_site  # noqa: E402
from tests.ha.support import Event, alive, read_events  # noqa: E402

GOAL_KILL = 15.0  # median seconds, kill -9 of the leader
GOAL_SIGTERM = 5.0  # seconds, SIGTERM handover
USER, PASSWORD = "alice", "alicepw"  # the running session
PROBE = ("bob", "bobpw")  # who logs in to tell that a hub serves again
LEASE_DURATION = 10  # lsst-hub-ha's default, which the demo uses

STANDBY = "standby hub (`lsst-hub-ha`)"
#: The table's rows: (path shown, how shown, Run.path, Run.how).
GROUPS = [
    (STANDBY, "`kill -9` of the leader's process group", "standby", "kill-9"),
    (STANDBY, "SIGTERM to the leader (rolling upgrade)", "standby", "sigterm"),
    (
        "single hub restarted in place (today)",
        "`kill -9`, started again at once",
        "single",
        "kill-9",
    ),
]

_VERSION = re.compile(
    r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) JupyterHub \S+\] Running JupyterHub version"
)
_RUNNING = re.compile(
    r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) JupyterHub \S+\] JupyterHub is now running"
)


@dataclass
class Run:
    """One measured failover or restart."""

    path: str  # "standby" or "single"
    how: str  # "kill-9" or "sigterm"
    seconds: float  # from the leader's death to the first login through the proxy
    probes: int
    probes_failed: int
    server_kept: bool  # answers through the proxy, pod there, the new hub says ready
    load: float  # 1-minute load average just before
    # Where the time went (None when a mark was not found in the logs).
    stopped: float | None = None  # SIGTERM: signal to the old hub's exit
    took_over: float | None = None  # to event=leading of the new leader (or the restart)
    start_up: float | None = None  # event=leading (restart) to "JupyterHub is now running"
    imports: float | None = None  # ... of which to JupyterHub's first log line
    to_login: float | None = None  # "now running" to the first login
    failures: list[str] = field(default_factory=list)  # what the failed probes got


@dataclass
class DeathWatch:
    """Polls a process until it is gone; the time it was first seen gone."""

    pid: int
    died: float | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> DeathWatch:
        def watch() -> None:
            while alive(self.pid):
                time.sleep(0.002)
            self.died = time.time()

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float) -> float | None:
        assert self._thread is not None
        self._thread.join(timeout)
        return self.died


class ProbeSession(requests.Session):
    """alice's session, recording what each failed probe of her server got."""

    def __init__(self, base: requests.Session) -> None:
        super().__init__()
        self.cookies = base.cookies
        self.failures: list[str] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        probe = "/api/status" in str(url)
        try:
            answer = super().request(method, url, *args, **kwargs)
        except requests.RequestException as e:
            if probe:
                self.failures.append(type(e).__name__)
            raise
        if probe and answer.status_code != 200:
            why = " (the server could not reach the Hub API)" if "Hub API" in answer.text else ""
            self.failures.append(f"{answer.status_code}{why}")
        return answer


def log_times(log: Path, pattern: re.Pattern[str]) -> list[float]:
    """The times of the JupyterHub log lines matching ``pattern`` (local time)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        m = pattern.match(line)
        if m:
            out.append(dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp())
    return out


def now_running_times(log: Path) -> list[float]:
    """The times of JupyterHub's "is now running" lines in a log."""
    return log_times(log, _RUNNING)


def first_line_times(log: Path) -> list[float]:
    """The times of JupyterHub's first line ("Running JupyterHub version"): its
    imports done and the configuration file read."""
    return log_times(log, _VERSION)


def first_after(times: list[float], t: float) -> float | None:
    return next((x for x in sorted(times) if x >= t), None)


def server_kept(site: HASite, session: requests.Session) -> bool:
    """alice's server answers through the proxy, its pod exists, the hub says ready."""
    if not site.server_answers(session, USER, timeout=10):
        return False
    if not any(USER in pod for pod in site.pods()):
        return False
    with contextlib.suppress(requests.RequestException, ValueError):
        model = session.get(
            f"{site.url}/hub/api/users/{USER}",
            headers={"X-XSRFToken": hub_xsrf(session)},
            timeout=30,
        ).json()
        return bool((model.get("servers") or {}).get("", {}).get("ready"))
    return False


def wait_for_standby(site: HASite, name: str, timeout: float = 120) -> None:
    """Until ``name``'s current wrapper is a standby whose parked hub is warm.

    (:meth:`HASite.standby_ready`: only the current wrapper's log lines count, and its
    parked hub must have finished its imports, as a standby that has been up for a
    while has.) A restarted wrapper takes seconds to start under load.
    """
    process = site.wrapper(name)
    deadline = time.monotonic() + timeout
    while not site.standby_ready(name):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not become a warm standby:\n{site.log(name)[-3000:]}")
        time.sleep(0.2)


def ready_pair(site: HASite) -> str:
    """Both wrappers running, the leader's hub healthy, the standby campaigning."""
    leader = site.ensure_pair()
    wait_for_standby(site, next(n for n in HUBS if n != leader))
    time.sleep(1.0)  # let the restarted wrapper's start-up settle (2 cores)
    return leader


def mark_start_up(run: Run, log: Path, started: float, login_at: float) -> None:
    """Split a hub's start (from ``started``) at its first log line and "now running"."""
    running = first_after(now_running_times(log), started)
    first = first_after(first_line_times(log), started)
    if running is not None:
        run.start_up = running - started
        run.to_login = login_at - running
    if first is not None:
        run.imports = first - started


def standby_run(
    site: HASite, how: str, session: ProbeSession, watches: dict[int, DeathWatch]
) -> Run:
    leader = ready_pair(site)
    hub_pid = int(site.events(leader, "hub-started")[-1].fields["pid"])
    watch = watches[hub_pid] = DeathWatch(hub_pid).start()
    load = os.getloadavg()[0]
    failed_before = len(session.failures)
    result = fail_over(site, how, session, user=USER, probe=PROBE)
    died = watch.wait(30)
    kept = server_kept(site, session)
    run = Run(
        "standby", how, result.seconds, result.server_checks, result.server_failures, kept, load
    )
    run.failures = session.failures[failed_before:]
    new = result.new
    if how == "sigterm":
        signals = site.events(leader, "signal")
        exited = site.events(leader, "hub-exited")
        t0 = signals[-1].t if signals else None
        if t0 is not None and exited:
            run.stopped = exited[-1].t - t0
    else:
        t0 = died
    if t0 is None or new is None:
        return run
    login_at = t0 + result.seconds
    leading = [e.t for e in site.events(new, "leading") if e.t >= t0 - 0.5]
    if leading:
        run.took_over = leading[0] - t0
        mark_start_up(run, site.demo.logs / f"{new}.log", leading[0], login_at)
    return run


# -- the single hub restarted in place ------------------------------------------------


class PlainHub:
    """The demo's hub command without the wrapper, restarted in place like a container."""

    def __init__(self, site: HASite) -> None:
        d: Any = site.demo
        self.site = site
        self.log = d.logs / "hub-single.log"
        self.cwd = d.state / "hub-single"
        self.cwd.mkdir(exist_ok=True)
        # The wrapped hubs' environment, less what only the wrapper would add.
        env: dict[str, str] = d.hub_env()
        env.update(
            KUBECONFIG=str(d.hub_kubeconfig),
            LSST_HUB_DB_URL=d.postgres.url,
            LSST_HUB_DB_PASSWORD=d.postgres.password,
            LSST_HUB_PROXY_API_URL=f"http://127.0.0.1:{d.proxy_api_port}",
            POD_NAMESPACE="jupyterhub",
        )
        for name in ("LSST_HUB_HA", "LSST_HUB_HA_IDENTITY", "LSST_HUB_HA_LEASE"):
            env.pop(name, None)
        self.env = env
        self.argv = [
            sys.executable, "-m", "jupyterhub",
            "-f", str(ROOT / "jupyterhub_config.py"),
            f"--JupyterHub.hub_bind_url=http://127.0.0.1:{d.hub_port}",
        ]  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        with self.log.open("ab") as out:
            started = time.time()
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return started

    def kill(self) -> None:
        """``kill -9`` of the hub's process group (the hub and its services)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def wait_healthy(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not (self.site.healthy() and self.site.login(*PROBE)[1] == 302):
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the single hub did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.5)


def single_run(hub: PlainHub, session: ProbeSession, timeout: float = 120) -> Run:
    site = hub.site
    hub.wait_healthy()
    time.sleep(1.0)
    load = os.getloadavg()[0]
    failed_before = len(session.failures)
    t0 = time.time()
    hub.kill()
    restarted = hub.start()  # at once, as the kubelet restarts the container (best case)
    probes = failed = 0
    deadline = time.monotonic() + timeout
    while True:
        probes += 1
        failed += not site.server_answers(session, USER)
        with contextlib.suppress(requests.RequestException):
            if site.login(*PROBE)[1] == 302:  # the old hub is dead: the new one answered
                login_at = time.time()
                break
        if time.monotonic() > deadline:
            raise RuntimeError(f"no login through the proxy {timeout} s after the restart")
        time.sleep(0.1)
    kept = server_kept(site, session)
    run = Run("single", "kill-9", login_at - t0, probes, failed, kept, load)
    run.failures = session.failures[failed_before:]
    run.took_over = restarted - t0
    mark_start_up(run, hub.log, restarted, login_at)
    return run


def stop_wrappers(site: HASite) -> None:
    """Standby first, then the leader (SIGTERM: hub stopped, Lease released)."""
    d: Any = site.demo
    leader = site.leader()
    for name in sorted(HUBS, key=lambda n: n == leader):
        d._terminate(d.wrapped[name], name, 60)


# -- overlapping leaders ----------------------------------------------------------------


@dataclass
class Lifetime:
    hub: str
    pid: int
    start: float
    end: float  # inf: still running at the end


def lifetimes(site: HASite, watches: dict[int, DeathWatch], end_of_run: float) -> list[Lifetime]:
    """Each wrapped hub's life, from ``event=leading`` (just before the hub's process is
    started) to ``event=hub-exited`` (logged once it has been reaped) or, after
    ``kill -9``, to when its process was seen gone."""
    out = []
    for name in HUBS:
        events: list[Event] = read_events(site.demo.logs / f"{name}.log")
        leading: float | None = None
        for e in events:
            if e.name == "leading":
                leading = e.t
            elif e.name == "hub-started":
                pid = int(e.fields["pid"])
                start = leading if leading is not None else e.t
                exited = next(
                    (x.t for x in events if x.name == "hub-exited" and int(x.fields["pid"]) == pid),
                    None,
                )
                watched = watches[pid].died if pid in watches else None
                end = exited if exited is not None else watched
                out.append(Lifetime(name, pid, start, end if end is not None else end_of_run))
                leading = None
    return sorted(out, key=lambda life: life.start)


def overlaps(lives: list[Lifetime]) -> tuple[int, float | None]:
    """How many pairs of hub lifetimes overlap; the smallest gap between one's end and
    the next's start."""
    count = 0
    for i, a in enumerate(lives):
        for b in lives[i + 1 :]:
            if a.start < b.end and b.start < a.end:
                count += 1
    gaps = [b.start - a.end for a, b in itertools.pairwise(lives)]
    return count, (min(gaps) if gaps else None)


# -- where the hub's start-up goes ---------------------------------------------------------

#: What the hub process imports before JupyterHub's first log line (the configuration's).
HUB_IMPORTS = (
    "import jupyterhub.app, kubespawner, lsst_hub.auth, lsst_hub.spawner, lsst_hub.services"
)
#: The same with ``rfc3987_syntax`` unavailable (``jsonschema`` then skips its IRI check).
WITHOUT_RFC3987 = "import sys; sys.modules['rfc3987_syntax'] = None; " + HUB_IMPORTS


def import_seconds(code: str) -> float:
    """Wall time of a fresh interpreter importing what ``code`` imports."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    return time.monotonic() - started


def import_costs(rounds: int = 3) -> tuple[float, float]:
    """Median seconds to import the hub's modules, with and without ``rfc3987_syntax``."""
    with_, without = [], []
    for _ in range(rounds):  # alternating, so that load changes hit both alike
        with_.append(import_seconds(HUB_IMPORTS))
        without.append(import_seconds(WITHOUT_RFC3987))
    return statistics.median(with_), statistics.median(without)


# -- report -------------------------------------------------------------------------------


def median(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"{statistics.median(known):.1f}" if known else "-"


def report(runs: list[Run], rounds: int, overlap: int, lives: int, gap: float | None,
           loads: tuple[float, float, float], imports: tuple[float, float]) -> str:  # fmt: skip
    lines = [
        "## Hub failover: standby hub vs a single hub restarted in place "
        "(`python -m benchmarks.bench_failover`)",
        "",
        f"JupyterHub {jupyterhub.__version__}. One site as the demo's HA mode "
        "(`tests/ha/site.py`): slapd with TLS, the devcluster (process runtime: alice's "
        "server is a real `jupyterhub-singleuser` run as her), PostgreSQL on loopback, "
        "configurable-http-proxy on its own (as the chart's proxy pod), and two hubs "
        "with the repository's `jupyterhub_config.py`, each wrapped by `lsst-hub-ha` with "
        "its default Lease settings (duration 10 s, renew deadline 7 s, retry 2 s). "
        "alice's server was started once, before the runs. The time is from the "
        "leader's death (`kill -9` of the wrapper's whole process group, as a node "
        "failure ends both; or SIGTERM to the wrapper, as a rolling upgrade) to the first "
        "successful login (bob, LDAP) through the proxy; after SIGTERM only a login after "
        "the old hub's exit counts. Between login attempts alice's server was probed "
        "through the proxy (`/user/alice/api/status` with her browser's cookies); after "
        "each run it had to answer, its pod to exist and the new hub to report it ready. "
        "Between runs (not timed) the stopped wrapper was started again, as Kubernetes "
        "restarts a container, and the next run began once it had logged "
        "`event=standby` and its parked hub had done its imports (`event=hub-warm`: the "
        "warm standby, as one that has been up a while). "
        f"{rounds} runs of each, alternating. In the same run, on the "
        "same site and with the same server still running, today's path: both wrappers "
        "stopped, one hub with the same command line, configuration and environment but "
        "no wrapper (`LSST_HUB_HA` unset) and no standby, killed with `kill -9` of its "
        "process group and started again at once, as the kubelet restarts a container "
        f"in its pod, best case; {rounds} times.",
        "",
        "| path | how the hub ends | runs | median s | max s | server probes failed "
        "| server still running after |",
        "|---|---|---|---|---|---|---|",
    ]
    for path_label, how_label, path, how in GROUPS:
        group = [r for r in runs if r.path == path and r.how == how]
        if not group:
            continue
        secs = [r.seconds for r in group]
        lines.append(
            f"| {path_label} | {how_label} | {len(group)} | {statistics.median(secs):.1f} "
            f"| {max(secs):.1f} | {sum(r.probes_failed for r in group)} of "
            f"{sum(r.probes for r in group)} "
            f"| {sum(r.server_kept for r in group)} of {len(group)} |"
        )
    lines += [
        "",
        "Where the time goes (medians, s), from the wrappers' `event=` lines, the hubs' "
        "log and, after `kill -9`, the hub's process seen gone. *To the new leader*: "
        "from the death (or the signal) to the standby's `event=leading`, for the single "
        "hub to its restart. *Hub start-up*: from there to JupyterHub's \"JupyterHub is "
        'now running"; *of which to its first line*: the process start, Python imports '
        "and the configuration file, before JupyterHub's first log line.",
        "",
        "| path | how | old hub stopping | to the new leader | hub start-up "
        "| of which to its first line | then to the first login |",
        "|---|---|---|---|---|---|---|",
    ]
    for path_label, _how_label, path, how in GROUPS:
        group = [r for r in runs if r.path == path and r.how == how]
        if not group:
            continue
        stopped = median([r.stopped for r in group]) if how == "sigterm" else "0 (killed)"
        lines.append(
            f"| {path_label} | {how} | {stopped} | {median([r.took_over for r in group])} "
            f"| {median([r.start_up for r in group])} | {median([r.imports for r in group])} "
            f"| {median([r.to_login for r in group])} |"
        )
    lines += [
        "",
        "The standby's own cost over today's restart is the wait for the Lease (after "
        "`kill -9`) or the old hub's stop and the standby's next attempt (after SIGTERM); "
        "the rest is the new hub's start, the same on both paths, and most of that comes "
        "before JupyterHub's first log line. Importing the hub's modules "
        "(`jupyterhub.app`, `kubespawner`, `lsst_hub`) in a fresh interpreter took "
        f"{imports[0]:.1f} s during this run, {imports[1]:.1f} s with `rfc3987_syntax` "
        "made unavailable (median of 3 each): `jupyter_events` requires "
        "`jsonschema[format-nongpl]`, which installs `rfc3987-syntax`; `jsonschema` "
        "imports it, and it compiles its Lark grammars at import.",
    ]
    ha = [r for r in runs if r.path == "standby"]
    kill = [r.seconds for r in ha if r.how == "kill-9"]
    term = [r.seconds for r in ha if r.how == "sigterm"]
    servers_lost = sum(not r.server_kept for r in runs)
    failed_runs = [r for r in runs if r.probes_failed]
    kinds = sorted({k for r in runs for k in r.failures})
    gap_text = (
        f"; the smallest gap between one hub's end and the next's start: {gap:.2f} s"
        if gap is not None
        else ""
    )
    lines += [
        "",
        f"Overlapping leaders: {overlap} overlapping pairs among {lives} wrapped-hub "
        "lifetimes over the whole run (from `event=leading`, just before the hub process "
        "starts, to `event=hub-exited`, logged once it is reaped, or to the killed hub's "
        f"process seen gone){gap_text}.",
    ]
    if failed_runs:
        where = ", ".join(
            f"{r.path} {r.how} ({r.probes_failed} of {r.probes})" for r in failed_runs
        )
        lines += [
            "",
            f"Failed probes of the running server: in {len(failed_runs)} of {len(runs)} "
            f"runs, {where}; what they got: {'; '.join(kinds)}.",
        ]
        if any("Hub API" in k for k in kinds):
            lines += [
                "",
                "The server itself kept running and its route stayed in the proxy: "
                "`jupyterhub-singleuser` checks a browser's token with the hub's API "
                "whenever its cached answer is older than `HubAuth.cache_max_age` "
                "(300 s); when that moment falls in the hub's outage, each of that "
                "browser's requests to its server fails (500) until a hub answers again. "
                "This happens on either path, to a session whose five-minute check falls "
                "in the outage, so the longer the outage the more sessions it reaches "
                "(the probes here use the server's REST API; open WebSockets were not "
                "probed).",
            ]
    lines += [
        "",
        "On a cluster, the single hub's figure is a best case. A hub container that dies "
        "in a live pod is restarted by the kubelet, with an exponential back-off when it "
        "keeps dying (10 s, 20 s, 40 s, ... capped at 5 min, reset after 10 min of "
        "running). When the hub's node fails, Kubernetes first has to notice: the node "
        "controller marks the node NotReady/Unknown after `node-monitor-grace-period` "
        "(40 s before Kubernetes 1.32, 50 s from 1.32), and the pod is evicted only after "
        "its `node.kubernetes.io/not-ready` / `unreachable` toleration runs out (300 s by "
        "default, added by the DefaultTolerationSeconds admission plugin); then the new "
        "pod is scheduled, its volume attached (a sqlite database on a ReadWriteOnce "
        "volume must first be detached from the dead node) and its hub started: over 5 "
        "minutes without a hub. The standby waits for none of that: it runs on another "
        f"node and takes the Lease over once it expires, {LEASE_DURATION} s after the last "
        "renewal it saw, whether the node, the pod or only the hub died; on SIGTERM the "
        "Lease is released and the standby takes over at its next attempt (every 2 s).",
        "",
        "Other helpers' tests and benchmarks shared the machine's 2 cores during the "
        f"measurement (1-minute load average before the runs: median {loads[1]:.1f}, "
        f"range {loads[0]:.1f} to {loads[2]:.1f}): the hubs' start-up, which dominates "
        "the time after the takeover, varies with it by seconds.",
        "",
        "Goals (default Lease settings):",
        "",
    ]
    if kill:
        med = statistics.median(kill)
        lines.append(
            f"- `kill -9` failover <= {GOAL_KILL:g} s median: {med:.1f} s, "
            f"{'met' if med <= GOAL_KILL else 'NOT met'}"
        )
    if term:
        med, worst = statistics.median(term), max(term)
        verdict = "met" if worst <= GOAL_SIGTERM else "NOT met"
        if med <= GOAL_SIGTERM < worst:
            verdict = "met at the median, not every time"
        lines.append(
            f"- SIGTERM handover <= {GOAL_SIGTERM:g} s: median {med:.1f} s, max {worst:.1f} s, "
            f"{verdict}"
        )
    sessions = f"- 0 running sessions lost: {servers_lost} of {len(runs)} runs lost the server"
    if servers_lost == 0 and not failed_runs:
        sessions += " and no probe failed, met"
    elif servers_lost == 0:
        sessions += (
            f", but its requests failed during the outage in {len(failed_runs)} "
            f"run{'s' if len(failed_runs) > 1 else ''}: "
            "servers kept, requests NOT always served"
        )
    else:
        sessions += ", NOT met"
    lines += [
        sessions,
        f"- 0 overlapping leaders: {overlap}, {'met' if overlap == 0 else 'NOT met'}",
    ]
    return "\n".join(lines)


def print_run(i: int, run: Run) -> None:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    print(
        f"[{i:2}] {run.path:7} {run.how:7} {run.seconds:6.2f} s  probes {run.probes_failed}/"
        f"{run.probes} failed  kept={run.server_kept}  load={run.load:.1f}  "
        f"stopped={f(run.stopped)} took_over={f(run.took_over)} start_up={f(run.start_up)} "
        f"(imports {f(run.imports)}) to_login={f(run.to_login)}"
        + (f" failures={sorted(set(run.failures))}" if run.failures else ""),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="runs of each kind")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--keep-logs", type=Path, help="copy the site's logs here at the end")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the devcluster runs the server as alice's uid")

    runs: list[Run] = []
    watches: dict[int, DeathWatch] = {}
    started = time.monotonic()
    with ha_site() as site:
        ready_pair(site)
        session = ProbeSession(site.start_server(USER, PASSWORD))
        for i in range(2 * args.rounds):
            how = "kill-9" if i % 2 == 0 else "sigterm"
            run = standby_run(site, how, session, watches)
            runs.append(run)
            print_run(i, run)
        ready_pair(site)
        end_of_run = time.time()
        stop_wrappers(site)
        lives = lifetimes(site, watches, end_of_run)
        for life in lives:
            print(f"lifetime {life.hub} pid {life.pid}: {life.start:.3f} .. {life.end:.3f}")
        overlap, gap = overlaps(lives)

        hub = PlainHub(site)
        hub.start()
        try:
            for i in range(args.rounds):
                run = single_run(hub, session)
                runs.append(run)
                print_run(i, run)
        finally:
            hub.stop()
            if args.keep_logs is not None:
                shutil.copytree(site.demo.logs, args.keep_logs, dirs_exist_ok=True)
                with contextlib.suppress(OSError):  # the pods' logs (alice's server)
                    shutil.copytree(
                        site.demo.state / "cluster" / "logs",
                        args.keep_logs / "pods",
                        dirs_exist_ok=True,
                    )
    print(f"total {time.monotonic() - started:.0f} s")

    all_loads = sorted(r.load for r in runs)
    loads = (all_loads[0], statistics.median(all_loads), all_loads[-1])
    imports = import_costs()
    print(f"imports: {imports[0]:.2f} s, {imports[1]:.2f} s without rfc3987_syntax")
    text = report(runs, args.rounds, overlap, len(lives), gap, loads, imports)
    print(text)
    if not args.no_write:
        write_section("failover", text)


if __name__ == "__main__":
    main()
