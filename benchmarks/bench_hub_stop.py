"""Benchmark: how long the hub takes to stop, with a server running and its services.

A real JupyterHub with the repository's ``jupyterhub_config.py`` (``cleanup_servers``
false, the site default: the server is left running), a real slapd and a dev cluster
subprocess (process runtime, alice's server running as her uid), the idle culler and
the orphan-pod service (:mod:`tests.deploy.hub_stop_support`). Once the orphan-pod
service has made its first pass, the hub gets SIGTERM, as Kubernetes sends it; the
figure is the time until the hub process has exited. Four cases: the hub started with
SIGINT at its default or ignored (as a background job of a non-interactive shell, or
under a wrapper that ignores it), and the configuration's reset of the signals the
services inherit (:func:`lsst_hub.services.reset_ignored_signals`) in effect or undone
(as before it). Kubernetes' default grace period is 30 s; the goal is under 10 s.

Usage (as root: the dev cluster runs the server as another uid)::

    .venv/bin/python -m benchmarks.bench_hub_stop [--rounds 2] [--no-write]

(``.venv-jh5/bin/python`` for the JupyterHub 5.5 line: one section per line.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jupyterhub  # noqa: E402

from benchmarks._report import write_section  # noqa: E402
from tests.deploy.hub_stop_support import site_hub, stop_hub  # noqa: E402
from tests.support.slapd import Slapd, start_slapd  # noqa: E402

GOAL_SECONDS = 10.0
CASES = [  # (the configuration resets the signals, hub started with SIGINT ignored)
    (False, False),
    (False, True),
    (True, False),
    (True, True),
]


def one_stop(state: Path, slapd: Slapd, reset: bool, sigint_ignored: bool) -> tuple[float, int]:
    """Seconds from SIGTERM to the hub's exit, and how many services needed escalation."""
    with site_hub(state, slapd, sigint_ignored=sigint_ignored, reset_signals=reset) as (hub, _):
        deadline = time.monotonic() + 120
        while "orphan pod pass done" not in hub.log_text():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the orphan-pod service made no pass:\n{hub.log_text()}")
            time.sleep(0.2)
        stopped = stop_hub(hub)
        if stopped.returncode is None or stopped.services_left:
            raise RuntimeError(f"the hub did not stop cleanly:\n{stopped.log[-4000:]}")
        return stopped.seconds, len(stopped.escalated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="stops per case")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-hub-stop-") as tmp:
        base = Path(tmp)
        slapd = start_slapd(base / "slapd")
        try:
            for reset, ignored in CASES:
                times, escalations = [], 0
                for i in range(args.rounds):
                    state = base / f"{int(reset)}{int(ignored)}-{i}"
                    seconds, escalated = one_stop(state, slapd, reset, ignored)
                    times.append(seconds)
                    escalations += escalated
                    print(f"reset={reset} sigint_ignored={ignored}: {seconds:.1f} s, "
                          f"{escalated} escalated", flush=True)  # fmt: skip
                rows.append((reset, ignored, times, escalations))
        finally:
            slapd.stop()

    lines = [
        f"## Hub stop, JupyterHub {jupyterhub.__version__} (`python -m benchmarks.bench_hub_stop`)",
        "",
        "JupyterHub with the repository's `jupyterhub_config.py` (`cleanup_servers` false: "
        "the running server is left alone), the idle culler and the orphan-pod service, a "
        "real slapd and the dev cluster (process runtime) with one server running. Once the "
        "orphan-pod service has made its first pass, the hub gets SIGTERM as from Kubernetes; "
        "the time is until the hub process has exited. JupyterHub stops its services one at "
        "a time with SIGINT and sends SIGTERM only 30 s later (10 s in 5.x); a hub started "
        "with SIGINT "
        "ignored (a background job of a non-interactive shell, a wrapper) passed that on to "
        "its services, until the configuration reset the hub's SIGINT and SIGTERM to their "
        "defaults before the services start (`lsst_hub.services.reset_ignored_signals`); "
        '"before" undoes that reset. '
        f"{args.rounds} stops per case.",
        "",
        "| configuration | hub started with SIGINT | median s | max s | escalated to SIGTERM |",
        "|---|---|---|---|---|",
    ]
    for reset, ignored, times, escalations in rows:
        lines.append(
            f"| {'signals reset (now)' if reset else 'before'} "
            f"| {'ignored' if ignored else 'default'} | {statistics.median(times):.1f} "
            f"| {max(times):.1f} | {escalations} of {2 * len(times)} |"
        )
    worst = max(max(times) for reset, _, times, _ in rows if reset)
    lines += [
        "",
        "Goal:",
        "",
        f"- hub stopped in < {GOAL_SECONDS:g} s, SIGINT ignored or not: "
        f"worst {worst:.1f} s, {'met' if worst < GOAL_SECONDS else 'NOT met'}",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(f"hub-stop-jupyterhub-{jupyterhub.__version__.split('.')[0]}", text)


if __name__ == "__main__":
    main()
