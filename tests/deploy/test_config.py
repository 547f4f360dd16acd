"""jupyterhub_config.py turns LSST_HUB_* environment variables into the right traits.

The file is loaded the way JupyterHub loads it (traitlets' PyFileConfigLoader)
with a controlled environment.
"""

from __future__ import annotations

import copy
import os
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from tests.deploy.import_support import class_or_skip

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "jupyterhub_config.py"
ENV_DOC = ROOT / "docs" / "reference" / "environment.md"

SITE_ENV = {
    "LSST_HUB_LDAP_URLS": "ldaps://ldap1.example.org:636, ldaps://ldap2.example.org:636",
    "LSST_HUB_LDAP_STARTTLS": "false",
    "LSST_HUB_LDAP_CA_FILE": "/etc/lsst-hub/ca.crt",
    "LSST_HUB_LDAP_SEARCH_BIND_DN": "cn=jupyterhub,ou=services,dc=example,dc=org",
    "LSST_HUB_LDAP_SEARCH_PASSWORD": "svcpw",
    "LSST_HUB_LDAP_USER_SEARCH_BASE": "ou=people,dc=example,dc=org",
    "LSST_HUB_LDAP_GROUP_SEARCH_BASE": "ou=groups,dc=example,dc=org",
    "LSST_HUB_ALLOWED_GROUPS": "jupyterhub-users hpcusers",
    "LSST_HUB_ADMIN_GROUPS": "jupyterhub-admins",
    "LSST_HUB_NAMESPACE": "science",
    "LSST_HUB_IMAGE": "registry.example.org/notebook:1.2",
    "LSST_HUB_CPU_GUARANTEE": "1.5",
    "LSST_HUB_MEM_GUARANTEE": "4G",
    "LSST_HUB_CPU_LIMIT": "8",
    "LSST_HUB_MEM_LIMIT": "16G",
    "LSST_HUB_HOME_ROOTS": "/gpfs/home,/gpfs/u2",
    "LSST_HUB_CULL_TIMEOUT": "1800",
    "LSST_HUB_SINGLEUSER_CMD": "/opt/venv/bin/jupyterhub-singleuser --debug",
}


def load(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Config:
    for name in list(os.environ):
        if name.startswith("LSST_HUB_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config: Config = PyFileConfigLoader(CONFIG.name, path=str(CONFIG.parent)).load_config()
    return config


def test_selects_lsst_hub_plugins_and_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    c = load(monkeypatch, SITE_ENV)
    assert c.JupyterHub.authenticator_class == "lsst-ldap"
    assert c.JupyterHub.spawner_class == "lsst-kube"
    assert c.Authenticator.enable_auth_state is True
    assert c.Authenticator.refresh_pre_spawn is True
    assert c.JupyterHub.shutdown_on_logout is True
    assert c.JupyterHub.cleanup_servers is False


@pytest.mark.parametrize(
    ("section", "trait", "expected"),
    [
        ("LDAPAuthenticator", "server_urls", ["ldaps://ldap1.example.org:636", "ldaps://ldap2.example.org:636"]),
        ("LDAPAuthenticator", "starttls", False),
        ("LDAPAuthenticator", "tls_ca_file", "/etc/lsst-hub/ca.crt"),
        ("LDAPAuthenticator", "search_bind_dn", "cn=jupyterhub,ou=services,dc=example,dc=org"),
        ("LDAPAuthenticator", "search_bind_password", "svcpw"),
        ("LDAPAuthenticator", "user_search_base", "ou=people,dc=example,dc=org"),
        ("LDAPAuthenticator", "group_search_base", "ou=groups,dc=example,dc=org"),
        ("LDAPAuthenticator", "allowed_groups", {"jupyterhub-users", "hpcusers"}),
        ("LDAPAuthenticator", "admin_groups", {"jupyterhub-admins"}),
        ("LSSTSpawner", "namespace", "science"),
        ("LSSTSpawner", "image", "registry.example.org/notebook:1.2"),
        ("LSSTSpawner", "cpu_guarantee", 1.5),
        ("LSSTSpawner", "mem_guarantee", "4G"),
        ("LSSTSpawner", "cpu_limit", 8.0),
        ("LSSTSpawner", "mem_limit", "16G"),
        ("LSSTSpawner", "allowed_home_roots", ["/gpfs/home", "/gpfs/u2"]),
        ("LSSTSpawner", "cmd", ["/opt/venv/bin/jupyterhub-singleuser", "--debug"]),
    ],
)  # fmt: skip
def test_site_settings_from_environment(
    monkeypatch: pytest.MonkeyPatch, section: str, trait: str, expected: Any
) -> None:
    assert load(monkeypatch, SITE_ENV)[section][trait] == expected


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    c = load(monkeypatch, {"LSST_HUB_LDAP_URLS": "ldaps://ldap.example.org"})
    assert c.LDAPAuthenticator.server_urls == ["ldaps://ldap.example.org"]
    assert c.LDAPAuthenticator.starttls is True
    assert "tls_ca_file" not in c.LDAPAuthenticator  # the system trust store
    assert c.LDAPAuthenticator.allowed_groups == set()
    assert c.LSSTSpawner.allowed_home_roots == ["/gpfs/home"]
    assert "cmd" not in c.LSSTSpawner  # the image's own command
    assert "cpu_limit" not in c.LSSTSpawner
    assert "--timeout=3600" in c.JupyterHub.services[0]["command"]


def test_ldap_urls_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError, match="LSST_HUB_LDAP_URLS"):
        load(monkeypatch, {})


def test_service_password_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    env = dict(SITE_ENV, LSST_HUB_LDAP_SEARCH_PASSWORD_FILE=str(secret))
    assert load(monkeypatch, env).LDAPAuthenticator.search_bind_password == "from-a-file"


def test_bad_boolean_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="LSST_HUB_LDAP_STARTTLS"):
        load(monkeypatch, dict(SITE_ENV, LSST_HUB_LDAP_STARTTLS="maybe"))


def by_name(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in entries}


def test_idle_culler_service_and_role(monkeypatch: pytest.MonkeyPatch) -> None:
    c = load(monkeypatch, SITE_ENV)
    service = by_name(c.JupyterHub.services)["idle-culler"]
    # Started through the launcher that ties it to the hub (lsst_hub.services.die_with_hub).
    assert service["command"][-5:-2] == [sys.executable, "-m", "jupyterhub_idle_culler"]
    assert service["command"][2].endswith("lsst_hub/ha/exec_child.py")
    assert "--timeout=1800" in service["command"]
    role = by_name(c.JupyterHub.load_roles)["idle-culler"]
    assert role["services"] == ["idle-culler"]
    assert set(role["scopes"]) == {
        "list:users",
        "read:users:activity",
        "read:servers",
        "delete:servers",
    }
    from jupyterhub.scopes import scope_definitions

    assert set(role["scopes"]) <= set(scope_definitions)


def test_idle_culler_off(monkeypatch: pytest.MonkeyPatch) -> None:
    c = load(monkeypatch, dict(SITE_ENV, LSST_HUB_CULL_TIMEOUT="0"))
    assert "idle-culler" not in by_name(c.JupyterHub.services)
    assert "idle-culler" not in by_name(c.JupyterHub.load_roles)


def test_orphan_pod_service(monkeypatch: pytest.MonkeyPatch) -> None:
    from lsst_hub.spawner.reconcile_service import SERVICE_NAME

    c = load(monkeypatch, SITE_ENV)
    service = by_name(c.JupyterHub.services)[SERVICE_NAME]
    assert "--namespace=science" in service["command"]
    role = by_name(c.JupyterHub.load_roles)[SERVICE_NAME]
    assert role["services"] == [SERVICE_NAME]
    # Reading is all it asks of the hub; deleting pods is its Kubernetes side.
    # (admin:server_state shows the servers' state, their pods; no API writes it.)
    assert not [
        s
        for s in role["scopes"]
        if s.startswith(("delete:", "admin:")) and s != "admin:server_state"
    ]

    c = load(monkeypatch, dict(SITE_ENV, LSST_HUB_ORPHAN_SERVICE="false"))
    assert SERVICE_NAME not in by_name(c.JupyterHub.services)


def test_orphan_pod_service_looks_where_the_spawner_puts_pods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A service watching another instance's label would silently never delete anything.
    from lsst_hub.spawner.reconcile_service import SERVICE_NAME

    c = load(monkeypatch, dict(SITE_ENV, LSST_HUB_HUB_INSTANCE="science-hub"))
    assert c.LSSTSpawner.hub_instance == "science-hub"
    command = by_name(c.JupyterHub.services)[SERVICE_NAME]["command"]
    assert "--hub-instance=science-hub" in command
    assert "--namespace=science" in command

    c = load(monkeypatch, SITE_ENV)
    assert "hub_instance" not in c.LSSTSpawner  # the spawner's default, from the hub's URL ...
    service = by_name(c.JupyterHub.services)[SERVICE_NAME]
    # ... which the hub hands the service (tests/spawner/test_reconcile_service.py)
    assert not [a for a in service["command"] if a.startswith("--hub-instance")]
    assert callable(service["environment"]["LSST_HUB_INSTANCE_LABEL"])


PEOPLE_DN = "uid={username},ou=people,dc=example,dc=org"
GUESTS_DN = "uid={username},ou=guests,dc=example,dc=org"


def authenticator(c: Config) -> Any:
    """The authenticator configured by ``c`` (without the CA file, absent here)."""
    from lsst_hub.auth import LDAPAuthenticator

    c = copy.deepcopy(c)
    del c.LDAPAuthenticator["tls_ca_file"]
    return LDAPAuthenticator(config=c)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (PEOPLE_DN, PEOPLE_DN),
        (f"{PEOPLE_DN} | {GUESTS_DN}", [PEOPLE_DN, GUESTS_DN]),  # DNs hold commas
        (f"{PEOPLE_DN}\n{GUESTS_DN}\n", [PEOPLE_DN, GUESTS_DN]),
        ("", ""),  # search with the service account
    ],
)
def test_bind_dn_templates(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str | list[str]
) -> None:
    c = load(monkeypatch, dict(SITE_ENV, LSST_HUB_LDAP_BIND_DN_TEMPLATE=value))
    assert c.LDAPAuthenticator.bind_dn_template == expected
    assert authenticator(c).bind_dn_template == expected  # and the trait accepts it


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LOGIN_TIMEOUT", "12.5", 12.5),
        ("UID_ATTRIBUTE", "sAMAccountName", "sAMAccountName"),
        ("UID_NUMBER_ATTRIBUTE", "uidNum", "uidNum"),
        ("GID_NUMBER_ATTRIBUTE", "gidNum", "gidNum"),
        ("HOME_DIRECTORY_ATTRIBUTE", "unixHomeDirectory", "unixHomeDirectory"),
        ("DISPLAY_NAME_ATTRIBUTE", "displayName, gecos cn", ["displayName", "gecos", "cn"]),
        ("DISPLAY_NAME_ATTRIBUTE", "", []),  # no display name
        ("EMAIL_ATTRIBUTE", "userPrincipalName", "userPrincipalName"),
        ("EMAIL_ATTRIBUTE", "", ""),  # no e-mail address
        ("GROUP_NAME_ATTRIBUTE", "name", "name"),
        ("GROUP_GID_ATTRIBUTE", "gid", "gid"),
        ("GROUP_GID_ATTRIBUTE", "", ""),  # groups without gids
    ],
)
def test_ldap_attribute_names_and_timeout(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: Any
) -> None:
    # LSST_HUB_LDAP_<NAME> sets LDAPAuthenticator.<name>.
    trait = variable.lower()
    c = load(monkeypatch, dict(SITE_ENV, **{f"LSST_HUB_LDAP_{variable}": value}))
    assert c.LDAPAuthenticator[trait] == expected
    assert getattr(authenticator(c), trait) == expected


def test_ldap_attribute_names_default_to_the_authenticators(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = load(monkeypatch, SITE_ENV)
    for trait in ("login_timeout", "uid_attribute", "display_name_attribute", "email_attribute"):
        assert trait not in c.LDAPAuthenticator


@pytest.mark.parametrize(
    ("section", "dotted"),
    [
        ("LDAPAuthenticator", "lsst_hub.auth.LDAPAuthenticator"),
        ("LSSTSpawner", "lsst_hub.spawner.LSSTSpawner"),
        ("Authenticator", "jupyterhub.auth.Authenticator"),
        ("JupyterHub", "jupyterhub.app.JupyterHub"),
    ],
)
def test_every_setting_is_a_real_trait(
    monkeypatch: pytest.MonkeyPatch, section: str, dotted: str
) -> None:
    # A misspelt trait is silently ignored by JupyterHub: catch it here.
    cls = class_or_skip(dotted)
    traits = cls.class_traits(config=True)
    env = dict(SITE_ENV, LSST_HUB_BIND_URL="http://127.0.0.1:8000")
    env["LSST_HUB_HUB_CONNECT_URL"] = "http://hub:8081"
    for key in load(monkeypatch, env)[section]:
        assert key in traits, f"{section}.{key} is not a configurable trait of {dotted}"


@pytest.mark.parametrize(
    ("name", "group", "dotted"),
    [
        ("lsst-ldap", "jupyterhub.authenticators", "lsst_hub.auth.LDAPAuthenticator"),
        ("lsst-kube", "jupyterhub.spawners", "lsst_hub.spawner.LSSTSpawner"),
    ],
)
def test_plugin_names_resolve(name: str, group: str, dotted: str) -> None:
    cls = class_or_skip(dotted)
    (entry,) = entry_points(group=group, name=name)
    assert entry.load() is cls


#: Set by the wrapper lsst-hub-ha for the hub, documented with the others; the file
#: reads only LSST_HUB_HA.
WRAPPER_ONLY = {"LSST_HUB_HA_IDENTITY", "LSST_HUB_HA_LEASE"}


def test_every_variable_is_documented() -> None:
    used = set(re.findall(r'"(LSST_HUB_[A-Z_]+)"', CONFIG.read_text()))
    documented = set(re.findall(r"`(LSST_HUB_[A-Z_]+)`", ENV_DOC.read_text()))
    assert used, "the config reads no LSST_HUB_* variable?"
    assert used == documented - WRAPPER_ONLY
    assert documented >= WRAPPER_ONLY


def test_refused_refresh_stops_token_requests_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # JupyterHub 6.1+ ignores a refused refresh on token requests unless
    # auth_refresh_strict is set; 5.x always refuses and has no such trait (setting
    # it there would only draw an "unrecognized option" warning).
    import yaml
    from jupyterhub.auth import Authenticator

    exists = "auth_refresh_strict" in Authenticator.class_trait_names()
    values = yaml.safe_load((ROOT / "helm-values" / "values.yaml").read_text())
    snippet = values["hub"]["extraConfig"]["lsst-hub-refresh-strict"]
    from_helm = Config()
    exec(snippet, {"c": from_helm})  # noqa: S102 -- the chart execs extraConfig the same way
    for c in (load(monkeypatch, SITE_ENV), from_helm):
        if exists:
            assert c.Authenticator.auth_refresh_strict is True
        else:
            assert "auth_refresh_strict" not in c.Authenticator
