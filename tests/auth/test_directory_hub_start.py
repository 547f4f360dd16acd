"""A real JupyterHub refuses to start with settings that cannot tell who owns a name."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.hub_fixtures import RunningHub
from tests.support.ldap_fixtures import authenticator_config
from tests.support.slapd import BASE_DN, PEOPLE_DN, Slapd

pytestmark = pytest.mark.slow

StartHub = Callable[..., RunningHub]


def test_several_templates_without_service_account_stop_the_hub(
    jupyterhub_factory: StartHub, slapd: Slapd
) -> None:
    settings = {
        **authenticator_config(slapd),
        "bind_dn_template": [
            f"uid={{username}},{PEOPLE_DN}",
            f"uid={{username}},ou=guests,{BASE_DN}",
        ],
        "search_bind_dn": "",
        "search_bind_password": "",
    }
    config = "\n".join(
        [
            'c.JupyterHub.authenticator_class = "lsst-ldap"',
            "c.Authenticator.enable_auth_state = True",
            *(f"c.LDAPAuthenticator.{key} = {value!r}" for key, value in settings.items()),
        ]
    )
    with pytest.raises(RuntimeError, match="jupyterhub exited") as failed:
        jupyterhub_factory(config + "\n", timeout=60)
    # The hub's log says what to set.
    assert "search_bind_dn is empty" in str(failed.value)
    assert "or use a single bind_dn_template" in str(failed.value)
