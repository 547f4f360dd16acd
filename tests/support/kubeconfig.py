"""Plain HTTP requests to a cluster described by a kubeconfig (demo and its tests)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import requests
import yaml

__all__ = ["kube_request"]


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
