"""The signals the hub's managed services start with.

JupyterHub stops its managed services one after another: SIGINT, up to 30 s (10 s in
5.x) for the service to exit, then SIGTERM, 30 s more, then SIGKILL (its service
spawner's ``interrupt_timeout`` and ``term_timeout``, which configuration does not
reach). A signal a process ignores stays ignored in the programs it starts, and the
hub replaces its own dispositions with handlers only after it has started its
services. A hub started with SIGINT ignored (a background job of a non-interactive
shell, some wrappers and init systems) therefore starts services that ignore SIGINT;
each then takes the full wait to stop, and the hub as a whole outlasts Kubernetes'
default grace period.

:func:`reset_ignored_signals`, called from the hub's configuration (which the hub
loads before it starts anything), puts SIGINT and SIGTERM back to their defaults in
the hub, so that every service starts with them. The hub's own handling is unchanged:
JupyterHub installs its handlers for both once it has started.
"""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["SIGNALS", "die_with_hub", "reset_ignored_signals"]

#: The signals JupyterHub stops its services with.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def reset_ignored_signals() -> list[signal.Signals]:
    """Stop ignoring and blocking SIGINT and SIGTERM in this process.

    An ignored SIGINT gets Python's default handler (KeyboardInterrupt), an ignored
    SIGTERM the default action; a handler set by the program is left alone. Call it
    from ``jupyterhub_config.py`` (the Helm overlay does, in ``hub.extraConfig``).

    Returns
    -------
    list of signal.Signals
        The signals that were ignored or blocked (empty: nothing changed, or not
        called from the main thread, the only one that may set handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        return []
    changed = []
    for signum in SIGNALS:
        if signal.getsignal(signum) is signal.SIG_IGN:
            default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
            signal.signal(signum, default)
            changed.append(signum)
    # A blocked signal stays blocked in the programs started, too.
    blocked = [s for s in SIGNALS if s in signal.pthread_sigmask(signal.SIG_BLOCK, [])]
    if blocked:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
        changed += [s for s in blocked if s not in changed]
    return changed


def die_with_hub(command: list[str]) -> list[str]:
    """``command`` started so that it is killed when the hub (this process) dies.

    JupyterHub starts each managed service in a session of its own, so a hub killed
    with SIGKILL (by ``lsst-hub-ha``'s parent-death signal, or ``kill -9``) would
    leave its services running, still calling the hub's address, where the next
    hub then starts its own. Started through :mod:`lsst_hub.ha.exec_child` (Linux's
    parent-death signal, kept across ``exec``), they die with the hub instead. A
    hub that stops normally still stops them itself, with SIGINT. In a pod this
    changes nothing: the container's processes end together.

    Call it from the hub's configuration: the parent is this process.

    Parameters
    ----------
    command : list of str
        The service's command line.

    Returns
    -------
    list of str
        The command line to give JupyterHub.
    """
    from .ha.exec_child import launch_command

    return launch_command(os.getpid(), command)
