"""A TCP forwarder that a test can cut like a network partition.

:class:`TcpProxy` listens on ``127.0.0.1`` (a free port) and forwards every
connection, byte for byte, to a target ``host:port``: TLS passes through
untouched, so a client that trusts the target's certificate for ``127.0.0.1``
trusts it through the proxy too. Its asyncio loop runs in a thread of its own,
so sync pytest code, async tests and subprocesses can all use it::

    with TcpProxy("127.0.0.1", cluster_port) as proxy:
        client_url = proxy.url_for(cluster.url)   # same scheme, the proxy's port
        ...
        proxy.cut()       # a partition: nothing passes, nothing is closed
        ...
        proxy.restore()   # new connections pass again

:meth:`TcpProxy.cut` black-holes the proxy as a partition would: open
connections stop forwarding in both directions but stay open (a request in
flight hangs until the client's own timeout, it is neither refused nor reset),
and new connections are accepted (the kernel completes the handshake) but
nothing is forwarded. Bytes already handed to a socket before the cut may still
drain, as packets already on the wire would. :meth:`TcpProxy.restore` forwards
new connections again and closes the connections held during the cut (their
clients see them end, as long-partitioned TCP connections do).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

__all__ = ["TcpProxy"]

_CHUNK = 64 * 1024


@dataclass(eq=False)
class _Connection:
    """One client connection and, once connected, its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    held: bool = False
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        """Stop forwarding and close both sides at once."""
        for pump in self.pumps:
            pump.cancel()
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.transport.abort()


class TcpProxy:
    """A cuttable TCP forwarder from ``127.0.0.1:<free port>`` to ``target_host:target_port``.

    Parameters
    ----------
    target_host, target_port
        Where connections are forwarded (the devcluster's HTTP(S) port).
    host, port
        Where the proxy listens; port 0 (the default) takes a free one.

    Notes
    -----
    Start it with :meth:`start` or a ``with`` block; :meth:`cut`, :meth:`restore`
    and :meth:`close` may be called from any thread and take effect before they
    return.
    """

    def __init__(
        self, target_host: str, target_port: int, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._cut = False

    @classmethod
    def for_url(cls, url: str) -> TcpProxy:
        """A proxy (not started) to the host and port of ``url`` (``https://127.0.0.1:N``)."""
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"{url!r} names no host and port")
        return cls(parts.hostname, parts.port)

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> Self:
        """Listen and forward (returns once the port is bound)."""
        if self._thread is not None:
            raise RuntimeError("the proxy is already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"tcpproxy->{self.target_port}", daemon=True
        )
        self._thread.start()
        self._server = self._call(
            asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        """Stop listening, close every connection and stop the thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._server is not None:
            self._call(self._shutdown())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the partition ---------------------------------------------------------------------
    @property
    def is_cut(self) -> bool:
        """Whether the proxy is cut."""
        return self._cut

    def cut(self) -> None:
        """Black-hole every connection, open and new, until :meth:`restore`."""
        self._call(self._set_cut())

    def restore(self) -> None:
        """Forward new connections again; close the ones held during the cut."""
        self._call(self._set_restored())

    # -- addresses -------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, where clients connect."""
        return f"{self.host}:{self.port}"

    def url_for(self, url: str) -> str:
        """``url`` (the target's) with the proxy's host and port: ``https://127.0.0.1:PORT``."""
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=self.address))

    # -- the loop's side ---------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the proxy is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    async def _set_cut(self) -> None:
        self._cut = True
        for conn in self._connections:
            conn.held = True  # the pumps see it before their next write

    async def _set_restored(self) -> None:
        self._cut = False
        for conn in [c for c in self._connections if c.held]:
            conn.abort()
            self._connections.discard(conn)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self._connections:
            conn.abort()
        self._connections.clear()
        # let the connections' own tasks end before the loop stops
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer, held=self._cut)
        self._connections.add(conn)
        if conn.held:
            return  # accepted, never read from: kept open until restore() or close()
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            conn.abort()  # the target refuses: so does the proxy
            self._connections.discard(conn)
            return
        conn.upstream = up_writer
        if conn.held:
            return  # cut while connecting: both sides held
        conn.pumps = [
            asyncio.create_task(self._pump(conn, reader, up_writer)),
            asyncio.create_task(self._pump(conn, up_reader, writer)),
        ]
        try:
            await asyncio.gather(*conn.pumps)
        except (asyncio.CancelledError, ConnectionError, OSError):
            pass
        finally:
            if not conn.held:
                conn.abort()
                self._connections.discard(conn)

    @staticmethod
    async def _pump(
        conn: _Connection, src: asyncio.StreamReader, dst: asyncio.StreamWriter
    ) -> None:
        """Copy ``src`` to ``dst`` until EOF; once the connection is held, copy nothing more."""
        while True:
            data = await src.read(_CHUNK)
            if conn.held:
                # a partition: what was read is never delivered, and nothing closes
                await asyncio.Event().wait()
            if not data:
                if dst.can_write_eof():
                    dst.write_eof()  # half-close, as the other side did
                return
            dst.write(data)
            await dst.drain()
