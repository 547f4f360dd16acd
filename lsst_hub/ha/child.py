"""The hub as the wrapper's child: started, signalled, waited for, and cleaned up after.

Signals go through a pidfd, so a signal can never reach another process that
reused the hub's pid. The wrapper is a child subreaper: processes the hub leaves
behind (its services run in sessions of their own) become the wrapper's children
when the hub exits, and :func:`stop_leftovers` ends them before the Lease is
given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .exec_child import launch_command

__all__ = ["Child", "become_subreaper", "exit_code", "jupyterhub_args", "stop_leftovers"]

log = logging.getLogger("lsst_hub.ha")

_PR_SET_CHILD_SUBREAPER = 36
_WARM = Path(__file__).with_name("warm.py")


def exit_code(returncode: int) -> int:
    """A shell's exit code for a process's return code (128 + N for signal N)."""
    return 128 - returncode if returncode < 0 else returncode


def become_subreaper() -> bool:
    """Make orphaned descendants this process's children (Linux); whether it worked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class Child:
    """One run of COMMAND, which dies with the wrapper (see :mod:`.exec_child`).

    Parameters
    ----------
    command
        The program and its arguments.
    env
        Its environment.
    """

    def __init__(
        self, command: Sequence[str], env: Mapping[str, str], warm: Sequence[str] | None = None
    ) -> None:
        if warm is None:
            argv = launch_command(os.getpid(), list(command))
            self.process = subprocess.Popen(argv, env=dict(env))
        else:
            # Parked (lsst_hub.ha.warm): imports JupyterHub now, says so on a pipe
            # of its own, runs the hub on go().
            ready_r, ready_w = os.pipe()
            argv = [sys.executable, str(_WARM), str(os.getpid()), str(ready_w), "--", *warm]
            self.process = subprocess.Popen(
                argv, env=dict(env), stdin=subprocess.PIPE, pass_fds=(ready_w,)
            )
            os.close(ready_w)
            self._ready_fd: int | None = ready_r
            asyncio.get_running_loop().add_reader(ready_r, self._on_ready)
        self.warm = warm is not None
        #: Whether a parked hub has finished its imports.
        self.ready = asyncio.get_running_loop().create_future()
        self.pid = self.process.pid
        self.started = time.time()
        self._pidfd = os.pidfd_open(self.pid)
        self._exited = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_reader(self._pidfd, self._on_exit)

    def _on_exit(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._pidfd)
        self.process.wait()  # it has exited: returns at once
        if not self._exited.done():
            self._exited.set_result(self.process.returncode)

    def _on_ready(self) -> None:
        assert self._ready_fd is not None
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._ready_fd)
        ok = False
        with contextlib.suppress(OSError):
            ok = os.read(self._ready_fd, 1) == b"r"
        os.close(self._ready_fd)
        self._ready_fd = None
        if not self.ready.done():
            self.ready.set_result(ok)

    def go(self) -> None:
        """Let a parked hub start (see :mod:`.warm`)."""
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.write(b"g")
            self.process.stdin.close()

    @property
    def returncode(self) -> int | None:
        """The return code once the child has exited and been reaped."""
        return self.process.returncode

    def send(self, signum: int) -> None:
        """Signal the child, unless it has exited; safe from any thread."""
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(self._pidfd, signum)

    async def wait(self) -> int:
        """The return code, once the child has exited."""
        return int(await asyncio.shield(self._exited))

    async def stop(self, kill_after: float) -> int:
        """SIGTERM, then SIGKILL after ``kill_after`` seconds; the return code."""
        if not self._exited.done():
            self.send(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.wait(), kill_after)
            except TimeoutError:
                log.warning(
                    "hub pid %d still running %.1f s after SIGTERM: SIGKILL", self.pid, kill_after
                )
                self.send(signal.SIGKILL)
        return await self.wait()

    def close(self) -> None:
        """Release the pidfd and pipes (after the child was waited for)."""
        if self.warm and self._ready_fd is not None:
            with contextlib.suppress(OSError):
                asyncio.get_running_loop().remove_reader(self._ready_fd)
            with contextlib.suppress(OSError):
                os.close(self._ready_fd)
            self._ready_fd = None
        with contextlib.suppress(OSError):
            asyncio.get_running_loop().remove_reader(self._pidfd)
        with contextlib.suppress(OSError):
            os.close(self._pidfd)


def jupyterhub_args(command: Sequence[str]) -> list[str] | None:
    """JupyterHub's arguments, if ``command`` runs JupyterHub in this Python environment.

    ``jupyterhub ARGS`` (the console script of an interpreter in the same ``bin``
    directory as this one) or ``python -m jupyterhub ARGS`` (such an interpreter).
    Those can be imported ahead by a parked process (:mod:`.warm`); None for any
    other command, which is started as it is when the Lease is won.
    """
    found = shutil.which(command[0]) if command else None
    if found is None:
        return None
    path, here = Path(found).absolute(), Path(sys.executable).absolute().parent
    if path.name == "jupyterhub":
        try:
            with path.open("rb") as f:
                first = f.readline(512)
        except OSError:
            return None
        parts = first[2:].decode(errors="replace").split() if first.startswith(b"#!") else []
        if parts and Path(parts[0]).parent == here:
            return list(command[1:])
        return None
    if (
        path.parent == here
        and path.name.startswith("python")
        and list(command[1:3])
        == [
            "-m",
            "jupyterhub",
        ]
    ):
        return list(command[3:])
    return None


def _children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            out.append(int(entry.name))
    return out


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


async def stop_leftovers(kill_after: float) -> list[int]:
    """End the processes left behind by the hub (now the wrapper's children).

    Call only after the hub itself was waited for: this reaps any child.

    Returns
    -------
    list of int
        The pids that were signalled.
    """
    _reap()
    pids = _children_of(os.getpid())
    if not pids:
        return []
    log.info("stopping processes the hub left behind: %s", pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + kill_after
    while time.monotonic() < deadline:
        _reap()
        if not _children_of(os.getpid()):
            return pids
        await asyncio.sleep(0.05)
    for pid in _children_of(os.getpid()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.05)
    _reap()
    return pids
