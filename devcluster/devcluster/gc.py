"""Garbage collection by ``ownerReferences``, as kube-controller-manager's collector does it.

Background propagation only (the API server's default for most kinds): once an
owner is gone from the store, its dependents are deleted after it, by this
controller, as ordinary deletes (a pod gets its grace period, finalizers are
honoured). An owner counts as gone when no object of its kind has its name
*and* uid (a new object under the old name does not keep the dependents). A
dependent that still has another owner is not deleted: the references to the
owners that are gone are removed from it, as the real collector does. A
reference to a kind the stand-in does not serve is left alone.

Not modelled: ``foreground`` and ``orphan`` propagation (``propagationPolicy``
in DeleteOptions), ``blockOwnerDeletion``, and cluster-scoped objects naming a
namespaced owner (the real collector reports those as invalid).
"""

from __future__ import annotations

import contextlib

from . import resources as res
from .controller import Controller
from .errors import ApiError
from .registry import Registry
from .resources import ResourceType
from .store import Obj, WatchEvent, clone

__all__ = ["GarbageCollector"]

Key = tuple[str, str, str]  # (resource key, namespace, name)


def _kind_of(ref: Obj) -> ResourceType | None:
    api_version = str(ref.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    for resource in res.RESOURCES:
        if (
            resource.stored
            and resource.group == group
            and resource.version == version
            and resource.kind == ref.get("kind")
        ):
            return resource
    return None


class GarbageCollector(Controller):
    """Deletes dependents whose owners are all gone; see the module docstring."""

    task_name = "garbage-collector"

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self._dependents: dict[str, set[Key]] = {}  # owner uid -> dependents
        self._check: set[Key] = set()

    def on_event(self, event: WatchEvent) -> None:
        """Index dependents by owner uid; queue what an event may have orphaned."""
        meta = event.obj["metadata"]
        key = (event.resource.key, meta.get("namespace", ""), meta["name"])
        old_refs = ((event.old or {}).get("metadata") or {}).get("ownerReferences") or []
        for ref in old_refs:
            self._dependents.get(str(ref.get("uid")), set()).discard(key)
        if event.type == "DELETED":
            self._check |= self._dependents.pop(str(meta.get("uid")), set())
            self._check.discard(key)
        else:
            refs = meta.get("ownerReferences") or []
            for ref in refs:
                self._dependents.setdefault(str(ref.get("uid")), set()).add(key)
            if refs:
                self._check.add(key)  # its owner may never have existed, or be gone already
        if self._check:
            self._wake.set()

    def _alive(self, ref: Obj, namespace: str) -> bool | None:
        """Whether the owner exists (None: a kind the stand-in does not know)."""
        kind = _kind_of(ref)
        if kind is None:
            return None
        owner = self.registry.store.get(
            kind, namespace if kind.namespaced else "", str(ref.get("name") or "")
        )
        return owner is not None and owner["metadata"].get("uid") == ref.get("uid")

    async def run_pass(self) -> None:
        """Delete (or trim) each queued dependent whose owners are gone."""
        queued, self._check = self._check, set()
        by_key = {r.key: r for r in res.RESOURCES}
        for resource_key, namespace, name in sorted(queued):
            resource = by_key[resource_key]
            obj = self.registry.store.get(resource, namespace, name)
            if obj is None or obj["metadata"].get("deletionTimestamp"):
                continue
            refs = obj["metadata"].get("ownerReferences") or []
            states = [self._alive(ref, namespace) for ref in refs]
            with contextlib.suppress(ApiError):  # gone meanwhile, or a conflict: fine
                if refs and all(s is False for s in states):
                    self.registry.delete(resource, namespace, name)
                elif False in states:
                    new = clone(obj)
                    new["metadata"]["ownerReferences"] = [
                        r for r, s in zip(refs, states, strict=True) if s is not False
                    ]
                    self.registry.replace(resource, new, obj)
