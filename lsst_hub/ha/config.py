"""The hub configuration a standby hub needs, and the database URL it is given.

Two hubs take turns on the same state, so in HA mode (the wrapper ``lsst-hub-ha``
exports ``LSST_HUB_HA=1`` to the hub) :func:`check_ha_settings` refuses what would
break a handover: a sqlite database (each pod would have its own), ``cleanup_servers``
(the leader stopping would stop every server) and a proxy started by the hub (the
routes to running servers must outlive it). The repository's ``jupyterhub_config.py``
and the Helm overlay's ``hub.extraConfig`` both call it, naming their own settings in
the messages.

:func:`database_url` builds ``JupyterHub.db_url`` from a URL and a password kept
apart from it.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

__all__ = ["PSYCOPG_DRIVER", "check_ha_settings", "database_url", "is_sqlite"]

#: The PostgreSQL driver lsst-hub depends on (psycopg 3), as SQLAlchemy names it.
PSYCOPG_DRIVER = "postgresql+psycopg"


def is_sqlite(db_url: str) -> bool:
    """Whether JupyterHub would use sqlite for ``JupyterHub.db_url = db_url``.

    Parameters
    ----------
    db_url : str
        The URL; JupyterHub takes a value without ``://`` as a sqlite file name.

    Returns
    -------
    bool
        True for ``sqlite:`` URLs (any driver) and plain file names.
    """
    if "://" not in db_url:
        return True
    return make_url(db_url).get_backend_name() == "sqlite"


def database_url(url: str, password: str | None = None) -> str:
    """``url`` with ``password`` in it and the PostgreSQL driver named.

    Parameters
    ----------
    url : str
        A SQLAlchemy database URL, e.g. ``postgresql://jupyterhub@db:5432/jupyterhub``,
        with or without a password in it (URL-escaped there).
    password : str, optional
        The password, as is (it is URL-escaped here). Given together with a password
        in ``url``, it is refused: one of them would be silently ignored.

    Returns
    -------
    str
        The URL to set as ``JupyterHub.db_url``, password included: never log it.
        A bare ``postgresql://`` becomes ``postgresql+psycopg://``: SQLAlchemy 2.1
        reads the bare scheme as psycopg 3, 2.0 as psycopg2, which lsst-hub does not
        install; naming the driver gives the same one on every SQLAlchemy.

    Raises
    ------
    ValueError
        ``url`` is not a database URL, or a password is given twice, or given for
        sqlite (which has none).
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as e:  # ValueError: a port that is not a number
        raise ValueError(f"not a database URL (dialect://user@host:port/database): {e}") from e
    if password is not None:
        if parsed.password is not None:
            raise ValueError("a password is both in the URL and given separately: keep one")
        if parsed.get_backend_name() == "sqlite":
            raise ValueError("a password is given for a sqlite database, which takes none")
        parsed = parsed.set(password=password)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername=PSYCOPG_DRIVER)
    # str(URL) would print *** for the password.
    return parsed.render_as_string(hide_password=False)


def check_ha_settings(
    db_url: str,
    cleanup_servers: bool,
    proxy_should_start: bool,
    *,
    db_setting: str = "JupyterHub.db_url",
    cleanup_setting: str = "JupyterHub.cleanup_servers",
    proxy_setting: str = "ConfigurableHTTPProxy.should_start = False and its api_url",
) -> list[str]:
    """What keeps this hub configuration from running as one of a leader/standby pair.

    Parameters
    ----------
    db_url : str
        ``JupyterHub.db_url``.
    cleanup_servers : bool
        ``JupyterHub.cleanup_servers``.
    proxy_should_start : bool
        ``ConfigurableHTTPProxy.should_start``: whether the hub starts its own proxy.
    db_setting, cleanup_setting, proxy_setting : str, optional
        How the caller's admin sets each of the three (an environment variable, a
        Helm value), for the messages; the traits by default.

    Returns
    -------
    list of str
        One message per problem, each saying why and what to set; empty when the
        settings allow a standby hub.
    """
    problems = []
    if is_sqlite(db_url):
        problems.append(
            "the hub database is sqlite, which the other hub cannot reach: both hubs need "
            f"one PostgreSQL database; set {db_setting} to a postgresql:// URL"
        )
    if cleanup_servers:
        problems.append(
            f"{cleanup_setting} is true: a handover would stop every server (the hub that "
            "steps down stops them all); set it to false"
        )
    if proxy_should_start:
        problems.append(
            "the hub starts its own proxy, which would stop with it: the proxy must outlive "
            "a hub to keep the routes to running servers across a handover; run "
            f"configurable-http-proxy on its own and set {proxy_setting}"
        )
    return problems
