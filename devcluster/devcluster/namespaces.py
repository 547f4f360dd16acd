"""Namespace deletion, as kube-controller-manager's namespace controller does it.

``DELETE`` on a namespace only marks it: ``deletionTimestamp`` set, phase
``Terminating`` (:meth:`.Registry.delete`). While it is terminating the API
server refuses new objects in it with 403 Forbidden (``unable to create new
content in namespace NS because it is being terminated``). This controller then
deletes everything in it with ordinary deletes (pods get their grace period and
go when the kubelet has stopped them; finalizers are honoured) and, once nothing
is left, removes the ``kubernetes`` finalizer from ``spec.finalizers``: the
namespace is then gone.

Not modelled: the namespace's status conditions (``NamespaceDeletionContentFailure``
and the others), and finalizers of other parties in ``spec.finalizers`` are
removed with ours rather than waited for.
"""

from __future__ import annotations

import contextlib

from . import resources as res
from .controller import Controller
from .errors import ApiError
from .registry import NAMESPACES, Registry
from .store import WatchEvent, clone

__all__ = ["NamespaceController"]


class NamespaceController(Controller):
    """Empties and removes terminating namespaces; see the module docstring."""

    task_name = "namespace-controller"

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self._terminating: set[str] = set()

    def on_event(self, event: WatchEvent) -> None:
        """Note terminating namespaces; wake when anything in one changes."""
        meta = event.obj["metadata"]
        if event.resource is NAMESPACES:
            if event.type != "DELETED" and meta.get("deletionTimestamp"):
                self._terminating.add(meta["name"])
                self._wake.set()
            elif event.type == "DELETED":
                self._terminating.discard(meta["name"])
        elif meta.get("namespace") in self._terminating:
            self._wake.set()

    async def run_pass(self) -> None:
        """Delete the content of each terminating namespace; remove the empty ones."""
        store = self.registry.store
        for name in sorted(self._terminating):
            left = 0
            for resource in res.RESOURCES:
                if not (resource.namespaced and resource.stored):
                    continue
                for obj in list(store.objects(resource, name)):
                    left += 1
                    if not obj["metadata"].get("deletionTimestamp"):
                        with contextlib.suppress(ApiError):
                            self.registry.delete(resource, name, obj["metadata"]["name"])
            namespace = store.get(NAMESPACES, "", name)
            if left == 0 and namespace is not None:
                new = clone(namespace)
                new["spec"] = {**(new.get("spec") or {}), "finalizers": []}
                self.registry.replace(NAMESPACES, new, namespace)
