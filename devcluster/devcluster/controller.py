"""The loop every controller of the cluster shares: wake on store events, run one pass.

Store listeners run inside a store write, so they only note what changed and
set the wake flag; the pass runs later in the controller's own task. Events
that arrive while a pass runs coalesce into one more pass, as a workqueue does.
"""

from __future__ import annotations

import asyncio
import contextlib

from .registry import Registry
from .store import WatchEvent

__all__ = ["Controller"]


class Controller:
    """Base of the scheduler and the PV binder: a task running :meth:`run_pass` when woken.

    Parameters
    ----------
    registry
        The cluster's objects; :meth:`on_event` hears every change to them.
    """

    task_name = "controller"

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        registry.store.listeners.append(self.on_event)

    def on_event(self, event: WatchEvent) -> None:
        """Note a store change (called inside the write: never write from here)."""

    async def run_pass(self) -> None:
        """Do the work the events since the last pass asked for."""

    def start(self) -> None:
        """Start the controller task in the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        """Stop the controller task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.run_pass()
