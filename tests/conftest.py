"""Shared test fixtures.

The fixture plugins in ``tests/support`` start real services on loopback:
``ldap_fixtures`` a real OpenLDAP ``slapd`` with TLS, ``hub_fixtures`` a
real JupyterHub with configurable-http-proxy. The Kubernetes API stand-in's
fixtures come with it, from its own distribution (``devcluster.testing``, in
``devcluster/``).
"""

pytest_plugins = [
    "tests.support.ldap_fixtures",
    "devcluster.testing",
    "tests.support.hub_fixtures",
]
