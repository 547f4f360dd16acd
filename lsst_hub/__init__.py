"""lsst-hub: JupyterHub on Kubernetes for LDAP + GPFS sites.

Public names: :class:`LDAPAuthenticator` and :class:`LSSTSpawner`. They are
imported lazily so that light users of the package (the dev cluster, the pure
placement code) do not pay for importing JupyterHub and KubeSpawner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .identity import Group, Identity, IdentityError

if TYPE_CHECKING:
    from .auth import LDAPAuthenticator
    from .spawner import LSSTSpawner

__all__ = ["Group", "Identity", "IdentityError", "LDAPAuthenticator", "LSSTSpawner"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "LDAPAuthenticator":
        from .auth import LDAPAuthenticator

        return LDAPAuthenticator
    if name == "LSSTSpawner":
        from .spawner import LSSTSpawner

        return LSSTSpawner
    raise AttributeError(f"module 'lsst_hub' has no attribute {name!r}")
