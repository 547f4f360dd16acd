"""Build LSSTSpawners the way KubeSpawner's own tests do: a stand-in User (with an
auth_state) and Hub, traitlets Config, and the real Kubernetes client pointed at
the dev cluster. The hub database is a real JupyterHub ORM in SQLite."""

from __future__ import annotations

import itertools
from typing import Any

from jupyterhub import orm
from jupyterhub.objects import Hub, Server
from traitlets.config import Config

from lsst_hub.identity import Group, Identity
from lsst_hub.spawner import LSSTSpawner

_ids = itertools.count(1)


def identity(name: str, uid: int | None = None, home: str | None = None) -> Identity:
    """A POSIX identity as the authenticator would store it."""
    number = uid if uid is not None else 20000 + next(_ids)
    return Identity(
        username=name,
        ldap_dn=f"uid={name},ou=people,dc=example,dc=org",
        uid_number=number,
        gid_number=number,
        home_directory=home or f"/gpfs/home/{name}",
        groups=(Group("hpcusers", 30000), Group("jupyterhub-users")),
        display_name=f"{name.title()} Test",
    )


class FakeUser:
    """The parts of ``jupyterhub.user.User`` a spawner uses."""

    def __init__(self, name: str, auth_state: dict[str, Any] | None) -> None:
        self.name = name
        self.id = next(_ids)
        self.escaped_name = name
        self.server = Server()
        self._auth_state = auth_state

    @property
    def url(self) -> str:
        return str(self.server.url)

    async def get_auth_state(self) -> dict[str, Any] | None:
        return self._auth_state


class HubDB:
    """A real JupyterHub database: which servers the hub knows."""

    def __init__(self) -> None:
        self.db = orm.new_session_factory("sqlite:///:memory:")()

    def orm_spawner(self, username: str, server: str = "", running: bool = True) -> orm.Spawner:
        user = self.db.query(orm.User).filter_by(name=username).one_or_none()
        if user is None:
            user = orm.User(name=username)
            self.db.add(user)
            self.db.commit()
        spawner = orm.Spawner(user=user, name=server)
        self.db.add(spawner)
        if running:
            spawner.server = orm.Server()
        self.db.commit()
        return spawner


def base_config(namespace: str, host: str, **traits: Any) -> Config:
    """Config for tests: fast, quiet, in ``namespace`` on the cluster at ``host``."""
    c = Config()
    c.LSSTSpawner.namespace = namespace
    c.LSSTSpawner.k8s_api_host = host
    c.LSSTSpawner.image = "quay.io/jupyter/base-notebook:latest"
    c.LSSTSpawner.cmd = ["jupyterhub-singleuser"]
    c.LSSTSpawner.start_timeout = 60
    c.LSSTSpawner.k8s_api_request_timeout = 10
    c.LSSTSpawner.k8s_api_request_retry_timeout = 30
    c.LSSTSpawner.cpu_guarantee = 0.5
    c.LSSTSpawner.mem_guarantee = "512M"
    c.LSSTSpawner.home_bind_timeout = 20.0
    c.LSSTSpawner.hub_instance = "test-hub"
    for key, value in traits.items():
        setattr(c.LSSTSpawner, key, value)
    return c


def make_spawner(
    config: Config,
    name: str,
    *,
    person: Identity | None = None,
    auth_state: dict[str, Any] | bool | None = True,
    hub_db: HubDB | None = None,
    server_name: str = "",
    hub: Hub | None = None,
) -> LSSTSpawner:
    """An LSSTSpawner for user ``name``; ``auth_state=None`` for none at all.

    ``hub`` is the hub it belongs to (default: ``Hub()``, port 8081).
    """
    if auth_state is True:
        auth_state = (person or identity(name)).to_auth_state()
    user = FakeUser(name, auth_state or None)
    hub_db = hub_db or HubDB()
    orm_spawner = hub_db.orm_spawner(name, server_name)
    return LSSTSpawner(
        hub=hub or Hub(),
        user=user,
        db=hub_db.db,
        orm_spawner=orm_spawner,
        config=config,
        api_token="abc123",
        oauth_client_id="unused",
    )
