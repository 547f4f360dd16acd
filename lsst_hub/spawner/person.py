"""Step 1 of a spawn: whom the server runs as.

The person's :class:`~lsst_hub.identity.Identity` comes from ``auth_state``
(:func:`load_identity`); root and system ids are refused. Containers the
configuration adds to every pod must run as that person too
(:func:`configured_container_problems`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ..identity import Identity, IdentityError, id_problems
from ..names import Z2JH_METADATA_BLOCKER
from . import builders
from .errors import SpawnError

__all__ = ["configured_container_problems", "load_identity", "refuse_privileged_containers"]


async def load_identity(
    user: Any,
    *,
    min_uid: int,
    min_gid: int,
    refused_gids: frozenset[int],
    log: logging.Logger,
    log_name: str,
) -> Identity:
    """The identity of JupyterHub's ``user`` from their ``auth_state``.

    Raises
    ------
    SpawnError
        Without a usable auth_state, saying what the admin must configure
        (there is no fallback to root or the image's user), or for an
        identity with a uid/gid below ``min_uid``/``min_gid`` or a refused or
        negative group id.
    """
    try:
        state = await user.get_auth_state()
    except Exception as exc:
        # A missing JUPYTERHUB_CRYPT_KEY makes decryption itself fail.
        raise SpawnError(
            f"cannot read the login state of {user.name!r} ({exc}); "
            "the hub admin must set JUPYTERHUB_CRYPT_KEY and "
            "c.Authenticator.enable_auth_state = True"
        ) from exc
    try:
        identity = Identity.from_auth_state(user.name, state)
    except IdentityError as exc:
        raise SpawnError(f"cannot start a server for {user.name!r}: {exc}") from exc
    problems = id_problems(identity, min_uid=min_uid, min_gid=min_gid, refused_gids=refused_gids)
    if problems:
        # The authenticator refuses such a login; this is the second line.
        log.error("refusing a server for %s: %s", log_name, "; ".join(problems))
        raise SpawnError(
            f"cannot start a server for {user.name!r}: {'; '.join(problems)}. "
            "Servers never run as root or a system account; ask the directory's "
            "administrators."
        )
    return identity


def _plain(entry: Any) -> dict[str, Any]:
    """A configured container as a dict (client models give snake_case keys)."""
    if isinstance(entry, dict):
        return entry
    to_dict = getattr(entry, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else {}


def configured_container_problems(
    init_containers: Iterable[Any] | None, extra_containers: Iterable[Any] | None
) -> list[str]:
    """Configured containers (KubeSpawner's traits) that ask for root or privileges.

    They run in the person's pod, so as the person without privileges; one
    that asks for more is refused rather than rewritten into something that
    cannot run. Entries may be dicts (camelCase or snake_case) or Kubernetes
    client models.
    """
    problems: list[str] = []
    for trait, entries in (("init_containers", init_containers),
                           ("extra_containers", extra_containers)):  # fmt: skip
        for entry in entries or []:
            container = _plain(entry)
            asks = builders.privilege_requests(container)
            if not asks:
                continue
            name = container.get("name")
            setting = f"c.KubeSpawner.{trait}"
            if trait == "init_containers" and name == Z2JH_METADATA_BLOCKER:
                setting += " / singleuser.cloudMetadata.blockWithIptables"
                fix = (
                    "set singleuser.cloudMetadata.blockWithIptables to false and block "
                    "the cloud metadata address with a NetworkPolicy instead "
                    "(singleuser.networkPolicy)"
                )
            else:
                fix = "remove it, or let it run as the person without privileges"
            problems.append(f"{setting}: container {name!r} asks for {', '.join(asks)}; {fix}")
    return problems


def refuse_privileged_containers(problems: list[str], log: logging.Logger, log_name: str) -> None:
    """Fail the spawn if :func:`configured_container_problems` found any."""
    if problems:
        log.error("refusing to start %s: %s", log_name, "; ".join(problems))
        raise SpawnError(
            "The hub's configuration adds containers that need privileges, but a "
            "server runs only as its person: " + "; ".join(problems) + "."
        )
