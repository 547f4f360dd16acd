"""Refreshes that must end sessions, through a real hub (issue 7, items 3, 6 and 7).

- Item 3: a person removed from the allowed group or deleted from the directory
  cannot start a server with an API token. JupyterHub 6.1+ ignores a refused
  refresh on token requests unless ``auth_refresh_strict`` (which the LDAP
  authenticator turns on by default); the refused refresh also clears the
  identity from ``auth_state``, so the spawner has nothing to start even with
  ``auth_refresh_strict = False``.
- Item 6: with direct bind and no service account nothing can re-read the
  person, so the session ends ``auth_refresh_age`` after the password was given,
  hub restarts included.
- Item 7: a username deleted and given to another entry (same uid, other
  uidNumber, hence another entryUUID) is not adopted: neither the old session and
  its tokens nor a password login of the new person gets the old hub user, until
  an admin deletes it.

Spawns go to a dev cluster subprocess (noop runtime) through the lsst-kube spawner.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyterhub.auth import Authenticator

from devcluster.testing import start_devcluster_process
from tests.auth.policy_support import (
    People,
    auth_state,
    holds_identity,
    hub_config,
    people,
    user_token,
    with_token,
)
from tests.support.hub_fixtures import RunningHub, login, new_session, start_hub
from tests.support.kubeconfig import kube_request
from tests.support.ldap_fixtures import authenticator_config
from tests.support.slapd import PEOPLE_DN, Slapd

pytestmark = pytest.mark.slow

StartHub = Callable[..., RunningHub]
HAS_STRICT = "auth_refresh_strict" in Authenticator.class_trait_names()

SPAWNER = """
c.JupyterHub.spawner_class = "lsst-kube"
c.LSSTSpawner.namespace = "jhub"
c.LSSTSpawner.k8s_api_host = {url!r}
c.LSSTSpawner.hub_instance = "policy"
c.LSSTSpawner.image = "local/irrelevant:1"
c.LSSTSpawner.cpu_guarantee = 0.1
c.LSSTSpawner.mem_guarantee = "64M"
c.LSSTSpawner.start_timeout = 20
c.Authenticator.refresh_pre_spawn = True
"""


class Cluster:
    """A dev cluster subprocess with the namespace ``jhub``."""

    def __init__(self, url: str, kubeconfig: Path) -> None:
        self.url = url
        self.kubeconfig = kubeconfig

    def pods(self) -> list[str]:
        response = kube_request(self.kubeconfig, "GET", "/api/v1/namespaces/jhub/pods", timeout=30)
        response.raise_for_status()
        return sorted(p["metadata"]["name"] for p in response.json()["items"])


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Cluster]:
    # One for the module (each start costs seconds): no test here ever gets a pod, and
    # each looks only for its own person's.
    proc = start_devcluster_process(
        tmp_path_factory.mktemp("devcluster-proc"), pytestconfig.rootpath, nodes=1, runtime="noop"
    )
    try:
        found = Cluster(proc.url, proc.kubeconfig)
        created = kube_request(
            found.kubeconfig, "POST", "/api/v1/namespaces", json={"metadata": {"name": "jhub"}}
        )
        created.raise_for_status()
        yield found
    finally:
        proc.stop()


@pytest.fixture
def made(slapd: Slapd) -> Iterator[People]:
    with people(slapd) as found:
        yield found


def spawning_hub(
    jupyterhub_factory: StartHub, slapd: Slapd, cluster: Cluster, *extra: str
) -> RunningHub:
    config = hub_config(authenticator_config(slapd), SPAWNER.format(url=cluster.url), *extra)
    return jupyterhub_factory(config, env={"KUBECONFIG": str(cluster.kubeconfig)})


def assert_no_server(hub: RunningHub, cluster: Cluster, name: str, response: Any) -> None:
    """The spawn request was refused and nothing started, now or a little later."""
    assert response.status_code not in (201, 202), (response.status_code, response.text)
    for _ in range(2):
        assert not [pod for pod in cluster.pods() if name in pod]
        time.sleep(1.0)
    assert "" not in (hub.api("GET", f"users/{name}").json().get("servers") or {})


# -- item 3 ------------------------------------------------------------------------
@pytest.mark.parametrize("removal", ["left the allowed group", "deleted"])
@pytest.mark.parametrize(
    "strict",
    [
        pytest.param(None, id="strict-default"),
        pytest.param(
            False,
            id="strict-off",
            marks=pytest.mark.skipif(not HAS_STRICT, reason="JupyterHub < 6.1 is always strict"),
        ),
    ],
)
def test_removed_person_cannot_start_a_server_with_a_token(
    jupyterhub_factory: StartHub,
    slapd: Slapd,
    cluster: Cluster,
    made: People,
    removal: str,
    strict: bool | None,
) -> None:
    extra = [] if strict is None else [f"c.Authenticator.auth_refresh_strict = {strict}"]
    hub = spawning_hub(jupyterhub_factory, slapd, cluster, *extra)
    made.add("tina", "tinapw", 20301, ["jupyterhub-users"])
    assert login(hub, "tina", "tinapw").status_code == 302
    token = user_token(hub, "tina")
    assert holds_identity(auth_state(hub, "tina"))

    if removal == "deleted":
        made.delete("tina")
    else:
        made.leave("tina", "jupyterhub-users")
    response = with_token(hub, "POST", "users/tina/server", token)
    assert_no_server(hub, cluster, "tina", response)
    state = auth_state(hub, "tina")
    assert not holds_identity(state)
    assert state is not None and state["entry"]["uid_number"] == 20301


# -- item 6 ------------------------------------------------------------------------
def direct_bind_settings(slapd: Slapd) -> dict[str, Any]:
    return {
        **authenticator_config(slapd),
        "search_bind_dn": "",
        "search_bind_password": "",
        "bind_dn_template": "uid={username}," + PEOPLE_DN,
    }


def test_direct_bind_session_ends_after_auth_refresh_age(
    jupyterhub_factory: StartHub, slapd: Slapd
) -> None:
    config = hub_config(direct_bind_settings(slapd), "c.Authenticator.auth_refresh_age = 3")
    hub = jupyterhub_factory(config)
    session = new_session()
    assert login(hub, "bob", "bobpw", session=session).status_code == 302
    token = user_token(hub, "bob")
    home = f"{hub.url}/hub/home"
    assert session.get(home, allow_redirects=False, timeout=60).status_code == 200
    assert with_token(hub, "GET", "user", token).status_code == 200

    time.sleep(3.5)
    expired = session.get(home, allow_redirects=False, timeout=60)
    assert expired.status_code == 302 and "/hub/login" in expired.headers["Location"]
    assert with_token(hub, "GET", "user", token).status_code == 403
    assert not holds_identity(auth_state(hub, "bob"))
    assert "last gave the password" in hub.log_text()

    # The password again: a fresh session.
    session = new_session()
    assert login(hub, "bob", "bobpw", session=session).status_code == 302
    assert session.get(home, allow_redirects=False, timeout=60).status_code == 200
    assert auth_state(hub, "bob")["uid_number"] == 10002  # type: ignore[index]


def test_direct_bind_password_age_survives_a_hub_restart(
    slapd: Slapd, cluster: Cluster, tmp_path: Path
) -> None:
    age = 30
    config = hub_config(
        direct_bind_settings(slapd),
        SPAWNER.format(url=cluster.url),
        f"c.Authenticator.auth_refresh_age = {age}",
    )
    # The same database and encryption key after the restart.
    env = {"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32), "KUBECONFIG": str(cluster.kubeconfig)}
    hub = start_hub(tmp_path / "hub", config, env)
    try:
        session = new_session()
        assert login(hub, "bob", "bobpw", session=session).status_code == 302
        given = time.time()
        token = user_token(hub, "bob")

        # A restart forgets JupyterHub's in-memory refresh times, not the password's.
        hub.stop()
        hub = start_hub(tmp_path / "hub", config, env)
        assert time.time() - given < age, "the hub restart took longer than auth_refresh_age"
        home = f"{hub.url}/hub/home"
        assert session.get(home, allow_redirects=False, timeout=60).status_code == 200

        # auth_refresh_age after the password (not after the restart) no spawn starts.
        time.sleep(max(0.0, given + age + 1 - time.time()))
        response = with_token(hub, "POST", "users/bob/server", token)
        assert response.status_code == 403, response.text
        assert_no_server(hub, cluster, "bob", response)
        assert not holds_identity(auth_state(hub, "bob"))
        assert "last gave the password" in hub.log_text()
    finally:
        hub.stop()


# -- item 7 ------------------------------------------------------------------------
def reuse_name(made: People, uid: str, new_uid_number: int, password: str) -> None:
    """Delete ``uid`` and create a new entry under the same name (another person)."""
    made.delete(uid)
    made.add(uid, password, new_uid_number, ["jupyterhub-users"])


def test_reused_name_refused_on_refresh_then_on_login(
    jupyterhub_factory: StartHub, slapd: Slapd, cluster: Cluster, made: People
) -> None:
    hub = spawning_hub(jupyterhub_factory, slapd, cluster)
    made.add("rita", "ritapw", 20401, ["jupyterhub-users"])
    assert login(hub, "rita", "ritapw").status_code == 302
    token = user_token(hub, "rita")
    reuse_name(made, "rita", 20402, "newritapw")

    # The old person's token cannot start a pod as the new person.
    response = with_token(hub, "POST", "users/rita/server", token)
    assert_no_server(hub, cluster, "rita", response)
    state = auth_state(hub, "rita")
    assert not holds_identity(state)
    assert state is not None and state["entry"]["uid_number"] == 20401
    assert "another directory entry now holds the name" in hub.log_text()

    # The new person cannot adopt the hub user by logging in ...
    assert login(hub, "rita", "newritapw").status_code == 403
    assert "delete or rename the old hub user 'rita'" in hub.log_text()
    assert with_token(hub, "POST", "users/rita/server", token).status_code not in (201, 202)

    # ... until an admin deletes it; then the new person starts afresh.
    assert hub.api("DELETE", "users/rita").status_code == 204
    assert login(hub, "rita", "newritapw").status_code == 302
    assert auth_state(hub, "rita")["uid_number"] == 20402  # type: ignore[index]
    assert with_token(hub, "GET", "user", token).status_code == 403  # old token gone


def test_reused_name_refused_on_login_before_any_refresh(
    jupyterhub_factory: StartHub, slapd: Slapd, cluster: Cluster, made: People
) -> None:
    hub = spawning_hub(
        jupyterhub_factory, slapd, cluster, "c.Authenticator.auth_refresh_age = 3600"
    )
    made.add("rosa", "rosapw", 20411, ["jupyterhub-users"])
    assert login(hub, "rosa", "rosapw").status_code == 302
    token = user_token(hub, "rosa")
    reuse_name(made, "rosa", 20412, "newrosapw")

    assert login(hub, "rosa", "newrosapw").status_code == 403
    assert auth_state(hub, "rosa")["uid_number"] == 20411  # type: ignore[index]
    response = with_token(hub, "POST", "users/rosa/server", token)
    assert_no_server(hub, cluster, "rosa", response)


def test_name_reused_after_the_person_was_deleted_is_refused(
    jupyterhub_factory: StartHub, slapd: Slapd, cluster: Cluster, made: People
) -> None:
    # The refresh that found the person gone cleared the identity but kept the
    # record of the entry, so the next owner of the name is still recognized.
    hub = spawning_hub(jupyterhub_factory, slapd, cluster)
    made.add("rhea", "rheapw", 20421, ["jupyterhub-users"])
    assert login(hub, "rhea", "rheapw").status_code == 302
    token = user_token(hub, "rhea")
    made.delete("rhea")
    response = with_token(hub, "POST", "users/rhea/server", token)
    assert_no_server(hub, cluster, "rhea", response)

    made.add("rhea", "newrheapw", 20422, ["jupyterhub-users"])
    assert login(hub, "rhea", "newrheapw").status_code == 403
    assert not holds_identity(auth_state(hub, "rhea"))
