"""A standby's hub, imported ahead and parked until the Lease is won.

Run by the wrapper as ``python .../lsst_hub/ha/warm.py PARENT_PID READY_FD -- ARGS...`` in
the hub's environment. Like :mod:`.exec_child` it dies with the wrapper and starts
with the signals at their defaults; then it imports JupyterHub and the lsst-hub
plugins (seconds of a cold start, more on a busy node) and waits, binding nothing
and touching no database, for one byte on its standard input (having written ``r``
to READY_FD once the imports are done). ``g`` runs
``jupyterhub ARGS...`` in this process; anything else, or end of input, exits 0.
When the hub has stopped, the process leaves without the interpreter's teardown
(seconds with JupyterHub loaded), which would only delay the standby's takeover.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

# Run by path: this directory is sys.path[0]; its module names (config, ...) must
# not shadow anything the hub imports.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

#: Imported while parked: what a hub with the lsst-hub plugins imports at start.
PRELOAD = (
    "jupyterhub.app",
    "lsst_hub.auth",
    "lsst_hub.spawner",
    "kubespawner",
    "kubernetes_asyncio.client",
    "ldap3",
)


def main() -> int:
    """Park, then run the hub (see the module docstring)."""
    from lsst_hub.ha.exec_child import reset_signals, set_parent_death_signal

    args = sys.argv[1:]
    if len(args) < 3 or args[2] != "--":
        print("usage: warm.py PARENT_PID READY_FD -- JUPYTERHUB_ARGS...", file=sys.stderr)
        return 2
    if not set_parent_death_signal() or os.getppid() != int(args[0]):
        return 70
    reset_signals()
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    ready = int(args[1])
    with contextlib.suppress(OSError):
        os.write(ready, b"r")
    os.close(ready)
    if sys.stdin.buffer.read(1) != b"g":
        return 0
    sys.stdin.close()
    from jupyterhub.app import main as jupyterhub_main

    sys.argv = ["jupyterhub", *args[3:]]
    code: object = 0
    try:
        jupyterhub_main()
    except SystemExit as e:
        code = e.code
    logging.shutdown()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":
    sys.exit(main())
