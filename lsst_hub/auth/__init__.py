"""LDAP authentication for JupyterHub: :class:`LDAPAuthenticator`.

``authenticator`` holds the traits and the JupyterHub glue, ``directory`` the
blocking ldap3 code (run in a bounded thread pool), ``attributes`` the
configurable attribute names and the pure entry-to-Identity mapping,
``throttle`` the failed-login throttling.
"""

from .authenticator import LDAPAuthenticator

__all__ = ["LDAPAuthenticator"]
