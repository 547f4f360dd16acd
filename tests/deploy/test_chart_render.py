"""The real Zero to JupyterHub 4.4.0 chart, rendered with the overlay and a site file.

``helm lint --strict`` and ``helm template`` (the real helm 3.17) with
``helm-values/values.yaml`` and ``helm-values/site-example.yaml`` (or the file named
by ``LSST_HUB_SITE_VALUES``); every rendered object and both RBAC files are validated
strictly against Kubernetes 1.32; then the tests read what matters out of the objects:
one LoadBalancer IP with TLS on it, the hub's egress to LDAP on private addresses,
the notebook pods' egress, the Secret and ConfigMap wiring, no user scheduler, the
culler.
"""

from __future__ import annotations

import posixpath
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from tests.deploy.chart_support import (
    CHART,
    HELM_BIN,
    HELM_VALUES,
    KUBERNETES_VERSION,
    NAMESPACE,
    OVERLAY,
    Obj,
    chart_values,
    container,
    egress_allows,
    find,
    helm,
    render,
    secret_data,
    site_values,
    values_args,
)

pytestmark = pytest.mark.line_independent

# -- the NetworkPolicy reading the tests rely on -------------------------------------

ONLY_DB = {
    "spec": {
        "policyTypes": ["Egress"],
        "egress": [
            {"to": [{"ipBlock": {"cidr": "10.1.0.0/16", "except": ["10.1.2.0/24"]}}],
             "ports": [{"port": 5432}]},
            {"ports": [{"port": 53, "protocol": "UDP"}]},
            {"to": [{"podSelector": {}}]},
            {"to": [{"ipBlock": {"cidr": "192.168.0.0/16"}}],
             "ports": [{"port": 8000, "endPort": 8099}, {"port": "http"}]},
        ],
    }
}  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "address", "port", "protocol", "allowed"),
    [
        (ONLY_DB, "10.1.0.5", 5432, "TCP", True),
        (ONLY_DB, "10.1.2.5", 5432, "TCP", False),  # in the except block
        (ONLY_DB, "10.1.0.5", 5433, "TCP", False),  # another port
        (ONLY_DB, "10.1.0.5", 5432, "UDP", False),  # another protocol
        (ONLY_DB, "8.8.8.8", 53, "UDP", True),  # no "to": anywhere
        (ONLY_DB, "8.8.8.8", 443, "TCP", False),  # a pod selector is no address
        (ONLY_DB, "192.168.3.3", 8050, "TCP", True),  # in the port range
        (ONLY_DB, "192.168.3.3", 8100, "TCP", False),  # named ports are pods' ports
        ({"spec": {"policyTypes": ["Ingress"]}}, "10.1.0.5", 22, "TCP", True),
        ({"spec": {"egress": []}}, "10.1.0.5", 22, "TCP", True),  # no egress rule: Ingress
        ({"spec": {"egress": [{"ports": [{"port": 1}]}]}}, "10.1.0.5", 22, "TCP", False),
    ],
)
def test_egress_allows_follows_networkpolicy_rules(
    policy: Obj, address: str, port: int, protocol: str, allowed: bool
) -> None:
    assert egress_allows(policy, address, port, protocol) is allowed


# -- the site file -----------------------------------------------------------------


def site_placeholders() -> list[tuple[str, ...]]:
    """Paths of the overlay's keys whose line carries a ``# SITE`` comment."""
    lines = OVERLAY.read_text().splitlines()
    paths: list[tuple[str, ...]] = []

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if "# SITE" in lines[key.start_mark.line]:
                    paths.append((*path, key.value))
                walk(value, (*path, key.value))

    walk(yaml.compose(OVERLAY.read_text()), ())
    return paths


def lookup(values: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(values, dict) or key not in values:
            return KeyError
        values = values[key]
    return values


def test_overlay_marks_the_site_values() -> None:
    # The reading of "# SITE" finds what a site must set (a sample of it).
    placeholders = site_placeholders()
    assert ("hub", "image", "name") in placeholders
    assert ("hub", "config", "LDAPAuthenticator", "server_urls") in placeholders
    assert ("proxy", "service", "loadBalancerIP") in placeholders
    assert ("hub", "config", "LDAPAuthenticator", "tls_ca_file") not in placeholders


def test_site_file_fills_every_placeholder() -> None:
    overlay = yaml.safe_load(OVERLAY.read_text())
    site = yaml.safe_load(site_values().read_text())
    for path in site_placeholders():
        value = lookup(site, path)
        assert value is not KeyError, f"{site_values()} does not set {'.'.join(path)}"
        assert value != lookup(overlay, path), f"{'.'.join(path)} still holds the placeholder"


# -- helm ----------------------------------------------------------------------------


def test_helm_lint_strict() -> None:
    out = helm("lint", "--strict", CHART, "--namespace", NAMESPACE, *values_args())
    assert "1 chart(s) linted, 0 chart(s) failed" in out


def test_helm_enforces_the_chart_schema() -> None:
    # The chart's values.schema.json is there and helm applies it: an unknown key fails.
    result = subprocess.run(
        [str(HELM_BIN), "template", "jhub", str(CHART), *values_args(),
         "--set", "hub.replicas=2"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "replicas" in result.stderr


def test_rendered_objects_are_valid_kubernetes() -> None:
    objects = render()
    assert objects
    for obj in objects:
        where = f"{obj['kind']} {obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {exc.message}")


@pytest.mark.parametrize("name", ["cluster-rbac.yaml", "chart-hub-rbac.yaml"])
def test_rbac_files_are_valid_kubernetes(name: str) -> None:
    objects = [o for o in yaml.safe_load_all((HELM_VALUES / name).read_text()) if o]
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_chart_hub_rbac_file_is_what_the_chart_renders() -> None:
    # helm-values/chart-hub-rbac.yaml stands in for the chart in the RBAC tests and
    # the demo: it must say what the chart really grants the hub.
    rendered = render()
    written = [o for o in yaml.safe_load_all((HELM_VALUES / "chart-hub-rbac.yaml").read_text())]
    for obj in written:
        if obj is None:
            continue
        real = find(rendered, obj["kind"], obj["metadata"]["name"])
        assert real["metadata"].get("namespace", NAMESPACE) == obj["metadata"]["namespace"]
        for key in ("rules", "subjects", "roleRef"):
            assert real.get(key) == obj.get(key), f"{obj['kind']} {key}"


# -- what matters in the objects ----------------------------------------------------


def test_one_load_balancer_ip() -> None:
    objects = render()
    site_ip = yaml.safe_load(site_values().read_text())["proxy"]["service"]["loadBalancerIP"]
    services = [o for o in objects if o["kind"] == "Service"]
    exposed = [s for s in services if s["spec"].get("type", "ClusterIP") != "ClusterIP"]
    assert [s["metadata"]["name"] for s in exposed] == ["proxy-public"]
    (public,) = exposed
    assert public["spec"]["type"] == "LoadBalancer"
    assert public["spec"]["loadBalancerIP"] == site_ip
    assert all(not s["spec"].get("externalIPs") for s in services)
    # Nothing else takes traffic in: no Ingress, no Gateway route, no autohttps pod.
    assert not [o for o in objects if o["kind"] in ("Ingress", "HTTPRoute")]
    assert not [o for o in objects if o["metadata"]["name"].startswith("autohttps")]


def test_tls_on_the_ip_and_http_only_redirects() -> None:
    objects = render()
    public = find(objects, "Service", "proxy-public")
    ports = {p["port"]: p["targetPort"] for p in public["spec"]["ports"]}
    assert ports == {443: "https", 80: "http"}

    proxy = find(objects, "Deployment", "proxy")["spec"]["template"]["spec"]
    chp = container(proxy, "chp")
    named = {p["name"]: p["containerPort"] for p in chp["ports"]}
    command = chp["command"]
    # TLS where the Service's https port lands; its http port lands on CHP's redirect
    # port, which answers every request with a redirect to https on 443.
    assert f"--port={named['https']}" in command
    assert f"--redirect-port={named['http']}" in command
    assert "--redirect-to=443" in command
    assert not [a for a in command if a.startswith("--port=") and a != f"--port={named['https']}"]

    # The certificate and key come from the site's TLS Secret, mounted read-only.
    https = chart_values(objects)["proxy"]["https"]
    assert https["enabled"] is True
    assert https["type"] == "secret"
    (volume,) = [v for v in proxy["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == https["secret"]["name"]
    (mount,) = [m for m in chp["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    for flag, key in (("--ssl-key", "key"), ("--ssl-cert", "crt")):
        assert f"{flag}={mount['mountPath']}/{https['secret'][key]}" in command
    for probe in ("livenessProbe", "readinessProbe"):
        assert chp[probe]["httpGet"]["scheme"] == "HTTPS"


def ldap_ports(values: Obj) -> set[int]:
    ports = set()
    for url in values["hub"]["config"]["LDAPAuthenticator"]["server_urls"]:
        parts = urlsplit(url)
        ports.add(parts.port or (636 if parts.scheme == "ldaps" else 389))
    return ports


PRIVATE_SAMPLES = ["10.20.0.11", "172.16.4.20", "192.168.10.5"]


def test_hub_reaches_ldap_on_private_addresses() -> None:
    objects = render()
    hub = find(objects, "NetworkPolicy", "hub")
    ports = ldap_ports(chart_values(objects))
    assert ports
    for port in ports:
        for address in PRIVATE_SAMPLES:
            assert egress_allows(hub, address, port), f"hub cannot reach {address}:{port}"
    assert "Egress" in hub["spec"]["policyTypes"]


def test_notebook_pods_reach_no_metadata_and_no_unlisted_private_address() -> None:
    objects = render()
    singleuser = find(objects, "NetworkPolicy", "singleuser")
    assert "Egress" in singleuser["spec"]["policyTypes"]
    assert egress_allows(singleuser, "151.101.0.223", 443)  # a public address (PyPI)
    for port in (80, 443):
        assert not egress_allows(singleuser, "169.254.169.254", port)
    values = chart_values(objects)["singleuser"]
    assert values["cloudMetadata"]["blockWithIptables"] is False
    assert values["initContainers"] == []
    # Each private destination the site lists is reachable on its ports, and only there.
    for rule in values["networkPolicy"]["egress"]:
        for peer in rule["to"]:
            address = peer["ipBlock"]["cidr"].split("/")[0]
            for port in rule["ports"]:
                assert egress_allows(singleuser, address, port["port"])
            assert not egress_allows(singleuser, address, 22)


def test_overlay_alone_blocks_private_addresses_for_notebooks(tmp_path: Path) -> None:
    empty_site = tmp_path / "empty.yaml"
    empty_site.write_text("{}\n")
    out = helm("template", "jhub", CHART, "-f", OVERLAY, "-f", empty_site)
    objects = [o for o in yaml.safe_load_all(out) if o]
    singleuser = find(objects, "NetworkPolicy", "singleuser")
    for address in [*PRIVATE_SAMPLES, "10.40.8.20"]:
        assert not egress_allows(singleuser, address, 5432)


def test_secret_and_configmap_wiring() -> None:
    objects = render()
    values = chart_values(objects)
    pod = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]
    hub = container(pod, "hub")
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"].rstrip("/"): m for m in hub["volumeMounts"]}
    env = {e["name"]: e for e in hub["env"]}

    # The LDAP service account's password: the site's Secret, through the environment.
    ref = env["LSST_HUB_LDAP_SEARCH_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("lsst-hub-ldap", "password")
    assert "search_bind_password" not in values["hub"]["config"]["LDAPAuthenticator"]
    # The LDAP CA: the site's ConfigMap, mounted where tls_ca_file points.
    ca_file = values["hub"]["config"]["LDAPAuthenticator"]["tls_ca_file"]
    mount = mounts[posixpath.dirname(ca_file)]
    assert volumes[mount["name"]]["configMap"]["name"] == "lsst-hub-ldap-ca"
    assert mount["readOnly"] is True

    # The chart's own configuration: its ConfigMap holds the chart's files ...
    configmap = find(objects, "ConfigMap", "hub")
    for name in ("jupyterhub_config.py", "z2jh.py"):
        assert configmap["data"][name] == (CHART / "files" / "hub" / name).read_text()
        mount = mounts[f"/usr/local/etc/jupyterhub/{name}"]
        assert (mount["subPath"], volumes[mount["name"]]["configMap"]["name"]) == (name, "hub")
    assert hub["args"][1:3] == ["--config", "/usr/local/etc/jupyterhub/jupyterhub_config.py"]
    # ... and its Secret the merged values and the generated secrets, which persist.
    secret = secret_data(find(objects, "Secret", "hub"))
    assert volumes[mounts["/usr/local/etc/jupyterhub/secret"]["name"]]["secret"] == {
        "secretName": "hub"
    }
    for key in ("hub.config.JupyterHub.cookie_secret", "hub.config.CryptKeeper.keys"):
        assert len(secret[key]) >= 32
    proxy_token = env["CONFIGPROXY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert proxy_token == {"name": "hub", "key": "hub.config.ConfigurableHTTPProxy.auth_token"}
    assert values["hub"]["config"]["JupyterHub"]["authenticator_class"] == "lsst-ldap"
    assert values["hub"]["config"]["JupyterHub"]["spawner_class"] == "lsst-kube"
    site = yaml.safe_load(site_values().read_text())
    image = site["hub"]["image"]
    assert hub["image"] == f"{image['name']}:{image['tag']}"


def test_no_user_scheduler_and_no_placeholders() -> None:
    objects = render()
    components = {(o["metadata"].get("labels") or {}).get("component") for o in objects}
    assert not components & {"user-scheduler", "user-placeholder", "scheduling"}
    assert not [o for o in objects if o["kind"] in ("PriorityClass", "StatefulSet")]
    assert not [o for o in objects if "scheduler" in o["metadata"]["name"]]
    values = chart_values(objects)["scheduling"]
    assert values["userScheduler"]["enabled"] is False
    assert values["userPods"]["nodeAffinity"]["matchNodePurpose"] == "ignore"


def test_idle_culler_is_on() -> None:
    cull = chart_values(render())["cull"]
    assert cull["enabled"] is True
    assert cull["timeout"] == 3600
    assert cull["every"] == 300
    assert cull["users"] is False  # stops servers; never deletes users


def test_postgres_variant_takes_the_password_from_a_secret() -> None:
    objects = render(HELM_VALUES / "db-postgres.yaml")
    values = chart_values(objects)["hub"]["db"]
    assert values["type"] == "postgres"
    assert values["url"].startswith("postgresql://")
    assert values.get("password") is None  # never in the values (nor the chart's Secret)
    pod = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in container(pod, "hub")["env"]}
    ref = env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == ("lsst-hub-db", "password")
    assert "LSST_HUB_LDAP_SEARCH_PASSWORD" in env  # merged with the overlay's, not replaced
    # No sqlite claim for the hub.
    assert not [o for o in objects if o["kind"] == "PersistentVolumeClaim"]
    assert "hub.db.password" not in secret_data(find(objects, "Secret", "hub"))
