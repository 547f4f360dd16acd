"""The Kubernetes spawner: :class:`LSSTSpawner` (KubeSpawner subclass).

``spawner`` holds the traits and the order of a spawn, whose steps are
``person`` (identity), ``home`` (home volume), ``placing`` (node and
reservation) and ``podcheck`` (the final pod check and the pod name's owner);
``builders`` builds every object (pure), ``kube`` makes the API calls,
``paths`` checks home paths, ``status`` reads pod state and ``errors`` holds
:class:`SpawnError`. Orphan pods: ``reconcile`` (one pass), ``orphans`` (the
spawner's fallback pass), ``hub_api`` (the hub's REST API as the orphan-pod
service reads it) and ``reconcile_service`` (that service,
``python -m lsst_hub.spawner.reconcile_service``, a JupyterHub managed service
making a pass at hub start and at intervals).
"""

from __future__ import annotations

from .errors import SpawnError
from .spawner import LSSTSpawner

__all__ = ["LSSTSpawner", "SpawnError"]
