"""Shared test fixtures.

The fixture plugins in ``tests/support`` start real services on loopback:
``ldap_fixtures`` a real OpenLDAP ``slapd`` with TLS, ``kube_fixtures`` the
project's Kubernetes API stand-in (``lsst_hub.devcluster``), ``hub_fixtures`` a
real JupyterHub with configurable-http-proxy.
"""

pytest_plugins = [
    "tests.support.ldap_fixtures",
    "tests.support.kube_fixtures",
    "tests.support.hub_fixtures",
]
