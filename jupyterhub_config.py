"""JupyterHub configuration for an lsst-hub site: the admin's entry point.

    JUPYTERHUB_CRYPT_KEY=$(openssl rand -hex 32) \\
    LSST_HUB_LDAP_URLS=ldaps://ldap1.example.org,ldaps://ldap2.example.org \\
    ... jupyterhub -f jupyterhub_config.py

Site settings come from environment variables (``LSST_HUB_*``, listed with their
defaults in the documentation's "Environment variables" reference), so the same
file serves every site and the local demo. Anything else can be added below as
ordinary ``c.Class.trait = value`` lines; the full list of traits is in the
configuration reference. A Zero to JupyterHub deployment does not use this file:
it sets the same values through ``helm-values/values.yaml``.
"""

import os
import shlex
import sys

from jupyterhub.auth import Authenticator

from lsst_hub.ha.config import check_ha_settings, database_url
from lsst_hub.services import die_with_hub, reset_ignored_signals


def env(name: str, default: str = "") -> str:
    """The variable's value with surrounding blanks removed, or ``default``."""
    return os.environ.get(name, "").strip() or default


def env_list(name: str, default: str = "") -> list[str]:
    """A comma- or blank-separated list."""
    return env(name, default).replace(",", " ").split()


def env_bool(name: str, default: bool) -> bool:
    value = env(name).lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={value!r}: use true or false")


def env_given(name: str) -> str | None:
    """The variable's stripped value if it is set at all (even empty), else None."""
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_templates(name: str) -> str | list[str]:
    """One DN template, or several separated by ``|`` or newlines (DNs hold commas)."""
    templates = [t.strip() for t in env(name).replace("\n", "|").split("|") if t.strip()]
    if len(templates) > 1:
        return templates
    return templates[0] if templates else ""


def env_secret(name: str, file_name: str) -> str:
    """The contents of the file named by ``file_name`` if set, else ``name`` itself."""
    path = env(file_name)
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    return env(name)


def env_password(name: str, file_name: str) -> str | None:
    """Like ``env_secret``, but None if both are unset or empty, and blanks are kept:
    only the line break ending the file (or the value) is dropped."""
    path = env(file_name)
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\r\n") or None
    return os.environ.get(name, "").rstrip("\r\n") or None


c = get_config()  # provided by JupyterHub when it loads this file

# -- The two lsst-hub plugins -----------------------------------------------------
# lsst-ldap: LDAP login that records the person's POSIX identity (lsst_hub.auth).
# lsst-kube: KubeSpawner subclass placing the pod and mounting the GPFS home.
c.JupyterHub.authenticator_class = "lsst-ldap"
c.JupyterHub.spawner_class = "lsst-kube"

# -- auth_state: the identity the spawner runs the pod as -------------------------
# Stored encrypted: JupyterHub reads the key from JUPYTERHUB_CRYPT_KEY (32 bytes hex,
# e.g. `openssl rand -hex 32`), which must stay the same across restarts.
c.Authenticator.enable_auth_state = True
# Re-read the identity from LDAP before each spawn, and every auth_refresh_age seconds,
# so a changed uid, group or home is used. A refresh that finds the person gone, out
# of every allowed group or replaced by another entry clears the identity from
# auth_state (the spawner then has nothing to start) and makes them log in again.
c.Authenticator.refresh_pre_spawn = True
c.Authenticator.auth_refresh_age = int(env("LSST_HUB_AUTH_REFRESH_AGE", "900"))
# JupyterHub 6.1+ ignores a refused refresh on API-token requests and admin spawns
# unless auth_refresh_strict is set: a removed person could keep starting servers
# with a token. 5.x has no such setting and always refuses (lsst-ldap also makes it
# its default).
if "auth_refresh_strict" in Authenticator.class_trait_names():
    c.Authenticator.auth_refresh_strict = True

# -- Sessions ---------------------------------------------------------------------
# Logging out stops the user's server: the pod is deleted, the home stays.
c.JupyterHub.shutdown_on_logout = True
# Stopping the hub leaves running servers alone, as in Zero to JupyterHub: a hub
# restart (upgrade, crash, rescheduled hub pod) must not end everyone's session; the
# restarted hub finds the pods again from its database. LSST_HUB_CLEANUP_SERVERS=true
# makes stopping the hub stop every server (the local demo sets it, so Ctrl-C leaves
# no pod behind).
c.JupyterHub.cleanup_servers = env_bool("LSST_HUB_CLEANUP_SERVERS", False)
if env("LSST_HUB_BIND_URL"):
    c.JupyterHub.bind_url = env("LSST_HUB_BIND_URL")
if env("LSST_HUB_HUB_CONNECT_URL"):
    # How pods reach the hub's API (in a cluster: the hub Service's address).
    c.JupyterHub.hub_connect_url = env("LSST_HUB_HUB_CONNECT_URL")

# -- Database and proxy -------------------------------------------------------------
# Without LSST_HUB_DB_URL the hub keeps its state in jupyterhub.sqlite in its working
# directory. The password may be in the URL (URL-escaped) or apart from it, in
# LSST_HUB_DB_PASSWORD_FILE or LSST_HUB_DB_PASSWORD; a bare postgresql:// URL gets the
# driver lsst-hub installs, psycopg 3 (postgresql+psycopg://).
db_password = env_password("LSST_HUB_DB_PASSWORD", "LSST_HUB_DB_PASSWORD_FILE")
if env("LSST_HUB_DB_URL"):
    try:
        c.JupyterHub.db_url = database_url(env("LSST_HUB_DB_URL"), db_password)
    except ValueError as e:
        # The message never holds the URL: it may hold the password.
        raise RuntimeError(f"jupyterhub_config.py: LSST_HUB_DB_URL: {e}") from None
elif db_password is not None:
    raise RuntimeError(
        "jupyterhub_config.py: a database password is set but LSST_HUB_DB_URL is not"
    )
# An external configurable-http-proxy (a pod of its own, or one process in front of
# two hubs on one machine): the hub only sends it routes. The hub reads the proxy's
# token from CONFIGPROXY_AUTH_TOKEN, as the proxy does; without it the hub would
# make up a token of its own, which the proxy refuses.
if env("LSST_HUB_PROXY_API_URL"):
    if not env("CONFIGPROXY_AUTH_TOKEN"):
        raise RuntimeError(
            "jupyterhub_config.py: LSST_HUB_PROXY_API_URL is set: set CONFIGPROXY_AUTH_TOKEN "
            "to the token that proxy was started with"
        )
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = env("LSST_HUB_PROXY_API_URL")

# -- LDAP -------------------------------------------------------------------------
# Servers are tried in order; the next one is used when one is down. ldaps:// uses
# TLS from the start, ldap:// is upgraded with StartTLS.
c.LDAPAuthenticator.server_urls = env_list("LSST_HUB_LDAP_URLS")
if not c.LDAPAuthenticator.server_urls:
    raise RuntimeError("jupyterhub_config.py: set LSST_HUB_LDAP_URLS to the LDAP server URLs")
c.LDAPAuthenticator.starttls = env_bool("LSST_HUB_LDAP_STARTTLS", True)
if env("LSST_HUB_LDAP_CA_FILE"):
    c.LDAPAuthenticator.tls_ca_file = env("LSST_HUB_LDAP_CA_FILE")
# Seconds one login may take in all (every server, bind and search).
if env("LSST_HUB_LDAP_LOGIN_TIMEOUT"):
    c.LDAPAuthenticator.login_timeout = float(env("LSST_HUB_LDAP_LOGIN_TIMEOUT"))
# Either bind directly with a DN template, or search for the user's DN with a
# read-only service account (which is also used to read groups). Several templates
# are separated by "|" or newlines, since DNs contain commas; a username belongs to
# the entry of the first template whose DN exists.
c.LDAPAuthenticator.bind_dn_template = env_templates("LSST_HUB_LDAP_BIND_DN_TEMPLATE")
c.LDAPAuthenticator.search_bind_dn = env("LSST_HUB_LDAP_SEARCH_BIND_DN")
c.LDAPAuthenticator.search_bind_password = env_secret(
    "LSST_HUB_LDAP_SEARCH_PASSWORD", "LSST_HUB_LDAP_SEARCH_PASSWORD_FILE"
)
c.LDAPAuthenticator.user_search_base = env("LSST_HUB_LDAP_USER_SEARCH_BASE")
c.LDAPAuthenticator.group_search_base = env("LSST_HUB_LDAP_GROUP_SEARCH_BASE")
# Attribute names, for directories that do not use the RFC 2307 ones (e.g. Active
# Directory: sAMAccountName, unixHomeDirectory). Set only when the variable is set;
# an empty value means "none" where the trait allows it (e-mail, display name, group
# gid). The display name is a list of attributes tried in order.
for variable, trait in [
    ("LSST_HUB_LDAP_UID_ATTRIBUTE", "uid_attribute"),
    ("LSST_HUB_LDAP_UID_NUMBER_ATTRIBUTE", "uid_number_attribute"),
    ("LSST_HUB_LDAP_GID_NUMBER_ATTRIBUTE", "gid_number_attribute"),
    ("LSST_HUB_LDAP_HOME_DIRECTORY_ATTRIBUTE", "home_directory_attribute"),
    ("LSST_HUB_LDAP_EMAIL_ATTRIBUTE", "email_attribute"),
    ("LSST_HUB_LDAP_GROUP_NAME_ATTRIBUTE", "group_name_attribute"),
    ("LSST_HUB_LDAP_GROUP_GID_ATTRIBUTE", "group_gid_attribute"),
]:
    value = env_given(variable)
    if value is not None:
        c.LDAPAuthenticator[trait] = value
if env_given("LSST_HUB_LDAP_DISPLAY_NAME_ATTRIBUTE") is not None:
    c.LDAPAuthenticator.display_name_attribute = env_list("LSST_HUB_LDAP_DISPLAY_NAME_ATTRIBUTE")
# Who may log in, and who is admin, by directory group (cn).
c.LDAPAuthenticator.allowed_groups = set(env_list("LSST_HUB_ALLOWED_GROUPS"))
c.LDAPAuthenticator.admin_groups = set(env_list("LSST_HUB_ADMIN_GROUPS"))

# -- Kubernetes -------------------------------------------------------------------
# The spawner talks to the API server with the in-cluster service account, or with
# the file named by KUBECONFIG outside a cluster.
c.LSSTSpawner.namespace = env("LSST_HUB_NAMESPACE", env("POD_NAMESPACE", "jupyterhub"))
if env("LSST_HUB_HUB_INSTANCE"):
    # This hub's name on its pods (label lsst-hub/instance): one per hub in a namespace.
    c.LSSTSpawner.hub_instance = env("LSST_HUB_HUB_INSTANCE")
c.LSSTSpawner.image = env("LSST_HUB_IMAGE", "quay.io/jupyter/scipy-notebook:latest")
if env("LSST_HUB_SINGLEUSER_CMD"):
    c.LSSTSpawner.cmd = shlex.split(env("LSST_HUB_SINGLEUSER_CMD"))
c.LSSTSpawner.default_url = env("LSST_HUB_DEFAULT_URL", "/lab")
# Requests are what placement counts; limits cap what a session may use.
c.LSSTSpawner.cpu_guarantee = float(env("LSST_HUB_CPU_GUARANTEE", "0.5"))
c.LSSTSpawner.mem_guarantee = env("LSST_HUB_MEM_GUARANTEE", "1G")
if env("LSST_HUB_CPU_LIMIT"):
    c.LSSTSpawner.cpu_limit = float(env("LSST_HUB_CPU_LIMIT"))
if env("LSST_HUB_MEM_LIMIT"):
    c.LSSTSpawner.mem_limit = env("LSST_HUB_MEM_LIMIT")
c.LSSTSpawner.start_timeout = int(env("LSST_HUB_START_TIMEOUT", "300"))

# -- GPFS homes -------------------------------------------------------------------
# The home from LDAP is mounted only when it lies below one of these roots.
c.LSSTSpawner.allowed_home_roots = env_list("LSST_HUB_HOME_ROOTS", "/gpfs/home")
# /etc/passwd and /etc/group naming the person and their groups, so that whoami and
# ls -l show names in images that do not know the site's accounts.
c.LSSTSpawner.synthesize_passwd = env_bool("LSST_HUB_SYNTHESIZE_PASSWD", False)

# -- Hub-managed services ----------------------------------------------------------
# The services start with SIGINT and SIGTERM at their defaults, even when the hub was
# started with SIGINT ignored (a background job of a script, some wrappers and inits),
# which they would otherwise inherit: JupyterHub stops its services one at a time with
# SIGINT and waits 30 s (10 s in 5.x) for each that ignores it. (JupyterHub sets its own handlers
# for both signals once it has started.)
reset_ignored_signals()
services: list[dict[str, object]] = []
roles: list[dict[str, object]] = []

# jupyterhub-idle-culler stops servers idle for LSST_HUB_CULL_TIMEOUT seconds (0 turns
# it off). Stopping deletes the pod only. Its role has only what it uses: list users,
# read their servers' activity, stop them.
cull_timeout = int(env("LSST_HUB_CULL_TIMEOUT", "3600"))
if cull_timeout > 0:
    cull_every = int(env("LSST_HUB_CULL_EVERY", str(max(1, min(300, cull_timeout // 2)))))
    services.append(
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={cull_timeout}",
                f"--cull-every={cull_every}",
            ],
        }
    )
    roles.append(
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    )

c.JupyterHub.services = services
c.JupyterHub.load_roles = roles

# The orphan-pod service deletes, at hub start and then every few minutes, this hub's
# notebook pods whose server the hub does not know (after a crash or a restored
# database). It reads the hub's users and servers; it never touches homes. It looks
# where the spawner puts pods: c.LSSTSpawner.namespace and hub_instance, read from
# the lines above (set them before this point).
if env_bool("LSST_HUB_ORPHAN_SERVICE", True):
    from lsst_hub.spawner.reconcile_service import configure_service

    configure_service(c)

# Each service dies with the hub, even a hub killed with SIGKILL (JupyterHub starts
# them in sessions of their own, so they would outlive it and keep calling its
# address, where the next hub starts its own).
for service in c.JupyterHub.services:
    if service.get("command"):
        service["command"] = die_with_hub(list(service["command"]))

# -- Standby hub (HA mode) ----------------------------------------------------------
# lsst-hub-ha, which runs the hub only while it holds the Kubernetes Lease, sets
# LSST_HUB_HA=1. Two hubs then take turns on one state: refuse what a handover would
# break. Checked last, on what the lines above set.
if env_bool("LSST_HUB_HA", False):
    ha_problems = check_ha_settings(
        c.JupyterHub.get("db_url", "sqlite:///jupyterhub.sqlite"),
        c.JupyterHub.get("cleanup_servers", False),
        c.ConfigurableHTTPProxy.get("should_start", True),
        db_setting="LSST_HUB_DB_URL",
        cleanup_setting="LSST_HUB_CLEANUP_SERVERS",
        proxy_setting="LSST_HUB_PROXY_API_URL (and CONFIGPROXY_AUTH_TOKEN)",
    )
    if ha_problems:
        raise RuntimeError(
            "jupyterhub_config.py: LSST_HUB_HA is set (standby hub), but:\n- "
            + "\n- ".join(ha_problems)
        )
