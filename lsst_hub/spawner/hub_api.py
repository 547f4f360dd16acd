"""Which servers the hub knows, asked over its REST API (for the orphan service).

The orphan service (:mod:`.reconcile_service`) runs outside the hub process, so
it cannot read the hub's database the way the spawner does
(:func:`.reconcile.known_servers_from_db`); it asks ``GET /users`` instead. A
server the REST API lists is *active*: ready, or pending (spawning, stopping,
or being checked by a hub that has just started), which is what the orphan
rule needs: a pending spawn is known.

With the ``admin:server_state`` scope the hub also shows each server's spawner
state, where KubeSpawner records the server's pod: a server whose user was
renamed while it ran is still known by its pod (:class:`.reconcile.KnownServers`).
The REST API only reads state; no endpoint writes it.

Every answer that could make a live server look unknown is an error here, never
an empty set: a token that cannot see every user's servers or their state, a
page that does not parse, an HTTP error. The caller then deletes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from .reconcile import KnownServers, ServerKey, pod_of_state

__all__ = ["REQUIRED_SCOPES", "HubAPI", "HubAPIError"]

#: The scopes the service's token needs, unfiltered: every user, every server, and
#: the servers' state (which names their pods; the REST API only reads it).
REQUIRED_SCOPES = ("list:users", "read:servers", "admin:server_state")
_PAGINATION = "application/jupyterhub-pagination+json"


class HubAPIError(RuntimeError):
    """The hub did not say which servers it knows (unreachable, refused, unusable)."""


class HubAPI:
    """A client of the hub's REST API for one reconciliation pass.

    Parameters
    ----------
    session
        An open :class:`aiohttp.ClientSession`; the caller closes it.
    api_url
        The hub's API URL (``JUPYTERHUB_API_URL``), e.g. ``http://hub:8081/hub/api``.
    token
        The service's API token (``JUPYTERHUB_API_TOKEN``).
    request_timeout
        Seconds one request may take.
    page_size
        Users asked for per page (the hub caps it at ``api_page_max_limit``).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str,
        token: str,
        *,
        request_timeout: float = 30.0,
        page_size: int = 200,
    ) -> None:
        self.session = session
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=request_timeout)
        self.page_size = page_size

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """``GET`` a path under the API URL; the decoded JSON, or None for 404.

        Raises
        ------
        HubAPIError
            No answer, an error status, or a body that is not JSON.
        """
        url = f"{self.api_url}/{path.lstrip('/')}"
        headers = {"Authorization": f"token {self.token}", "Accept": _PAGINATION}
        try:
            async with self.session.get(
                url, params=params, headers=headers, timeout=self.timeout
            ) as response:
                body = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HubAPIError(
                f"GET {url}: no answer from the hub ({type(exc).__name__}: {exc})"
            ) from None
        if status == 404:
            return None
        if status != 200:
            raise HubAPIError(f"GET {url}: the hub answered {status}: {body[:300]}")
        try:
            return json.loads(body)
        except ValueError:
            raise HubAPIError(f"GET {url}: the answer is not JSON: {body[:300]!r}") from None

    async def check_scopes(self) -> None:
        """Refuse to go on unless the token sees every user's servers and their state.

        A role limited to some users (``list:users!group=...``), without
        ``read:servers`` or without ``admin:server_state`` would make running
        servers (or a renamed user's) look unknown, and their pods would be deleted.
        """
        me = await self.get("user")
        scopes = set((me or {}).get("scopes") or [])
        missing = [scope for scope in REQUIRED_SCOPES if scope not in scopes]
        if missing:
            raise HubAPIError(
                f"the service's token lacks the unfiltered scopes {missing} (it has "
                f"{sorted(scopes)}); give its role {list(REQUIRED_SCOPES)} in "
                "c.JupyterHub.load_roles"
            )

    async def known_servers(self) -> KnownServers:
        """Every server the hub has as ready or pending, with the pod it records."""
        await self.check_scopes()
        known = KnownServers()
        offset = 0
        while True:
            page = await self.get(
                "users",
                {"state": "active", "offset": str(offset), "limit": str(self.page_size)},
            )
            if not isinstance(page, Mapping) or not isinstance(page.get("items"), list):
                raise HubAPIError(f"GET users: unexpected answer {str(page)[:300]}")
            for user in page["items"]:
                known = known | _servers_of(user)
            following = (page.get("_pagination") or {}).get("next")
            if not following:
                return known
            offset = int(following["offset"])

    async def server_known(self, key: ServerKey) -> bool:
        """Whether the hub knows one server, asked about its user alone.

        Pages of ``GET /users`` can shift while servers stop between two pages;
        asking about each suspected orphan on its own, just before deleting it,
        closes that gap.
        """
        model = await self.get(f"users/{quote(key[0], safe='')}")
        if model is None:
            return False
        return key in _servers_of(model).servers


def _servers_of(user: Mapping[str, Any]) -> KnownServers:
    if "servers" not in user:
        # Without read:servers the hub leaves the key out: never read that as "none".
        raise HubAPIError(f"the hub did not list the servers of {user.get('name')!r}")
    name = str(user["name"])
    servers = user["servers"] or {}
    pods: set[tuple[str, str]] = set()
    for server_name, model in servers.items():
        if not isinstance(model, Mapping) or "state" not in model:
            # Without admin:server_state the hub leaves the state out.
            raise HubAPIError(f"the hub did not show the state of {name}/{server_name}")
        pod = pod_of_state(model["state"])
        if pod is not None:
            pods.add(pod)
    return KnownServers(
        servers=frozenset((name, str(server or "")) for server in servers),
        pods=frozenset(pods),
    )
