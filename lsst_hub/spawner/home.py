"""Step 2 of a spawn: the person's home, checked, bound and ready to mount.

:func:`prepare_home` checks that the home directory is the person's
(:func:`checked_home`), makes sure its volume exists, is theirs and is bound
(a PersistentVolume and claim per person, or a ``subPath`` of one shared
claim), writes the passwd ConfigMap if asked, and returns what the pod mounts.
Nothing here deletes anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..identity import Identity
from ..names import HOME_PV_PREFIX, HOME_PVC_PREFIX, PASSWD_CONFIGMAP_PREFIX, Obj
from . import builders
from .errors import SpawnError
from .kube import HomeVolumeError, Kube, KubeError
from .paths import (
    HomePathError,
    check_home_owner,
    expand_placeholders,
    home_relative_to,
    safe_name,
    validate_home,
    validate_mount_path,
)

__all__ = [
    "Home",
    "HomeSettings",
    "checked_home",
    "home_volume_names",
    "prepare_home",
]


@dataclass(frozen=True)
class HomeSettings:
    """The spawner's home traits, as one value (see ``LSSTSpawner``'s help)."""

    namespace: str
    allowed_roots: tuple[str, ...]
    pattern: str
    volume_mode: str
    pv_source: Mapping[str, Any]
    capacity: str
    bind_timeout: float
    shared_claim: str
    shared_root: str
    mount_path: str
    synthesize_passwd: bool
    #: Labels of the volumes, claims and ConfigMaps made for the person.
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Home:
    """A home ready to mount: where it is, where the pod sees it, and how."""

    path: str
    mount: str
    volumes: tuple[Obj, ...]
    mounts: tuple[Obj, ...]


def home_volume_names(username: str) -> tuple[str, str]:
    """The (PersistentVolume, claim) names of ``username``'s home (``per-user-pv``)."""
    return safe_name(username, HOME_PV_PREFIX), safe_name(username, HOME_PVC_PREFIX)


def checked_home(settings: HomeSettings, identity: Identity, path: str) -> str:
    """``path`` normalized if it is ``identity``'s home, else :class:`HomePathError`.

    Below an allowed root (:func:`.paths.validate_home`) and the person's by
    the home directory pattern.
    """
    home = validate_home(path, settings.allowed_roots)
    check_home_owner(home, identity.username, identity.uid_number, settings.pattern)
    return home


def _mount_path(settings: HomeSettings, identity: Identity, home: str) -> str:
    if not settings.mount_path:
        return home
    values = {"home_directory": home, "username": identity.username}
    return validate_mount_path(expand_placeholders(settings.mount_path, values))


async def _home_volume(
    kube: Kube, settings: HomeSettings, identity: Identity, home: str, mount: str
) -> tuple[Obj, Obj]:
    """Make sure the home volume exists, is this person's and is bound."""
    if settings.volume_mode == "shared-claim":
        if not settings.shared_claim:
            raise SpawnError(
                "home_volume_mode is 'shared-claim' but c.LSSTSpawner.shared_home_claim is not set"
            )
        sub_path = home_relative_to(home, settings.shared_root)
        await kube.wait_pvc_bound(settings.shared_claim, settings.bind_timeout)
        return builders.shared_home_volume(settings.shared_claim, sub_path, mount)
    pv_name, pvc_name = home_volume_names(identity.username)
    source = builders.expand_source(settings.pv_source, identity, home)
    # What is mounted is checked, after expansion: a hostPath template without
    # {home_directory} could name the root or someone else's home.
    for path in builders.source_paths(source):
        checked_home(settings, identity, path)
    pv = builders.home_pv(
        name=pv_name,
        source=source,
        claim_namespace=settings.namespace,
        claim_name=pvc_name,
        capacity=settings.capacity,
        labels=settings.labels,
    )
    await kube.ensure_home_pv(pv)
    pvc = builders.home_pvc(
        name=pvc_name,
        namespace=settings.namespace,
        pv_name=pv_name,
        capacity=settings.capacity,
        labels=settings.labels,
    )
    await kube.ensure_home_pvc(pvc)

    async def rebind(claim: Obj) -> None:
        await kube.rebind_released_pv(pv_name, claim)

    await kube.wait_pvc_bound(pvc_name, settings.bind_timeout, on_pending=rebind)
    return builders.user_home_volume(pvc_name, mount)


async def _passwd(
    kube: Kube, settings: HomeSettings, identity: Identity, home: str
) -> tuple[Obj, list[Obj]]:
    name = safe_name(identity.username, PASSWD_CONFIGMAP_PREFIX)
    configmap = builders.passwd_configmap(
        identity, name=name, namespace=settings.namespace, home=home, labels=settings.labels
    )
    await kube.apply_configmap(configmap)
    return builders.passwd_volume(name)


async def prepare_home(
    kube: Kube,
    settings: HomeSettings,
    identity: Identity,
    log: logging.Logger,
    log_name: str,
) -> Home:
    """The person's home, checked and bound, with the pod's volumes and mounts.

    Raises
    ------
    SpawnError
        Saying why the home cannot be mounted: not the person's, a volume or
        claim that holds something else, not bound in time, the API failing.
    """
    try:
        home = checked_home(settings, identity, identity.home_directory)
    except HomePathError as exc:
        log.error("refusing the home of %s: %s", log_name, exc)
        raise SpawnError(f"cannot mount the home of {identity.username!r}: {exc}") from exc
    try:
        mount = _mount_path(settings, identity, home)
        volume, mount_spec = await _home_volume(kube, settings, identity, home, mount)
        volumes, mounts = [volume], [mount_spec]
        if settings.synthesize_passwd:
            passwd, passwd_mounts = await _passwd(kube, settings, identity, mount)
            volumes.append(passwd)
            mounts.extend(passwd_mounts)
    except (HomeVolumeError, HomePathError) as exc:
        raise SpawnError(f"cannot mount the home of {identity.username!r}: {exc}") from exc
    except KubeError as exc:
        raise SpawnError(f"cannot prepare the home volume: {exc}") from exc
    return Home(path=home, mount=mount, volumes=tuple(volumes), mounts=tuple(mounts))
