"""The cuttable TCP proxy of the partition tests (:mod:`tests.support.tcpproxy`).

A real HTTP server (``http.server`` in a thread) and the devcluster over TLS sit
behind it. A cut must look like a partition to the client: a request hangs
until the client's own timeout (a read timeout, not a refused or reset
connection), and the server never sees it.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from devcluster import DevCluster
from tests.support.kubeconfig import kube_request, kubeconfig_via
from tests.support.tcpproxy import TcpProxy


class _Echo(BaseHTTPRequestHandler):
    """GET answers the path; POST echoes the body. Counts the requests it sees."""

    protocol_version = "HTTP/1.1"  # keep-alive, so a connection can outlive the cut
    seen: list[str]

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self._answer(self.path.encode())

    def do_POST(self) -> None:
        self.seen.append(self.path)
        self._answer(self.rfile.read(int(self.headers["Content-Length"])))

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[tuple[int, list[str]]]:
    """A threaded HTTP/1.1 server on a free loopback port: (port, paths seen)."""
    seen: list[str] = []
    handler = type("Echo", (_Echo,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def proxy(echo_server: tuple[int, list[str]]) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", echo_server[0]) as running:
        yield running


def test_forwards_bytes_unchanged(proxy: TcpProxy, echo_server: tuple[int, list[str]]) -> None:
    port, seen = echo_server
    assert proxy.port != port and proxy.address == f"127.0.0.1:{proxy.port}"
    base = f"http://{proxy.address}"
    assert requests.get(f"{base}/hello", timeout=10).text == "/hello"
    payload = os.urandom(3 * 1024 * 1024)  # several chunks each way
    assert requests.post(f"{base}/echo", data=payload, timeout=30).content == payload
    assert seen == ["/hello", "/echo"]


def test_cut_hangs_new_requests_until_the_client_times_out(
    proxy: TcpProxy, echo_server: tuple[int, list[str]]
) -> None:
    _, seen = echo_server
    base = f"http://{proxy.address}"
    assert requests.get(f"{base}/before", timeout=10).ok
    proxy.cut()
    assert proxy.is_cut
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{base}/during", timeout=1)
    assert seen == ["/before"]  # nothing reached the server
    proxy.restore()
    assert not proxy.is_cut
    assert requests.get(f"{base}/after", timeout=10).text == "/after"
    assert seen == ["/before", "/after"]


def test_cut_holds_open_connections_open_and_silent(
    proxy: TcpProxy, echo_server: tuple[int, list[str]]
) -> None:
    _, seen = echo_server
    with requests.Session() as session:
        assert session.get(f"http://{proxy.address}/first", timeout=10).ok
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
            raw.sendall(b"GET /raw HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b"\r\n\r\n/raw"):  # all of it, headers and body
                chunk = raw.recv(65536)
                assert chunk, answer
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200")
            proxy.cut()
            # the kept-alive connection of the session: the request goes out, nothing returns
            with pytest.raises(requests.exceptions.ReadTimeout):
                session.get(f"http://{proxy.address}/second", timeout=1)
            # an open connection is neither answered nor closed nor reset during the cut
            raw.sendall(b"GET /raw-during HTTP/1.1\r\nHost: x\r\n\r\n")
            raw.settimeout(1)
            with pytest.raises(TimeoutError):
                raw.recv(65536)
            assert seen == ["/first", "/raw"]
            proxy.restore()
            # held connections end at the restore; what they carried never arrives
            raw.settimeout(10)
            try:
                ended = raw.recv(65536) == b""
            except ConnectionResetError:
                ended = True
            assert ended
    assert requests.get(f"http://{proxy.address}/third", timeout=10).ok
    assert seen == ["/first", "/raw", "/third"]


def test_target_refusing_is_passed_on() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nothing listens once the probe closes
    with (
        TcpProxy("127.0.0.1", closed_port) as proxy,
        pytest.raises(requests.exceptions.ConnectionError),
    ):
        requests.get(f"http://{proxy.address}/", timeout=10)


def test_close_is_idempotent_and_frees_the_port(echo_server: tuple[int, list[str]]) -> None:
    proxy = TcpProxy("127.0.0.1", echo_server[0]).start()
    port = proxy.port
    proxy.cut()
    proxy.close()
    proxy.close()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=10)


def test_tls_passes_through_to_the_devcluster(
    make_threaded_devcluster: Callable[..., DevCluster], tmp_path: Path
) -> None:
    cluster = make_threaded_devcluster(nodes=1, tls=True)
    assert cluster.url.startswith("https://127.0.0.1:")
    with TcpProxy.for_url(cluster.url) as proxy:
        kubeconfig = kubeconfig_via(cluster.kubeconfig, proxy.url_for(cluster.url), tmp_path / "kc")
        assert kubeconfig.stat().st_mode & 0o777 == 0o600
        # the devcluster's CA and token, its certificate for 127.0.0.1, the proxy's port
        response = kube_request(kubeconfig, "GET", "/api/v1/namespaces/default", timeout=10)
        assert response.status_code == 200 and response.json()["metadata"]["name"] == "default"
        proxy.cut()
        with pytest.raises(requests.exceptions.ReadTimeout):
            kube_request(kubeconfig, "GET", "/api/v1/namespaces/default", timeout=1)
        proxy.restore()
        assert kube_request(kubeconfig, "GET", "/version", timeout=10).status_code == 200
