"""LDAP authentication for JupyterHub: :class:`LDAPAuthenticator`.

A login runs form → throttle → directory (thread pool) → identity → policy → auth
model; each step has its module:

``authenticator``
    The traits (every setting and its default) and JupyterHub's entry points.
``login``, ``refresh``
    The login flow and the refresh flow.
``throttle``
    Failed-login throttling per username and client address.
``directory``
    The blocking ldap3 code (servers, TLS, failover, search, bind), run in a
    bounded thread pool; ``errors`` the ways it fails, each with its outcome.
``attributes``
    The configurable attribute names and the pure entry-to-Identity mapping.
``model``
    The site's ``modify_auth_state_hook``, then the decision, then the auth model.
``access``
    The one access decision of login and refresh: id limits, entry ownership,
    allowed, admin.
``policy``
    Group rules (by cn or DN) and who owns a username (pure).
"""

from .authenticator import LDAPAuthenticator

__all__ = ["LDAPAuthenticator"]
