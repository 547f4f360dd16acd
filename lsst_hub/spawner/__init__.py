"""The Kubernetes spawner: :class:`LSSTSpawner` (KubeSpawner subclass).

``spawner`` holds the traits and life-cycle glue, ``builders`` the pure object
builders, ``kube`` the API calls, ``paths`` home path checks, ``status`` pod
state reading, ``reconcile`` orphan-pod clean-up.
"""

from __future__ import annotations

from .spawner import LSSTSpawner, SpawnError

__all__ = ["LSSTSpawner", "SpawnError"]
