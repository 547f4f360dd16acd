"""The Kubernetes spawner: :class:`LSSTSpawner` (KubeSpawner subclass).

``spawner`` holds the traits and life-cycle glue, ``builders`` the pure object
builders, ``kube`` the API calls, ``paths`` home path checks, ``status`` pod
state reading, ``reconcile`` orphan-pod clean-up (one pass), ``hub_api`` the
hub's REST API as the orphan-pod service reads it, and ``reconcile_service``
that service (``python -m lsst_hub.spawner.reconcile_service``, a JupyterHub
managed service making a pass at hub start and at intervals).
"""

from __future__ import annotations

from .spawner import LSSTSpawner, SpawnError

__all__ = ["LSSTSpawner", "SpawnError"]
