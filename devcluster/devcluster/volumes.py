"""Static PersistentVolume binding, as the controller-manager's PV controller does it.

A PVC naming ``spec.volumeName`` binds to that PV when the PV is Available and
its ``claimRef`` is empty or names this claim, and the PV satisfies the claim
(same storageClassName, large enough, the access modes asked for). A PVC
without ``volumeName`` binds to a PV pre-bound to it, or to the smallest
Available unclaimed PV that satisfies it. Both then go ``Bound``: the PV's
``claimRef`` is filled, the PVC's ``volumeName``, ``capacity`` and
``accessModes`` are set. A claim that cannot bind stays ``Pending`` with a
``FailedBinding`` event (once per distinct reason).

When a bound claim is deleted, its PV goes ``Released`` under the ``Retain``
reclaim policy (the data stays: a PV is never deleted for ``Retain``),
``Available`` again under ``Recycle``, and is removed under ``Delete``.
Dynamic provisioning and the ``pvc-protection`` finalizer are not simulated.
"""

from __future__ import annotations

from .controller import Controller
from .quantity import QuantityError, value
from .registry import PVCS, PVS, Registry
from .store import Obj, WatchEvent, clone

__all__ = ["VolumeBinder"]


def _storage(obj: Obj, *path: str) -> int:
    quantity: object = obj
    for p in path:
        quantity = quantity.get(p) if isinstance(quantity, dict) else None
    try:
        return value(quantity) if isinstance(quantity, str | int | float) else 0
    except QuantityError:
        return 0


def _unsatisfied(pv: Obj, pvc: Obj) -> str | None:
    """kube-controller-manager's reason a PV cannot serve a claim, or None."""
    pv_spec, pvc_spec = pv.get("spec", {}), pvc.get("spec", {})
    if (pv_spec.get("storageClassName") or "") != (pvc_spec.get("storageClassName") or ""):
        return "storageClassName does not match"
    if _storage(pv_spec, "capacity", "storage") < _storage(
        pvc_spec, "resources", "requests", "storage"
    ):
        return "requested PV is too small"
    if not set(pvc_spec.get("accessModes") or []) <= set(pv_spec.get("accessModes") or []):
        return "incompatible accessMode"
    if (pv_spec.get("volumeMode") or "Filesystem") != (pvc_spec.get("volumeMode") or "Filesystem"):
        return "incompatible volumeMode"
    return None


def _claim_ref_matches(pv: Obj, pvc: Obj) -> bool | None:
    """True if the PV's claimRef names this claim, False if another one, None if empty."""
    ref = pv.get("spec", {}).get("claimRef")
    if not ref:
        return None
    meta = pvc["metadata"]
    if ref.get("name") != meta["name"] or ref.get("namespace") != meta.get("namespace"):
        return False
    return not ref.get("uid") or ref["uid"] == meta.get("uid")


class VolumeBinder(Controller):
    """Binds PVCs to static PVs and releases PVs whose claim is gone."""

    task_name = "pv-binder"

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self._warned: dict[tuple[str, str], str] = {}

    def on_event(self, event: WatchEvent) -> None:
        """Wake on any change to a PV or a PVC."""
        if event.resource is PVS or event.resource is PVCS:
            self._wake.set()

    async def run_pass(self) -> None:
        """Reconcile every claim and volume."""
        self.reconcile()

    def reconcile(self) -> None:
        """One pass over every claim and volume."""
        store = self.registry.store
        for pvc in list(store.objects(PVCS)):
            if pvc.get("status", {}).get("phase") != "Bound" and not pvc["metadata"].get(
                "deletionTimestamp"
            ):
                self._bind_claim(pvc)
        for pv in list(store.objects(PVS)):
            self._check_released(pv)

    def _bind_claim(self, pvc: Obj) -> None:
        store = self.registry.store
        name = pvc.get("spec", {}).get("volumeName")
        if name:
            pv = store.get(PVS, "", name)
            if pv is None:
                return self._warn(pvc, f'volume "{name}" not found')
            owner = _claim_ref_matches(pv, pvc)
            if owner is False:
                return self._warn(pvc, f'volume "{name}" already bound to a different claim.')
            if owner is None and pv.get("status", {}).get("phase") != "Available":
                return self._warn(pvc, f'volume "{name}" is not available')
            reason = _unsatisfied(pv, pvc)
            if reason is not None:
                return self._warn(pvc, f'Cannot bind to requested volume "{name}": {reason}')
            return self._bind(pv, pvc)
        candidates = [
            pv
            for pv in store.objects(PVS)
            if pv.get("status", {}).get("phase") == "Available"
            and _claim_ref_matches(pv, pvc) is not False
            and _unsatisfied(pv, pvc) is None
        ]
        if not candidates:
            if not pvc.get("spec", {}).get("storageClassName"):
                self._warn(
                    pvc,
                    "no persistent volumes available for this claim and no storage class is set",
                )
            return None
        candidates.sort(
            key=lambda pv: (
                _claim_ref_matches(pv, pvc) is None,
                _storage(pv, "spec", "capacity", "storage"),
            )
        )
        return self._bind(candidates[0], pvc)

    def _warn(self, pvc: Obj, message: str) -> None:
        key = (pvc["metadata"].get("namespace", ""), pvc["metadata"]["name"])
        if self._warned.get(key) == message:
            return
        self._warned[key] = message
        self.registry.record_event(
            pvc,
            "FailedBinding",
            message,
            type_="Warning",
            component="persistentvolume-controller",
        )

    def _bind(self, pv: Obj, pvc: Obj) -> None:
        meta = pvc["metadata"]
        self._warned.pop((meta.get("namespace", ""), meta["name"]), None)
        new_pv = clone(pv)
        new_pv["spec"]["claimRef"] = {
            "kind": "PersistentVolumeClaim",
            "namespace": meta.get("namespace", ""),
            "name": meta["name"],
            "uid": meta.get("uid"),
            "apiVersion": "v1",
            "resourceVersion": meta.get("resourceVersion"),
        }
        new_pv["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bound-by-controller"] = (
            "yes"
        )
        new_pv["status"] = {"phase": "Bound"}
        self.registry.replace(PVS, new_pv, pv)
        new_pvc = clone(pvc)
        if not new_pvc["spec"].get("volumeName"):
            new_pvc["spec"]["volumeName"] = pv["metadata"]["name"]
            new_pvc["metadata"].setdefault("annotations", {})[
                "pv.kubernetes.io/bound-by-controller"
            ] = "yes"
        new_pvc["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bind-completed"] = "yes"
        new_pvc["status"] = {
            "phase": "Bound",
            "accessModes": list(pv["spec"].get("accessModes") or []),
            "capacity": dict(pv["spec"].get("capacity") or {}),
        }
        self.registry.replace(PVCS, new_pvc, pvc)

    def _check_released(self, pv: Obj) -> None:
        if pv.get("status", {}).get("phase") == "Pending":
            new = clone(pv)
            new["status"] = {"phase": "Available"}
            self.registry.replace(PVS, new, pv)
            return
        ref = pv.get("spec", {}).get("claimRef")
        if pv.get("status", {}).get("phase") != "Bound" or not ref:
            return
        claim = self.registry.store.get(PVCS, ref.get("namespace", ""), ref.get("name", ""))
        if claim is not None and (not ref.get("uid") or claim["metadata"]["uid"] == ref["uid"]):
            return
        policy = pv["spec"].get("persistentVolumeReclaimPolicy", "Retain")
        if policy == "Delete":
            self.registry.store.remove(PVS, "", pv["metadata"]["name"])
            return
        new = clone(pv)
        if policy == "Recycle":
            new["spec"].pop("claimRef", None)
            new["status"] = {"phase": "Available"}
        else:
            new["status"] = {"phase": "Released"}
        self.registry.replace(PVS, new, pv)
