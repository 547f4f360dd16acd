"""A stand-in for the hub in the wrapper's tests: ``python -m tests.ha.fakehub``.

It binds a TCP port as the hub does (a second copy on the same port fails, as a
second hub would), answers HTTP with its name, and appends what happens to it to
a record file, one line each: ``start T PID``, ``sigign HEX`` (the signals it
started with ignored), ``leftover PID``, ``stop T`` (SIGTERM handled),
``bind-failed T``, ``exit T CODE``. Options: ``--ignore-term`` (SIGTERM ignored:
only SIGKILL ends it), ``--leftover`` (starts a ``sleep`` in a session of its own,
as JupyterHub starts its services), ``--exit-after S --code N`` (exits by itself).
"""

from __future__ import annotations

import argparse
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--record", type=Path, required=True)
    p.add_argument("--name", default="hub")
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("--leftover", action="store_true")
    p.add_argument("--exit-after", type=float, default=0.0)
    p.add_argument("--code", type=int, default=0)
    args = p.parse_args()

    def record(line: str) -> None:
        with args.record.open("a") as f:
            f.write(line + "\n")

    sigign = next(
        line.split()[1]
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("SigIgn:")
    )
    # Before "start" is recorded: a test signals the hub as soon as it has started.
    done = threading.Event()
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: done.set())
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", args.port))
    except OSError:
        record(f"bind-failed {time.time():.6f}")
        return 98
    sock.listen(16)
    record(f"start {time.time():.6f} {os.getpid()}")
    record(f"sigign {sigign}")
    if args.leftover:
        sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
        record(f"leftover {sleeper.pid}")

    name = args.name.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(name)

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", args.port), Handler, bind_and_activate=False)
    server.socket = sock
    threading.Thread(target=server.serve_forever, daemon=True).start()

    if done.wait(args.exit_after or None):
        record(f"stop {time.time():.6f}")
        return 0
    record(f"exit {time.time():.6f} {args.code}")
    return args.code


if __name__ == "__main__":
    sys.exit(main())
