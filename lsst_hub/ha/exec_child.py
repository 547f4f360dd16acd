"""Start the hub so that it cannot outlive the wrapper.

Run by the wrapper as ``python -I .../lsst_hub/ha/exec_child.py PARENT_PID -- COMMAND
ARGS...`` (by path, and importing only the standard library, so that it starts fast).
It asks the kernel for SIGKILL when its parent (the wrapper) dies (Linux's
parent-death signal, kept across ``exec``), checks that the parent has not died
already, puts the signals a shell may have left ignored or blocked back to their
defaults, then replaces itself with COMMAND. A separate program rather than a
``preexec_fn``: code run between ``fork`` and ``exec`` of a process with threads
can deadlock.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["launch_command", "main", "reset_signals", "set_parent_death_signal"]

_PR_SET_PDEATHSIG = 1

#: Signals reset to their default action before the hub starts (a hub started as a
#: background job inherits SIGINT ignored; its services would then ignore the
#: SIGINT JupyterHub stops them with).
RESET = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE)


def launch_command(parent: int, command: list[str]) -> list[str]:
    """``command`` run through this launcher, so that it dies with process ``parent``.

    Run by path with ``-I``: it imports only the standard library, and importing the
    lsst_hub package would cost seconds. ``-I`` applies to the launcher alone; the
    command it becomes gets the environment unchanged.
    """
    return [sys.executable, "-I", os.path.abspath(__file__), str(parent), "--", *command]


def set_parent_death_signal(signum: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``signum`` to this process when its parent dies (Linux).

    Returns
    -------
    bool
        Whether the kernel accepted it (False elsewhere than Linux).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def reset_signals() -> None:
    """Default action and unblocked for every signal in :data:`RESET`."""
    for signum in RESET:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, RESET)


def main(argv: list[str] | None = None) -> int:
    """Set the parent-death signal and signals, then exec the command."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3 or args[1] != "--":
        print(
            "usage: python -m lsst_hub.ha.exec_child PARENT_PID -- COMMAND ARGS...", file=sys.stderr
        )
        return 2
    parent, command = int(args[0]), args[2:]
    if not set_parent_death_signal():
        print("lsst-hub-ha: no parent-death signal on this system", file=sys.stderr)
        return 70
    if os.getppid() != parent:  # the wrapper died before the line above took effect
        return 70
    reset_signals()
    try:
        os.execvp(command[0], command)  # noqa: S606 - the hub's own command line, no shell
    except OSError as e:
        print(f"lsst-hub-ha: cannot run {command[0]!r}: {e}", file=sys.stderr)
    return 127


if __name__ == "__main__":
    sys.exit(main())
