"""lsst-hub: JupyterHub on Kubernetes for LDAP + GPFS sites.

Public names: :class:`LDAPAuthenticator` and :class:`LSSTSpawner`.

They are imported on first use, so that ``lsst-hub-ha`` (:mod:`lsst_hub.ha`),
which wraps the hub, starts without importing JupyterHub and KubeSpawner: a
standby that takes over should not spend seconds on imports it never uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .auth import LDAPAuthenticator
    from .identity import Group, Identity, IdentityError
    from .spawner import LSSTSpawner

__all__ = ["Group", "Identity", "IdentityError", "LDAPAuthenticator", "LSSTSpawner"]
__version__ = "0.1.0"

_HOMES = {
    "LDAPAuthenticator": ".auth",
    "Group": ".identity",
    "Identity": ".identity",
    "IdentityError": ".identity",
    "LSSTSpawner": ".spawner",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
