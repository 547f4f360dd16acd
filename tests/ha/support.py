"""Wrapped processes for the standby-hub tests: start ``lsst-hub-ha``, read its events.

The wrapper logs each step as ``event=NAME t=UNIX_TIME key=value ...``;
:class:`Wrapper` reads them back so that tests can order two wrappers' steps.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Event",
    "HubRecord",
    "Wrapper",
    "fakehub_command",
    "poll_until",
    "read_events",
    "short_lease",
]

#: A lease short enough for tests and still a valid election (1.2 x retry < renew <
#: lease - 1); the fence kills 0.5 s after SIGTERM.
short_lease = ["--lease-duration", "3", "--renew-deadline", "2", "--retry-period", "1"]

_EVENT = re.compile(r"event=(\S+) t=([0-9.]+)(.*)$")


def poll_until(predicate: Callable[[], object], timeout: float, what: str) -> object:
    """``predicate()``'s first true value, polled every 0.05 s; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class Event:
    """One ``event=`` line of a wrapper's log."""

    name: str
    t: float
    fields: dict[str, str]


def read_events(log: Path, name: str | None = None) -> list[Event]:
    """The ``event=`` lines of a wrapper's log (all, or those named ``name``)."""
    out = []
    text = log.read_text(errors="replace") if log.exists() else ""
    for line in text.splitlines():
        m = _EVENT.search(line)
        if m and (name is None or m.group(1) == name):
            fields = dict(kv.split("=", 1) for kv in m.group(3).split() if "=" in kv)
            out.append(Event(m.group(1), float(m.group(2)), fields))
    return out


def fakehub_command(port: int, record: Path, *extra: str) -> list[str]:
    """The command line of :mod:`tests.ha.fakehub`."""
    return [
        sys.executable,
        "-m",
        "tests.ha.fakehub",
        "--port",
        str(port),
        "--record",
        str(record),
        *extra,
    ]


@dataclass
class HubRecord:
    """What a fake hub wrote about itself."""

    path: Path

    def lines(self) -> list[list[str]]:
        if not self.path.exists():
            return []
        return [line.split() for line in self.path.read_text().splitlines() if line]

    def first(self, kind: str) -> list[str] | None:
        return next((line for line in self.lines() if line[0] == kind), None)

    def time_of(self, kind: str) -> float | None:
        line = self.first(kind)
        return float(line[1]) if line else None

    @property
    def pid(self) -> int | None:
        line = self.first("start")
        return int(line[2]) if line else None


@dataclass
class Wrapper:
    """One ``lsst-hub-ha`` process with its log file.

    Started in a session of its own, so that ``kill_group`` reaches the wrapper
    and the hub it started (as ``kill -9`` of a pod's processes would).
    """

    identity: str
    command: Sequence[str]
    kubeconfig: Path
    log: Path
    options: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    ignore_sigint: bool = False
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Wrapper:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.env}
        env.pop("POD_NAME", None)
        argv = [
            sys.executable,
            "-m",
            "lsst_hub.ha.cli",
            "--identity",
            self.identity,
            "--lease-namespace",
            "default",
            *self.options,
            "--",
            *self.command,
        ]
        if self.ignore_sigint:  # as a background job of a non-interactive shell
            argv = ["sh", "-c", 'trap "" INT; exec "$@"', "sh", *argv]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                cwd=Path(__file__).resolve().parents[2],
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def events(self, name: str | None = None) -> list[Event]:
        return read_events(self.log, name)

    def wait_event(self, name: str, timeout: float) -> Event:
        def found() -> Event | None:
            events = self.events(name)
            return events[0] if events else None

        try:
            return poll_until(found, timeout, f"{self.identity}: event={name}")  # type: ignore[return-value]
        except AssertionError:
            raise AssertionError(
                f"no event={name} in {timeout} s; log:\n{self.log.read_text()}"
            ) from None

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill_group(self) -> None:
        os.killpg(self.pid, signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL of the whole session."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
