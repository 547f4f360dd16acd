"""Plain HTTP requests to a cluster described by a kubeconfig (demo and its tests), and
copies of a kubeconfig that reach the cluster another way (through a :class:`TcpProxy`)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import requests
import yaml

__all__ = ["kube_request", "kubeconfig_via"]


def kube_request(
    kubeconfig: Path, method: str, path: str, timeout: float = 10, **kwargs: Any
) -> requests.Response:
    """One request to the cluster of ``kubeconfig``, with its token and its CA."""
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
    verify: bool | str = True
    if cluster.get("certificate-authority-data"):
        ca_file = kubeconfig.with_name(kubeconfig.name + ".ca.crt")
        ca_file.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        verify = str(ca_file)
    return requests.request(
        method, cluster["server"] + path, headers=headers, timeout=timeout, verify=verify, **kwargs
    )


def kubeconfig_via(kubeconfig: Path, server: str, path: Path) -> Path:
    """A copy of ``kubeconfig`` at ``path`` whose clusters are reached at ``server``.

    Token and CA are kept: with ``server = proxy.url_for(cluster.url)`` clients go
    through a :class:`tests.support.tcpproxy.TcpProxy` (TLS passes through it, and
    the devcluster's certificate names 127.0.0.1, where the proxy listens).
    """
    config = yaml.safe_load(kubeconfig.read_text())
    for entry in config["clusters"]:
        entry["cluster"]["server"] = server
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
