"""Start hub-managed services with SIGINT and SIGTERM at their defaults.

JupyterHub (5.x and 6.x) stops its managed services one after another: SIGINT, up
to 30 s for the service to exit, then SIGTERM, 30 s more, then SIGKILL (its service
spawner's ``interrupt_timeout`` and ``term_timeout``, which configuration does not
reach). A signal ignored by a process stays ignored in the programs it executes, and
the hub installs its own SIGINT handler only after it has started its services: a hub
started with SIGINT ignored (a background job of a non-interactive shell, some
wrappers and init systems) starts its services ignoring SIGINT, and each of them then
takes the full 30 s to stop, longer than Kubernetes' default grace period for the
whole pod.

This launcher puts both signals back to their defaults (and unblocks them), then
executes the service's own command::

    python -m lsst_hub.services python3 -m jupyterhub_idle_culler --timeout=3600

:func:`use_default_signals` rewrites the managed services of a JupyterHub
configuration that way (``jupyterhub_config.py`` and the Helm overlay call it after
their services are added).
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any, NoReturn

__all__ = ["MODULE", "main", "use_default_signals", "with_default_signals"]

#: The module run as ``python -m``.
MODULE = "lsst_hub.services"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def with_default_signals(command: Sequence[str], python: str | None = None) -> list[str]:
    """``command`` run through the launcher with ``python`` (default: this interpreter).

    A command that already starts with the launcher is returned unchanged.
    """
    command = list(command)
    if _launched(command):
        return command
    return [python or sys.executable, "-m", MODULE, *command]


def _launched(command: Sequence[str]) -> bool:
    return len(command) >= 3 and command[1:3] == ["-m", MODULE]


def use_default_signals(
    services: Iterable[MutableMapping[str, Any]], python: str | None = None
) -> None:
    """Run every managed service (an entry with a ``command``) through the launcher.

    Parameters
    ----------
    services
        ``c.JupyterHub.services``; changed in place.
    python
        The interpreter that runs the launcher (default: this one, the hub's).
    """
    for service in services:
        if service.get("command"):
            service["command"] = with_default_signals(service["command"], python)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """``python -m lsst_hub.services COMMAND [ARG ...]``: reset the signals, exec COMMAND."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        sys.exit(0 if args else 2)
    for signum in _SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    # A blocked signal stays blocked across exec too.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    try:
        os.execvp(args[0], args)  # noqa: S606 - the service's own command, as given
    except OSError as exc:
        print(f"{MODULE}: cannot run {args[0]}: {exc}", file=sys.stderr)
        sys.exit(127)


if __name__ == "__main__":
    main()
