"""lsst-hub: JupyterHub on Kubernetes for LDAP + GPFS sites.

Public names: :class:`LDAPAuthenticator` and :class:`LSSTSpawner`.
"""

from __future__ import annotations

from .auth import LDAPAuthenticator
from .identity import Group, Identity, IdentityError
from .spawner import LSSTSpawner

__all__ = ["Group", "Identity", "IdentityError", "LDAPAuthenticator", "LSSTSpawner"]
__version__ = "0.1.0"
