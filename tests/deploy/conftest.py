"""Fixtures shared by the deployment tests.

``package_dist``
    The sdist and wheel built from the checkout (``python -m build``), once per session.
``hub_image_env``
    A virtual environment like the hub image's Python: the chart's hub pins, then
    lsst-hub's wheel installed by ``helm-values/hub-image/Dockerfile``'s own ``pip
    install`` line (:mod:`tests.deploy.hub_image_support`); built once per run of the
    test command (:func:`.shared_hub_env`).

``postgres``
    A throwaway PostgreSQL server on loopback (:mod:`tests.deploy.postgres_support`),
    per test.

Every test here gets pytest's SIGINT/SIGTERM dispositions back afterwards: loading the
hub's configuration in-process changes ignored ones.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from tests.deploy.hub_image_support import Dist, HubEnv, build_dist, shared_hub_env
from tests.deploy.postgres_support import Postgres, postgres_bin, start_postgres


@pytest.fixture(scope="session")
def package_dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    return build_dist(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def hub_image_env(package_dist: Dist) -> HubEnv:
    return shared_hub_env(package_dist.wheel)


@pytest.fixture(autouse=True)
def _keep_signal_dispositions() -> Iterator[None]:
    """Loading the hub's configuration in this process resets ignored signals
    (:func:`lsst_hub.services.reset_ignored_signals`): put pytest's back afterwards."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, disposition in saved.items():
        if disposition is not None:
            signal.signal(signum, disposition)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    if postgres_bin() is None:
        pytest.fail("PostgreSQL is not installed: scripts/setup.sh installs Debian's postgresql")
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()
