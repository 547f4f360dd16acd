"""The Helm overlay validates against the Zero to JupyterHub chart's values schema.

Helm checks the *merged* values: the chart's ``values.yaml`` with each ``-f`` file
coalesced on top (maps merge key by key, anything else replaces, ``null`` removes
the key), then validated with a JSON Schema draft-07 validator. The chart files
(the whole 4.4.0 chart and the 5.0 development line's values and schema) are kept
in ``helm-values/z2jh``; ``test_chart_render.py`` renders the real chart with helm.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.import_support import class_or_skip

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / "helm-values"
CHART_DIR = HELM / "z2jh" / "chart-4.4.0"
CHART_LINES = {"4.4.0": CHART_DIR, "5.0.0-0.dev": HELM / "z2jh" / "main-5.0.0-0.dev"}
KUBERNETES_VERSION = "1.32.0"  # the oldest version both chart lines support


def coalesce(base: Any, overlay: Any) -> Any:
    """Merge ``overlay`` onto ``base`` the way Helm merges ``-f`` values files."""
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        return copy.deepcopy(overlay)
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def overlay() -> dict[str, Any]:
    values = load_yaml(HELM / "values.yaml")
    assert isinstance(values, dict)
    return values


def schema_errors(line: str, values: dict[str, Any]) -> list[str]:
    directory = CHART_LINES[line]
    schema = json.loads((directory / "values.schema.json").read_text())
    merged = coalesce(load_yaml(directory / "values.yaml"), values)
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(merged)
    ]


def merged_values(line: str = "4.4.0") -> dict[str, Any]:
    merged = coalesce(load_yaml(CHART_LINES[line] / "values.yaml"), overlay())
    assert isinstance(merged, dict)
    return merged


# -- Helm's coalesce semantics, as a table ------------------------------------------


@pytest.mark.parametrize(
    ("base", "top", "expected"),
    [
        ({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}, {"a": {"b": 1, "c": 3}}),  # maps merge
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}, {"a": {"c": 2}}),  # null removes
        ({"a": [1, 2]}, {"a": [3]}, {"a": [3]}),  # lists replace
        ({"a": {"b": 1}}, {"a": "x"}, {"a": "x"}),  # a scalar replaces a map
        ({"a": 1}, {"b": {"c": 1}}, {"a": 1, "b": {"c": 1}}),  # new keys are added
    ],
)
def test_coalesce_follows_helm(base: Any, top: Any, expected: Any) -> None:
    assert coalesce(base, top) == expected


# -- the overlay --------------------------------------------------------------------


@pytest.mark.parametrize("line", sorted(CHART_LINES))
def test_chart_defaults_are_valid(line: str) -> None:
    # The copied chart files are consistent: the chart's own defaults pass.
    assert schema_errors(line, {}) == []


@pytest.mark.parametrize("line", sorted(CHART_LINES))
def test_overlay_validates_against_chart_schema(line: str) -> None:
    assert schema_errors(line, overlay()) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"hub": {"replicas": 2}},  # not a chart key
        {"singleuser": {"storage": {"type": "gpfs"}}},  # not one of the enum values
        {"cull": {"enabled": "yes"}},  # wrong type
        {"hub": {"config": {"lowercase": {}}}},  # hub.config keys are class names
    ],
)
def test_schema_check_rejects_invalid_overlays(bad: dict[str, Any]) -> None:
    assert schema_errors("4.4.0", coalesce(overlay(), bad)) != []


def test_overlay_selects_lsst_hub_plugins() -> None:
    config = merged_values()["hub"]["config"]
    assert config["JupyterHub"]["authenticator_class"] == "lsst-ldap"
    assert config["JupyterHub"]["spawner_class"] == "lsst-kube"
    assert config["Authenticator"]["enable_auth_state"] is True
    assert config["Authenticator"]["refresh_pre_spawn"] is True


def test_overlay_deployment_shape() -> None:
    values = merged_values()
    assert values["hub"]["image"]["name"] != "quay.io/jupyterhub/k8s-hub"
    assert values["hub"]["livenessProbe"]["enabled"] is True
    assert values["hub"]["readinessProbe"]["enabled"] is True
    assert values["hub"]["shutdownOnLogout"] is True
    assert values["proxy"]["service"]["type"] == "LoadBalancer"
    assert values["proxy"]["service"]["loadBalancerIP"]
    assert values["cull"]["enabled"] is True
    assert values["cull"]["timeout"] > 0
    assert values["singleuser"]["storage"]["type"] == "none"
    assert values["scheduling"]["userScheduler"]["enabled"] is False
    assert values["scheduling"]["userPlaceholder"]["enabled"] is False
    assert values["rbac"]["create"] is True
    # null in the overlay removed the chart's fixed uid and fsGid.
    assert "uid" not in values["singleuser"]
    assert "fsGid" not in values["singleuser"]


def test_ldap_password_comes_from_a_secret() -> None:
    hub = overlay()["hub"]
    assert "search_bind_password" not in hub["config"]["LDAPAuthenticator"]
    ref = hub["extraEnv"]["LSST_HUB_LDAP_SEARCH_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] and ref["key"]
    snippet = hub["extraConfig"]["lsst-hub-ldap-password"]
    assert "LSST_HUB_LDAP_SEARCH_PASSWORD" in snippet


def run_extra_config(c: Any) -> None:
    """Run the overlay's ``hub.extraConfig`` snippets as the chart's hub config does
    (in the order of their keys, after the chart's own settings)."""
    for name, snippet in sorted(overlay()["hub"]["extraConfig"].items()):
        code = compile(snippet, f"extraConfig.{name}", "exec")
        exec(code, {"c": c})  # noqa: S102 - our own snippet, as the chart's config runs it


def chart_like_config() -> Any:
    """A config like the one the chart's hub builds before ``extraConfig``."""
    from traitlets.config import Config

    c = Config()
    for section, values in overlay()["hub"]["config"].items():
        c[section].update(values)
    c.JupyterHub.services = []  # the chart fills in its own (the idle culler)
    c.JupyterHub.load_roles = []
    return c


def test_extra_config_sets_the_ldap_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LSST_HUB_LDAP_SEARCH_PASSWORD", "from-the-secret")
    c = chart_like_config()
    run_extra_config(c)
    assert c.LDAPAuthenticator.search_bind_password == "from-the-secret"


@pytest.mark.parametrize(
    ("hub_instance", "base_url", "api_url"),
    [
        (None, None, "http://localhost:8081/hub/api"),
        ("science-hub", "/science/", "http://localhost:8081/science/hub/api"),
    ],
)
def test_extra_config_adds_the_orphan_pod_service(
    monkeypatch: pytest.MonkeyPatch, hub_instance: str | None, base_url: str | None, api_url: str
) -> None:
    from jupyterhub.scopes import scope_definitions

    from lsst_hub.spawner.reconcile_service import REQUIRED_SCOPES, SERVICE_NAME

    monkeypatch.setenv("LSST_HUB_LDAP_SEARCH_PASSWORD", "from-the-secret")
    monkeypatch.setenv("POD_NAMESPACE", "jhub")  # set by the chart on the hub pod
    monkeypatch.setenv("HELM_RELEASE_NAME", "jupyterhub-prod")  # likewise
    c = chart_like_config()
    if hub_instance:  # as hub.config.LSSTSpawner.hub_instance in a site's values
        c.LSSTSpawner.hub_instance = hub_instance
    if base_url:  # as hub.baseUrl, which the chart sets before extraConfig
        c.JupyterHub.base_url = base_url
    run_extra_config(c)
    (service,) = [s for s in c.JupyterHub.services if s["name"] == SERVICE_NAME]
    assert service["command"][1:3] == ["-m", "lsst_hub.spawner.reconcile_service"]
    # It looks where the spawner puts pods: the release namespace, this hub's label,
    # the same on both sides (the Helm release unless the site names one).
    assert "--namespace=jhub" in service["command"]
    instance = hub_instance or "jupyterhub-prod"
    assert c.LSSTSpawner.hub_instance == instance
    assert f"--hub-instance={instance}" in service["command"]
    # It calls the hub at localhost, as the chart's idle culler does: a pod reaching
    # itself through its own Service fails on some network plugins.
    assert f"--hub-api-url={api_url}" in service["command"]
    (role,) = [r for r in c.JupyterHub.load_roles if r["name"] == SERVICE_NAME]
    assert role["services"] == [SERVICE_NAME]
    assert set(role["scopes"]) == set(REQUIRED_SCOPES)
    assert set(role["scopes"]) <= set(scope_definitions)


def test_ca_file_is_mounted_where_the_config_expects_it() -> None:
    hub = overlay()["hub"]
    ca_file = Path(hub["config"]["LDAPAuthenticator"]["tls_ca_file"])
    mounts = {m["mountPath"] for m in hub["extraVolumeMounts"]}
    assert str(ca_file.parent) in mounts


@pytest.mark.parametrize(
    ("section", "dotted"),
    [
        ("LDAPAuthenticator", "lsst_hub.auth.LDAPAuthenticator"),
        ("LSSTSpawner", "lsst_hub.spawner.LSSTSpawner"),
        ("Authenticator", "jupyterhub.auth.Authenticator"),
    ],
)
def test_hub_config_names_real_traits(section: str, dotted: str) -> None:
    # A misspelt trait in hub.config is silently ignored by JupyterHub: catch it here.
    cls = class_or_skip(dotted)
    traits = cls.class_traits(config=True)
    for key in overlay()["hub"]["config"][section]:
        assert key in traits, f"{section}.{key} is not a configurable trait of {dotted}"


def test_hub_image_recipe_matches_chart() -> None:
    chart = load_yaml(CHART_DIR / "Chart.yaml")
    dockerfile = (HELM / "hub-image" / "Dockerfile").read_text()
    from_lines = [ln.split()[1] for ln in dockerfile.splitlines() if ln.startswith("FROM ")]
    assert from_lines == ["quay.io/jupyterhub/k8s-hub:4.4.0"]
    assert chart["appVersion"] == "5.5.0"  # the JupyterHub line the image ships


# -- cluster RBAC -------------------------------------------------------------------


def rbac_objects() -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all((HELM / "cluster-rbac.yaml").read_text()) if o]


def test_cluster_rbac_objects_are_valid_kubernetes() -> None:
    objects = rbac_objects()
    kinds = ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    assert [o["kind"] for o in objects] == kinds
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_cluster_rbac_binds_the_chart_hub_service_account() -> None:
    cluster_role, cluster_binding, role, binding = rbac_objects()
    for granted, bound in ((cluster_role, cluster_binding), (role, binding)):
        assert bound["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": granted["kind"],
            "name": granted["metadata"]["name"],
        }
        assert [(s["kind"], s["name"]) for s in bound["subjects"]] == [("ServiceAccount", "hub")]
    # The namespaced pair lives where the hub's ServiceAccount is.
    namespace = cluster_binding["subjects"][0]["namespace"]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == namespace


def test_configmap_role_covers_synthesized_passwd() -> None:
    # Created, or replaced when it exists; never read back.
    assert _granted(rbac_objects()[2]) == {
        ("", "configmaps", "create"),
        ("", "configmaps", "update"),
    }


def _granted(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_cluster_rbac_grants_what_placement_and_storage_use() -> None:
    # Exactly the calls the code makes (tests/deploy/test_rbac.py shows each is needed).
    assert _granted(rbac_objects()[0]) == {
        ("", "nodes", "list"),  # placement cache: list + watch
        ("", "nodes", "watch"),
        ("", "pods", "list"),  # every namespace's pods: list + watch
        ("", "pods", "watch"),
        ("", "persistentvolumes", "create"),  # a person's home volume
        ("", "persistentvolumes", "get"),  # an existing one, checked
        ("", "persistentvolumes", "update"),  # rebinding a Released home volume
        ("metrics.k8s.io", "nodes", "list"),  # live node usage
    }


def test_cluster_rbac_never_deletes_volumes_or_writes_foreign_pods() -> None:
    granted = _granted(rbac_objects()[0])
    writes = {"create", "update", "patch", "delete", "deletecollection", "*"}
    pv_writes = {v for _, r, v in granted if r == "persistentvolumes" and v in writes}
    assert pv_writes == {"create", "update"}
    assert {v for _, r, v in granted if r == "pods" and v in writes} == set()
    assert all("*" not in rule for rule in granted)
