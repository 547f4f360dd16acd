"""The real Zero to JupyterHub chart, rendered with the overlay and a site file.

The chart (``helm-values/z2jh/chart-4.4.0``, provenance in ``helm-values/z2jh/SOURCE.md``)
is rendered by the real ``helm`` (``.tools/bin/helm``, put there by ``scripts/setup.sh``)
with ``helm-values/values.yaml`` and a site file: ``helm-values/site-example.yaml``, or
the file named by ``LSST_HUB_SITE_VALUES`` to check another site's values.

Helpers: :func:`helm` (run helm, fail with its output), :func:`render` (the rendered
objects), :func:`find` (one object by kind and name), :func:`egress_allows` (does a
NetworkPolicy let a pod reach an address and port).
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HELM_VALUES = ROOT / "helm-values"
CHART = HELM_VALUES / "z2jh" / "chart-4.4.0"
HUB_IMAGE_PINS = HELM_VALUES / "z2jh" / "hub-image-4.4.0" / "requirements.txt"
OVERLAY = HELM_VALUES / "values.yaml"
TOOLS_BIN = ROOT / ".tools" / "bin"
NODE_BIN = ROOT / ".tools" / "node" / "node_modules" / ".bin"
HELM_BIN = TOOLS_BIN / "helm"
RELEASE = "jhub"
NAMESPACE = "jupyterhub"
KUBERNETES_VERSION = "1.32.0"

Obj = dict[str, Any]


def site_values() -> Path:
    """The site file rendered with the overlay (``LSST_HUB_SITE_VALUES`` or the example)."""
    return Path(os.environ.get("LSST_HUB_SITE_VALUES") or HELM_VALUES / "site-example.yaml")


def helm(*args: str | Path) -> str:
    """Run the real helm; its stdout, or a test failure showing what it printed."""
    if not HELM_BIN.exists():
        pytest.fail(f"{HELM_BIN} is missing: run scripts/setup.sh")
    result = subprocess.run(
        [str(HELM_BIN), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HELM_CACHE_HOME": "/nonexistent", "HELM_CONFIG_HOME": "/nonexistent"},
    )
    if result.returncode != 0:
        pytest.fail(f"helm {' '.join(map(str, args))} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def values_args(*extra: Path) -> list[str]:
    """``-f`` arguments: the overlay, the site file, then ``extra`` files."""
    args: list[str] = []
    for path in (OVERLAY, site_values(), *extra):
        args += ["-f", str(path)]
    return args


@functools.cache
def _render(extra: tuple[Path, ...]) -> tuple[Obj, ...]:
    out = helm("template", RELEASE, CHART, "--namespace", NAMESPACE, *values_args(*extra))
    return tuple(o for o in yaml.safe_load_all(out) if o)


def render(*extra: Path) -> list[Obj]:
    """Every object ``helm template`` renders (overlay, site file, ``extra`` files)."""
    return list(_render(tuple(extra)))


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    """The one rendered object of ``kind`` named ``name``."""
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name} rendered"
    return found[0]


def chart_values(objects: list[Obj]) -> Obj:
    """The merged values as the hub reads them: key ``values.yaml`` of the Secret ``hub``."""
    values = yaml.safe_load(secret_data(find(objects, "Secret", "hub"))["values.yaml"])
    assert isinstance(values, dict)
    return values


def secret_data(secret: Obj) -> dict[str, str]:
    """A rendered Secret's keys and decoded values (``data`` is base64)."""
    decoded = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return {**decoded, **(secret.get("stringData") or {})}


def container(pod_spec: Obj, name: str) -> Obj:
    """The container ``name`` of a pod spec."""
    (found,) = [c for c in pod_spec["containers"] if c["name"] == name]
    return found


# -- NetworkPolicy egress --------------------------------------------------------------


def _peer_allows(peer: Obj, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    block = peer.get("ipBlock")
    if block is None:
        # podSelector / namespaceSelector peers select pods, never an outside address.
        return False
    if address not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))


def _port_allows(entry: Obj, port: int, protocol: str) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    if "port" not in entry:
        return True  # every port of the protocol
    if not isinstance(entry["port"], int):
        return False  # a named port names a pod's port, never an outside one
    return bool(entry["port"] <= port <= entry.get("endPort", entry["port"]))


def egress_allows(policy: Obj, address: str, port: int, protocol: str = "TCP") -> bool:
    """Whether one NetworkPolicy allows its pods to open ``address:port``.

    Follows the NetworkPolicy rules: a policy without ``Egress`` in ``policyTypes``
    does not restrict egress; otherwise a connection is allowed when one rule's ``to``
    (absent: anywhere) and ``ports`` (absent: every port) both match.
    """
    spec = policy["spec"]
    # Without policyTypes, a policy with egress rules restricts egress.
    types = spec.get("policyTypes", ["Ingress", *(["Egress"] if spec.get("egress") else [])])
    if "Egress" not in types:
        return True
    ip = ipaddress.ip_address(address)
    for rule in spec.get("egress") or []:
        to_ok = "to" not in rule or any(_peer_allows(p, ip) for p in rule["to"])
        ports_ok = "ports" not in rule or any(
            _port_allows(e, port, protocol) for e in rule["ports"]
        )
        if to_ok and ports_ok:
            return True
    return False


# -- the hub pod's files and environment, laid out locally -------------------------

CHART_CONFIG_DIR = "/usr/local/etc/jupyterhub"


def lay_out_hub_config(objects: list[Obj], directory: Path, secrets: dict[str, str]) -> Obj:
    """Write the hub's mounted files into ``directory``; return the container's environment.

    The hub Deployment mounts its ConfigMap's ``jupyterhub_config.py`` and ``z2jh.py`` and
    the whole ConfigMap and Secret ``hub`` under ``/usr/local/etc/jupyterhub/``; the files
    go to the same relative places in ``directory``, and the one change from the pod is
    that path, rewritten in the two Python files. The environment is the hub container's
    ``env`` (``secretKeyRef`` values from the chart's Secret, or from ``secrets`` for the
    site's own Secrets, keyed ``"name/key"``; ``fieldRef`` the namespace) plus what
    Kubernetes adds for each Service (``<NAME>_SERVICE_HOST``/``_PORT``: the chart's
    config reads them), with every host 127.0.0.1.
    """
    configmap = find(objects, "ConfigMap", "hub")["data"]
    chart_secret = secret_data(find(objects, "Secret", "hub"))
    for sub, files in (("config", configmap), ("secret", chart_secret)):
        (directory / sub).mkdir(parents=True, exist_ok=True)
        for key, text in files.items():
            (directory / sub / key).write_text(text)
    for name in ("jupyterhub_config.py", "z2jh.py"):
        text = configmap[name].replace(CHART_CONFIG_DIR, str(directory))
        (directory / name).write_text(text)

    pod = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]
    env: dict[str, str] = {}
    for item in container(pod, "hub")["env"]:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.namespace"
            env[item["name"]] = NAMESPACE
        else:
            ref = source["secretKeyRef"]
            if ref["name"] == "hub":
                env[item["name"]] = chart_secret[ref["key"]]
            else:
                env[item["name"]] = secrets[f"{ref['name']}/{ref['key']}"]
    for service in (o for o in objects if o["kind"] == "Service"):
        prefix = service["metadata"]["name"].upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = "127.0.0.1"
        env[f"{prefix}_SERVICE_PORT"] = str(service["spec"]["ports"][0]["port"])
    return env


# -- the chart's proxy, run locally ---------------------------------------------------


def kubectl_tls_secret(cert: Path, key: Path) -> dict[str, str]:
    """The Secret the deployment guide's command makes (client-side, no cluster)."""
    out = subprocess.run(
        [str(TOOLS_BIN / "kubectl"), "create", "secret", "tls", "lsst-hub-tls",
         f"--cert={cert}", f"--key={key}", "--dry-run=client", "-o", "yaml"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    secret = yaml.safe_load(out)
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def local_chp_command(chart_command: list[str], mount: str, tls_dir: Path, ports: dict[str, int],
                      hub_url: str) -> list[str]:  # fmt: skip
    """The chart's CHP command line with local addresses, ports and paths."""
    flags = {
        "--ip": "127.0.0.1",
        "--api-ip": "127.0.0.1",
        "--api-port": str(ports["api"]),
        "--port": str(ports["https"]),
        "--redirect-port": str(ports["http"]),
        "--redirect-to": str(ports["https"]),
        "--default-target": hub_url,
        "--error-target": f"{hub_url}/hub/error",
    }
    command = [str(NODE_BIN / "configurable-http-proxy")]
    for arg in chart_command[1:]:
        name, _, value = arg.partition("=")
        if name in flags:
            value = flags.pop(name)
        elif name in ("--ssl-key", "--ssl-cert"):
            value = str(tls_dir / Path(value).relative_to(mount))
        command.append(f"{name}={value}")
    assert not flags, f"the chart's command no longer has {sorted(flags)}"
    return command


def site_tls(directory: Path) -> tuple[Path, Path]:
    """A CA and, signed by it, the site's TLS Secret as the chart mounts it.

    Returns the CA certificate and the directory holding the Secret's keys (``tls.crt``,
    ``tls.key``), one file each, for a certificate valid for 127.0.0.1 and localhost.
    """
    from tests.support.slapd import make_ca, make_server_cert

    ca_crt, ca_key = make_ca(directory, "site-ca")
    cert, key = make_server_cert(directory, ca_crt, ca_key)
    tls_dir = directory / "etc-chp-tls"
    tls_dir.mkdir()
    for name, text in kubectl_tls_secret(cert, key).items():
        (tls_dir / name).write_text(text)
    return ca_crt, tls_dir


def chart_proxy_command(
    objects: list[Obj], tls_dir: Path, ports: dict[str, int], hub_url: str
) -> list[str]:
    """The rendered proxy Deployment's CHP command, for 127.0.0.1 (:func:`local_chp_command`)."""
    proxy = find(objects, "Deployment", "proxy")["spec"]["template"]["spec"]
    chp = container(proxy, "chp")
    (mount,) = [m["mountPath"] for m in chp["volumeMounts"]]
    return local_chp_command(chp["command"], mount, tls_dir, ports, hub_url)
