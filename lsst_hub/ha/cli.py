"""``lsst-hub-ha``: run the hub only while this candidate holds the Lease.

::

    lsst-hub-ha [--lease-name NAME] [--lease-namespace NS] [--identity ID]
                [--lease-duration S] [--renew-deadline S] [--retry-period S]
                [--stop-timeout S] [--no-warm] -- COMMAND ARGS...

Exit codes: COMMAND's own when it exits by itself (the Lease is released first);
0 after a stop signal (hub stopped, Lease released); 3 after the Lease was lost
(hub stopped before the Lease could expire; Kubernetes restarts the container as
a standby); 2 for bad arguments or no cluster configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from kubernetes_asyncio.config import ConfigException

from . import settings as defaults
from .settings import HASettings, SettingsError, default_identity, default_namespace
from .wrapper import run

__all__ = ["main", "parse_args"]


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None


def _whole_seconds(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a whole number of seconds: {text!r} (a Lease's duration is an integer)"
        ) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lsst-hub-ha",
        description="Run COMMAND (the hub) only while this process holds a Kubernetes "
        "Lease; wait as a standby otherwise.",
        epilog="The cluster comes from the in-cluster service account, else KUBECONFIG.",
    )
    p.add_argument(
        "--lease-name",
        default=defaults.DEFAULT_LEASE_NAME,
        help="the Lease all candidates share (default: %(default)s)",
    )
    p.add_argument(
        "--lease-namespace",
        default=None,
        help="its namespace (default: POD_NAMESPACE, else the service "
        "account's namespace, else 'default')",
    )
    p.add_argument(
        "--identity",
        default=None,
        help="this candidate's unique name (default: POD_NAME, else the host "
        "name with a random suffix)",
    )
    p.add_argument(
        "--lease-duration",
        type=_whole_seconds,
        default=defaults.DEFAULT_LEASE_DURATION,
        help="whole seconds before an unrenewed Lease may be taken over (default: %(default)s)",
    )
    p.add_argument(
        "--renew-deadline",
        type=_seconds,
        default=defaults.DEFAULT_RENEW_DEADLINE,
        help="seconds without a renewal after which the leader stops its hub "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--retry-period",
        type=_seconds,
        default=defaults.DEFAULT_RETRY_PERIOD,
        help="seconds between attempts (default: %(default)s)",
    )
    p.add_argument(
        "--stop-timeout",
        type=_seconds,
        default=defaults.DEFAULT_STOP_TIMEOUT,
        help="seconds a hub asked to stop may take before SIGKILL (default: %(default)s)",
    )
    p.add_argument(
        "--warm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="as a standby, import JupyterHub ahead in a parked process that starts the "
        "hub when the Lease is won, for a command running JupyterHub in this Python "
        "(default: on)",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the hub's command line")
    return p


def parse_args(argv: list[str]) -> tuple[HASettings, list[str]]:
    """The settings and the command, or SystemExit(2) with a message."""
    parser = _parser()
    args = parser.parse_args(argv)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        parser.error("no command: give the hub's command line after --")
    try:
        settings = HASettings(
            lease_name=args.lease_name,
            lease_namespace=args.lease_namespace or default_namespace(),
            identity=args.identity or default_identity(),
            lease_duration=args.lease_duration,
            renew_deadline=args.renew_deadline,
            retry_period=args.retry_period,
            stop_timeout=args.stop_timeout,
            warm=args.warm,
        )
    except SettingsError as e:
        parser.error(str(e))
    return settings, command


def main(argv: list[str] | None = None) -> int:
    """The console script."""
    settings, command = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s lsst-hub-ha[%(process)d] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    # The library logs a traceback for every lost race on the Lease; our log says
    # what each attempt came to.
    logging.getLogger("kubernetes_asyncio.leaderelection").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(run(settings, command))
    except ConfigException as e:
        logging.getLogger("lsst_hub.ha").error("no cluster configuration: %s", e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
