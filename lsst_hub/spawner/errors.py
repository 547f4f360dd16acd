"""The one exception a spawn fails with: :class:`SpawnError`."""

from __future__ import annotations

from tornado import web

__all__ = ["PodNameTakenError", "SpawnError"]


class SpawnError(web.HTTPError):
    """A spawn that cannot succeed; the message is shown on the spawn page.

    An HTTP error so that JupyterHub passes it on as it is: a spawn that fails
    within its first second is answered directly, and JupyterHub would replace
    any other exception by "Unhandled error starting server". ``status_code``
    503 marks a cluster without room (try later), 500 the rest.
    """

    def __init__(self, message: str, status_code: int = 500) -> None:
        super().__init__(status_code, "%s", message)
        # JupyterHub shows this attribute to the person instead of a generic error.
        self.jupyterhub_message = message

    def __str__(self) -> str:
        return self.jupyterhub_message


class PodNameTakenError(SpawnError):
    """The server's pod name is held by another hub user's pod, which stays."""
