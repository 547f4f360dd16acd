"""Fixtures shared by the deployment tests.

``package_dist``
    The sdist and wheel built from the checkout (``python -m build``), once per session.
``hub_image_env``
    A virtual environment like the hub image's Python: the chart's hub pins, then
    lsst-hub's wheel installed by ``helm-values/hub-image/Dockerfile``'s own ``pip
    install`` line (:mod:`tests.deploy.hub_image_support`), once per session.
"""

from __future__ import annotations

import pytest

from tests.deploy.hub_image_support import Dist, HubEnv, build_dist, build_hub_env


@pytest.fixture(scope="session")
def package_dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    return build_dist(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def hub_image_env(package_dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> HubEnv:
    return build_hub_env(package_dist.wheel, tmp_path_factory.mktemp("hub-image"))
