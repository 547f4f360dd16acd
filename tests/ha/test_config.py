"""lsst_hub.ha.config: the database URL a hub is given, and what HA mode refuses."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from lsst_hub.ha.config import PSYCOPG_DRIVER, check_ha_settings, database_url, is_sqlite

PG = "postgresql://jupyterhub@db.example.org:5432/jupyterhub"


@pytest.mark.parametrize(
    "password",
    ["plain", "p@ss:w/rd?#%&=+ ", "ünïcode-パスワード", "trailing\\"],
)
def test_password_is_escaped_into_the_url(password: str) -> None:
    url = database_url(PG, password)
    # Nothing in the password ends the user info early or starts a path or query.
    userinfo = url.split("://", 1)[1].rsplit("@", 1)[0]
    assert userinfo.count(":") == 1
    assert not set("@/?#") & set(userinfo)
    parsed = make_url(url)
    assert parsed.password == password  # read back as it was given
    assert (parsed.username, parsed.host, parsed.port, parsed.database) == (
        "jupyterhub", "db.example.org", 5432, "jupyterhub",
    )  # fmt: skip


def test_password_in_the_url_is_kept() -> None:
    url = database_url("postgresql://jupyterhub:s%40cret@db/jupyterhub")
    assert make_url(url).password == "s@cret"
    assert url == "postgresql+psycopg://jupyterhub:s%40cret@db/jupyterhub"


def test_password_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="both in the URL and given separately"):
        database_url("postgresql://jupyterhub:one@db/jupyterhub", "two")


def test_password_for_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="sqlite"):
        database_url("sqlite:///jupyterhub.sqlite", "pw")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (PG, "postgresql+psycopg://jupyterhub@db.example.org:5432/jupyterhub"),
        # A driver the admin chose stays.
        ("postgresql+psycopg2://u@db/hub", "postgresql+psycopg2://u@db/hub"),
        ("postgresql+psycopg://u@db/hub", "postgresql+psycopg://u@db/hub"),
        ("sqlite:///jupyterhub.sqlite", "sqlite:///jupyterhub.sqlite"),
        ("mysql+pymysql://u@db/hub", "mysql+pymysql://u@db/hub"),
    ],
)
def test_bare_postgresql_gets_the_psycopg_driver(url: str, expected: str) -> None:
    assert database_url(url) == expected


def test_the_driver_named_is_installed() -> None:
    # The URL works with what lsst-hub installs: SQLAlchemy finds the dialect and
    # psycopg 3 (its DBAPI) imports.
    dialect = make_url(database_url(PG)).get_dialect()
    assert PSYCOPG_DRIVER == "postgresql+psycopg"
    assert dialect.driver == "psycopg"
    assert dialect.import_dbapi().__name__ == "psycopg"


@pytest.mark.parametrize("url", ["not a url", "postgresql://u@db:port/hub", ""])
def test_malformed_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ValueError, match="not a database URL") as caught:
        database_url(url, "secret-pw")
    assert "secret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///jupyterhub.sqlite", True),
        ("sqlite://", True),  # in memory
        ("sqlite+pysqlite:////srv/jupyterhub/jupyterhub.sqlite", True),
        ("jupyterhub.sqlite", True),  # JupyterHub reads a bare name as a sqlite file
        (PG, False),
        ("postgresql+psycopg://u:pw@db/hub", False),
        ("mysql+pymysql://u@db/hub", False),
    ],
)
def test_is_sqlite(url: str, expected: bool) -> None:
    assert is_sqlite(url) is expected


def test_ha_settings_that_allow_a_standby() -> None:
    assert check_ha_settings(PG, cleanup_servers=False, proxy_should_start=False) == []


def test_each_ha_problem_says_why_and_what_to_set() -> None:
    problems = check_ha_settings(
        "sqlite:///jupyterhub.sqlite", cleanup_servers=True, proxy_should_start=True
    )
    assert len(problems) == 3
    database, cleanup, proxy = problems
    assert "sqlite" in database and "PostgreSQL" in database
    assert "set JupyterHub.db_url to a postgresql:// URL" in database
    assert "JupyterHub.cleanup_servers is true" in cleanup
    assert "a handover would stop every server" in cleanup
    assert "proxy must outlive a hub" in proxy
    assert "ConfigurableHTTPProxy.should_start = False" in proxy


@pytest.mark.parametrize(
    ("db_url", "cleanup", "should_start", "only"),
    [
        ("sqlite:///jupyterhub.sqlite", False, False, "sqlite"),
        (PG, True, False, "handover would stop every server"),
        (PG, False, True, "proxy must outlive a hub"),
    ],
)
def test_each_ha_problem_alone(db_url: str, cleanup: bool, should_start: bool, only: str) -> None:
    (problem,) = check_ha_settings(db_url, cleanup, should_start)
    assert only in problem


def test_ha_messages_name_the_callers_settings() -> None:
    # jupyterhub_config.py names its variables, the Helm overlay its values.
    problems = check_ha_settings(
        "sqlite://", True, True,
        db_setting="hub.db.url", cleanup_setting="hub.extraConfig cleanup",
        proxy_setting="proxy.chp",
    )  # fmt: skip
    assert "set hub.db.url to a postgresql:// URL" in problems[0]
    assert problems[1].startswith("hub.extraConfig cleanup is true")
    assert problems[2].endswith("set proxy.chp")
