"""Step 4 of a spawn: the pod about to be created is the one planned, under a
name that is this user's.

KubeSpawner builds the pod (``get_pod_manifest``, which LSSTSpawner makes
personal with :func:`.builders.personalize_pod`), runs ``modify_pod_hook`` on
it and creates it. LSSTSpawner puts a :class:`FinalPodCheck` in the hook's
place: it runs the admin's own hook, then refuses a pod that no longer keeps
the plan's promises (:func:`.builders.pod_violations`), so nothing configured
after the spawner's changes can undo them.

KubeSpawner deletes whatever pod already has the name it is about to use. A
user renamed while their server runs keeps their pod, and its name; a new user
with the old name would get the same pod name. :func:`pod_owner_conflict` tells
such a pod from the user's own, by the JupyterHub user id the spawner records
on every pod (:data:`~lsst_hub.names.USER_ID_ANNOTATION`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from ..names import USER_ID_ANNOTATION, USERNAME_KEY
from . import builders
from .errors import SpawnError

__all__ = ["FinalPodCheck", "pod_owner_conflict"]


class FinalPodCheck:
    """A ``modify_pod_hook``: the admin's hook, then the final pod check.

    Parameters
    ----------
    hook
        The configured ``modify_pod_hook`` (or None), called as KubeSpawner
        calls it: ``hook(spawner, pod)``, a coroutine function or not.
    plan
        What the pod must keep (the one being started).
    """

    def __init__(self, hook: Callable[[Any, Any], Any] | None, plan: builders.PodPlan) -> None:
        self.hook = hook
        self.plan = plan

    @classmethod
    def around(cls, hook: Any, plan: builders.PodPlan) -> FinalPodCheck:
        """A check for ``plan`` after ``hook``, or after the hook ``hook`` wraps
        when it is a check itself (from an earlier spawn)."""
        if isinstance(hook, FinalPodCheck):
            hook = hook.hook
        return cls(hook, plan)

    async def __call__(self, spawner: Any, pod: Any) -> Any:
        """Run the admin's hook on ``pod``, then check the result.

        Raises
        ------
        SpawnError
            When the pod breaks a promise; the details go to the hub's log.
        """
        if self.hook is not None:
            pod = self.hook(spawner, pod)
            if inspect.isawaitable(pod):
                pod = await pod
        problems = builders.pod_violations(
            spawner.api.api_client.sanitize_for_serialization(pod), self.plan
        )
        if problems:
            # A configuration error, not a person's: say so in the hub's log and
            # keep the details (uids, groups) out of the person's message.
            spawner.log.error(
                "refusing to create pod %s: after modify_pod_hook %s",
                spawner.pod_name,
                "; ".join(problems),
            )
            raise SpawnError(
                "The server's pod was changed by the hub's configuration so that it "
                "would not run as you with your home; please tell the administrators."
            )
        return pod


def pod_owner_conflict(
    pod: Mapping[str, Any] | None, *, user_id: str, username: str, recorded_only: bool = False
) -> str | None:
    """Why an existing ``pod`` with this server's pod name is not this user's.

    The owner is the JupyterHub user id the spawner records on the pod, which
    a rename keeps. A pod without it (made by an earlier version, or not by
    the spawner) is judged by KubeSpawner's username annotation, and a pod
    with neither is no notebook pod of a hub user; with ``recorded_only``,
    such pods are taken as this user's (as KubeSpawner takes them). Returns
    None when there is no pod or it is this user's (``user_id``, ``username``).
    """
    if pod is None:
        return None
    meta = pod.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    recorded = annotations.get(USER_ID_ANNOTATION)
    owner = annotations.get(USERNAME_KEY)
    if recorded is not None:
        if str(recorded) == user_id:
            return None
        whose = f"hub user id {recorded}" + (f" (started as {owner!r})" if owner else "")
    elif recorded_only:
        return None
    elif owner is not None:
        if str(owner) == username:
            return None
        whose = f"hub user {owner!r}"
    else:
        whose = "no hub user (it is not a notebook server's pod)"
    return f"pod {meta.get('namespace')}/{meta.get('name')} belongs to {whose}"
